/** Turns a URL or config object into a validated transport config plus core options. */
import { z } from 'zod'
import type { MessagingOptions } from './api.js'
import { ErrorCodes, MsgkitError } from './errors.js'
import { isTransportDefinition, loadTransport, type ModuleLoader, transportForScheme } from './registry.js'
import type { TransportDefinition } from './spi.js'
import { parseBrokerUrl, redactUrl } from './urls.js'

/** Config object form: `{ transport: 'kafka', brokers: [...], ...transport options, ...core options }`. */
export type MessagingConfig = {
  transport: string | TransportDefinition
  /** a broker URL; transport options given next to it override the URL's */
  url?: string
} & MessagingOptions &
  Record<string, unknown>

const CORE_KEYS = ['transport', 'logger', 'codec', 'publish', 'idempotencyStore', 'telemetry'] as const

const providerOf = (method: string, what: string) =>
  z.custom<unknown>(
    (v) =>
      v === undefined ||
      (typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[method] === 'function'),
    { message: `${what} must have a ${method}() method (an OpenTelemetry ${what})` },
  )

const telemetrySchema = z.union([
  z.literal(false),
  z
    .object({
      tracerProvider: providerOf('getTracer', 'TracerProvider').optional(),
      meterProvider: providerOf('getMeter', 'MeterProvider').optional(),
      processContext: z.enum(['parent', 'link']).optional(),
      createSpans: z.boolean().optional(),
      settleSpans: z.boolean().optional(),
      bodySize: z.boolean().optional(),
    })
    .strict(),
])

const coreOptionsSchema = z.object({
  telemetry: telemetrySchema.optional(),
  publish: z
    .object({
      timeoutMs: z.number().int().positive().max(3_600_000).optional(),
      unroutable: z.enum(['ignore', 'warn', 'reject']).optional(),
    })
    .strict()
    .optional(),
  logger: z
    .custom<unknown>(
      (v) =>
        v === undefined ||
        (typeof v === 'object' &&
          v !== null &&
          ['debug', 'info', 'warn', 'error'].every(
            (m) => typeof (v as Record<string, unknown>)[m] === 'function',
          )),
      { message: 'logger must have debug, info, warn and error methods (any pino-style logger)' },
    )
    .optional(),
  codec: z
    .custom<unknown>(
      (v) =>
        v === undefined ||
        (typeof v === 'object' &&
          v !== null &&
          typeof (v as { encode?: unknown }).encode === 'function' &&
          typeof (v as { decode?: unknown }).decode === 'function'),
      {
        message: 'codec must have encode and decode methods',
      },
    )
    .optional(),
  idempotencyStore: z
    .custom<unknown>(
      (v) =>
        v === undefined ||
        (typeof v === 'object' && v !== null && typeof (v as { has?: unknown }).has === 'function'),
      {
        message: 'idempotencyStore must implement has() and add()',
      },
    )
    .optional(),
})

export interface ResolvedConfig {
  definition: TransportDefinition
  transportConfig: unknown
  options: MessagingOptions
  /** secret values from the config (URL password, secretFields) to scrub from any text */
  secrets: string[]
}

function getPath(obj: unknown, path: string): unknown {
  let node = obj
  for (const seg of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined
    node = (node as Record<string, unknown>)[seg]
  }
  return node
}

/** The secret strings in a config value: a string, a Buffer (PEM key) or a list of them. */
function secretValues(value: unknown): string[] {
  if (typeof value === 'string') return value.length > 0 ? [value] : []
  if (Buffer.isBuffer(value)) return value.length > 0 ? [value.toString('utf8')] : []
  if (Array.isArray(value)) return value.flatMap(secretValues)
  return []
}

/** Removes every secret value from a text (config values listed in secretFields, URL passwords). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = redactUrl(text)
  for (const s of secrets) if (s.length >= 1) out = out.split(s).join('***')
  return out
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map((p) => String(p)).join('.')
}

/** Validates everything up front and throws one MSGKIT_CONFIG_INVALID listing every bad field. */
export async function resolveConfig(
  input: string | MessagingConfig,
  extra: MessagingOptions = {},
  load?: ModuleLoader,
): Promise<ResolvedConfig> {
  if (typeof input !== 'string' && (typeof input !== 'object' || input === null)) {
    throw new MsgkitError(
      ErrorCodes.CONFIG_INVALID,
      'Invalid msgkit config: expected a broker URL string or a config object.',
    )
  }
  // one shape for both forms: a URL string is `{ url }` with no explicit transport
  const { url, ...given }: Record<string, unknown> = typeof input === 'string' ? { url: input } : input
  const parsed = typeof url === 'string' ? parseBrokerUrl(url) : undefined

  let definition: TransportDefinition
  const t = given.transport
  if (isTransportDefinition(t)) definition = t
  else if (typeof t === 'string') definition = await loadTransport(t, load)
  else if (t === undefined && parsed) {
    const name = transportForScheme(parsed.scheme)
    if (!name) {
      throw new MsgkitError(
        ErrorCodes.TRANSPORT_UNKNOWN,
        `Unknown URL scheme "${parsed.scheme}:" in ${JSON.stringify(parsed.redacted)}. Use memory://, kafka://, amqp://, amqps://, stomp://, stomp+ssl:// or sqs://.`,
      )
    }
    definition = await loadTransport(name, load)
  } else {
    throw new MsgkitError(
      ErrorCodes.CONFIG_INVALID,
      'Invalid msgkit config: `transport` must be a transport name (memory, kafka, rabbitmq, activemq, sqs) or a TransportDefinition object, or give a URL string instead.',
    )
  }
  const fromUrl = parsed ? (definition.fromUrl ? definition.fromUrl(parsed) : { ...parsed.params }) : {}
  const raw: Record<string, unknown> = { ...fromUrl, ...given }
  const urlPassword = parsed?.password

  const coreRaw: Record<string, unknown> = { ...extra }
  for (const key of CORE_KEYS) {
    if (key !== 'transport' && raw[key] !== undefined) coreRaw[key] = raw[key]
    delete raw[key]
  }

  const secrets: string[] = []
  if (urlPassword) secrets.push(urlPassword, encodeURIComponent(urlPassword))
  for (const path of definition.secretFields ?? []) secrets.push(...secretValues(getPath(raw, path)))

  const problems: string[] = []
  const core = coreOptionsSchema.safeParse(coreRaw)
  if (!core.success) for (const i of core.error.issues) problems.push(`${formatPath(i.path)}: ${i.message}`)
  const transport = definition.configSchema.safeParse(raw)
  if (!transport.success)
    for (const i of transport.error.issues) problems.push(`${formatPath(i.path)}: ${i.message}`)
  if (problems.length > 0) {
    const text = `Invalid msgkit config for the ${definition.name} transport (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee docs/configuration.md for every option.`
    throw new MsgkitError(ErrorCodes.CONFIG_INVALID, scrubSecrets(text, secrets), {
      details: { transport: definition.name, problems: problems.map((p) => scrubSecrets(p, secrets)) },
    })
  }
  return {
    definition,
    transportConfig: transport.success ? transport.data : undefined,
    options: coreRaw as MessagingOptions,
    secrets,
  }
}
