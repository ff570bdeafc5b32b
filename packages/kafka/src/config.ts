/** The Kafka transport's configuration: zod schema, defaults, the `kafka://` URL mapping, and the kafkajs client it makes. */
import type { Logger, ParsedUrl } from '@msgkit/core'
import { nestParams } from '@msgkit/core'
import { flagSchema, intSchema, tlsSchema, tlsSocketOptions } from '@msgkit/core/adapter'
import { Kafka, type KafkaConfig, logLevel, type RetryOptions, type SASLOptions } from 'kafkajs'
import { z } from 'zod'

/** Kafka's default `message.max.bytes` (broker) / `max.message.bytes` (topic): 1 MiB + 12. */
export const KAFKA_DEFAULT_MESSAGE_MAX_BYTES = 1_048_588

/**
 * Bytes kept free below `messageMaxBytes` for what is not the body: the record-batch header (61),
 * per-record varints, the key, header varints, and gzip's worst-case growth on incompressible data.
 */
export const RECORD_OVERHEAD_BYTES = 8_192

const credentials = { username: z.string().min(1, 'a SASL user name is required'), password: z.string() }
const saslSchema = z.discriminatedUnion('mechanism', [
  z.object({ mechanism: z.literal('plain'), ...credentials }).strict(),
  z.object({ mechanism: z.literal('scram-sha-256'), ...credentials }).strict(),
  z.object({ mechanism: z.literal('scram-sha-512'), ...credentials }).strict(),
])

/** Validates and defaults the Kafka transport's options (each one is explained in docs/brokers/kafka.md). */
export const kafkaConfigSchema = z
  .object({
    clientId: z.string().min(1).default('msgkit'),
    brokers: z
      .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port'))
      .min(1, 'at least one broker (host:port) is required'),
    sasl: saslSchema.optional(),
    /** kafkajs's name for it; the kit's TLS block (PEM inline or `…File`) */
    ssl: tlsSchema,
    autoCreateTopics: flagSchema.default(true),
    partitions: intSchema(1, 10_000).default(3),
    replicationFactor: z.coerce
      .number()
      .int()
      .refine((n) => n === -1 || (n >= 1 && n <= 100), 'must be -1 (broker default) or 1-100')
      .default(-1),
    sessionTimeout: intSchema(1_000, 600_000).default(10_000),
    heartbeatInterval: intSchema(100, 60_000).default(1_000),
    rebalanceTimeout: intSchema(1_000, 600_000).default(30_000),
    maxWaitTime: intSchema(10, 60_000).default(1_000),
    connectionTimeout: intSchema(100, 120_000).default(3_000),
    requestTimeout: intSchema(100, 600_000).default(30_000),
    /** one connect attempt (a first connect, or a probe while reconnecting) gives up after this long */
    connectTimeout: intSchema(500, 600_000).default(8_000),
    compression: z.enum(['none', 'gzip']).default('none'),
    linger: intSchema(0, 10_000).default(0),
    idempotent: flagSchema.default(true),
    messageMaxBytes: intSchema(4_096, 2_147_483_647).default(KAFKA_DEFAULT_MESSAGE_MAX_BYTES),
    maxHeaderBytes: intSchema(256, 1_048_576).default(16_384),
    patternRefreshInterval: intSchema(100, 3_600_000).default(3_000),
  })
  .strict()
  .refine((c) => c.heartbeatInterval < c.sessionTimeout, {
    message: 'heartbeatInterval must be lower than sessionTimeout (about a third of it is usual)',
    path: ['heartbeatInterval'],
  })
  .refine((c) => c.maxHeaderBytes + RECORD_OVERHEAD_BYTES < c.messageMaxBytes, {
    message: 'maxHeaderBytes leaves no room for a body below messageMaxBytes',
    path: ['maxHeaderBytes'],
  })

/** The validated, defaulted Kafka transport config. */
export type KafkaTransportConfig = z.output<typeof kafkaConfigSchema>
/** What a user may pass (everything but `brokers` optional). */
export type KafkaTransportOptions = z.input<typeof kafkaConfigSchema>

/** Config paths whose values must never appear in errors or logs (core derives the secrets from them). */
export const kafkaSecretFields = ['sasl.password', 'ssl.key', 'ssl.passphrase'] as const

/**
 * `kafka://[user:password@]host[:port][,host[:port]…][?option=value…]` → config object.
 * user:password@ means SASL (mechanism from `?sasl=`, default plain); `ssl.ca=…` style options nest.
 */
export function kafkaConfigFromUrl(url: ParsedUrl): Record<string, unknown> {
  const { sasl: mechanism, ...rest } = nestParams(url.params)
  const out: Record<string, unknown> = { ...rest }
  if (url.hosts.length > 0) out.brokers = url.hosts.map((h) => `${h.host}:${h.port ?? 9092}`)
  if (url.username !== undefined) {
    const name = typeof mechanism === 'string' ? mechanism.toLowerCase() : 'plain'
    out.sasl = { mechanism: name, username: url.username, password: url.password ?? '' }
  } else if (mechanism !== undefined) out.sasl = { mechanism } // the schema then names the missing credentials
  return out
}

/**
 * Retries inside kafkajs stay short and finite: the kit retries sends until their deadline,
 * reconnects and replaces crashed consumers, and a bounded retry cannot outlive close().
 * (kafkajs picks other defaults when NODE_ENV=test; passing them explicitly avoids that.)
 */
export const CLIENT_RETRY: RetryOptions = {
  retries: 4,
  initialRetryTime: 100,
  maxRetryTime: 1_000,
  factor: 0.2,
  multiplier: 2,
}

/** provision(), subscribe() and a pattern's topic list keep trying this long while the broker is unreachable. */
export const BROKER_WAIT_MS = 30_000

/**
 * A kafkajs client (no connections yet), its logs routed to msgkit's logger. Connecting retries
 * briefly (a dead port fails within about a second); pass CLIENT_RETRY to what it creates.
 */
export function createKafkaClient(config: KafkaTransportConfig, logger: Logger): Kafka {
  const options: KafkaConfig = {
    clientId: config.clientId,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeout,
    authenticationTimeout: config.connectionTimeout,
    requestTimeout: config.requestTimeout,
    enforceRequestTimeout: true,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000, factor: 0.2, multiplier: 2 },
    logLevel: logLevel.WARN,
    // kafkajs's errors are mostly outages msgkit handles: warn, not error
    logCreator:
      () =>
      ({ level, log: { message, ...extra } }) => {
        if (level === logLevel.ERROR) logger.warn({ kafkajs: true, ...extra }, `kafkajs: ${message}`)
        else logger.debug({ kafkajs: true, ...extra }, `kafkajs: ${message}`)
      },
  }
  if (config.sasl) options.sasl = { ...config.sasl } as SASLOptions
  const ssl = tlsSocketOptions(config.ssl)
  if (ssl) options.ssl = ssl
  return new Kafka(options)
}
