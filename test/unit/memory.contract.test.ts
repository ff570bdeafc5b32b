import { createMessaging } from '@msgkit/core'
import { createMemoryFaults, createMemoryProbe } from '@msgkit/core/testing'
import { runContractSuite } from '@msgkit/testkit'

// One named in-process broker for the whole run; each case uses its own topics.
const broker = 'contract-memory-suite'

runContractSuite({
  name: 'memory',
  createMessaging: (options) => createMessaging(`memory://${broker}`, options),
  probe: createMemoryProbe(broker),
  faults: createMemoryFaults(broker),
})
