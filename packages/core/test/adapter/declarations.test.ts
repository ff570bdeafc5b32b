/**
 * Declarations done once per key: concurrent callers share the run, a success is not repeated, a
 * failure is tried again, and forget() makes the next call declare again.
 */
import { describe, expect, it } from 'vitest'
import { createDeclarations } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

describe('declarations', () => {
  it('runs each key once, shares a run under way, and tries a failed one again', async () => {
    const declarations = createDeclarations()
    const runs: string[] = []
    let fail = true
    const declare = (key: string) =>
      declarations.once(key, async () => {
        runs.push(key)
        await sleep(10)
        if (key === 'flaky' && fail) throw new Error('broker said no')
      })
    await Promise.all([declare('a'), declare('a'), declare('b')])
    await declare('a')
    expect(runs).toEqual(['a', 'b'])

    const first = await Promise.allSettled([declare('flaky'), declare('flaky')])
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    fail = false
    await declare('flaky')
    await declare('flaky')
    expect(runs.filter((k) => k === 'flaky')).toHaveLength(2)

    declarations.forget('a')
    await declare('a')
    declarations.forget()
    await Promise.all([declare('a'), declare('b')])
    expect(runs).toEqual(['a', 'b', 'flaky', 'flaky', 'a', 'a', 'b'])
  })
})

describe('declarations with results', () => {
  it('hands every caller the result of the one run, and forgets keys by a test', async () => {
    const declarations = createDeclarations()
    let made = 0
    const queue = (topic: string, group: string) =>
      declarations.once(`${topic}\n${group}`, async () => {
        made += 1
        await sleep(5)
        return { url: `q/${topic}-${group}/${made}` }
      })
    const [a, b] = await Promise.all([queue('orders', 'mail'), queue('orders', 'mail')])
    expect(a).toBe(b)
    expect(a.url).toBe('q/orders-mail/1')
    await queue('orders', 'audit')
    await queue('invoices', 'mail')
    expect(made).toBe(3)

    declarations.forget((key) => key.startsWith('orders\n'))
    expect((await queue('orders', 'mail')).url).toBe('q/orders-mail/4')
    expect((await queue('invoices', 'mail')).url).toBe('q/invoices-mail/3')
    expect(made).toBe(4)
  })
})
