/**
 * Everything `msgkit` prints. Data goes to stdout (text for people, or JSON with `--json`: one
 * document, or one line per item for streams); progress, warnings and errors go to stderr, so
 * `msgkit … --json | jq` always gets clean JSON.
 */
import { isMsgkitError, jsonCodec } from '@msgkit/core'
import { CliError, type ExitCode, exitCodeOf } from './exit-codes.js'

export interface OutputOptions {
  json: boolean
  quiet: boolean
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream & { isTTY?: boolean }
}

export type Output = ReturnType<typeof createOutput>

export function createOutput(options: OutputOptions) {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  return {
    json: options.json,
    quiet: options.quiet,
    /** a line of data for people (ignored with --json) */
    line(text = ''): void {
      if (!options.json) stdout.write(`${text}\n`)
    },
    /** one JSON document or NDJSON line (only with --json) */
    record(value: unknown): void {
      if (options.json) stdout.write(`${JSON.stringify(value)}\n`)
    },
    /** a note for people on stderr (a summary, what is happening); --quiet silences it */
    note(text: string): void {
      if (!options.quiet) stderr.write(`${text}\n`)
    },
    warn(text: string): void {
      stderr.write(`msgkit: warning: ${text}\n`)
    },
    /** prints an error (as JSON on stderr with --json) and returns its exit code */
    error(error: unknown): ExitCode {
      const exitCode = exitCodeOf(error)
      const code = error instanceof CliError || isMsgkitError(error) ? error.code : 'MSGKIT_CLI_INTERNAL'
      const message = error instanceof Error ? error.message : String(error)
      const details = isMsgkitError(error) ? error.details : undefined
      if (options.json) {
        stderr.write(
          `${JSON.stringify({ error: { code, message, exitCode, ...(details ? { details } : {}) } })}\n`,
        )
      } else {
        stderr.write(`msgkit: ${code}: ${message}\n`)
        const hint = hintFor(code, details)
        if (hint) stderr.write(`msgkit: ${hint}\n`)
        if (exitCode === 1 && error instanceof Error && error.stack) stderr.write(`${error.stack}\n`)
      }
      return exitCode
    },
    /** a progress line at most once a second (every call with `force`); rewritten in place on a terminal */
    progress(label: string) {
      let last = 0
      let shown = false
      const tty = Boolean((stderr as { isTTY?: boolean }).isTTY)
      return {
        update(text: string, force = false): void {
          if (options.quiet) return
          const now = Date.now()
          if (!force && now - last < 1_000) return
          last = now
          shown = true
          stderr.write(tty ? `\r\x1b[2K${label}: ${text}` : `${label}: ${text}\n`)
        },
        done(): void {
          if (shown && tty && !options.quiet) stderr.write('\n')
        },
      }
    },
  }
}

function hintFor(code: string, details: Record<string, unknown> | undefined): string | undefined {
  if (code === 'MSGKIT_TRANSPORT_MISSING' && typeof details?.packageName === 'string')
    return `the msgkit command loads adapters installed next to it: npm install ${details.packageName} where @msgkit/cli is installed (npm install -g ${details.packageName} for a global msgkit).`
  if (code === 'MSGKIT_CLI_NO_URL')
    return 'examples: amqp://guest:guest@localhost:5672, kafka://localhost:9092'
  return undefined
}

/** A body as JSON can carry it: a decoded value, text, or `{ base64 }` for bytes. */
export function bodyForJson(body: unknown): unknown {
  if (body instanceof Uint8Array)
    return { base64: Buffer.from(body).toString('base64'), bytes: body.byteLength }
  return body
}

/** A body for people: JSON compactly, text as it is, bytes as size + printable preview. */
export function bodyForPeople(body: unknown, max = 2_000): string {
  let text: string
  if (body instanceof Uint8Array) {
    const preview = Buffer.from(body.subarray(0, 64)).toString('base64')
    text = `<${body.byteLength} bytes, base64 ${preview}${body.byteLength > 64 ? '…' : ''}>`
  } else if (typeof body === 'string') text = JSON.stringify(body)
  else text = JSON.stringify(body) ?? String(body)
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text
}

/** Decodes a body the way consumers do, falling back to the raw bytes (never throws). */
export function decodeLeniently(body: Uint8Array, contentType: string | undefined): unknown {
  try {
    return jsonCodec.decode(body, contentType)
  } catch {
    return body
  }
}

/** `2026-12-02T17:01:02.123Z (12 min ago)` */
export function when(epochMs: number, now = Date.now()): string {
  if (!Number.isFinite(epochMs) || epochMs <= 0) return 'unknown time'
  return `${new Date(epochMs).toISOString()} (${ago(now - epochMs)})`
}

function ago(ms: number): string {
  if (ms < 0) return 'in the future'
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h ago`
  return `${Math.round(s / 86_400)} days ago`
}

/** Bytes for people: 16 MiB, 60 KiB, 512 B. */
export function bytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / 1024 / 1024} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} B`
}

/** Milliseconds for people: 850 ms, 2.5 s, 24 h. */
export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms * 10) / 10} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${Math.round(ms / 3_600_000)} h`
}
