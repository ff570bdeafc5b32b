/** `msgkit send <topic>`: confirmed publishes, one receipt per message. */
import { readFile } from 'node:fs/promises'
import type { Messaging, PublishOptions, UnroutablePolicy } from '@msgkit/core'
import { connect } from '../connect.js'
import { CliError, type ExitCode, ExitCodes, usage } from '../exit-codes.js'
import { duration } from '../output.js'
import type { CommandContext } from './context.js'

export interface SendOptions {
  body?: string
  file?: string
  format: 'json' | 'text' | 'binary'
  key?: string
  header: string[]
  count: number
  unroutable: UnroutablePolicy
  timeout?: number
}

/** How many messages go out per publishBatch call (receipts and progress after each). */
const CHUNK = 100

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string))
  return Buffer.concat(chunks)
}

/** The body from exactly one of --body, --file or standard input, in --format. */
export async function readBody(options: SendOptions, ctx: CommandContext): Promise<unknown> {
  const sources = [options.body !== undefined, options.file !== undefined].filter(Boolean).length
  if (sources > 1) throw usage('Give the body once: --body or --file (or pipe it on standard input).')
  let raw: Buffer
  if (options.body !== undefined) {
    if (options.format === 'binary')
      throw usage('--format binary reads bytes from --file or standard input, not from --body.')
    raw = Buffer.from(options.body, 'utf8')
  } else if (options.file !== undefined) {
    try {
      raw = await readFile(options.file)
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      throw new CliError('MSGKIT_CLI_INPUT', `Cannot read --file ${options.file}: ${why}.`, ExitCodes.usage)
    }
  } else if (ctx.stdin.isTTY) {
    throw usage('No body: pass --body <json>, --file <path>, or pipe it on standard input.')
  } else raw = await readAll(ctx.stdin)
  if (options.format === 'binary') return new Uint8Array(raw)
  const text = raw.toString('utf8')
  if (options.format === 'text') return text
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw usage(
      `The body is not valid JSON (${(error as Error).message}). Quote text as JSON ('"hello"') or use --format text.`,
    )
  }
}

/** Parses `--header name=value` (repeatable). */
export function parseHeaders(pairs: string[]): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw usage(`--header ${JSON.stringify(pair)}: use name=value.`)
    headers[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return headers
}

export async function send(topic: string, options: SendOptions, ctx: CommandContext): Promise<ExitCode> {
  if (!Number.isInteger(options.count) || options.count < 1)
    throw usage('--count must be a positive integer.')
  const body = await readBody(options, ctx)
  const headers = parseHeaders(options.header)
  const { messaging } = await connect(
    ctx.options,
    options.timeout ? { publishTimeoutMs: options.timeout } : {},
  )
  try {
    return await publishAll(messaging, topic, body, headers, options, ctx)
  } finally {
    await messaging.close()
  }
}

async function publishAll(
  messaging: Messaging,
  topic: string,
  body: unknown,
  headers: Record<string, string>,
  options: SendOptions,
  ctx: CommandContext,
): Promise<ExitCode> {
  const { output } = ctx
  const unroutable: string[] = []
  messaging.on('unroutable', (event) => unroutable.push(...event.ids))
  const item: PublishOptions = { headers, unroutable: options.unroutable }
  if (options.key !== undefined) item.key = options.key
  const progress = output.progress(`send ${topic}`)
  const started = performance.now()
  let sent = 0
  while (sent < options.count && !ctx.signal.aborted) {
    const n = Math.min(CHUNK, options.count - sent)
    const receipts = await messaging.publishBatch(
      topic,
      Array.from({ length: n }, () => ({ ...item, body })),
    )
    for (const receipt of receipts) {
      output.record({
        id: receipt.id,
        topic: receipt.topic,
        ...(options.key === undefined ? {} : { key: options.key }),
      })
      output.line(`sent ${receipt.id} to ${receipt.topic}`)
    }
    sent += n
    if (options.count > CHUNK) progress.update(`${sent}/${options.count} confirmed`)
  }
  progress.done()
  const took = performance.now() - started
  const rate = sent > 1 ? ` (${Math.round((sent / took) * 1000)}/s)` : ''
  output.note(`${sent} message(s) confirmed by the broker in ${duration(took)}${rate}.`)
  if (unroutable.length > 0)
    output.warn(
      `${unroutable.length} message(s) reached no group: nobody provisioned a group for ${topic}, so the broker kept them for nobody. Provision the consumers' groups first (msgkit provision ${topic} --group <group>).`,
    )
  if (ctx.signal.aborted) {
    output.note(`Interrupted: ${options.count - sent} of ${options.count} not sent.`)
    return ExitCodes.interrupted
  }
  return ExitCodes.ok
}
