import { createMessaging } from '@msgkit/core'
import { createMemoryProbe } from '@msgkit/core/testing'
import { runContractSuite } from '@msgkit/testkit'

// One named in-process broker for the whole run; each case uses its own topics.
const name = 'memory-suite'

runContractSuite({
  name: 'memory',
  createMessaging: (options) => createMessaging(`memory://contract-${name}`, options),
  probe: createMemoryProbe(`contract-${name}`),
})
