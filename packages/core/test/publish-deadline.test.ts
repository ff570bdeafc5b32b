/**
 * Who settles a publish whose transport does not answer: core's own guard (2 s past the deadline),
 * or, for a transport that declares `keepsDeadlines`, the transport itself; and what a send's
 * failure becomes on the declared path (the same as on the guarded one).
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMessaging,
  ErrorCodes,
  isMsgkitError,
  MsgkitError,
  type OutgoingMessage,
  type SendOptions,
} from '../src/index.js'
import { memoryVariant } from './support/memory-variant.js'

type Send = (topic: string, messages: OutgoingMessage[], options: SendOptions) => Promise<void>

let n = 0
const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {})
})

/** the memory transport with its `send` replaced, declaring `keepsDeadlines` or not */
async function open(send: Send, keepsDeadlines: boolean, unroutable = false) {
  const definition = memoryVariant('scripted', (inner) => ({
    capabilities: { ...inner.capabilities, unroutable },
    ...(keepsDeadlines ? { keepsDeadlines: true } : {}),
    send,
  }))
  const m = await createMessaging({ transport: definition, broker: `publish-deadline-${Date.now()}-${++n}` })
  closers.push(() => m.close())
  return m
}

const never: Send = () => new Promise<void>(() => {})

describe('a transport that never answers a send', () => {
  it('without keepsDeadlines: core rejects MSGKIT_PUBLISH_TIMEOUT 2 s past the deadline', async () => {
    const m = await open(never, false)
    const started = performance.now()
    const outcome = await m.publish('t', { a: 1 }, { timeoutMs: 100 }).then(
      () => 'resolved',
      (error: unknown) => error,
    )
    const took = performance.now() - started
    expect(isMsgkitError(outcome) && outcome.code, String(outcome)).toBe(ErrorCodes.PUBLISH_TIMEOUT)
    expect(took).toBeGreaterThanOrEqual(2_000)
    expect(took).toBeLessThan(6_000)
  })

  it('with keepsDeadlines: core sets no guard, the transport settles it (here: only when told)', async () => {
    let answer!: () => void
    const m = await open(() => new Promise<void>((resolve) => (answer = resolve)), true)
    let settled = false
    const publishing = m.publish('t', { a: 1 }, { timeoutMs: 100 }).then(
      () => (settled = true),
      () => (settled = true),
    )
    await new Promise((r) => setTimeout(r, 2_500))
    expect(settled, 'core added no timeout of its own to a transport that keeps its deadlines').toBe(false)
    answer()
    await publishing
  })
})

describe('with keepsDeadlines, a send settles as on the guarded path', () => {
  it('a confirmed send resolves with the receipt; close() waits for it', async () => {
    let confirm!: () => void
    const m = await open(() => new Promise<void>((resolve) => (confirm = resolve)), true)
    const producer = m.producer()
    const publishing = producer.publish('t', { a: 1 })
    let closed = false
    const closing = producer.close().then(() => (closed = true))
    await new Promise((r) => setTimeout(r, 50))
    expect(closed, 'close waits for the publish in flight').toBe(false)
    confirm()
    const receipt = await publishing
    expect(receipt.topic).toBe('t')
    expect(typeof receipt.id).toBe('string')
    await closing
  })

  it("a transport's MsgkitError is passed on; any other error becomes MSGKIT_TRANSPORT_ERROR", async () => {
    const own = new MsgkitError(ErrorCodes.MESSAGE_TOO_LARGE, 'too large')
    const typed = await open(() => Promise.reject(own), true)
    await expect(typed.publish('t', { a: 1 })).rejects.toBe(own)
    const plain = await open(() => Promise.reject(new Error('socket hang up')), true)
    const error = await plain.publish('t', { a: 1 }).catch((e: unknown) => e)
    expect(isMsgkitError(error) && error.code).toBe(ErrorCodes.TRANSPORT_ERROR)
    expect(String((error as Error).message)).toContain('socket hang up')
  })

  it("unroutable under 'warn' resolves and is emitted; under 'reject' rejects", async () => {
    const refuse: Send = (_topic, messages) =>
      Promise.reject(
        new MsgkitError(ErrorCodes.UNROUTABLE, 'no queue', { details: { ids: messages.map((x) => x.id) } }),
      )
    const m = await open(refuse, true, true)
    const seen: string[][] = []
    m.on('unroutable', (e) => seen.push(e.ids))
    const receipt = await m.publish('t', { a: 1 }, { unroutable: 'warn' })
    expect(seen).toEqual([[receipt.id]])
    const error = await m.publish('t', { a: 1 }, { unroutable: 'reject' }).catch((e: unknown) => e)
    expect(isMsgkitError(error) && error.code).toBe(ErrorCodes.UNROUTABLE)
  })
})
