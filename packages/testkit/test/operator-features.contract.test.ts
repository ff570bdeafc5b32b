// The OP cases (operator features: temporary groups, replay, sendToGroup, browse) on the memory transport.
import { randomUUID } from 'node:crypto'
import { createMessaging } from '@msgkit/core'
import { runOperatorCases } from '../src/index.js'

const broker = `op-${randomUUID().slice(0, 8)}`
runOperatorCases({
  name: 'memory',
  createMessaging: (options) => createMessaging(`memory://${broker}`, options),
  quietMs: 300,
  waitMs: 5_000,
})
