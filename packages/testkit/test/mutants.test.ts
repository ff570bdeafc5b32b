/**
 * The suite proves it can fail: the memory transport with one injected fault each, and the cases
 * that must catch it (the list is in this package's README, "The suite can fail"). If a case
 * stops failing against its mutant, it has stopped testing what it claims to.
 */
import {
  createMessaging,
  type Delivery,
  ErrorCodes,
  MsgkitError,
  memoryTransport,
  type Transport,
  type TransportContext,
  type TransportDefinition,
} from '@msgkit/core'
import { createMemoryFaults, createMemoryProbe } from '@msgkit/core/testing'
import { type Mutant, runMutantCheck, setContractWaits } from '../src/index.js'

// the mutants fail by timing out on waits sized for real brokers: memory needs far less
setContractWaits({ waitMs: 4_000, longWaitMs: 6_000 })

type Wrap = (transport: Transport, context: TransportContext) => Transport

/** The memory transport with `wrap` applied to each instance. */
function mutate(name: string, wrap: Wrap): TransportDefinition<Parameters<typeof memoryTransport.create>[0]> {
  return {
    ...memoryTransport,
    name: `memory-${name}`,
    schemes: [],
    create(config, context) {
      return wrap(memoryTransport.create(config, context), context)
    },
  }
}

/** A transport whose deliveries pass through `change` on their way to core. */
const onDeliveries =
  (change: (delivery: Delivery, forward: (d: Delivery) => Promise<void>) => Promise<void>): Wrap =>
  (transport) => ({
    ...transport,
    subscribe: (request, onDelivery) => transport.subscribe(request, (d) => change(d, onDelivery)),
  })

const mutants: Array<{ name: string; wrap: Wrap; caughtBy: string[] }> = [
  {
    name: 'drops 1 in 50 publishes',
    wrap: (transport) => {
      let n = 0
      return {
        ...transport,
        send: (topic, messages, options) =>
          transport.send(
            topic,
            messages.filter(() => ++n % 50 !== 0),
            options,
          ),
      }
    },
    caughtBy: ['DG-1'],
  },
  {
    name: 'duplicates 1 in 20 deliveries',
    wrap: onDeliveries(async (delivery, forward) => {
      const twice = ++duplicateCount % 20 === 0
      await forward(delivery)
      if (twice) await forward({ ...delivery, ack: async () => {}, nack: async () => {} })
    }),
    caughtBy: ['DG-1', 'GR-2'],
  },
  {
    name: 'redelivers forever with no flag and no count',
    wrap: onDeliveries((delivery, forward) =>
      forward({ ...delivery, message: { ...delivery.message, redelivered: false, attempt: 1 } }),
    ),
    caughtBy: ['SP-3', 'DG-4', 'DG-12'],
  },
  {
    name: 'ignores prefetch',
    wrap: (transport) => ({
      ...transport,
      subscribe: (request, onDelivery) => transport.subscribe({ ...request, prefetch: 10_000 }, onDelivery),
    }),
    caughtBy: ['SP-1'],
  },
  {
    name: 'fails fast during an outage',
    wrap: (transport, context) => {
      let up = true
      const emit = context.emit
      context.emit = (event) => {
        if (event.type === 'connected') up = true
        if (event.type === 'disconnected') up = false
        emit(event)
      }
      return {
        ...transport,
        send: (topic, messages, options) =>
          up
            ? transport.send(topic, messages, options)
            : Promise.reject(
                new MsgkitError(ErrorCodes.PUBLISH_TIMEOUT, 'broker down (mutant gives up at once)'),
              ),
      }
    },
    caughtBy: ['SP-4', 'RS-1'],
  },
  {
    // core keeps no timer of its own for such a transport: a send held past its deadline hangs the publish
    name: 'declares keepsDeadlines but holds sends a minute past their deadline',
    wrap: (transport) => ({
      ...transport,
      keepsDeadlines: true,
      send: (topic, messages, options) =>
        transport.send(topic, messages, { ...options, deadline: options.deadline + 60_000 }),
    }),
    caughtBy: ['SP-4'],
  },
  {
    name: 'leaks a broker header on the delay path',
    wrap: (transport) => ({
      ...transport,
      send: (topic, messages, options) =>
        transport.send(
          topic,
          messages.map((m) =>
            m.delayMs ? { ...m, headers: { ...m.headers, 'x-death': '[{"reason":"expired"}]' } } : m,
          ),
          options,
        ),
    }),
    caughtBy: ['DL-1', 'SP-6'],
  },
  {
    name: 'reorders within a key',
    wrap: onDeliveries(async (delivery, forward) => {
      // hold every 7th keyed delivery back until the next one of the same key has been handed over
      const key = delivery.message.key
      const late = key === undefined ? undefined : held.get(key)
      if (key !== undefined && late === undefined && ++reorderCount % 7 === 0) {
        held.set(key, delivery)
        return
      }
      await forward(delivery)
      if (key !== undefined && late) {
        held.delete(key)
        await forward(late)
      }
    }),
    caughtBy: ['OR-1'],
  },
  {
    name: 'drops the trace context header',
    wrap: (transport) => ({
      ...transport,
      send: (topic, messages, options) =>
        transport.send(
          topic,
          messages.map(({ headers: { traceparent: _dropped, ...headers }, ...m }) => ({ ...m, headers })),
          options,
        ),
    }),
    caughtBy: ['TR-1', 'TR-2'],
  },
  {
    name: 'never acks the source of a dead letter',
    wrap: (transport) => {
      const deadLettered = new Set<string>()
      return {
        ...transport,
        send: (topic, messages, options) => {
          if (topic.endsWith('.dlq')) for (const m of messages) deadLettered.add(m.id)
          return transport.send(topic, messages, options)
        },
        subscribe: (request, onDelivery) =>
          transport.subscribe(request, (d) =>
            onDelivery({
              ...d,
              ack: () => (deadLettered.has(d.message.id) ? Promise.resolve() : d.ack()),
            }),
          ),
      }
    },
    caughtBy: ['DG-5', 'DG-6'],
  },
]
let duplicateCount = 0
let reorderCount = 0
const held = new Map<string, Delivery>()

runMutantCheck(
  mutants.map(({ name, wrap, caughtBy }, index): Mutant => {
    const broker = `mutant-${index}`
    const definition = mutate(`mutant-${index}`, wrap)
    const open = (options?: Parameters<typeof createMessaging>[1]) =>
      createMessaging({ transport: definition, broker, ...options })
    return {
      name,
      caughtBy,
      suite: {
        name: `memory mutant: ${name}`,
        createMessaging: open,
        probe: createMemoryProbe(broker),
        faults: { ...createMemoryFaults(broker), createMessaging: open },
      },
    }
  }),
)
