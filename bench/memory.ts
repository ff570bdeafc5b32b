/**
 * Memory transport: msgkit's publish → subscribe path vs. the bare in-process broker it runs on,
 * measured side by side in one run. The ratio is msgkit's own overhead (encode, validate, headers,
 * consumer engine, ack), not the broker's.
 */
import { createMessaging, getMemoryBroker } from '@msgkit/core'

export interface BenchResult {
  name: string
  messages: number
  ms: number
  perSecond: number
}

async function timeIt(name: string, messages: number, run: () => Promise<void>): Promise<BenchResult> {
  const start = performance.now()
  await run()
  const ms = performance.now() - start
  return { name, messages, ms, perSecond: Math.round((messages / ms) * 1000) }
}

export async function benchMemory(messages = 50_000): Promise<BenchResult[]> {
  const body = { orderId: 'o-1', items: [{ sku: 'KB-1', quantity: 1 }], note: 'x'.repeat(900) }
  const bytes = new TextEncoder().encode(JSON.stringify(body))

  const raw = await timeIt('raw memory broker (publish + consume + ack)', messages, async () => {
    const broker = getMemoryBroker(`bench-raw-${Date.now()}`)
    const q = broker.ensureQueue({ topic: 't' }, 'g')
    let seen = 0
    let done!: () => void
    const finished = new Promise<void>((r) => (done = r))
    const consumer = {
      prefetch: 64,
      unacked: new Map(),
      deliver({ message, tag }: { message: { body: Uint8Array }; tag: number }) {
        JSON.parse(new TextDecoder().decode(message.body))
        broker.ack(q, consumer, tag)
        if (++seen === messages) done()
      },
    }
    broker.attach(q, consumer as never)
    for (let i = 0; i < messages; i++)
      broker.publish('t', { id: String(i), topic: 't', headers: {}, body: bytes, timestamp: Date.now() })
    await finished
    broker.detach(q, consumer as never)
  })

  const msgkit = await timeIt('msgkit on memory:// (publish + subscribe)', messages, async () => {
    const m = await createMessaging(`memory://bench-msgkit-${Date.now()}`)
    let seen = 0
    let done!: () => void
    const finished = new Promise<void>((r) => (done = r))
    await m.subscribe('t', { group: 'g', concurrency: 8, prefetch: 64 }, () => {
      if (++seen === messages) done()
    })
    const batch = 500
    for (let i = 0; i < messages; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, messages - i) }, () => m.publish('t', body)))
    }
    await finished
    await m.close()
  })
  return [raw, msgkit]
}
