/**
 * The contract suite against the memory transport with every optional capability switched off and
 * a probe with only the required members: proves the gated cases assert the loud failure
 * (MSGKIT_CAPABILITY_UNSUPPORTED) and the probe-dependent ones skip visibly.
 */
import {
  type Capabilities,
  createMessaging,
  memoryTransport,
  type Transport,
  type TransportDefinition,
} from '@msgkit/core'
import { createMemoryFaults, createMemoryProbe } from '@msgkit/core/testing'
import { runContractSuite } from '../src/index.js'

const capabilities: Capabilities = {
  persistence: false,
  fanout: false,
  orderedKeys: false,
  delay: false,
  patterns: false,
  deadLetter: false,
  // core counts deliveries itself
  deliveryCount: 'none',
  unroutable: false,
  maxMessageBytes: 64 * 1024,
  maxHeaderBytes: 4 * 1024,
}

/** The memory transport, declaring less than it can do. */
const limitedMemory: TransportDefinition<Parameters<typeof memoryTransport.create>[0]> = {
  ...memoryTransport,
  name: 'memory-limited',
  schemes: [],
  create(config, context): Transport {
    const transport = memoryTransport.create(config, context)
    return new Proxy(transport, {
      get: (target, property) => (property === 'capabilities' ? capabilities : Reflect.get(target, property)),
    })
  },
}

const broker = 'contract-capabilities-off'
const { publishRaw } = createMemoryProbe(broker)
const faults = createMemoryFaults(broker)

runContractSuite({
  name: 'memory, capabilities off',
  createMessaging: (options) => createMessaging({ transport: limitedMemory, broker, ...options }),
  probe: {
    publishRaw,
    badConnections: [],
    // msgkit's limits here are 64 KiB bodies and 4 KiB headers; the memory broker takes more
    rawOversize: { bodyBytes: 80 * 1024, headerValueBytes: 8 * 1024 },
  },
  faults: {
    ...faults,
    createMessaging: (options) => createMessaging({ transport: limitedMemory, broker, ...options }),
  },
})
