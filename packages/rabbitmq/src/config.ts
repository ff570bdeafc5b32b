/** The RabbitMQ transport's config: zod schema, defaults, and the `amqp://` URL mapping. */
import type { ParsedUrl } from '@msgkit/core'
import { nestParams } from '@msgkit/core'
import { z } from 'zod'

const MiB = 1024 * 1024

/** RabbitMQ 3.8–3.13 refuse bodies over 128 MiB (`max_message_size`); 4.x defaults to 16 MiB. */
export const BROKER_MAX_MESSAGE_BYTES = 128 * MiB

/** URL query values arrive as strings: accept real booleans and the usual spellings. */
const flag = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes'),
])

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

const hostSchema = z.strictObject({
  host: z.string().min(1),
  port: int(1, 65535).optional(),
})

const tlsSchema = z.strictObject({
  /** PEM text (or Buffer) of the CA(s) to trust; or `caFile`, a path to read it from */
  ca: z.union([z.string(), z.instanceof(Buffer)]).optional(),
  caFile: z.string().min(1).optional(),
  /** client certificate for mutual TLS (PEM), or `certFile` */
  cert: z.union([z.string(), z.instanceof(Buffer)]).optional(),
  certFile: z.string().min(1).optional(),
  /** client private key (PEM), or `keyFile` */
  key: z.union([z.string(), z.instanceof(Buffer)]).optional(),
  keyFile: z.string().min(1).optional(),
  passphrase: z.string().optional(),
  /** verify the broker's certificate (default true; false only for local experiments) */
  rejectUnauthorized: flag.default(true),
  /** SNI / certificate host name when it differs from the host you connect to */
  servername: z.string().min(1).optional(),
})

const reconnectSchema = z.strictObject({
  /** first wait after losing the connection */
  initialDelayMs: int(0, 60_000).default(100),
  /** longest wait between attempts; short, because each attempt is one cheap TCP connect */
  maxDelayMs: int(1, 300_000).default(1_000),
  multiplier: z.coerce.number().min(1).max(10).default(2),
  /** 0..1: fraction of each wait that is randomised */
  jitter: z.coerce.number().min(0).max(1).default(0.2),
})

/** Everything the RabbitMQ transport accepts; every field has a default. */
export const rabbitmqConfigSchema = z.strictObject({
  /** brokers to try in order (a cluster's nodes); the URL's `host1:5672,host2:5672` */
  hosts: z
    .array(hostSchema)
    .min(1)
    .default([{ host: 'localhost' }]),
  username: z.string().default('guest'),
  password: z.string().default('guest'),
  vhost: z.string().default('/'),
  /** TLS (amqps): true for the system CAs, or options; the `amqps://` scheme turns it on */
  tls: z.union([flag, tlsSchema]).default(false),
  /** seconds between heartbeats; a dead peer is noticed after about two of them. 0 = off */
  heartbeat: int(0, 600).default(10),
  /** shown in the management UI (default: msgkit@<host>:<pid>) */
  connectionName: z.string().min(1).max(200).optional(),
  /** TCP connect + AMQP handshake must finish within this */
  connectTimeoutMs: int(100, 120_000).default(5_000),
  frameMax: int(4096, 16 * MiB).optional(),
  /**
   * Queue type of group queues. `quorum` (default): replicated, crash-safe, counts deliveries
   * (`x-delivery-count` → `message.attempt`). `classic`: cheaper, no delivery count.
   */
  queueType: z.enum(['quorum', 'classic']).default('quorum'),
  /**
   * Delete a group's queue after it had no consumer for this long (`x-expires`), messages and all.
   * Off by default: a provisioned group keeps its messages however long nobody reads them.
   * Meant for short-lived groups (tests, previews).
   */
  queueExpiresMs: int(1_000, 2 ** 31 - 1).optional(),
  /** one consumer of a group at a time (`x-single-active-consumer`): strict order with several instances */
  singleActiveConsumer: flag.default(false),
  /** put in front of every exchange and queue name msgkit creates (e.g. `staging.`) */
  prefix: z
    .string()
    .max(50)
    .regex(/^[A-Za-z0-9._:-]*$/, 'use A-Z a-z 0-9 . _ : - only')
    .refine((p) => !p.startsWith('amq.'), 'names starting with "amq." are reserved by RabbitMQ')
    .default(''),
  /** largest message body; keep it at or under the broker's `max_message_size` */
  maxMessageBytes: int(1, BROKER_MAX_MESSAGE_BYTES).default(16 * MiB),
  /** longest `delayMs` allowed (per-delay wait queues); 0 turns delayed delivery off */
  maxDelayMs: int(0, 2 ** 31 - 1).default(24 * 60 * 60 * 1000),
  reconnect: reconnectSchema.default({ initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2, jitter: 0.2 }),
})

export type RabbitmqTransportConfig = z.infer<typeof rabbitmqConfigSchema>
export type RabbitmqTlsOptions = z.infer<typeof tlsSchema>

/** Config paths whose values never appear in errors or logs. */
export const secretFields = ['password', 'tls.passphrase', 'tls.key'] as const

/** Standard AMQP URI query parameters (rabbitmq.com/docs/uri-query-parameters) → our config paths. */
const URI_ALIASES: Record<string, string> = {
  connection_timeout: 'connectTimeoutMs',
  frame_max: 'frameMax',
  connection_name: 'connectionName',
  cacertfile: 'tls.caFile',
  certfile: 'tls.certFile',
  keyfile: 'tls.keyFile',
  server_name_indication: 'tls.servername',
}

/** Maps `amqp[s]://user:pass@host:port[,host2:port]/vhost?heartbeat=5&queueType=classic` onto the config. */
export function rabbitmqFromUrl(url: ParsedUrl): Record<string, unknown> {
  const params: Record<string, string> = {}
  for (const [name, value] of Object.entries(url.params)) {
    if (name === 'verify') {
      // the RabbitMQ URI spelling of certificate verification
      params['tls.rejectUnauthorized'] = value === 'verify_none' ? 'false' : 'true'
    } else params[URI_ALIASES[name] ?? name] = value
  }
  const out = nestParams(params)
  if (url.hosts.length > 0)
    out.hosts = url.hosts.map((h) => (h.port === undefined ? { host: h.host } : { ...h }))
  if (url.username !== undefined) out.username = url.username
  if (url.password !== undefined) out.password = url.password
  // `amqp://host` and `amqp://host/` both mean the default vhost "/"; `/%2f` is "/" spelled out
  if (url.path !== '') out.vhost = url.path
  // amqps:// always means TLS; tls.* query options refine it
  if (url.scheme === 'amqps' && (typeof out.tls !== 'object' || out.tls === null)) out.tls = true
  return out
}

/** Whether TLS is on, and its options. */
export function tlsOptions(config: RabbitmqTransportConfig): RabbitmqTlsOptions | undefined {
  if (config.tls === false) return undefined
  if (config.tls === true) return { rejectUnauthorized: true }
  return config.tls
}
