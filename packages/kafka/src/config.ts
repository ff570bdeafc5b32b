/** The Kafka transport's configuration: zod schema, defaults, and the `kafka://` URL mapping. */
import type { ParsedUrl } from '@msgkit/core'
import { nestParams } from '@msgkit/core'
import { z } from 'zod'

/** Kafka's default `message.max.bytes` (broker) / `max.message.bytes` (topic): 1 MiB + 12. */
export const KAFKA_DEFAULT_MESSAGE_MAX_BYTES = 1_048_588

/**
 * Bytes kept free below `messageMaxBytes` for what is not the body: the record-batch header (61),
 * per-record varints, the key, header varints, and gzip's worst-case growth on incompressible data.
 */
export const RECORD_OVERHEAD_BYTES = 8_192

const boolish = z.union([z.boolean(), z.stringbool()])
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

const credentials = {
  username: z.string().min(1, 'a SASL user name is required'),
  password: z.string(),
}

const saslSchema = z.discriminatedUnion('mechanism', [
  z.object({ mechanism: z.literal('plain'), ...credentials }).strict(),
  z.object({ mechanism: z.literal('scram-sha-256'), ...credentials }).strict(),
  z.object({ mechanism: z.literal('scram-sha-512'), ...credentials }).strict(),
])

const pem = z.union([z.string(), z.array(z.string())])

const tlsSchema = z.union([
  boolish,
  z
    .object({
      ca: pem.optional(),
      cert: pem.optional(),
      key: pem.optional(),
      passphrase: z.string().optional(),
      servername: z.string().optional(),
      rejectUnauthorized: boolish.optional(),
    })
    .strict(),
])

/** Validates and defaults the Kafka transport's options (see docs/brokers/kafka.md). */
export const kafkaConfigSchema = z
  .object({
    /** Kafka client id, shown in broker logs and quotas */
    clientId: z.string().min(1).default('msgkit'),
    /** bootstrap brokers, `host:port` */
    brokers: z
      .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port'))
      .min(1, 'at least one broker (host:port) is required'),
    sasl: saslSchema.optional(),
    /** TLS: `true` for the system CAs, or node:tls options */
    ssl: tlsSchema.optional(),
    /** create missing topics on first publish/subscribe (with `partitions` / `replicationFactor`) */
    autoCreateTopics: boolish.default(true),
    /** partitions of topics msgkit creates; more partitions = more parallel group members */
    partitions: int(1, 10_000).default(3),
    /** replication factor of topics msgkit creates; -1 = the broker's default.replication.factor */
    replicationFactor: z.coerce
      .number()
      .int()
      .refine((n) => n === -1 || (n >= 1 && n <= 100), 'must be -1 (broker default) or 1-100')
      .default(-1),
    /** consumer group session timeout (ms): how long a silent member keeps its partitions */
    sessionTimeout: int(1_000, 600_000).default(10_000),
    /** consumer heartbeat interval (ms); also how quickly a member notices a rebalance */
    heartbeatInterval: int(100, 60_000).default(1_000),
    /** how long the group waits for members to rejoin during a rebalance (ms) */
    rebalanceTimeout: int(1_000, 600_000).default(30_000),
    /** longest fetch long-poll (ms) */
    maxWaitTime: int(10, 60_000).default(1_000),
    /** socket connect timeout (ms) */
    connectionTimeout: int(100, 120_000).default(3_000),
    /** per-request timeout (ms) */
    requestTimeout: int(100, 600_000).default(30_000),
    /** how long connect() may take before it fails with MSGKIT_CONNECTION_FAILED (ms) */
    connectTimeout: int(500, 600_000).default(8_000),
    /** batch compression; only gzip ships with kafkajs */
    compression: z.enum(['none', 'gzip']).default('none'),
    /** ms to wait for more publishes before sending a batch; 0 = batch what arrived in the same tick */
    linger: int(0, 10_000).default(0),
    /** idempotent producer (exactly one copy per producer session in the log); needs IDEMPOTENT_WRITE */
    idempotent: boolish.default(true),
    /** the broker's message.max.bytes / the topics' max.message.bytes */
    messageMaxBytes: int(4_096, 2_147_483_647).default(KAFKA_DEFAULT_MESSAGE_MAX_BYTES),
    /** limit for header names + values per message (user headers plus msgkit's) */
    maxHeaderBytes: int(256, 1_048_576).default(16_384),
    /** how often a pattern subscription looks for new matching topics (ms) */
    patternRefreshInterval: int(100, 3_600_000).default(3_000),
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

/** Config paths whose values must never appear in errors or logs. */
export const kafkaSecretFields = ['sasl.password', 'ssl.key', 'ssl.passphrase'] as const

const DEFAULT_PORT = 9092

/**
 * `kafka://[user:password@]host[:port][,host[:port]…][?option=value…]` → config object.
 * user:password@ means SASL (mechanism from `?sasl=`, default plain); `ssl.ca=…` style options nest.
 */
export function kafkaConfigFromUrl(url: ParsedUrl): Record<string, unknown> {
  const params = nestParams(url.params)
  const { sasl: mechanism, ...rest } = params
  const out: Record<string, unknown> = { ...rest }
  if (url.hosts.length > 0) out.brokers = url.hosts.map((h) => `${h.host}:${h.port ?? DEFAULT_PORT}`)
  if (url.username !== undefined) {
    out.sasl = {
      mechanism: typeof mechanism === 'string' ? mechanism.toLowerCase() : 'plain',
      username: url.username,
      password: url.password ?? '',
    }
  } else if (mechanism !== undefined) {
    // keep it visible to the schema, which then names the missing credentials
    out.sasl = { mechanism }
  }
  return out
}
