// The OP cases (operator features behind `msgkit tail` and `msgkit dlq`: temporary groups, replay,
// sendToGroup, browse) on each real broker, pointed at it by MSGKIT_URL (scripts/test-brokers.mjs).
// A feature the transport does not declare is checked for its loud MSGKIT_CAPABILITY_UNSUPPORTED.
import { createMessaging } from '@msgkit/core'
import { runOperatorCases } from '@msgkit/testkit'
import { describe, it } from 'vitest'

const url = process.env.MSGKIT_URL
if (url) {
  runOperatorCases({
    name: url.split(':')[0] ?? url,
    createMessaging: (options) => createMessaging(url, options),
  })
} else {
  describe.skip('operator features: set MSGKIT_URL (pnpm test:brokers sets it per broker)', () => {
    it('needs a broker', () => {})
  })
}
