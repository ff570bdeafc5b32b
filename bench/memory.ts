/**
 * Memory transport: msgkit's publish → subscribe path vs. the bare in-process broker it runs on,
 * measured side by side in one run. The ratio is msgkit's own overhead (encode, validate, headers,
 * consumer engine, ack), not the broker's.
 */
import { createMessaging, getMemoryBroker } from '@msgkit/core'
import { type BenchDefinition, counter, envInt, jsonBody, perSecond, type RoundValues } from './harness.js'

const PREFETCH = 64
const CONCURRENCY = 8
const PUBLISH_WINDOW = 500

/** The memory bench (publish + consume of the same messages, timed together). */
export async function memoryBench(): Promise<BenchDefinition> {
  const messages = envInt('BENCH_MESSAGES', 50_000)
  const rounds = envInt('BENCH_ROUNDS', 5)
  const bodyBytes = envInt('BENCH_BODY_BYTES', 1024)
  const body = jsonBody(bodyBytes)
  let instance = 0

  const raw = async (count: number): Promise<number> => {
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

  const msgkit = async (count: number): Promise<number> => {
    const m = await createMessaging(`memory://bench-msgkit-${process.pid}-${instance++}`)
    const seen = counter(count)
    const start = performance.now()
    await m.subscribe('t', { group: 'g', concurrency: CONCURRENCY, prefetch: PREFETCH }, () => {
      seen.hit()
    })
    for (let i = 0; i < count; i += PUBLISH_WINDOW) {
      await Promise.all(
        Array.from({ length: Math.min(PUBLISH_WINDOW, count - i) }, () => m.publish('t', body)),
      )
    }
    await seen.done
    const ms = performance.now() - start
    await m.close()
    return ms
  }

  const round = async (index: number, count: number): Promise<RoundValues> => {
    const variants: Array<[string, () => Promise<number>]> = [
      ['raw', () => raw(count)],
      ['msgkit', () => msgkit(count)],
    ]
    if (index % 2 === 1) variants.reverse()
    const out: RoundValues = {}
    for (const [name, run] of variants) out[name] = perSecond(count, await run())
    return out
  }

  return {
    name: 'memory',
    title: 'memory transport (in-process, no network)',
    details: [
      `${messages} messages per variant per round, ${bodyBytes}-byte JSON bodies; publish and consume timed together`,
      `raw: the memory broker's own publish/deliver/ack, JSON.parse per message; msgkit: subscribe (concurrency ${CONCURRENCY}, prefetch ${PREFETCH}) + publish in windows of ${PUBLISH_WINDOW}`,
    ],
    metrics: [
      { id: 'raw', side: 'raw', label: 'raw memory broker (publish + consume + ack)' },
      { id: 'msgkit', side: 'msgkit', label: 'msgkit on memory:// (publish + subscribe)' },
    ],
    ratios: [{ label: 'msgkit / raw', msgkit: 'msgkit', raw: 'raw' }],
    rounds,
    async warmup() {
      await round(0, Math.min(messages, 10_000))
    },
    round: (index) => round(index, messages),
    async cleanup() {},
  }
}
