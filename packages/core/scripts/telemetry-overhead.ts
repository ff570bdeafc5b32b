/**
 * What tracing costs on the publish → consume path: `pnpm bench memory`'s two variants (the bare
 * memory broker, msgkit on memory://) plus msgkit with OpenTelemetry in each state a user can be
 * in, side by side in one run, the order rotating per round; medians of per-round ratios to raw.
 *
 *   node --conditions=@msgkit/source --import tsx packages/core/scripts/telemetry-overhead.ts
 *
 * Variants:
 *   raw       the memory broker's own publish/deliver/ack (as in bench/memory.ts)
 *   before    msgkit as it was before telemetry (a copy of HEAD's core in BENCH_BEFORE_DIR, if given)
 *   absent    msgkit, @opentelemetry/api not installed (the import fails, as for a user without it)
 *   off       msgkit, `telemetry: false`
 *   noop      msgkit, the API installed, no SDK registered (the API's no-op tracer and meter)
 *   sdk       msgkit, the real SDK: BasicTracerProvider + BatchSpanProcessor (exporter that drops)
 *             + MeterProvider with a reader; every span sampled and recorded
 * Environment: BENCH_MESSAGES (50000), BENCH_ROUNDS (7), BENCH_BODY_BYTES (1024), BENCH_BEFORE_DIR,
 * BENCH_VARIANTS (comma-separated subset), BENCH_SDK_GLOBALS=1 (register an AsyncLocalStorage
 * context manager and the W3C propagator for the whole run, as NodeSDK does: every variant then
 * pays for the context manager's async hooks, as every service with the SDK does).
 */
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import { context, propagation } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { type ExportResult, W3CTraceContextPropagator } from '@opentelemetry/core'
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base'
import { createMessaging, getMemoryBroker, type Messaging } from '../src/index.js'

const envInt = (name: string, fallback: number): number => {
  const v = Number(process.env[name])
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback
}
const messages = envInt('BENCH_MESSAGES', 50_000)
const rounds = envInt('BENCH_ROUNDS', 7)
const bodyBytes = envInt('BENCH_BODY_BYTES', 1024)
const PREFETCH = 64
const CONCURRENCY = 8
const PUBLISH_WINDOW = 500

const body: Record<string, unknown> = { data: '' }
body.data = 'x'.repeat(Math.max(0, bodyBytes - JSON.stringify(body).length))

const progress = (text: string): void => {
  process.stderr.write(`  … ${text}\n`)
}

function counter(target: number) {
  let seen = 0
  let resolve!: () => void
  const done = new Promise<void>((r) => {
    resolve = r
  })
  return {
    done,
    hit() {
      if (++seen === target) resolve()
    },
  }
}

/** Drops what it is given: the export cost is not ours to measure, the recording is. */
class DroppingExporter implements SpanExporter {
  spans = 0
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.spans += spans.length
    done({ code: 0 })
  }
  async shutdown(): Promise<void> {}
}

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const withoutOtelApi = (specifier: string): Promise<unknown> => {
  if (specifier === '@opentelemetry/api') {
    const error = new Error("Cannot find package '@opentelemetry/api'")
    ;(error as { code?: string }).code = 'ERR_MODULE_NOT_FOUND'
    return Promise.reject(error)
  }
  return import(specifier)
}

let instance = 0

async function raw(count: number): Promise<number> {
  const bytes = new TextEncoder().encode(JSON.stringify(body))
  const broker = getMemoryBroker(`bench-raw-${process.pid}-${instance++}`)
  const q = broker.ensureQueue({ topic: 't' }, 'g')
  const seen = counter(count)
  const consumer = {
    prefetch: PREFETCH,
    unacked: new Map(),
    deliver({ message, tag }: { message: { body: Uint8Array }; tag: number }) {
      JSON.parse(new TextDecoder().decode(message.body))
      broker.ack(q, consumer, tag)
      seen.hit()
    },
  }
  const start = performance.now()
  broker.attach(q, consumer as never)
  for (let i = 0; i < count; i++)
    broker.publish('t', { id: String(i), topic: 't', headers: {}, body: bytes, timestamp: Date.now() })
  await seen.done
  const ms = performance.now() - start
  broker.detach(q, consumer as never)
  return ms
}

type Open = (url: string) => Promise<Messaging>

/** bench/memory.ts's msgkit variant, with a Messaging made by `open`. */
async function msgkit(open: Open, count: number): Promise<number> {
  const m = await open(`memory://bench-msgkit-${process.pid}-${instance++}`)
  const seen = counter(count)
  const start = performance.now()
  await m.subscribe('t', { group: 'g', concurrency: CONCURRENCY, prefetch: PREFETCH }, () => {
    seen.hit()
  })
  for (let i = 0; i < count; i += PUBLISH_WINDOW) {
    await Promise.all(Array.from({ length: Math.min(PUBLISH_WINDOW, count - i) }, () => m.publish('t', body)))
  }
  await seen.done
  const ms = performance.now() - start
  await m.close()
  return ms
}

if (process.env.BENCH_SDK_GLOBALS === '1') {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
}

const exporter = new DroppingExporter()
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, scheduledDelayMillis: 200 })],
})
const meterProvider = new MeterProvider({ readers: [new CollectingReader()] })

const variants: Array<[string, (count: number) => Promise<number>]> = [
  ['raw', raw],
  ['absent', (c) => msgkit((url) => createMessaging(url, { loadModule: withoutOtelApi }), c)],
  ['off', (c) => msgkit((url) => createMessaging(url, { telemetry: false }), c)],
  ['noop', (c) => msgkit((url) => createMessaging(url), c)],
  ['sdk', (c) => msgkit((url) => createMessaging(url, { telemetry: { tracerProvider, meterProvider } }), c)],
]
const beforeDir = process.env.BENCH_BEFORE_DIR
if (beforeDir) {
  const before = (await import(pathToFileURL(`${beforeDir}/index.ts`).href)) as {
    createMessaging: (url: string) => Promise<Messaging>
  }
  variants.splice(1, 0, ['before', (c) => msgkit((url) => before.createMessaging(url), c)])
}
const only = process.env.BENCH_VARIANTS?.split(',').map((v) => v.trim())
const chosen = only ? variants.filter(([name]) => name === 'raw' || only.includes(name)) : variants

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const loadBefore = loadavg()[0] as number
progress(`warm-up (${Math.min(messages, 10_000)} messages per variant)`)
for (const [, run] of chosen) await run(Math.min(messages, 10_000))
const perRound: Array<Record<string, number>> = []
for (let r = 0; r < rounds; r++) {
  // rotate the order so no variant is always first or last
  const order = chosen.map((_, i) => chosen[(i + r) % chosen.length] as (typeof chosen)[number])
  const values: Record<string, number> = {}
  for (const [name, run] of order) values[name] = (messages / (await run(messages))) * 1000
  perRound.push(values)
  progress(
    `round ${r + 1}/${rounds}  ${chosen.map(([n]) => `${n}=${Math.round(values[n] as number)}`).join('  ')}`,
  )
}
await tracerProvider.forceFlush()

const names = chosen.map(([n]) => n)
console.log(
  `\n### telemetry overhead on memory:// (${messages} messages × ${rounds} rounds, ${bodyBytes}-byte JSON${process.env.BENCH_SDK_GLOBALS === '1' ? ', context manager + W3C propagator registered' : ''}; load ${loadBefore.toFixed(2)} before / ${(loadavg()[0] as number).toFixed(2)} after)\n`,
)
console.log('| variant | median msg/s | min – max | ratio to raw (median of per-round) | ratio to `absent` |')
console.log('|---|--:|--:|--:|--:|')
for (const name of names) {
  const rates = perRound.map((v) => v[name] as number)
  const toRaw = perRound.map((v) => (v[name] as number) / (v.raw as number))
  const toAbsent = perRound.map((v) => (v[name] as number) / ((v.absent ?? Number.NaN) as number))
  console.log(
    `| ${name} | ${Math.round(median(rates)).toLocaleString('en')} | ${Math.round(Math.min(...rates)).toLocaleString('en')} – ${Math.round(Math.max(...rates)).toLocaleString('en')} | ${median(toRaw).toFixed(3)} (${Math.min(...toRaw).toFixed(2)}–${Math.max(...toRaw).toFixed(2)}) | ${name === 'raw' ? '' : median(toAbsent).toFixed(3)} |`,
  )
}
console.log(`\nspans exported by the sdk variant: ${exporter.spans}`)
await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()])
