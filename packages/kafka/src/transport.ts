/**
 * createKafkaTransport: the Transport object core drives, on kafkajs and the adapter kit. kafkajs
 * manages its own broker connections, so the supervisor's session is a kafkajs admin + producer
 * pair: opening it proves the cluster answers (it is also the reconnect probe), and whatever sees
 * a connection-class failure (a publish, a provision, a crashed consumer) reports it with `lost`.
 */
import { type Capabilities, type Transport, type TransportContext, withTimeout } from '@msgkit/core'
import { closedError, createSupervisor } from '@msgkit/core/adapter'
import {
  CLIENT_RETRY,
  createKafkaClient,
  type KafkaTransportConfig,
  RECORD_OVERHEAD_BYTES,
} from './config.js'
import { createKafkaErrors } from './errors.js'
import { createPublisher, type KafkaSession, openProducer } from './publisher.js'
import { startSubscriber } from './subscriber.js'
import { createTopology } from './topology.js'

/** provision() and subscribe() keep trying this long while the broker is unreachable. */
const PROVISION_TIMEOUT_MS = 30_000

/** What the transport declares; maxMessageBytes leaves room for key, headers and batch overhead. */
export function kafkaCapabilities(config: KafkaTransportConfig): Capabilities {
  return {
    persistence: true,
    fanout: true,
    orderedKeys: 'group',
    delay: false,
    patterns: true,
    maxMessageBytes: config.messageMaxBytes - config.maxHeaderBytes - RECORD_OVERHEAD_BYTES,
    maxHeaderBytes: config.maxHeaderBytes,
    deadLetter: true,
    // Kafka keeps no delivery count and no redelivered flag: core counts
    deliveryCount: 'none',
    // a topic keeps every message whether or not a group exists: nothing is dropped to report
    unroutable: false,
  }
}

/** One connect attempt took longer than `connectTimeout` (classified as a connection failure). */
class KafkaConnectTimeoutError extends Error {
  override name = 'KafkaConnectTimeoutError'
}

/** The Kafka transport for a validated config. Plain object; connect() before use. */
export function createKafkaTransport(config: KafkaTransportConfig, context: TransportContext): Transport {
  const kafka = createKafkaClient(config, context.logger)
  const errors = createKafkaErrors(context.scrub)
  const brokers = config.brokers.join(',')
  const topology = createTopology(kafka, config, context.logger)
  const subscriptions = new Set<{ close(): Promise<void> }>()
  const starting = new Set<Promise<unknown>>()
  let closing: Promise<void> | undefined

  /** polite, but bounded: a frozen broker must not hold up a reconnect or close() */
  const closeSession = async (session: KafkaSession): Promise<void> => {
    session.closed = true
    const done = session.producer
      .catch(() => undefined)
      .then((producer) => Promise.allSettled([session.admin.disconnect(), producer?.disconnect()]))
    await withTimeout(done, 5_000, () => new Error('disconnect timed out')).catch(() => {})
  }

  const supervisor = createSupervisor<KafkaSession>({
    name: 'kafka',
    context,
    errors,
    driver: {
      // kafkajs balances over the bootstrap list itself: one endpoint
      endpoints: [brokers],
      async open() {
        const session: KafkaSession = {
          admin: kafka.admin({ retry: CLIENT_RETRY }),
          producer: openProducer(kafka, config),
          closed: false,
        }
        session.producer.catch(() => {})
        const ready = Promise.all([session.admin.connect(), session.producer])
        try {
          await withTimeout(
            ready,
            config.connectTimeout,
            () => new KafkaConnectTimeoutError(`no answer within ${config.connectTimeout} ms`),
          )
          return session
        } catch (error) {
          void ready.catch(() => {}).finally(() => closeSession(session))
          throw error
        }
      },
      close: closeSession,
    },
  })
  const publisher = createPublisher({ kafka, config, supervisor, errors, topology })

  const provision = (topic: string, group: string): Promise<void> =>
    supervisor.perform(
      { operation: 'provision', topic },
      Date.now() + PROVISION_TIMEOUT_MS,
      async (session) => {
        await topology.ensureTopic(session.admin, topic)
        await topology.initGroupOffsets(session.admin, topic, group)
      },
    )

  return {
    name: 'kafka',
    capabilities: kafkaCapabilities(config),

    async connect() {
      await supervisor.connect()
    },

    send: (topic, messages, options) => publisher.send(topic, messages, options.deadline),

    provision,

    async subscribe(request, onDelivery) {
      if (supervisor.state === 'closed') throw closedError('kafka')
      const start = startSubscriber(request, onDelivery, {
        config,
        supervisor,
        errors,
        topology,
        logger: context.logger,
        newClient: () => createKafkaClient(config, context.logger),
        provision,
        listTopics: () =>
          supervisor.perform({ operation: 'list topics' }, Date.now() + PROVISION_TIMEOUT_MS, (s) =>
            s.admin.listTopics(),
          ),
        emitError: (error) => context.emit({ type: 'error', error }),
      }).then(async (subscription) => {
        if (supervisor.state !== 'closed') return subscription
        await subscription.close()
        throw closedError('kafka')
      })
      starting.add(start)
      const subscription = await start.finally(() => starting.delete(start))
      subscriptions.add(subscription)
      return {
        stop: () => subscription.stop(),
        async close() {
          await subscription.close()
          subscriptions.delete(subscription)
        },
      }
    },

    close() {
      closing ??= (async () => {
        await Promise.allSettled([...subscriptions].map((s) => s.close()))
        await publisher.close()
        // a subscribe still under way sees the closed supervisor and closes what it started
        await supervisor.close()
        await Promise.allSettled([...starting])
        await topology.close()
      })()
      return closing
    },
  }
}
