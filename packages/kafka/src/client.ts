/** Building kafkajs clients from the transport config, with kafkajs's logs routed to msgkit's logger. */
import type { BackoffOptions, Logger } from '@msgkit/core'
import { Kafka, type KafkaConfig, logLevel, type RetryOptions, type SASLOptions } from 'kafkajs'
import type { KafkaTransportConfig } from './config.js'

/**
 * Retries inside kafkajs are kept short and finite: msgkit retries publishes itself until their
 * deadline, restarts crashed consumers, and a bounded retry cannot outlive close().
 * (kafkajs picks shorter test defaults when NODE_ENV=test; passing them explicitly avoids that.)
 */
export const CLIENT_RETRY: RetryOptions = {
  retries: 4,
  initialRetryTime: 100,
  maxRetryTime: 1_000,
  factor: 0.2,
  multiplier: 2,
}
/** msgkit's own retries (publish, topic checks, provisioning): 100 ms doubling to 1 s, no jitter. */
export const RETRY_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 1_000, jitter: 0 }
/** connect(): fail within seconds on a dead port or unknown host. */
export const CONNECT_RETRY: RetryOptions = {
  retries: 2,
  initialRetryTime: 200,
  maxRetryTime: 1_000,
  factor: 0.2,
  multiplier: 2,
}

function sasl(config: KafkaTransportConfig): SASLOptions | undefined {
  const s = config.sasl
  if (!s) return undefined
  return { mechanism: s.mechanism, username: s.username, password: s.password } as SASLOptions
}

/** kafkajs levels → msgkit logger; kafkajs's errors are mostly outages msgkit handles, hence warn. */
function logCreator(logger: Logger) {
  return () =>
    ({
      level,
      log,
    }: {
      namespace: string
      level: number
      label: string
      log: { message: string } & Record<string, unknown>
    }) => {
      const { message, ...extra } = log
      const entry = { kafkajs: true, ...extra }
      if (level === logLevel.ERROR) logger.warn(entry, `kafkajs: ${message}`)
      else logger.debug(entry, `kafkajs: ${message}`)
    }
}

/**
 * A kafkajs client (no connections yet). Connection attempts use the short CONNECT_RETRY; pass
 * CLIENT_RETRY to the producer/consumer/admin for their operations. Each consumer gets a client of
 * its own: kafkajs shares a per-group committed-offset cache between the consumers of one client,
 * and two consumers of one group with different topics would clear each other's entries.
 */
export function createKafkaClient(config: KafkaTransportConfig, logger: Logger): Kafka {
  const options: KafkaConfig = {
    clientId: config.clientId,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeout,
    authenticationTimeout: config.connectionTimeout,
    requestTimeout: config.requestTimeout,
    enforceRequestTimeout: true,
    retry: CONNECT_RETRY,
    logLevel: logLevel.WARN,
    logCreator: logCreator(logger),
  }
  const s = sasl(config)
  if (s) options.sasl = s
  if (config.ssl !== undefined && config.ssl !== false) {
    options.ssl = config.ssl === true ? true : { ...config.ssl }
  }
  return new Kafka(options)
}
