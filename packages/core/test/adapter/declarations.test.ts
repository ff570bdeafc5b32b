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
