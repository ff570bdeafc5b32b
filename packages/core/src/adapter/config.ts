/**
 * Config building blocks every adapter's zod schema needs in the same form: URL-friendly flags and
 * integers, host lists for failover, TLS options (PEM inline or from a file) and a reconnect backoff;
 * plus the socket options the TLS block turns into. Same spelling, same defaults on every broker.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'

/** URL query values arrive as strings: real booleans and the usual spellings */
export const flagSchema = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes'),
])

/** an integer from `min` to `max`; strings (URL query values) are converted */
export const intSchema = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/** brokers to try in order (failover): `[{ host, port? }]`, default localhost */
export const hostsSchema = z
  .array(z.strictObject({ host: z.string().min(1), port: intSchema(1, 65535).optional() }))
  .min(1)
  .default([{ host: 'localhost' }])

const onePem = z.union([z.string(), z.instanceof(Buffer)])
/** one PEM, or several (a CA bundle split into certificates, an intermediate chain) */
const pem = z.union([onePem, z.array(onePem).min(1)]).optional()
const file = z.string().min(1).optional()

/** CA(s) to trust, client certificate and key (mutual TLS): PEM inline (one or a list), or `…File` paths to read */
export const tlsOptionsSchema = z.strictObject({
  ...{ ca: pem, caFile: file, cert: pem, certFile: file, key: pem, keyFile: file },
  passphrase: z.string().optional(),
  /** verify the broker's certificate (default true; false only for local experiments) */
  rejectUnauthorized: flagSchema.default(true),
  /** SNI / certificate host name when it differs from the host connected to */
  servername: z.string().min(1).optional(),
})

/** `tls`: false (default), true (system CAs) or options */
export const tlsSchema = z.union([flagSchema, tlsOptionsSchema]).default(false)

export type TlsOptions = z.infer<typeof tlsOptionsSchema>

/** node:tls socket options for a `tls` config value (undefined: no TLS); files are read here */
export function tlsSocketOptions(tls: boolean | TlsOptions): Record<string, unknown> | undefined {
  if (tls === false) return undefined
  if (tls === true) return { rejectUnauthorized: true }
  type Pem = string | Buffer | Array<string | Buffer>
  const read = (inline?: Pem, path?: string) => inline ?? (path ? readFileSync(path) : undefined)
  const ca = read(tls.ca, tls.caFile)
  const options: Record<string, unknown> = { rejectUnauthorized: tls.rejectUnauthorized }
  const values = {
    ca: ca && [ca].flat(),
    cert: read(tls.cert, tls.certFile),
    key: read(tls.key, tls.keyFile),
    passphrase: tls.passphrase,
    servername: tls.servername,
  }
  for (const [k, v] of Object.entries(values)) if (v) options[k] = v
  return options
}

/** Backoff between reconnect attempts (short: an attempt is one cheap TCP connect). */
export const reconnectSchema = z
  .strictObject({
    initialDelayMs: intSchema(0, 60_000).default(100),
    maxDelayMs: intSchema(1, 300_000).default(1_000),
    multiplier: z.coerce.number().min(1).max(10).default(2),
    /** 0..1: fraction of each wait that is randomised */
    jitter: z.coerce.number().min(0).max(1).default(0.2),
  })
  .default({ initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2, jitter: 0.2 })
