import { describe, expect, it } from 'vitest'
import { uniqueTopic, waitFor } from '../src/index.js'

describe('waitFor', () => {
  it('resolves with the first truthy value', async () => {
    let calls = 0
    const value = await waitFor(() => (++calls >= 3 ? `done after ${calls}` : undefined), { intervalMs: 1 })
    expect(value).toBe('done after 3')
  })

  it('awaits async conditions', async () => {
    await expect(waitFor(async () => 42)).resolves.toBe(42)
  })

  it('treats a throwing condition as not yet, and reports its last error on timeout', async () => {
    const attempt = waitFor(
      () => {
        throw new Error('still 2 missing')
      },
      { timeoutMs: 30, intervalMs: 5, message: 'all messages' },
    )
    await expect(attempt).rejects.toThrow('waitFor: all messages not met within 30 ms: still 2 missing')
  })

  it('rejects after the timeout when the condition stays falsy', async () => {
    const started = Date.now()
    await expect(waitFor(() => false, { timeoutMs: 50, intervalMs: 10 })).rejects.toThrow(
      'waitFor: condition not met within 50 ms',
    )
    expect(Date.now() - started).toBeGreaterThanOrEqual(45)
  })

  it('recovers when a condition that threw starts to hold', async () => {
    let calls = 0
    const value = await waitFor(
      () => {
        if (++calls < 3) throw new Error('not yet')
        return calls
      },
      { intervalMs: 1 },
    )
    expect(value).toBe(3)
  })
})

describe('uniqueTopic', () => {
  it('makes distinct names that every transport accepts', () => {
    const names = new Set(Array.from({ length: 100 }, () => uniqueTopic()))
    expect(names.size).toBe(100)
    for (const name of names) expect(name).toMatch(/^t-[0-9a-f-]{36}$/)
    expect(uniqueTopic('orders')).toMatch(/^orders-[0-9a-f-]{36}$/)
  })
})
