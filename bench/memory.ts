/**
 * Memory transport: msgkit's publish → subscribe path against the bare in-process broker it runs
 * on, and against a bare JSON loop (the ceiling: what Node itself does per message). No network,
 * so the ratios are msgkit's own CPU cost: encode, checks, headers, consumer engine, ack.
 */
import { randomUUID } from 'node:crypto'
import { createMessaging, getMemoryBroker, type MemoryBroker } from '@msgkit/core'
import {
  type BenchModule,
  type Cell,
  type CellArgs,
  type Comparison,
  cpuSince,
  envInt,
  jsonBody,
  latencyRun,
  type Measured,
  msgkitLatencySide,
  type Scenario,
  type Settings,
  stampedBody,
  type Variant,
  within,
} from './harness.js'

const PREFETCH = 64
const CONCURRENCY = 8
const WINDOW = 500
/** publishers wait when this many messages are published and not handled yet (both sides alike) */
const MAX_BACKLOG = 2_000
const LATENCY_RATE = 1_000
const SMALL_BYTES = 16
const CELL_TIMEOUT_MS = 10 * 60_000

let brokers = 0
const freshBroker = (): { name: string; broker: MemoryBroker } => {
  const name = `bench-${process.pid}-${brokers++}`
  return { name, broker: getMemoryBroker(name) }
}

/** Counts handled messages; `until(n)` waits for n; the clock starts when the warm-up is done. */
function tracker(warmup: number, messages: number) {
  const total = warmup + messages
  let seen = 0
  let from = Number.NaN
  let last = Number.NaN
  let cpu = process.cpuUsage()
  let cpuMs = Number.NaN
  let waiting: { at: number; resolve: () => void } | undefined
  let resolveDone!: () => void
  const done = new Promise<void>((r) => {
    resolveDone = r
  })
  if (warmup === 0) from = performance.now()
  return {
    hit() {
      seen += 1
      if (seen === warmup) {
        from = performance.now()
        cpu = process.cpuUsage()
      }
      if (waiting && seen >= waiting.at) {
        const w = waiting
        waiting = undefined
        w.resolve()
      }
      if (seen === total) {
        last = performance.now()
        cpuMs = cpuSince(cpu)
        resolveDone()
      }
    },
    get seen() {
      return seen
    },
    until(at: number): Promise<void> {
      if (seen >= at) return Promise.resolve()
      return new Promise((resolve) => {
        waiting = { at, resolve }
      })
    },
    done,
    measured(): Measured {
      return { messages, ms: last - from, cpuMs }
    },
  }
}

type Seen = ReturnType<typeof tracker>

/** Publishes `total` in windows, holding the backlog (published − handled) under MAX_BACKLOG. */
async function drive(total: number, seen: Seen, publish: (n: number) => Promise<unknown> | undefined) {
  for (let sent = 0; sent < total; ) {
    const n = Math.min(WINDOW, total - sent)
    await publish(n)
    sent += n
    if (sent - seen.seen > MAX_BACKLOG) await seen.until(sent - MAX_BACKLOG / 2)
    else if (sent % (WINDOW * 4) === 0) await new Promise(setImmediate)
  }
}

type Body = { kind: 'json'; value: Record<string, unknown> } | { kind: 'bytes'; value: Uint8Array }
const bodyOf = (args: CellArgs): Body =>
  args.body === 'bytes'
    ? { kind: 'bytes', value: new Uint8Array(args.bytes).fill(7) }
    : { kind: 'json', value: jsonBody(args.bytes) }

const utf8 = new TextEncoder()
const utf8d = new TextDecoder()

/** The headers msgkit's memory transport stores for such a body (read off the broker, not assumed). */
async function msgkitWireHeaders(body: Body): Promise<Record<string, string>> {
  const { name, broker } = freshBroker()
  const m = await createMessaging(`memory://${name}`)
  const q = broker.ensureQueue({ topic: 't' }, 'g')
  await m.publish('t', body.value)
  const stored = await new Promise<Record<string, string>>((resolve) => {
    const consumer = {
      prefetch: 1,
      unacked: new Map(),
      deliver({ message, tag }: { message: { headers: Record<string, string> }; tag: number }) {
        broker.ack(q, consumer as never, tag)
        resolve({ ...message.headers })
      },
    }
    broker.attach(q, consumer as never)
  })
  await m.close()
  return stored
}

/** The bare broker: publish (encoding each message) and a consumer that decodes, parses and acks. */
const rawCell =
  (wire: boolean): Cell =>
  async (args) => {
    const body = bodyOf(args)
    const headers = wire ? await msgkitWireHeaders(body) : {}
    const { broker } = freshBroker()
    const q = broker.ensureQueue({ topic: 't' }, 'g')
    const seen = tracker(args.warmup, args.messages)
    const consumer = {
      prefetch: PREFETCH,
      unacked: new Map(),
      deliver({
        message,
        tag,
      }: {
        message: { body: Uint8Array; headers: Record<string, string> }
        tag: number
      }) {
        if (body.kind === 'json') JSON.parse(utf8d.decode(message.body))
        broker.ack(q, consumer as never, tag)
        seen.hit()
      },
    }
    broker.attach(q, consumer as never)
    let i = 0
    await drive(args.warmup + args.messages, seen, (n) => {
      for (let k = 0; k < n; k++, i++) {
        const bytes = body.kind === 'json' ? utf8.encode(JSON.stringify(body.value)) : body.value
        broker.publish(
          't',
          wire
            ? { id: randomUUID(), topic: 't', headers: { ...headers }, body: bytes, timestamp: Date.now() }
            : { id: String(i), topic: 't', headers: {}, body: bytes, timestamp: 0 },
        )
      }
      return undefined
    })
    await within(seen.done, CELL_TIMEOUT_MS, 'raw memory consumer')
    return seen.measured()
  }

/** msgkit: subscribe (concurrency 8, prefetch 64) and publish in windows of 500. */
const msgkitCell: Cell = async (args) => {
  const body = bodyOf(args)
  const { name } = freshBroker()
  const m = await createMessaging(`memory://${name}`)
  const seen = tracker(args.warmup, args.messages)
  await m.subscribe('t', { group: 'g', concurrency: CONCURRENCY, prefetch: PREFETCH }, () => {
    seen.hit()
  })
  const windowOf = Array.from({ length: WINDOW })
  await drive(args.warmup + args.messages, seen, (n) =>
    Promise.all((n === WINDOW ? windowOf : windowOf.slice(0, n)).map(() => m.publish('t', body.value))),
  )
  await within(seen.done, CELL_TIMEOUT_MS, 'msgkit on memory://')
  const measured = seen.measured()
  await m.close()
  return measured
}

/** The ceiling: a bare loop doing what any JSON messaging must do per message, and nothing else. */
const ceilingCell: Cell = async (args) => {
  const body = jsonBody(args.bytes)
  let sink = 0
  const loop = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const bytes = utf8.encode(JSON.stringify(body))
      const back = JSON.parse(utf8d.decode(bytes)) as { note: string }
      sink += back.note.length
    }
  }
  loop(args.warmup)
  const cpu = process.cpuUsage()
  const start = performance.now()
  loop(args.messages)
  const ms = performance.now() - start
  const cpuMs = cpuSince(cpu)
  if (sink < 0) console.log(sink)
  return { messages: args.messages, ms, cpuMs }
}

/** Publish→handler latency at a fixed rate: raw broker vs msgkit. */
const latencyCell =
  (side: 'raw' | 'msgkit'): Cell =>
  (args) => {
    const base = jsonBody(args.bytes)
    return latencyRun(args, LATENCY_RATE, CELL_TIMEOUT_MS, async (record) => {
      if (side === 'msgkit') {
        const m = await createMessaging(`memory://${freshBroker().name}`)
        return msgkitLatencySide(
          m,
          't',
          { group: 'g', concurrency: CONCURRENCY, prefetch: PREFETCH },
          base,
          record,
        )
      }
      const { broker } = freshBroker()
      const q = broker.ensureQueue({ topic: 't' }, 'g')
      const consumer = {
        prefetch: PREFETCH,
        unacked: new Map(),
        deliver({ message, tag }: { message: { body: Uint8Array }; tag: number }) {
          const parsed = JSON.parse(utf8d.decode(message.body)) as { sentAt: number }
          broker.ack(q, consumer as never, tag)
          record(parsed.sentAt)
        },
      }
      broker.attach(q, consumer as never)
      let i = 0
      return {
        send: () => {
          const bytes = utf8.encode(JSON.stringify(stampedBody(base)))
          broker.publish('t', { id: String(i++), topic: 't', headers: {}, body: bytes, timestamp: 0 })
        },
        close: async () => {},
      }
    })
  }

const v = (id: string, role: Variant['role'], label: string, note?: string): Variant => ({
  id,
  role,
  label,
  ...(note ? { note } : {}),
})

const throughputComparisons = (ceiling: boolean): Comparison[] => [
  { label: 'msgkit / raw broker', a: 'msgkit', b: 'raw' },
  ...(ceiling ? [{ label: 'msgkit / bare JSON loop (ceiling)', a: 'msgkit', b: 'ceiling' }] : []),
  { label: "msgkit / raw broker with msgkit's wire format (cost of our code)", a: 'msgkit', b: 'raw-wire' },
  { label: 'raw with msgkit wire format / raw (cost of the wire format)', a: 'raw-wire', b: 'raw' },
  { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
  { label: 'CPU per message (client process): raw / msgkit', a: 'raw', b: 'msgkit', of: 'cpuUsPerMsg' },
]

export const bench: BenchModule = {
  async plan(settings: Settings) {
    const smoke = settings.smoke
    const n = (full: number): number => (smoke ? 300 : (settings.messages ?? full))
    const warmup = smoke ? 50 : envInt('BENCH_WARMUP', 10_000)
    const raw = v('raw', 'raw', 'raw memory broker: publish (encode each) + consume (decode, parse, ack)')
    const rawWire = v(
      'raw-wire',
      'raw-wire',
      "raw memory broker, msgkit's wire format (UUID id, timestamp, msgkit's stored headers)",
    )
    const msgkit = v(
      'msgkit',
      'msgkit',
      `msgkit on memory://: subscribe (concurrency ${CONCURRENCY}, prefetch ${PREFETCH}) + publish() in windows of ${WINDOW}`,
    )
    const ceiling = v(
      'ceiling',
      'ceiling',
      'bare loop: JSON.stringify + TextEncoder + TextDecoder + JSON.parse (no broker)',
    )
    const e2e = (id: string, title: string, messages: number, bytes: number, withCeiling: boolean) =>
      ({
        id,
        title,
        kind: 'throughput',
        messages,
        warmup,
        bytes,
        variants: withCeiling ? [ceiling, raw, rawWire, msgkit] : [raw, rawWire, msgkit],
        primary: { msgkit: 'msgkit', raw: 'raw' },
        comparisons: throughputComparisons(withCeiling),
        prepare: async () => (bytes === SMALL_BYTES ? { body: 'bytes' } : {}),
      }) satisfies Scenario
    const scenarios: Scenario[] = [
      e2e(
        'e2e-json',
        `publish + consume, ${settings.bytes}-byte JSON bodies`,
        n(50_000),
        settings.bytes,
        true,
      ),
      e2e(
        'e2e-bytes',
        `publish + consume, ${SMALL_BYTES}-byte Uint8Array bodies`,
        n(200_000),
        SMALL_BYTES,
        false,
      ),
    ]
    // linear in N: the same end-to-end run at 10k, 100k and 1M messages
    for (const [label, count] of smoke
      ? ([['scale-200', 200]] as const)
      : ([
          ['scale-10k', 10_000],
          ['scale-100k', 100_000],
          ['scale-1m', 1_000_000],
        ] as const)) {
      scenarios.push({
        id: label,
        title: `publish + consume ${count.toLocaleString('en-US')} messages (${settings.bytes}-byte JSON): msg/s must not fall with N`,
        kind: 'throughput',
        messages: count,
        warmup,
        bytes: settings.bytes,
        variants: [raw, msgkit],
        primary: { msgkit: 'msgkit', raw: 'raw' },
        comparisons: [{ label: 'msgkit / raw broker', a: 'msgkit', b: 'raw' }],
      })
    }
    scenarios.push({
      id: 'latency',
      title: `publish→handler latency at ${LATENCY_RATE.toLocaleString('en-US')} msg/s, ${settings.bytes}-byte JSON`,
      kind: 'latency',
      messages: smoke ? 300 : (settings.messages ?? 5_000),
      warmup: smoke ? 50 : 1_000,
      bytes: settings.bytes,
      variants: [
        v('raw', 'raw', 'raw memory broker, paced'),
        v('msgkit', 'msgkit', 'msgkit on memory://, paced'),
      ],
      primary: { msgkit: 'msgkit', raw: 'raw' },
      comparisons: [
        { label: 'p99 latency: msgkit / raw', a: 'msgkit', b: 'raw', of: 'p99Ms' },
        { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
        { label: 'CPU per message (client process): raw / msgkit', a: 'raw', b: 'msgkit', of: 'cpuUsPerMsg' },
      ],
    })
    return {
      name: 'memory',
      title: 'memory transport (in-process, no network)',
      details: [
        `raw = the memory broker msgkit's memory transport runs on, used directly: every message is JSON.stringify'd and encoded on publish, decoded and JSON.parse'd on consume, acked one by one (prefetch ${PREFETCH})`,
        `both sides publish in windows of ${WINDOW} and hold at most ${MAX_BACKLOG.toLocaleString('en-US')} messages published but not handled (flow control, so 1M messages fit in memory)`,
        `every cell runs in its own process and handles ${warmup.toLocaleString('en-US')} messages before its clock starts`,
      ],
      scenarios,
      async cleanup() {},
    }
  },
  cells: {
    'e2e-json/ceiling': ceilingCell,
    'e2e-json/raw': rawCell(false),
    'e2e-json/raw-wire': rawCell(true),
    'e2e-json/msgkit': msgkitCell,
    'e2e-bytes/raw': rawCell(false),
    'e2e-bytes/raw-wire': rawCell(true),
    'e2e-bytes/msgkit': msgkitCell,
    ...Object.fromEntries(
      ['scale-200', 'scale-10k', 'scale-100k', 'scale-1m'].flatMap((s) => [
        [`${s}/raw`, rawCell(false)],
        [`${s}/msgkit`, msgkitCell],
      ]),
    ),
    'latency/raw': latencyCell('raw'),
    'latency/msgkit': latencyCell('msgkit'),
  },
}
