/** createKafkaTransport: the Transport object core drives, built on kafkajs. */
import {
  backoffDelay,
  type Capabilities,
  ErrorCodes,
  MsgkitError,
  sleep,
  type Transport,
  type TransportContext,
  type TransportSubscription,
  withTimeout,
} from '@msgkit/core'
import type { Admin } from 'kafkajs'
import { CLIENT_RETRY, createKafkaClient, RETRY_BACKOFF } from './client.js'
import { type ClusterAdmin, createClusterAdmin } from './cluster-admin.js'
import { type KafkaTransportConfig, RECORD_OVERHEAD_BYTES } from './config.js'
import { type ConnectionState, createConnectionState } from './connection-state.js'
import { isConnectionLoss, isTransient, toMsgkitError, transportClosed } from './errors.js'
import { createPublisher, type Publisher } from './publisher.js'
import { type KafkaSubscription, startSubscription } from './subscription.js'

/** How long close() lets queued publishes finish before rejecting them with MSGKIT_CLOSED. */
const CLOSE_PUBLISH_GRACE_MS = 10_000
/** provision(): how long to keep trying while the broker is unreachable. */
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

function secretsOf(config: KafkaTransportConfig): string[] {
  const out: string[] = []
  if (config.sasl?.password) out.push(config.sasl.password)
  if (typeof config.ssl === 'object') {
    if (config.ssl.passphrase) out.push(config.ssl.passphrase)
    for (const key of [config.ssl.key].flat()) if (key) out.push(key)
  }
  return out
}

/** The Kafka transport for a validated config. Plain object; connect() before use. */
export function createKafkaTransport(config: KafkaTransportConfig, context: TransportContext): Transport {
  const logger = context.logger
  const secrets = secretsOf(config)
  const kafka = createKafkaClient(config, logger)
  const capabilities = kafkaCapabilities(config)
  const brokerList = config.brokers.join(',')

  let admin: Admin | undefined
  let clusterAdmin: ClusterAdmin | undefined
  let publisher: Publisher | undefined
  let connecting: Promise<void> | undefined
  let closing: Promise<void> | undefined
  let closed = false
  const subscriptions = new Set<KafkaSubscription>()
  const subscribing = new Set<Promise<unknown>>()

  const connection: ConnectionState = createConnectionState({
    emit: (event) => context.emit(event),
    probe: async () => {
      const probeAdmin = kafka.admin({ retry: { retries: 0 } })
      try {
        await probeAdmin.connect()
      } finally {
        await probeAdmin.disconnect().catch(() => {})
      }
    },
  })

  const assertOpen = (): void => {
    if (closed) throw transportClosed()
  }

  const ready = (): { admin: Admin; clusterAdmin: ClusterAdmin; publisher: Publisher } => {
    assertOpen()
    if (!admin || !clusterAdmin || !publisher) {
      throw new MsgkitError(
        ErrorCodes.CONNECTION_FAILED,
        'The Kafka transport is not connected: call connect() first.',
      )
    }
    return { admin, clusterAdmin, publisher }
  }

  /** Retries `operation` while the broker is unreachable, up to PROVISION_TIMEOUT_MS. */
  const withReconnect = async <T>(operation: () => Promise<T>, what: string): Promise<T> => {
    const deadline = Date.now() + PROVISION_TIMEOUT_MS
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation()
      } catch (error) {
        const delay = backoffDelay(attempt, RETRY_BACKOFF)
        if (closed) throw transportClosed()
        if (!isTransient(error) || Date.now() + delay > deadline)
          throw toMsgkitError(error, 'provision', what, secrets)
        if (isConnectionLoss(error)) connection.down(error)
        await sleep(delay)
      }
    }
  }

  const provision = async (topic: string, group: string): Promise<void> => {
    const { clusterAdmin: ca } = ready()
    await withReconnect(() => ca.ensureTopic(topic), `Creating Kafka topic ${topic} failed`)
    await withReconnect(
      () => ca.initGroupOffsets(topic, group),
      `Provisioning group ${group} on Kafka topic ${topic} failed`,
    )
  }

  return {
    name: 'kafka',
    capabilities,

    connect() {
      connecting ??= (async () => {
        assertOpen()
        const a = kafka.admin({ retry: CLIENT_RETRY })
        try {
          await withTimeout(
            a.connect(),
            config.connectTimeout,
            () =>
              new MsgkitError(
                ErrorCodes.CONNECTION_FAILED,
                `Could not connect to Kafka at ${brokerList} within ${config.connectTimeout} ms.`,
                { retriable: true },
              ),
          )
        } catch (error) {
          await a.disconnect().catch(() => {})
          throw toMsgkitError(error, 'connect', `Could not connect to Kafka at ${brokerList}`, secrets)
        }
        admin = a
        clusterAdmin = createClusterAdmin(kafka, a, config, logger)
        publisher = createPublisher({ kafka, config, admin: clusterAdmin, connection, logger, secrets })
        try {
          await publisher.start()
        } catch (error) {
          throw toMsgkitError(error, 'connect', `Could not start a Kafka producer on ${brokerList}`, secrets)
        }
        assertOpen()
      })()
      return connecting
    },

    async send(topic, messages, options) {
      const { publisher: p } = ready()
      await p.send(topic, messages, options.deadline)
    },

    provision,

    async subscribe(request, onDelivery): Promise<TransportSubscription> {
      const { admin: a, clusterAdmin: ca } = ready()
      const starting = startSubscription(request, onDelivery, {
        newClient: () => createKafkaClient(config, logger),
        config,
        admin: ca,
        fetchCommitted: async (group, topics) => {
          const result = await a.fetchOffsets({ groupId: group, topics })
          return result.flatMap((t) =>
            t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: Number(p.offset) })),
          )
        },
        provision,
        connection,
        logger,
        secrets,
        emitError: (error) => context.emit({ type: 'error', error }),
      })
      subscribing.add(starting)
      let sub: KafkaSubscription
      try {
        sub = await starting
      } finally {
        subscribing.delete(starting)
      }
      if (closed) {
        await sub.close()
        throw new MsgkitError(ErrorCodes.CLOSED, 'The Kafka transport was closed while subscribing.')
      }
      subscriptions.add(sub)
      return {
        stop: () => sub.stop(),
        async close() {
          await sub.close()
          subscriptions.delete(sub)
        },
      }
    },

    close() {
      closing ??= (async () => {
        closed = true
        connection.close()
        if (connecting) await connecting.catch(() => {})
        await Promise.allSettled([...subscribing])
        await Promise.allSettled([...subscriptions].map((s) => s.close()))
        subscriptions.clear()
        await publisher?.close(CLOSE_PUBLISH_GRACE_MS)
        await clusterAdmin?.close()
        await admin?.disconnect().catch(() => {})
      })()
      return closing
    },
  }
}
