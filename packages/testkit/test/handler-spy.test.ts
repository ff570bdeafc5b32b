import type { HandlerContext, Message } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { createHandlerSpy } from '../src/index.js'

const context: HandlerContext = { signal: new AbortController().signal }

function message<T>(id: string, body: T): Message<T> {
  return { id, topic: 't', body, headers: {}, timestamp: Date.now(), attempt: 1, redelivered: false }
}

describe('createHandlerSpy', () => {
  it('records every call in order', async () => {
    const spy = createHandlerSpy<number>()
    await spy.handler(message('a', 1), context)
    await spy.handler(message('b', 2), context)
    expect(spy.messages.map((m) => m.id)).toEqual(['a', 'b'])
  })

  it('waitForMessage resolves at once for a message already seen', async () => {
    const spy = createHandlerSpy<number>()
    await spy.handler(message('a', 1), context)
    const found = await spy.waitForMessage((m) => m.body === 1, { timeoutMs: 1 })
    expect(found.id).toBe('a')
  })

  it('waitForMessage resolves when a matching message arrives later', async () => {
    const spy = createHandlerSpy<number>()
    const waiting = spy.waitForMessage((m) => m.body === 2, { timeoutMs: 1_000 })
    await spy.handler(message('a', 1), context)
    setTimeout(() => spy.handler(message('b', 2), context), 10)
    expect((await waiting).id).toBe('b')
  })

  it('waitForMessage rejects after the timeout, saying how many were recorded', async () => {
    const spy = createHandlerSpy<number>()
    await spy.handler(message('a', 1), context)
    await expect(spy.waitForMessage((m) => m.body === 9, { timeoutMs: 20 })).rejects.toThrow(
      /not seen within 20 ms \(1 recorded\)/,
    )
  })

  it('a throwing predicate rejects its wait but never breaks the handler', async () => {
    const spy = createHandlerSpy<number>()
    const waiting = spy.waitForMessage(() => {
      throw new Error('bad predicate')
    })
    const rejected = expect(waiting).rejects.toThrow('bad predicate')
    expect(spy.handler(message('a', 1), context)).toBeUndefined()
    await rejected
  })

  it('waitForCount resolves with the messages once the count is reached', async () => {
    const spy = createHandlerSpy<number>()
    const waiting = spy.waitForCount(3, { timeoutMs: 1_000 })
    for (const [i, id] of ['a', 'b', 'c'].entries()) await spy.handler(message(id, i), context)
    expect((await waiting).map((m) => m.id)).toEqual(['a', 'b', 'c'])
    await expect(spy.waitForCount(4, { timeoutMs: 10 })).rejects.toThrow(/4 messages not seen/)
  })

  it('runs the implementation after recording, and passes its result or error on', async () => {
    const spy = createHandlerSpy<number>((m) => {
      if (m.body < 0) throw new Error('negative')
      return m.body * 2
    })
    expect(await spy.handler(message('a', 2), context)).toBe(4)
    expect(() => spy.handler(message('b', -1), context)).toThrow('negative')
    expect(spy.messages.map((m) => m.id)).toEqual(['a', 'b'])
  })

  it('clear forgets recorded messages; pending waits see only new ones', async () => {
    const spy = createHandlerSpy<number>()
    await spy.handler(message('a', 1), context)
    spy.clear()
    expect(spy.messages).toEqual([])
    const waiting = spy.waitForCount(1, { timeoutMs: 1_000 })
    await spy.handler(message('b', 2), context)
    expect((await waiting).map((m) => m.id)).toEqual(['b'])
  })
})
