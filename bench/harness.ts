import { type Messaging, type SubscribeOptions, withTimeout } from '@msgkit/core'

/**
 * What every bench shares. A bench module describes scenarios (publish, consume, end to end,
 * latency…), each with variants (raw client, raw client with msgkit's wire format, msgkit, a peer
 * library, a ceiling). Every variant of every round runs in a fresh child process (cell.ts), so
 * each one's peak RSS is its own and no variant inherits another's heap or JIT state; the order
 * of the variants rotates from round to round, and ratios are taken inside a round.
 */

/** What a variant is, for the tables and for latest.json. */
export type Role = 'raw' | 'raw-wire' | 'msgkit' | 'peer' | 'ceiling' | 'extra'

export interface Variant {
  id: string
  role: Role
  label: string
  /** a line shown under the tables (what this variant guarantees, how it is set up) */
  note?: string
}

/** msgkit ÷ raw (or any a ÷ b), per round, then the median. */
export interface Comparison {
  label: string
  a: string
  b: string
  /** what is compared (default msgsPerSec); for rss and latency a smaller value is better */
  of?: 'msgsPerSec' | 'p99Ms' | 'rssMb' | 'cpuUsPerMsg'
}

export interface Scenario {
  id: string
  title: string
  /** throughput: as fast as it goes; latency: a fixed rate, publish→handler times */
  kind: 'throughput' | 'latency'
  messages: number
  /** messages each cell handles before its clock starts (default: a fifth of `messages`, at most 2,000) */
  warmup?: number
  /** body size in bytes (what the scenario's bodies encode to) */
  bytes: number
  variants: Variant[]
  /** the pair latest.json records as `msgkit` and `raw` */
  primary: { msgkit: string; raw: string }
  comparisons: Comparison[]
  /** parent side, before a variant's cell: declare topics, fill backlogs; returns the cell's arguments */
  prepare?(variant: string, round: string): Promise<Record<string, unknown>>
  /** parent side, after a variant's cell (delete what it used) */
  done?(variant: string, round: string): Promise<void>
}

export interface Plan {
  name: string
  title: string
  details: string[]
  scenarios: Scenario[]
  /** always called, also after a failure */
  cleanup(): Promise<void>
}

export interface Settings {
  /** a few hundred messages per cell, one round: proves the bench still works, measures nothing */
  smoke: boolean
  rounds: number
  /** BENCH_MESSAGES, when set: overrides every scenario's default */
  messages?: number
  bytes: number
}

/** What a cell (one variant, one round, in its own process) is given. */
export interface CellArgs {
  messages: number
  /** messages handled before the clock starts (JIT, connections, broker caches) */
  warmup: number
  bytes: number
  [key: string]: unknown
}

/** What a cell measured. */
export interface Measured {
  messages: number
  ms: number
  /** publish→handler times in ms (latency scenarios) */
  latencies?: number[]
  /** subscribe/consume call → first message (consume scenarios) */
  toFirstMs?: number
  /** CPU time this process used while the clock ran (user + system, all threads) */
  cpuMs?: number
  /** anything else the cell wants reported (soak: heap after GC) */
  extra?: Record<string, number>
}

export type Cell = (args: CellArgs) => Promise<Measured>

/** A bench module: the parent's plan and the child's cells, keyed `scenario/variant`. */
export interface BenchModule {
  plan(settings: Settings): Promise<Plan>
  cells: Record<string, Cell>
}

/** What a cell reports back to the parent (one JSON line on stdout). */
export interface CellResult {
  msgsPerSec: number
  p50Ms?: number
  p99Ms?: number
  toFirstMs?: number
  /** peak resident set size of the cell's process */
  rssMb: number
  /** CPU time per message of the cell's own process while the clock ran (less noisy than msg/s on a shared machine) */
  cpuUsPerMsg?: number
  extra?: Record<string, number>
}

export interface Summary {
  median: number
  min: number
  max: number
  samples: number[]
}

/** Median, min and max of the samples. */
export function summarise(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median =
    sorted.length === 0
      ? Number.NaN
      : sorted.length % 2 === 1
        ? sorted[mid]!
        : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN, samples }
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/** A progress line (stderr, so a redirected stdout holds only the tables). */
export function progress(text: string): void {
  process.stderr.write(`  … ${text}\n`)
}

/** 12345.6 → "12,346"; small numbers keep a decimal or two. */
export function format(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—'
  if (n >= 100) return Math.round(n).toLocaleString('en-US')
  return n >= 1 ? n.toFixed(1) : n.toFixed(2)
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

/** A body for latency runs: `jsonBody(bytes)` with the send time (performance.now()) in it. */
export function stampedBody(base: Record<string, unknown>): Record<string, unknown> {
  return { ...base, sentAt: performance.now() }
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

/**
 * Calls `send` `total` times at `rate` per second (a timer loop sends whatever is due, so the rate
 * holds on average even when a tick is late). Resolves once the last one was sent.
 */
export function paced(total: number, rate: number, send: (index: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    let sent = 0
    const tick = (): void => {
      try {
        const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
        while (sent < due) send(sent++)
      } catch (error) {
        reject(error)
        return
      }
      if (sent >= total) resolve()
      else setTimeout(tick, 1)
    }
    tick()
  })
}

/** Counts events; `done` resolves at `target`; `first`/`last` hold the times (performance.now()). */
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
      if (count === 1) first = performance.now()
      if (count === target) {
        last = performance.now()
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

/**
 * A consumer's clock: the first `warmup` messages are not timed, the next `messages` are; `done`
 * resolves after warmup + messages. `toFirstMs`: from `start` (the consume call) to the first one.
 */
export function consumeClock(warmup: number, messages: number) {
  const seen = counter(warmup + messages)
  let started = Number.NaN
  let startedAt = Number.NaN
  let cpu = process.cpuUsage()
  let cpuMs = Number.NaN
  return {
    start() {
      startedAt = performance.now()
      if (warmup === 0) cpu = process.cpuUsage()
    },
    hit() {
      seen.hit()
      if (seen.count === warmup) {
        started = performance.now()
        cpu = process.cpuUsage()
      }
      if (seen.count === warmup + messages) cpuMs = cpuSince(cpu)
    },
    done: seen.done,
    measured(): Measured {
      const from = warmup === 0 ? startedAt : started
      return { messages, ms: seen.last - from, toFirstMs: seen.first - startedAt, cpuMs }
    },
  }
}

/** One side of a latency run: `send()` publishes one stamped message (and reports its own failures). */
export interface LatencySide {
  send(): void
  close(): Promise<unknown>
}

/**
 * Publish→handler latency at a fixed rate: `open(record)` sets one side up (its consumer calls
 * `record(sentAt)` for every message it gets) and returns its sender; warmup + messages are sent at
 * `rate` per second and the latencies of all but the warmup's are kept. The clock stops before close.
 */
export async function latencyRun(
  args: CellArgs,
  rate: number,
  timeoutMs: number,
  open: (record: (sentAt: number) => void) => Promise<LatencySide>,
): Promise<Measured> {
  const total = args.warmup + args.messages
  const latencies: number[] = []
  const seen = counter(total)
  const side = await open((sentAt) => {
    if (seen.count >= args.warmup) latencies.push(performance.now() - sentAt)
    seen.hit()
  })
  const start = performance.now()
  await paced(total, rate, () => side.send())
  await within(seen.done, timeoutMs, 'the latency run')
  const measured: Measured = { messages: total, ms: performance.now() - start, latencies }
  await side.close()
  return measured
}

/** msgkit's side of a latency run: one subscription on `m`, one publish() per send, stamped copies of `base`. */
export async function msgkitLatencySide(
  m: Messaging,
  topic: string,
  options: SubscribeOptions,
  base: Record<string, unknown>,
  record: (sentAt: number) => void,
): Promise<LatencySide> {
  await m.subscribe(topic, options, (msg) => record((msg.body as { sentAt: number }).sentAt))
  return {
    send: () =>
      void m.publish(topic, stampedBody(base)).catch((error) => console.error('publish failed:', error)),
    close: () => m.close(),
  }
}

/** Rejects when `promise` takes longer than `ms` (a stuck cell must not hang the run). */
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

/** A broker the bench cannot reach: the run fails with this message (it says how to start the broker). */
export class BrokerUnreachableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BrokerUnreachableError'
  }
}

/** Publishes `count` bodies with `publish()`, `concurrency` awaited at once. */
export async function publishConcurrently(
  m: Messaging,
  topic: string,
  body: unknown,
  count: number,
  concurrency: number,
): Promise<void> {
  await pool(count, concurrency, () => m.publish(topic, body))
}

/** Publishes `count` bodies with `publishBatch()` in batches of `batch`, one batch at a time. */
export async function publishInBatches(
  m: Messaging,
  topic: string,
  body: unknown,
  count: number,
  batch: number,
): Promise<void> {
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i)
    await m.publishBatch(
      topic,
      Array.from({ length: n }, () => ({ body })),
    )
  }
}

/** CPU ms (user + system) since `from` (a process.cpuUsage() value). */
export function cpuSince(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from)
  return (used.user + used.system) / 1000
}

/** Times `work` (performance.now() around it). */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await work()
  return performance.now() - start
}

/** Times `work`: wall ms and the CPU ms this process used meanwhile (`Measured.cpuMs`). */
export async function timedCpu(work: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number }> {
  const cpu = process.cpuUsage()
  const start = performance.now()
  await work()
  return { ms: performance.now() - start, cpuMs: cpuSince(cpu) }
}
