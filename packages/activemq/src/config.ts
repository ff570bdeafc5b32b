/** The ActiveMQ transport's config: zod schema, defaults, the `stomp://` URL mapping, driver options. */
import type { ParsedUrl } from '@msgkit/core'
import { nestParams } from '@msgkit/core'
import { z } from 'zod'
import type { StompOptions } from './driver.js'

const MiB = 1024 * 1024
const flag = z.union([z.boolean(), z.stringbool()])
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)
const hostSchema = z.strictObject({ host: z.string().min(1), port: int(1, 65535).optional() })
const localhost = [{ host: 'localhost' }]

/** TLS (stomp+ssl): PEM text inline; `rejectUnauthorized: false` only for local experiments */
const tlsSchema = z.strictObject({
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
  passphrase: z.string().optional(),
  servername: z.string().min(1).optional(),
  rejectUnauthorized: flag.default(true),
})

/** Everything the ActiveMQ transport accepts (each option is explained in docs/brokers/activemq.md). */
export const activemqConfigSchema = z.strictObject({
  /** brokers to try in order (failover); the URL's `host1:61613,host2:61613` */
  hosts: z.array(hostSchema).min(1).default(localhost),
  login: z.string().optional(),
  passcode: z.string().optional(),
  /** the CONNECT frame's `host` header (default: the host connected to; ActiveMQ ignores it) */
  vhost: z.string().min(1).optional(),
  tls: z.union([flag, tlsSchema]).default(false),
  /** STOMP heart-beat both ways; a silent broker is noticed after about one interval. 0 = off */
  heartbeatMs: int(0, 600_000).default(10_000),
  /** TCP connect + CONNECTED frame within this */
  connectTimeoutMs: int(100, 120_000).default(5_000),
  /** a subscription's prefetch (`activemq.prefetchSize`) never goes above this */
  prefetchCap: int(1, 10_000).default(500),
  /** largest body; keep it at or under the broker's `wireFormat.maxDataLength` (100 MiB by default) */
  maxMessageBytes: int(1, 100 * MiB).default(16 * MiB),
  /** longest `delayMs` (scheduler); 0 turns delayed delivery off (and the start-up probe with it) */
  maxDelayMs: int(0, 2 ** 31 - 1).default(7 * 24 * 60 * 60 * 1000),
})

export type ActivemqTransportConfig = z.output<typeof activemqConfigSchema>
export type ActivemqTransportOptions = z.input<typeof activemqConfigSchema>

/** Config paths whose values never appear in errors or logs (core derives the secrets from them). */
export const activemqSecretFields = ['passcode', 'tls.key', 'tls.passphrase'] as const

/** `stomp[+ssl]://[login:passcode@]host[:port][,host[:port]…][/vhost][?option=value…]` → config object. */
export function activemqConfigFromUrl(url: ParsedUrl): Record<string, unknown> {
  const out = nestParams(url.params)
  if (url.hosts.length > 0) out.hosts = url.hosts.map((h) => ({ ...h }))
  if (url.username !== undefined) out.login = url.username
  if (url.password !== undefined) out.passcode = url.password
  if (url.path !== '') out.vhost = url.path
  if (url.scheme === 'stomp+ssl' && (typeof out.tls !== 'object' || out.tls === null)) out.tls = true
  return out
}

/** The hosts as `host:port` labels (61613, or 61614 with TLS, by default). */
export function endpointsOf(config: ActivemqTransportConfig): Array<{ host: string; port: number }> {
  const tls = config.tls !== false
  return config.hosts.map((h) => ({ host: h.host, port: h.port ?? (tls ? 61614 : 61613) }))
}

/** The driver's options for the `index`-th host. */
export function stompOptions(config: ActivemqTransportConfig, index: number): StompOptions {
  const { host, port } = endpointsOf(config)[index] ?? { host: 'localhost', port: 61613 }
  const options: StompOptions = {
    host,
    port,
    vhost: config.vhost ?? host,
    heartbeatMs: config.heartbeatMs,
    connectTimeoutMs: config.connectTimeoutMs,
  }
  if (config.login !== undefined) options.login = config.login
  if (config.passcode !== undefined) options.passcode = config.passcode
  if (config.tls !== false) {
    const { rejectUnauthorized = true, ...pem } = config.tls === true ? {} : config.tls
    options.tls = { ...pem, rejectUnauthorized }
  }
  return options
}
