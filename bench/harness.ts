import { cpus, loadavg } from 'node:os'
import { type Messaging, withTimeout } from '@msgkit/core'

/**
 * What every bench shares: a body of an exact size, a fixed-concurrency driver, a counter that
 * resolves at a target, and the round runner that turns rounds into medians and per-round ratios.
 */

/** One number a bench measures per round (throughput unless `unit` says otherwise). */
export interface Metric {
  id: string
  label: string
  side: 'raw' | 'msgkit'
  /** default 'msg/s'; 'ms' metrics are shown but never used in ratios */
  unit?: 'msg/s' | 'ms'
}

/** msgkit metric ÷ raw metric, computed inside each round (same conditions), then summarised. */
export interface Ratio {
  label: string
  msgkit: string
  raw: string
}

/** The values of one round, by metric id. */
export type RoundValues = Record<string, number>

export interface BenchDefinition {
  name: string
  title: string
  /** lines printed under the title: sizes, counts, concurrency, broker, what is timed */
  details: string[]
  metrics: Metric[]
  ratios: Ratio[]
  rounds: number
  /** one unrecorded round first (JIT, connections, broker caches) */
  warmup: () => Promise<void>
  round: (index: number) => Promise<RoundValues>
  /** always called, also after a failure */
  cleanup: () => Promise<void>
}

export interface Summary {
  median: number
  min: number
  max: number
  samples: number[]
}

export interface BenchResult {
  definition: BenchDefinition
  metrics: Array<Metric & Summary>
  ratios: Array<Ratio & Summary>
  /** 1-minute load average before and after (a busy shared machine shows here), and the CPU count */
  load: { before: number; after: number; cpus: number }
}

/** Median, min and max of the samples. */
export function summarise(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN, samples }
}

/** Runs the warm-up and the rounds; prints progress; always cleans up. */
export async function runBench(definition: BenchDefinition): Promise<BenchResult> {
  const values: RoundValues[] = []
  const loadBefore = loadavg()[0]!
  try {
    progress(`${definition.name}: warm-up round`)
    await definition.warmup()
    for (let i = 0; i < definition.rounds; i++) {
      const round = await definition.round(i)
      values.push(round)
      const line = definition.metrics
        .filter((m) => round[m.id] !== undefined)
        .map((m) => `${m.id}=${format(round[m.id]!)}${m.unit === 'ms' ? 'ms' : ''}`)
        .join('  ')
      progress(`${definition.name}: round ${i + 1}/${definition.rounds}  ${line}`)
    }
  } finally {
    progress(`${definition.name}: cleaning up`)
    await definition.cleanup()
  }
  return {
    definition,
    load: { before: loadBefore, after: loadavg()[0]!, cpus: cpus().length },
    metrics: definition.metrics.map((m) => ({
      ...m,
      ...summarise(values.map((v) => v[m.id]).filter((n): n is number => n !== undefined)),
    })),
    ratios: definition.ratios.map((r) => ({
      ...r,
      ...summarise(
        values
          .filter((v) => v[r.msgkit] !== undefined && v[r.raw] !== undefined)
          .map((v) => v[r.msgkit]! / v[r.raw]!),
      ),
    })),
  }
}

/** A progress line (stderr, so a redirected stdout holds only the tables). */
export function progress(text: string): void {
  process.stderr.write(`  … ${text}\n`)
}

/** 12345.6 → "12,346"; small numbers keep a decimal. */
export function format(n: number): string {
  if (!Number.isFinite(n)) return '—'
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
}

/** Messages per second for `messages` handled in `ms`. */
export const perSecond = (messages: number, ms: number): number => (messages / ms) * 1000

/**
 * A JSON object whose `JSON.stringify` is exactly `bytes` long (ASCII only, so bytes = chars),
 * shaped like an ordinary event rather than one long string.
 */
export function jsonBody(bytes: number): Record<string, unknown> {
  const body = {
    orderId: 'o-000001',
    customer: { id: 'c-42', email: 'minji@example.com' },
    items: [
      { sku: 'KB-1', quantity: 1, price: 49.9 },
      { sku: 'MS-2', quantity: 2, price: 19.5 },
    ],
    note: '',
  }
  const base = JSON.stringify(body).length
  if (base > bytes) throw new Error(`a body of ${bytes} bytes is too small (at least ${base})`)
  body.note = 'x'.repeat(bytes - base)
  return body
}

/**
 * Calls `task` `total` times with at most `concurrency` calls running at once (a worker pool:
 * each worker starts its next call as soon as its previous one resolved).
 */
export async function pool(
  total: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < total) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker))
}

/** Counts events; `done` resolves at `target`, and `first`/`last` hold the times (performance.now()). */
export function counter(target: number): {
  hit(): void
  readonly count: number
  readonly first: number
  readonly last: number
  done: Promise<void>
} {
  let count = 0
  let first = Number.NaN
  let last = Number.NaN
  let resolve!: () => void
  const done = new Promise<void>((r) => {
    resolve = r
  })
  return {
    hit() {
      count++
      const now = performance.now()
      if (count === 1) first = now
      if (count === target) {
        last = now
        resolve()
      }
    },
    get count() {
      return count
    },
    get first() {
      return first
    },
    get last() {
      return last
    },
    done,
  }
}

/** Rejects when `promise` takes longer than `ms` (a stuck round must not hang the run). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(promise, ms, () => new Error(`${what} did not finish within ${ms / 1000} s`))
}

/** Integer from the environment, or the default. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got "${raw}")`)
  return n
}

/** A broker the bench cannot reach: run.ts prints the message and skips the bench. */
export class BrokerUnreachableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BrokerUnreachableError'
  }
}

/** Timings of one consume run, from the call that starts consuming. */
export interface ConsumeTiming {
  /** subscribe/connect call → last message */
  total: number
  /** subscribe/connect call → first message (connect, group join, first fetch) */
  toFirst: number
  /** first message → last message */
  flow: number
}

/** ConsumeTiming from a start time and a counter that saw every message. */
export function timing(start: number, seen: ReturnType<typeof counter>): ConsumeTiming {
  return { total: seen.last - start, toFirst: seen.first - start, flow: seen.last - seen.first }
}

/** The two msgkit publish variants every broker bench runs: concurrent `publish` and `publishBatch`. */
export function msgkitPublishers(
  messaging: () => Messaging,
  body: unknown,
  concurrency: number,
  batch: number,
): Record<'msgkit-publish' | 'msgkit-batch', (topic: string, count: number) => Promise<number>> {
  return {
    'msgkit-publish': async (topic, count) => {
      const m = messaging()
      const start = performance.now()
      await pool(count, concurrency, () => m.publish(topic, body))
      return performance.now() - start
    },
    'msgkit-batch': async (topic, count) => {
      const m = messaging()
      const start = performance.now()
      for (let i = 0; i < count; i += batch) {
        const n = Math.min(batch, count - i)
        await m.publishBatch(
          topic,
          Array.from({ length: n }, () => ({ body })),
        )
      }
      return performance.now() - start
    },
  }
}
