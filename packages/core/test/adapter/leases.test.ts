/**
 * Leases on held messages: renewed while held, only when they would run out before the tick after
 * next (an early settle costs nothing), released by the settle, and dead once close() took them.
 */
import { describe, expect, it } from 'vitest'
import { createLeases } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

describe('leases', () => {
  it('renews what is held before it runs out, not what was settled', async () => {
    const renewed: string[] = []
    const leases = createLeases<string>({
      leaseMs: 1_500,
      renew: (key, value) => renewed.push(`${key}@${value}`),
    })
    const settled: string[] = []
    const slow = leases.hold('slow', 'q1', { ack: () => void settled.push('slow'), nack: () => {} })
    const fast = leases.hold('fast', 'q1', { ack: () => void settled.push('fast'), nack: () => {} })
    await fast.ack()
    // ticks every 500 ms; a lease of 1.5 s is renewed at each tick that leaves ≤ 1 s of it
    await sleep(1_150)
    expect(renewed.length).toBeGreaterThanOrEqual(1)
    expect(new Set(renewed)).toEqual(new Set(['slow@q1']))
    expect(slow.valid?.()).toBe(true)
    await slow.ack()
    const before = renewed.length
    await sleep(600)
    expect(renewed).toHaveLength(before)
    expect(settled).toEqual(['fast', 'slow'])
    expect(leases.close()).toEqual([])
  })

  it('hands back what is still held at close, and those deliveries settle nothing any more', async () => {
    const leases = createLeases<number>({ leaseMs: 60_000, renew: () => {} })
    const acks: string[] = []
    const a = leases.hold('a', 1, { ack: () => void acks.push('a'), nack: () => {} })
    leases.hold('b', 2, { ack: () => void acks.push('b'), nack: () => {} })
    expect(leases.close()).toEqual([
      ['a', 1],
      ['b', 2],
    ])
    expect(a.valid?.()).toBe(false)
    // a renewal that throws is a renewal that failed: nothing else breaks
    const throwing = createLeases<number>({
      leaseMs: 1_500,
      renew: () => {
        throw new Error('gone')
      },
    })
    throwing.hold('x', 1, { ack: () => {}, nack: () => {} })
    await sleep(1_100)
    expect(throwing.close()).toEqual([['x', 1]])
  })
})
