/** The broker connection of one command: `--url` or MSGKIT_URL, a lenient codec, optional logging. */
import { type Codec, createMessaging, jsonCodec, type Logger, type Messaging, redactUrl } from '@msgkit/core'
import { CliError, ExitCodes } from './exit-codes.js'
import { decodeLeniently } from './output.js'

export interface GlobalOptions {
  url?: string
  json: boolean
  quiet: boolean
  verbose: boolean
}

/** The broker URL: `--url`, else MSGKIT_URL; never printed with its password. */
export function brokerUrl(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  const url = options.url ?? env.MSGKIT_URL
  if (!url)
    throw new CliError(
      'MSGKIT_CLI_NO_URL',
      'No broker URL: pass --url <url> or set MSGKIT_URL, the same URL your services use.',
      ExitCodes.config,
    )
  return url
}

/** The URL as it may be shown: the password replaced by `***`. */
export const shownUrl = (url: string): string => {
  try {
    return redactUrl(url)
  } catch {
    return '<invalid URL>'
  }
}

/** JSON like the services use, but a body that does not decode comes back as its bytes: tail shows it. */
const lenientCodec: Codec = {
  name: 'json-lenient',
  encode: (value) => jsonCodec.encode(value),
  decode: (body, contentType) => decodeLeniently(body, contentType),
}

/** Library log lines on stderr with --verbose (secrets are already scrubbed by msgkit). */
function stderrLogger(): Logger {
  const write =
    (level: string) =>
    (fields: unknown, message?: string): void => {
      const text = typeof fields === 'string' ? fields : `${message ?? ''} ${JSON.stringify(fields)}`
      process.stderr.write(`msgkit: ${level}: ${text}\n`)
    }
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') } as Logger
}

/** Connects to the broker of `options` (throws MSGKIT_* errors as the library does). */
export async function connect(
  options: GlobalOptions,
  extra: { publishTimeoutMs?: number } = {},
): Promise<{ messaging: Messaging; url: string; connectMs: number }> {
  const url = brokerUrl(options)
  const started = performance.now()
  const messaging = await createMessaging(url, {
    codec: lenientCodec,
    ...(options.verbose ? { logger: stderrLogger() } : {}),
    ...(extra.publishTimeoutMs ? { publish: { timeoutMs: extra.publishTimeoutMs } } : {}),
  })
  return { messaging, url, connectMs: performance.now() - started }
}
