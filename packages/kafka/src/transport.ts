/**
 * createKafkaTransport: the Transport object core drives, on kafkajs and the adapter kit. kafkajs
 * manages its own broker connections, so the supervisor's session is a kafkajs admin + producer
 * pair: opening it proves the cluster answers (it is also the reconnect probe), and whatever sees
 * a connection-class failure (a publish, a provision, a crashed consumer) reports it with `lost`.
 */
import { type Capabilities, type Transport, type TransportContext, withTimeout } from '@msgkit/core'
import { createSubscriptionSet, createSupervisor } from '@msgkit/core/adapter'
import type { Admin, Producer } from 'kafkajs'
import {
  BROKER_WAIT_MS,
  CLIENT_RETRY,
  connected,
  createKafkaClient,
  type KafkaTransportConfig,
  RECORD_OVERHEAD_BYTES,
} from './config.js'
import { createKafkaErrors, staleMetadata } from './errors.js'
import { createPublisher, openProducer } from './publisher.js'
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

/** The supervisor's session: a kafkajs admin and producer, connected together, closed together. */
export interface KafkaSession {
  /**
   * Runs `work` on the session's admin. After stale metadata (errors.ts) the admin is renewed before
   * the error goes back to the caller's retry; the replaced one is closed at the next renewal or with
   * the session (calls may still run on it).
   */
  useAdmin<T>(work: (admin: Admin) => Promise<T>): Promise<T>
  /** the connected producer; replaced after a failed batch (publisher.ts) */
  producer: Promise<Producer>
  closed: boolean
  close(): Promise<void>
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

  const openSession = (): KafkaSession => {
    const newAdmin = () => connected(kafka.admin({ retry: CLIENT_RETRY }))
    // the live admin last; the one before may still have calls running
    const admins = [newAdmin()]
    const session: KafkaSession = {
      producer: openProducer(kafka, config),
      closed: false,
      async useAdmin(work) {
        const admin = admins.at(-1) as Promise<Admin>
        try {
          return await work(await admin)
        } catch (error) {
          if (staleMetadata(error) && admin === admins.at(-1) && !session.closed) {
            if (admins.length > 1)
              void admins
                .shift()
                ?.then((a) => a.disconnect())
                .catch(() => {})
            admins.push(newAdmin())
          }
          throw error
        }
      },
      /** polite, but bounded: a frozen broker must not hold up a reconnect or close() */
      async close() {
        session.closed = true
        const clients = [...admins, session.producer].map((c) => c.then((client) => client.disconnect()))
        await withTimeout(Promise.allSettled(clients), 5_000, () => new Error('disconnect timed out')).catch(
          () => {},
        )
      },
    }
    return session
  }

  const supervisor = createSupervisor<KafkaSession>({
    name: 'kafka',
    context,
    errors,
    driver: {
      // kafkajs balances over the bootstrap list itself: one endpoint
      endpoints: [config.brokers.join(',')],
      async open() {
        const session = openSession()
        const ready = Promise.all([session.useAdmin(async () => {}), session.producer])
        try {
          const timeout = () => new KafkaConnectTimeoutError(`no answer within ${config.connectTimeout} ms`)
          await withTimeout(ready, config.connectTimeout, timeout)
          return session
        } catch (error) {
          void ready.catch(() => {}).finally(() => session.close())
          throw error
        }
      },
      close: (session) => session.close(),
    },
  })
  const publisher = createPublisher({ kafka, config, supervisor, errors, topology })

  const provision = (topic: string, group: string): Promise<void> =>
    supervisor.perform({ operation: 'provision', topic }, Date.now() + BROKER_WAIT_MS, (session) =>
      session.useAdmin((admin) => topology.provision(admin, topic, group)),
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
