/**
 * createActivemqTransport: the Transport object core drives, on the STOMP driver and the adapter
 * kit. The supervisor's session is the publishing connection (sends, provisioning, the scheduler
 * probe; it never consumes); every subscription has a consumer connection and a supervisor of its
 * own (subscriber.ts). Failover: each supervisor tries the configured hosts in turn.
 */
import type { Capabilities, Transport, TransportContext, TransportSubscription } from '@msgkit/core'
import { closedError, createSupervisor, type Supervisor } from '@msgkit/core/adapter'
import { type ActivemqTransportConfig, endpointsOf, stompOptions } from './config.js'
import { openStomp, type StompConnection } from './driver.js'
import { createErrorTable } from './errors.js'
import { MAX_HEADER_LINE_BYTES } from './mapping.js'
import { createPublisher } from './publisher.js'
import { startSubscriber } from './subscriber.js'
import { groupQueue, probeScheduler, provisionQueue } from './topology.js'

/** provision() and subscribe() wait this long for the broker through an outage. */
const WAIT_MS = 30_000
/** DISCONNECT waits this long for its receipt. */
const CLOSE_MS = 3_000

/** What the transport declares (docs/brokers/activemq.md says why); connect() sets `delay`. */
export function activemqCapabilities(config: ActivemqTransportConfig): Capabilities {
  return {
    persistence: true,
    fanout: true,
    // JMSXGroupID: the broker gives each key to one consumer of the group at a time
    orderedKeys: 'group',
    delay: false,
    patterns: true,
    maxMessageBytes: config.maxMessageBytes,
    // a sum no larger than one header line may be, so that one header at the limit fits its line;
    // the line limit itself (escaped) and the 1,000 lines are checked in mapping.ts
    maxHeaderBytes: MAX_HEADER_LINE_BYTES,
    deadLetter: true,
    // STOMP frames carry only `redelivered`: core counts (msgkit-attempt numbers requeued copies)
    deliveryCount: 'flag',
    // a RECEIPT says the broker took the SEND, not whether a group's queue got a copy
    unroutable: false,
  }
}

/** A supervisor of connections to the configured hosts; `prepare` runs on each new one. */
export type Supervise = (
  context: TransportContext,
  prepare?: (connection: StompConnection) => Promise<void>,
) => Supervisor<StompConnection>

/** The ActiveMQ transport for a validated config. Plain object; connect() before use. */
export function createActivemqTransport(
  config: ActivemqTransportConfig,
  context: TransportContext,
): Transport {
  const errors = createErrorTable(context.scrub)
  const capabilities = activemqCapabilities(config)
  const subscribers = new Set<TransportSubscription>()
  let probe: Promise<void> | undefined
  let closing: Promise<void> | undefined

  const supervise: Supervise = (ctx, prepare) => {
    const supervisor = createSupervisor<StompConnection>({
      name: 'activemq',
      context: ctx,
      errors,
      driver: {
        endpoints: endpointsOf(config).map((e) => `${e.host}:${e.port}`),
        async open(index) {
          const connection = await openStomp(stompOptions(config, index))
          // on the next turn: by then the supervisor has adopted it, so the loss is not ignored
          connection.onClose((error) => setImmediate(() => supervisor.lost(connection, error)))
          await prepare?.(connection).catch(async (error: unknown) => {
            await connection.close(CLOSE_MS)
            throw error
          })
          return connection
        },
        close: (connection) => connection.close(CLOSE_MS),
      },
    })
    return supervisor
  }
  const supervisor = supervise(context)
  const publisher = createPublisher(supervisor, errors, config)
  const waitUp = <T>(operation: string, topic: string, work: (c: StompConnection) => Promise<T>) =>
    supervisor.perform({ operation, topic }, Date.now() + WAIT_MS, work)

  return {
    name: 'activemq',
    capabilities,
    // every send goes through the kit's outbox, which settles it by its deadline
    keepsDeadlines: true,

    async connect() {
      const connection = await supervisor.connect()
      if (config.maxDelayMs === 0 || probe) return
      // once: does the scheduler honour AMQ_SCHEDULED_DELAY? (the broker ignores it silently when off)
      const seen = await probeScheduler(connection, config.connectTimeoutMs).catch((error: unknown) => {
        context.logger.warn({ err: context.scrub(String(error)) }, 'activemq: scheduler probe failed')
      })
      probe = seen?.done ?? Promise.resolve()
      capabilities.delay = seen?.honoured ? { maxMs: config.maxDelayMs } : false
      if (!seen?.honoured) context.logger.warn({}, 'activemq: AMQ_SCHEDULED_DELAY not honoured: delay off')
    },

    // after close() the outbox refuses with MSGKIT_CLOSED
    send: (topic, messages, options) => publisher.send(topic, messages, options),

    async provision(topic, group) {
      if (closing) throw closedError('activemq')
      const queue = groupQueue(topic, group)
      await waitUp('provision', topic, (connection) => provisionQueue(connection, queue))
    },

    async subscribe(request, onDelivery) {
      if (closing) throw closedError('activemq')
      const whenUp = (topic: string, connect: () => Promise<unknown>) => waitUp('subscribe', topic, connect)
      const deps = { context, supervise, config, whenUp, live: subscribers }
      const subscription = await startSubscriber(request, onDelivery, deps)
      if (!closing) return subscription
      await subscription.close()
      throw closedError('activemq')
    },

    close() {
      closing ??= (async () => {
        await Promise.allSettled([...subscribers].map((s) => s.close()))
        await publisher.close()
        await probe
        await supervisor.close()
      })()
      return closing
    },
  }
}
