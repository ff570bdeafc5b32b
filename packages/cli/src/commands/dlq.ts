/** `msgkit dlq list|show|redrive|purge <topic> --group G`: a group's dead letters. */
import { createInterface } from 'node:readline/promises'
import { type DeadLetter, type DeadLetterQueue, deadLetterQueue, type Messaging } from '@msgkit/core'
import { connect } from '../connect.js'
import { CliError, type ExitCode, ExitCodes, usage } from '../exit-codes.js'
import { bodyForJson, bodyForPeople, decodeLeniently, duration, when } from '../output.js'
import type { CommandContext } from './context.js'

export interface DlqOptions {
  group: string
  limit?: number
}

/** How many dead letters `list` reads at most (it says so when there are more). */
const LIST_LIMIT = 10_000

async function withQueue<T>(
  topic: string,
  options: DlqOptions,
  ctx: CommandContext,
  work: (dlq: DeadLetterQueue, messaging: Messaging) => Promise<T>,
): Promise<T> {
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1))
    throw usage('--limit must be a positive integer.')
  const { messaging } = await connect(ctx.options)
  try {
    return await work(deadLetterQueue(messaging, topic, options.group), messaging)
  } finally {
    await messaging.close({ timeoutMs: 5_000 })
  }
}

/** On brokers that can only read by delivering, say what reading did. */
function noteRedelivery(messaging: Messaging, read: number, ctx: CommandContext): void {
  if (read > 0 && messaging.capabilities.browse === 'redelivers')
    ctx.output.note(
      `note: ${messaging.transport.name} can only read a queue by delivering from it: the ${read} dead letter(s) read are back in place, in order, marked redelivered with their delivery count one higher.`,
    )
}

function letterRecord(letter: DeadLetter) {
  return {
    id: letter.id,
    ...(letter.key === undefined ? {} : { key: letter.key }),
    headers: letter.headers,
    timestamp: letter.timestamp,
    ...(letter.contentType === undefined ? {} : { contentType: letter.contentType }),
    deadLetter: letter.deadLetter ?? null,
    body: bodyForJson(decodeLeniently(letter.body, letter.contentType)),
  }
}

export async function list(topic: string, options: DlqOptions, ctx: CommandContext): Promise<ExitCode> {
  const { output } = ctx
  return withQueue(topic, options, ctx, async (dlq, messaging) => {
    const limit = options.limit ?? LIST_LIMIT
    const letters = await dlq.browse({ limit, signal: ctx.signal })
    const reasons = new Map<string, { count: number; errors: Map<string, number> }>()
    for (const l of letters) {
      const reason = l.deadLetter?.reason ?? '(not dead-lettered by msgkit)'
      const entry = reasons.get(reason) ?? { count: 0, errors: new Map<string, number>() }
      entry.count += 1
      const error = l.deadLetter ? `${l.deadLetter.errorName}: ${l.deadLetter.errorMessage}` : ''
      entry.errors.set(error, (entry.errors.get(error) ?? 0) + 1)
      reasons.set(reason, entry)
    }
    const times = letters.map((l) => l.deadLetter?.time ?? l.timestamp).filter((t) => t > 0)
    const oldest = times.length ? Math.min(...times) : undefined
    const newest = times.length ? Math.max(...times) : undefined
    const complete = letters.length < limit
    const summary = [...reasons.entries()]
      .sort((a, b) => b[1].count - a[1].count)
      .map(([reason, e]) => ({
        reason,
        count: e.count,
        errors: [...e.errors.entries()]
          .sort((a, b) => b[1] - a[1])
          .map(([error, count]) => ({ error, count })),
      }))
    output.record({
      topic,
      group: options.group,
      deadLetterTopic: dlq.topic,
      count: letters.length,
      complete,
      ...(oldest === undefined ? {} : { oldest, newest }),
      reasons: summary,
    })
    if (!output.json) {
      const more = complete ? '' : ` (read the first ${limit}; there are more: --limit raises it)`
      output.line(`${dlq.topic}: ${letters.length} dead letter(s)${more}`)
      if (oldest !== undefined && newest !== undefined)
        output.line(`  dead-lettered from ${when(oldest)} to ${when(newest)}`)
      for (const r of summary) {
        output.line(`  ${String(r.count).padStart(6)}  ${r.reason}`)
        for (const e of r.errors.slice(0, 3))
          if (e.error) output.line(`          ${String(e.count).padStart(5)} × ${e.error.slice(0, 160)}`)
        if (r.errors.length > 3) output.line(`          … and ${r.errors.length - 3} other error text(s)`)
      }
    }
    noteRedelivery(messaging, letters.length, ctx)
    return ExitCodes.ok
  })
}

export interface ShowOptions extends DlqOptions {
  id?: string
}

export async function show(topic: string, options: ShowOptions, ctx: CommandContext): Promise<ExitCode> {
  const { output } = ctx
  return withQueue(topic, options, ctx, async (dlq, messaging) => {
    const limit = options.id === undefined ? (options.limit ?? 20) : (options.limit ?? LIST_LIMIT)
    const read = await dlq.browse({ limit, signal: ctx.signal })
    const letters = options.id === undefined ? read : read.filter((l) => l.id === options.id)
    output.record(letters.map(letterRecord))
    if (!output.json) {
      if (letters.length === 0)
        output.line(
          options.id === undefined
            ? `${dlq.topic}: no dead letters`
            : `${dlq.topic}: no dead letter ${options.id} among the first ${limit}`,
        )
      letters.forEach((l, i) => {
        const dl = l.deadLetter
        output.line(
          `#${i + 1}  id=${l.id}${l.key === undefined ? '' : `  key=${l.key}`}  published ${when(l.timestamp)}`,
        )
        if (dl) {
          output.line(
            `    reason:   ${dl.reason} after ${dl.attempts} attempt(s), group ${dl.group}, ${when(dl.time)}`,
          )
          output.line(`    error:    ${dl.errorName}: ${dl.errorMessage}`)
          if (dl.truncated)
            output.line(
              `    reduced:  ${dl.truncated.parts.join(' and ')} cut to fit (${dl.truncated.originalBytes} bytes, sha256 ${dl.truncated.originalSha256}); cannot be redriven`,
            )
        } else output.line('    (no dead-letter envelope: not dead-lettered by msgkit)')
        const headers = Object.entries(l.headers)
        if (headers.length > 0)
          output.line(`    headers:  ${headers.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`)
        output.line(`    body:     ${bodyForPeople(decodeLeniently(l.body, l.contentType))}`)
      })
      if (options.id === undefined && read.length === limit)
        output.line(`(the first ${limit}; --limit shows more)`)
    }
    noteRedelivery(messaging, read.length, ctx)
    return ExitCodes.ok
  })
}

export interface RedriveCommandOptions extends DlqOptions {
  filter: string[]
  dryRun?: boolean
  toTopic?: boolean
  idle: number
}

/** `reason=handler-failed`, `error=<text in the message>`, `error-name=…`, `key=…`, `id=…`, `header.<name>=…` */
export function parseFilters(filters: string[]): (letter: DeadLetter) => boolean {
  const tests = filters.map((f) => {
    const eq = f.indexOf('=')
    const name = eq > 0 ? f.slice(0, eq) : ''
    const value = f.slice(eq + 1)
    if (name === 'reason') return (l: DeadLetter) => l.deadLetter?.reason === value
    if (name === 'error') return (l: DeadLetter) => (l.deadLetter?.errorMessage ?? '').includes(value)
    if (name === 'error-name') return (l: DeadLetter) => l.deadLetter?.errorName === value
    if (name === 'key') return (l: DeadLetter) => l.key === value
    if (name === 'id') return (l: DeadLetter) => l.id === value
    if (name.startsWith('header.') && name.length > 7)
      return (l: DeadLetter) => l.headers[name.slice(7)] === value
    throw usage(
      `--filter ${JSON.stringify(f)}: use reason=…, error=<text>, error-name=…, key=…, id=… or header.<name>=…`,
    )
  })
  return (letter) => tests.every((t) => t(letter))
}

export async function redrive(
  topic: string,
  options: RedriveCommandOptions,
  ctx: CommandContext,
): Promise<ExitCode> {
  const { output } = ctx
  const filter = parseFilters(options.filter)
  if (!Number.isInteger(options.idle) || options.idle < 100) throw usage('--idle must be at least 100 (ms).')
  return withQueue(topic, options, ctx, async (dlq) => {
    const where = options.toTopic
      ? `topic ${topic} (every group of it)`
      : `group ${options.group} on ${topic}`
    const progress = output.progress(options.dryRun ? 'redrive (dry run)' : 'redrive')
    const started = performance.now()
    let rateFrom = { at: started, moved: 0 }
    const report = await dlq.redrive({
      filter,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      dryRun: options.dryRun === true,
      toTopic: options.toTopic === true,
      idleMs: options.idle,
      signal: ctx.signal,
      onProgress: ({ moved, skipped }) => {
        const now = performance.now()
        const rate =
          now - rateFrom.at > 0 ? Math.round(((moved - rateFrom.moved) / (now - rateFrom.at)) * 1000) : 0
        if (now - rateFrom.at > 5_000) rateFrom = { at: now, moved }
        progress.update(`${moved} moved to ${where}, ${skipped} left (${rate}/s)`)
      },
    })
    progress.done()
    const took = duration(performance.now() - started)
    const { error, ...rest } = report
    output.record({
      topic,
      group: options.group,
      deadLetterTopic: dlq.topic,
      toTopic: options.toTopic === true,
      ...rest,
    })
    if (options.dryRun)
      output.line(`${report.moved} dead letter(s) would move to ${where}; ${report.skipped} would stay.`)
    else
      output.line(
        `${report.moved} dead letter(s) moved to ${where} in ${took}; ${report.skipped} left in ${dlq.topic}.`,
      )
    if (!output.json && !options.dryRun)
      for (const id of report.ids.slice(0, 20)) output.line(`  moved ${id}`)
    if (!output.json && report.ids.length > 20) output.line(`  … and ${report.ids.length - 20} more`)
    if (report.truncated > 0)
      output.warn(
        `${report.truncated} reduced dead letter(s) (body cut to fit) cannot be redriven and stayed; see msgkit dlq show.`,
      )
    if (report.stopped === 'failed') throw error
    if (report.stopped === 'interrupted') return ExitCodes.interrupted
    if (report.stopped === 'window-full') {
      output.warn(
        'stopped: too many dead letters not matching the filter ahead of the rest; redrive those first, or narrow the scan.',
      )
      return ExitCodes.partial
    }
    return report.truncated > 0 ? ExitCodes.partial : ExitCodes.ok
  })
}

export interface PurgeOptions extends DlqOptions {
  yes?: boolean
  idle: number
}

async function confirm(question: string, ctx: CommandContext): Promise<boolean> {
  const rl = createInterface({ input: ctx.stdin, output: process.stderr })
  try {
    return (await rl.question(question)).trim().toLowerCase() === 'yes'
  } finally {
    rl.close()
  }
}

export async function purge(topic: string, options: PurgeOptions, ctx: CommandContext): Promise<ExitCode> {
  const { output } = ctx
  if (!options.yes && !ctx.stdin.isTTY)
    throw usage('dlq purge removes dead letters for good: pass --yes to confirm (no terminal to ask on).')
  return withQueue(topic, options, ctx, async (dlq, messaging) => {
    if (!options.yes) {
      let count = ''
      if (messaging.capabilities.browse && messaging.transport.browse) {
        const n = (await dlq.browse({ limit: LIST_LIMIT })).length
        count = n >= LIST_LIMIT ? ` (${LIST_LIMIT} or more)` : ` (${n})`
      }
      const ok = await confirm(`Remove every dead letter in ${dlq.topic}${count} for good? Type yes: `, ctx)
      if (!ok) throw new CliError('MSGKIT_CLI_DECLINED', 'Nothing was removed.', ExitCodes.declined)
    }
    const progress = output.progress('purge')
    const report = await dlq.purge({
      idleMs: options.idle,
      signal: ctx.signal,
      onProgress: ({ removed }) => progress.update(`${removed} removed`),
    })
    progress.done()
    const { error, ...rest } = report
    output.record({ topic, group: options.group, deadLetterTopic: dlq.topic, ...rest })
    output.line(`${report.removed} dead letter(s) removed from ${dlq.topic}.`)
    if (report.stopped === 'failed') throw error
    return report.stopped === 'interrupted' ? ExitCodes.interrupted : ExitCodes.ok
  })
}
