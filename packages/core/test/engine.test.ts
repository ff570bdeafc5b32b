/**
 * The consumer engine's fast path (a handler that returns without a promise is settled at once, in
 * the same turn) and the publish path's SETTLED shortcut: the same outcomes as the general path —
 * retries, dead letters, limits, exactly one settle per message, every publish settled once.
 */
import { describe, expect, it } from 'vitest'
import { createDelivery, SETTLED } from '../src/adapter/delivery.js'
import { jsonCodec } from '../src/codec.js'
import { startConsumer } from '../src/consumer.js'
import { createDeliveryCounter, markMemoryDefault } from '../src/delivery-count.js'
import { createMemoryIdempotencyStore } from '../src/idempotency.js'
import {
  createMessaging,
  getMemoryBroker,
  type Message,
  NonRetryableError,
  type Transport,
} from '../src/index.js'
import { silentLogger } from '../src/logger.js'
import type { Delivery, DeliveryHandler, TransportMessage } from '../src/spi.js'
import { telemetryOff } from '../src/telemetry/telemetry.js'

let n = 0
const name = (): string => `engine-test-${Date.now()}-${++n}`

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 5))
  }
}

const fast = { initialMs: 1, maxMs: 2 }

describe('consumer engine: handlers that return without a promise', () => {
  it('handles every message once, in order, and acks each', async () => {
    const broker = name()
    const m = await createMessaging(`memory://${broker}`)
    const seen: number[] = []
    await m.subscribe<{ i: number }>('t', { group: 'g', concurrency: 4, prefetch: 8 }, (msg) => {
      seen.push(msg.body.i)
    })
    await Promise.all(Array.from({ length: 2_000 }, (_, i) => m.publish('t', { i }, { key: `k${i % 3}` })))
    await until(() => seen.length === 2_000)
    // one consumer with sync handlers: publish order
    expect(seen).toEqual(Array.from({ length: 2_000 }, (_, i) => i))
    expect(getMemoryBroker(broker).pending('t|g')).toBe(0)
    await m.close()
  })

  it('retries a throwing handler with the same message and fresh headers, then dead-letters it', async () => {
    const m = await createMessaging(`memory://${name()}`)
    const calls: Array<Pick<Message, 'id' | 'attempt' | 'headers' | 'body'>> = []
    const dead: Message[] = []
    await m.subscribe('t.g.dlq', { group: 'dlq' }, (msg) => {
      dead.push(msg)
    })
    await m.subscribe<{ v: number }>('t', { group: 'g', retry: { attempts: 3, backoff: fast } }, (msg) => {
      calls.push({ id: msg.id, attempt: msg.attempt, headers: { ...msg.headers }, body: msg.body })
      msg.headers.mutated = 'yes'
      throw new Error(`boom ${msg.attempt}`)
    })
    const { id } = await m.publish('t', { v: 1 }, { headers: { a: 'b' } })
    await until(() => dead.length === 1)
    expect(calls).toEqual([1, 2, 3].map((attempt) => ({ id, attempt, headers: { a: 'b' }, body: { v: 1 } })))
    expect(dead[0]?.deadLetter).toMatchObject({ reason: 'handler-failed', attempts: 3, group: 'g' })
    expect(dead[0]?.body).toEqual({ v: 1 })
    await m.close()
  })

  it('a synchronous NonRetryableError goes straight to the dead letters', async () => {
    const m = await createMessaging(`memory://${name()}`)
    let calls = 0
    const dead: Message[] = []
    await m.subscribe('t.g.dlq', { group: 'dlq' }, (msg) => {
      dead.push(msg)
    })
    await m.subscribe('t', { group: 'g', retry: { attempts: 5, backoff: fast } }, () => {
      calls += 1
      throw new NonRetryableError('no')
    })
    await m.publish('t', { v: 1 })
    await until(() => dead.length === 1)
    expect(calls).toBe(1)
    expect(dead[0]?.deadLetter?.reason).toBe('non-retryable')
    await m.close()
  })

  it('waits for a thenable that is not a native promise, and retries when it rejects', async () => {
    const m = await createMessaging(`memory://${name()}`)
    const attempts: number[] = []
    let handled = 0
    await m.subscribe('t', { group: 'g', retry: { attempts: 3, backoff: fast } }, (msg) => {
      attempts.push(msg.attempt)
      return {
        // biome-ignore lint/suspicious/noThenProperty: a foreign thenable is the point of this test
        then(resolve: (v: unknown) => void, reject: (e: unknown) => void) {
          setTimeout(() => (msg.attempt < 2 ? reject(new Error('later')) : resolve(handled++)), 2)
        },
      }
    })
    await m.publish('t', { v: 1 })
    await until(() => handled === 1)
    expect(attempts).toEqual([1, 2])
    await m.close()
  })

  it('keeps the concurrency limit with promise handlers mixed with synchronous ones', async () => {
    const m = await createMessaging(`memory://${name()}`)
    let running = 0
    let most = 0
    let done = 0
    await m.subscribe<{ i: number }>('t', { group: 'g', concurrency: 3, prefetch: 6 }, (msg) => {
      if (msg.body.i % 2 === 0) {
        done += 1
        return
      }
      running += 1
      most = Math.max(most, running)
      return new Promise<void>((r) =>
        setTimeout(() => {
          running -= 1
          done += 1
          r()
        }, 3),
      )
    })
    await Promise.all(Array.from({ length: 60 }, (_, i) => m.publish('t', { i })))
    await until(() => done === 60)
    expect(most).toBe(3)
    await m.close()
  })

  it('a handler that publishes to its own topic runs a long chain without growing the stack', async () => {
    const m = await createMessaging(`memory://${name()}`)
    let last = 0
    await m.subscribe<{ i: number }>('chain', { group: 'g' }, (msg) => {
      last = msg.body.i
      if (msg.body.i < 20_000) void m.publish('chain', { i: msg.body.i + 1 })
    })
    await m.publish('chain', { i: 1 })
    await until(() => last === 20_000, 20_000)
    await m.close()
  })

  it('a handler that closes its subscription: nothing more is handled, and nothing is lost', async () => {
    const m = await createMessaging(`memory://${name()}`)
    const first: number[] = []
    const sub = await m.subscribe<{ i: number }>('t', { group: 'g', prefetch: 20 }, (msg) => {
      first.push(msg.body.i)
      if (first.length === 10) void sub.close()
    })
    await Promise.all(Array.from({ length: 50 }, (_, i) => m.publish('t', { i })))
    await sub.closed
    expect(first).toEqual(Array.from({ length: 10 }, (_, i) => i))
    const rest: number[] = []
    await m.subscribe<{ i: number }>('t', { group: 'g' }, (msg) => {
      rest.push(msg.body.i)
    })
    await until(() => rest.length === 40)
    expect(rest.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 10))
    await m.close()
  })

  it('keeps concurrency and prefetch for a push transport that does not limit what it hands over', async () => {
    // a transport that hands over everything at once: core runs at most `concurrency` handlers,
    // answers SETTLED while it has room and one shared promise (room) once `prefetch` is reached
    let onDelivery: DeliveryHandler | undefined
    const transport: Transport = {
      name: 'push',
      capabilities: {
        persistence: false,
        fanout: true,
        orderedKeys: false,
        delay: false,
        patterns: false,
        maxMessageBytes: 1 << 20,
        maxHeaderBytes: 1 << 16,
        deadLetter: false,
        deliveryCount: 'exact',
        unroutable: false,
      },
      async connect() {},
      send: () => SETTLED,
      async provision() {},
      async subscribe(_request, handler) {
        onDelivery = handler
        return { async stop() {}, async close() {} }
      },
      async close() {},
    }
    // the default store: core does not count deliveries where the broker counts them
    const store = markMemoryDefault(createMemoryIdempotencyStore())
    const handled: string[] = []
    const acked: string[] = []
    const held: Array<() => void> = []
    const sub = await startConsumer(
      {
        topic: 't',
        options: { group: 'g', concurrency: 2, prefetch: 4, deadLetter: false },
        handler: (msg) => {
          handled.push(msg.id)
          if (msg.id.startsWith('sync')) return
          return new Promise<void>((r) => held.push(r))
        },
      },
      {
        transport,
        logger: silentLogger,
        codec: jsonCodec,
        idempotencyStore: store,
        deliveryCounter: createDeliveryCounter(store),
        emit: () => {},
        onClosed: () => {},
        publishDeadline: () => Date.now() + 1_000,
        telemetry: telemetryOff,
      },
    )
    const deliver = (id: string): Promise<void> => {
      const message: TransportMessage = {
        id,
        topic: 't',
        headers: {},
        body: Buffer.from('{}'),
        timestamp: 0,
        redelivered: false,
      }
      const delivery: Delivery = {
        message,
        ack: () => {
          acked.push(id)
          return SETTLED
        },
        nack: () => SETTLED,
      }
      return (onDelivery as DeliveryHandler)(delivery)
    }
    // synchronous handlers finish inside onDelivery: nothing waits, each is acked once
    expect([deliver('sync0'), deliver('sync1')]).toEqual([SETTLED, SETTLED])
    expect(acked).toEqual(['sync0', 'sync1'])
    const answers = Array.from({ length: 6 }, (_, i) => deliver(`m${i}`))
    expect(handled.slice(2)).toEqual(['m0', 'm1'])
    expect(answers.slice(0, 3)).toEqual([SETTLED, SETTLED, SETTLED])
    expect(answers[3]).not.toBe(SETTLED)
    expect(answers[4]).toBe(answers[3])
    expect(answers[5]).toBe(answers[3])
    expect(sub.inFlight).toBe(2)
    let roomy = false
    void answers[3]?.then(() => {
      roomy = true
    })
    while (handled.length < 8 || held.length > 0) {
      held.shift()?.()
      await new Promise((r) => setTimeout(r, 1))
      expect(sub.inFlight).toBeLessThanOrEqual(2)
    }
    expect(handled.slice(2)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5'])
    expect(acked.slice(2).sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5'])
    expect(roomy).toBe(true)
    await sub.close()
  })
})

describe('delivery wrapper', () => {
  const message: TransportMessage = {
    id: '1',
    topic: 't',
    headers: {},
    body: new Uint8Array(),
    timestamp: 0,
    redelivered: false,
  }

  it('answers SETTLED for a synchronous settle, the adapter’s promise otherwise, a rejection for a throw', async () => {
    expect(createDelivery(message, { ack: () => {}, nack: () => {} }).ack()).toBe(SETTLED)
    let finish!: () => void
    const later = new Promise<void>((r) => (finish = r))
    const d = createDelivery(message, { ack: () => later, nack: () => {} })
    const acking = d.ack()
    expect(acking).not.toBe(SETTLED)
    finish()
    await acking
    const failing = createDelivery(message, {
      ack: () => {
        throw new Error('channel gone')
      },
      nack: () => {},
    })
    await expect(failing.ack()).rejects.toThrow('channel gone')
    // settled once: the second call is a no-op
    await expect(failing.ack()).resolves.toBeUndefined()
  })
})

describe('publish path', () => {
  it('settles every publish exactly once with its receipt when the transport is done at once', async () => {
    const m = await createMessaging(`memory://${name()}`)
    await m.provision('t', 'g')
    const receipts = await Promise.all(Array.from({ length: 100 }, (_, i) => m.publish('t', { i })))
    expect(new Set(receipts.map((r) => r.id)).size).toBe(100)
    expect(receipts.every((r) => r.topic === 't')).toBe(true)
    // a producer's close waits for nothing left over
    const p = m.producer()
    await p.publish('t', { i: 0 })
    await p.close()
    await expect(p.publish('t', { i: 1 })).rejects.toMatchObject({ code: 'MSGKIT_CLOSED' })
    await m.close()
  })
})
