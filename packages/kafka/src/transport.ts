/**
 * createKafkaTransport: the Transport object core drives, on kafkajs and the adapter kit. kafkajs
 * manages its own broker connections, so the supervisor's session is a kafkajs admin + producer
 * pair: opening it proves the cluster answers (it is also the reconnect probe), and whatever sees
 * a connection-class failure (a publish, a provision, a crashed consumer) reports it with `lost`.
 */
import { type Capabilities, type Transport, type TransportContext, withTimeout } from '@msgkit/core'
import { createSubscriptionSet, createSupervisor } from '@msgkit/core/adapter'
import {
  BROKER_WAIT_MS,
  CLIENT_RETRY,
  createKafkaClient,
  type KafkaTransportConfig,
  RECORD_OVERHEAD_BYTES,
} from './config.js'
import { createKafkaErrors } from './errors.js'
import { createPublisher, type KafkaSession, openProducer } from './publisher.js'
import { startSubscriber } from './subscriber.js'
import { createTopology } from './topology.js'

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
  const topology = createTopology(kafka, config, context.logger)
  const subscriptions = createSubscriptionSet('kafka')
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
      endpoints: [config.brokers.join(',')],
      async open() {
        const admin = kafka.admin({ retry: CLIENT_RETRY })
        const session: KafkaSession = { admin, producer: openProducer(kafka, config), closed: false }
        const ready = Promise.all([admin.connect(), session.producer])
        try {
          const timeout = () => new KafkaConnectTimeoutError(`no answer within ${config.connectTimeout} ms`)
          await withTimeout(ready, config.connectTimeout, timeout)
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
    supervisor.perform({ operation: 'provision', topic }, Date.now() + BROKER_WAIT_MS, (session) =>
      topology.provision(session.admin, topic, group),
    )

  return {
    name: 'kafka',
    capabilities: kafkaCapabilities(config),
    connect: async () => void (await supervisor.connect()),
    send: (topic, messages, options) => publisher.send(topic, messages, options.deadline),
    provision,

    subscribe(request, onDelivery) {
      const newClient = () => createKafkaClient(config, context.logger)
      const deps = { config, context, supervisor, errors, topology, newClient, provision }
      return subscriptions.add(() => startSubscriber(request, onDelivery, deps))
    },

    close() {
      closing ??= (async () => {
        await publisher.close()
        // a subscribe still under way gives up once the supervisor is closed; members have their own clients
        await supervisor.close()
        await subscriptions.close()
        await topology.close()
      })()
      return closing
    },
  }
}
