/**
 * createKafkaTransport: the Transport object core drives, on kafkajs and the adapter kit. kafkajs
 * manages its own broker connections, so the supervisor's session is a kafkajs admin + producer
 * pair: opening it proves the cluster answers (it is also the reconnect probe), and whatever sees
 * a connection-class failure (a publish, a provision, a crashed consumer) reports it with `lost`.
 */
import type { Capabilities, Transport, TransportContext } from '@msgkit/core'
import {
  bounded,
  createRenewable,
  createSubscriptionSet,
  createSupervisor,
  type Renewable,
} from '@msgkit/core/adapter'
import { type Admin, Partitioners, type Producer } from 'kafkajs'
import {
  BROKER_WAIT_MS,
  CLIENT_RETRY,
  createKafkaClient,
  type KafkaTransportConfig,
  RECORD_OVERHEAD_BYTES,
} from './config.js'
import { createKafkaErrors, staleMetadata } from './errors.js'
import { createPublisher } from './publisher.js'
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

/**
 * The supervisor's session: a kafkajs admin and producer, connected together, closed together. Each
 * is renewed while the session lives: the admin after stale metadata (errors.ts), the producer after
 * a failed batch (publisher.ts).
 */
export interface KafkaSession {
  admin: Renewable<Admin>
  producer: Renewable<Producer>
}

/** The Kafka transport for a validated config. Plain object; connect() before use. */
export function createKafkaTransport(config: KafkaTransportConfig, context: TransportContext): Transport {
  const kafka = createKafkaClient(config, context.logger)
  const errors = createKafkaErrors(context.scrub)
  const topology = createTopology(kafka, config, context.logger)
  const subscriptions = createSubscriptionSet('kafka')
  let closing: Promise<void> | undefined

  const openSession = (): KafkaSession => ({
    admin: createRenewable({
      create: () => kafka.admin({ retry: CLIENT_RETRY }),
      connect: (admin) => admin.connect(),
      close: (admin) => admin.disconnect(),
      renewOn: staleMetadata,
    }),
    // an idempotent producer gets its producer id when it connects
    producer: createRenewable({
      create: () =>
        kafka.producer({
          idempotent: config.idempotent,
          maxInFlightRequests: config.idempotent ? 1 : undefined,
          allowAutoTopicCreation: false,
          createPartitioner: Partitioners.DefaultPartitioner,
          retry: CLIENT_RETRY,
        }),
      connect: (producer) => producer.connect(),
      close: (producer) => producer.disconnect(),
      // a connection failure replaces the whole session anyway
      renewOn: (error) => errors.classify(error) !== 'connection',
    }),
  })
  /** polite, but bounded: a frozen broker must not hold up a reconnect or close() */
  const closeSession = (session: KafkaSession): Promise<void> =>
    bounded(Promise.all([session.admin.close(), session.producer.close()]), 5_000)

  const supervisor = createSupervisor<KafkaSession>({
    name: 'kafka',
    context,
    errors,
    driver: {
      // kafkajs balances over the bootstrap list itself: one endpoint
      endpoints: [config.brokers.join(',')],
      openTimeoutMs: config.connectTimeout,
      async open() {
        const session = openSession()
        try {
          await Promise.all([session.admin.current, session.producer.current])
          return session
        } catch (error) {
          void closeSession(session)
          throw error
        }
      },
      close: closeSession,
    },
  })
  const publisher = createPublisher({ config, supervisor, errors, topology })

  /** `work` on the session's admin, tried across outages for up to BROKER_WAIT_MS */
  const withAdmin = <T>(operation: string, topic: string, work: (admin: Admin) => Promise<T>): Promise<T> =>
    supervisor.perform({ operation, topic }, Date.now() + BROKER_WAIT_MS, (s) => s.admin.use(work))
  const provision = (topic: string, group: string): Promise<void> =>
    withAdmin('provision', topic, (admin) => topology.provision(admin, topic, group))

  return {
    name: 'kafka',
    capabilities: kafkaCapabilities(config),
    // every send goes through the kit's outbox, which settles it by its deadline
    keepsDeadlines: true,
    connect: async () => void (await supervisor.connect()),
    send: (topic, messages, options) => publisher.send(topic, messages, options.deadline),
    provision,

    subscribe(request, onDelivery) {
      const newClient = () => createKafkaClient(config, context.logger)
      const deps = { config, context, supervisor, errors, topology, newClient, withAdmin }
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
