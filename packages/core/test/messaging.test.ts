import { describe, expect, it } from 'vitest'
import { createMessaging, ErrorCodes, getMemoryBroker, type Message } from '../src/index.js'

let n = 0
const url = (): string => `memory://core-test-${Date.now()}-${++n}`

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('async-iterator consumption', () => {
  it('yields messages in order and acks each when the loop moves on', async () => {
    const m = await createMessaging(url())
    // consume() subscribes in the background: make the group exist before publishing
    await m.provision('iter', 'g')
    const it = m.consume<{ i: number }>('iter', { group: 'g' })
    const first = it.next()
    for (let i = 0; i < 3; i++) await m.publish('iter', { i })
    const seen: number[] = [((await first).value as Message<{ i: number }>).body.i]
    for (let i = 0; i < 2; i++) seen.push(((await it.next()).value as Message<{ i: number }>).body.i)
    expect(seen).toEqual([0, 1, 2])
    await it.return?.()
    // everything was acked: a new member of the group gets nothing
    const again: unknown[] = []
    await m.subscribe('iter', { group: 'g' }, (msg) => {
      again.push(msg.body)
    })
    await new Promise((r) => setTimeout(r, 200))
    expect(again).toEqual([])
    await m.close()
  })

  it('surfaces a subscribe error from the first next()', async () => {
    const m = await createMessaging(url())
    const it = m.consume('iter', { group: 'bad group name' })
    await expect(it.next()).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await m.close()
  })
})

describe('delivery modes', () => {
  it('at-most-once acks before the handler: a failing handler does not get the message again', async () => {
    const m = await createMessaging(url())
    let calls = 0
    await m.subscribe(
      'amo',
      { group: 'g', delivery: 'at-most-once', retry: false, deadLetter: false },
      () => {
        calls++
        throw new Error('boom')
      },
    )
    await m.publish('amo', { x: 1 })
    await until(() => calls === 1)
    await new Promise((r) => setTimeout(r, 200))
    expect(calls).toBe(1)
    await m.close()
  })
})

describe('tracing', () => {
  it('a publish inside a handler continues the consumed message’s trace', async () => {
    const m = await createMessaging(url())
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const seen: Message[] = []
    await m.subscribe('trace.in', { group: 'g' }, async () => {
      await m.publish('trace.out', { next: true })
    })
    await m.subscribe('trace.out', { group: 'g' }, (msg) => {
      seen.push(msg)
    })
    await m.publish('trace.in', { start: true }, { headers: { traceparent: parent } })
    await until(() => seen.length === 1)
    const tp = seen[0]?.headers.traceparent ?? ''
    expect(tp).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/)
    expect(tp).not.toBe(parent)
    await m.close()
  })

  it('adds no traceparent outside a traced context', async () => {
    const m = await createMessaging(url())
    const seen: Message[] = []
    await m.subscribe('trace.none', { group: 'g' }, (msg) => {
      seen.push(msg)
    })
    await m.publish('trace.none', 1, { headers: { a: 'b' } })
    await until(() => seen.length === 1)
    expect(seen[0]?.headers).toEqual({ a: 'b' })
    await m.close()
  })
})

describe('health, events and lifecycle', () => {
  it('reports down and up across a broker restart, and emits the events', async () => {
    const name = `core-health-${Date.now()}`
    const m = await createMessaging(`memory://${name}`)
    const events: string[] = []
    m.on('disconnected', () => events.push('disconnected'))
    m.on('reconnecting', () => events.push('reconnecting'))
    m.on('connected', () => events.push('connected'))
    expect(m.health().status).toBe('up')
    const restart = getMemoryBroker(name).restart(300)
    await until(() => m.health().status === 'down')
    await restart
    await until(() => m.health().status === 'up')
    expect(events).toEqual(['disconnected', 'reconnecting', 'connected'])
    await m.close()
    expect(m.health().status).toBe('closed')
  })

  it('a publish during an outage waits for the reconnect, and times out when it lasts too long', async () => {
    const name = `core-outage-${Date.now()}`
    const m = await createMessaging(`memory://${name}`)
    const got: unknown[] = []
    await m.subscribe('out', { group: 'g' }, (msg) => {
      got.push(msg.body)
    })
    const broker = getMemoryBroker(name)
    broker.stop()
    const waiting = m.publish('out', 'during outage')
    await expect(m.publish('out', 'too late', { timeoutMs: 200 })).rejects.toMatchObject({
      code: ErrorCodes.PUBLISH_TIMEOUT,
    })
    broker.start()
    await waiting
    await until(() => got.includes('during outage'))
    await m.close()
  })

  it('a closed producer rejects while the messaging instance keeps publishing', async () => {
    const m = await createMessaging(url())
    const p = m.producer()
    await p.publish('prod', 1)
    await p.close()
    await expect(p.publish('prod', 2)).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
    await expect(m.publish('prod', 3)).resolves.toMatchObject({ topic: 'prod' })
    await m.close()
  })

  it('an aborted signal closes the subscription', async () => {
    const m = await createMessaging(url())
    const ac = new AbortController()
    const sub = await m.subscribe('sig', { group: 'g', signal: ac.signal }, () => {})
    ac.abort()
    await sub.closed
    expect(m.health().subscriptions).toBe(0)
    await m.close()
  })

  it('refuses reserved and non-string headers, and bad ids, before sending', async () => {
    const m = await createMessaging(url())
    await expect(m.publish('h', 1, { headers: { 'msgkit-id': 'x' } })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    })
    await expect(m.publish('h', 1, { headers: { n: 1 as unknown as string } })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    })
    await expect(m.publish('h', 1, { id: '' })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await expect(m.publish('bad topic', 1)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT })
    await m.close()
  })
})
