/**
 * The prefix tracker: only a position below which every delivery is done is acknowledged (Kafka's
 * committed offset per partition, RabbitMQ's `multiple` ack), with gaps, give-backs and resumes.
 */
import { describe, expect, it } from 'vitest'
import { createPrefixTracker, type PrefixTracker } from '../../src/adapter/index.js'

describe('prefix tracker', () => {
  it('acknowledges only the processed prefix', () => {
    const t = createPrefixTracker(10)
    for (const o of [10, 11, 12, 13]) t.add(o)
    expect(t.pending()).toBeUndefined()
    t.complete(11)
    t.complete(13)
    expect(t.frontier).toBe(10)
    expect(t.pending()).toBeUndefined()
    expect(t.complete(10)).toBe(true)
    expect(t.frontier).toBe(12)
    expect(t.pending()).toBe(12)
    t.confirmed(12)
    expect(t.pending()).toBeUndefined()
    t.complete(12)
    expect(t.pending()).toBe(14)
  })

  it('tolerates gaps between offsets (Kafka: compaction, transaction markers)', () => {
    const t = createPrefixTracker(0)
    t.add(0)
    t.add(5)
    t.complete(5)
    expect(t.frontier).toBe(0)
    t.complete(0)
    expect(t.frontier).toBe(6)
    t.skipTo(9)
    expect(t.frontier).toBe(10)
    expect(t.next).toBe(10)
  })

  it('a trailing marker waits for the records before it', () => {
    const t = createPrefixTracker(0)
    t.add(0)
    t.skipTo(1)
    expect(t.frontier).toBe(0)
    t.complete(0)
    expect(t.frontier).toBe(2)
  })

  it('a given-back record holds the frontier and can be handed out again', () => {
    const t = createPrefixTracker(0)
    t.add(0)
    t.add(1)
    t.giveBack(0)
    t.complete(1)
    expect(t.inFlight).toBe(0)
    expect(t.frontier).toBe(0)
    expect(t.isHandedOut(0)).toBe(false)
    expect(t.isReturned(0)).toBe(true)
    expect(t.isHandedOut(1)).toBe(true)
    t.add(0)
    expect(t.isHandedOut(0)).toBe(true)
    t.complete(0)
    expect(t.frontier).toBe(2)
  })

  it('completing twice, unknown numbers and duplicates are harmless or refused', () => {
    const t = createPrefixTracker(3)
    t.add(3)
    expect(t.complete(3)).toBe(true)
    expect(t.complete(3)).toBe(false)
    expect(t.complete(99)).toBe(false)
    expect(() => t.add(2)).toThrow()
    t.add(4)
    expect(() => t.add(4)).toThrow()
  })

  it('isHandedOut covers done, in-flight and skipped numbers below next', () => {
    const t = createPrefixTracker(0)
    t.add(0)
    t.add(2)
    t.complete(0)
    expect(t.isHandedOut(0)).toBe(true)
    expect(t.isHandedOut(1)).toBe(true)
    expect(t.isHandedOut(2)).toBe(true)
    expect(t.isHandedOut(3)).toBe(false)
  })

  describe('resume (Kafka: a partition back after a rebalance)', () => {
    const withWork = (): PrefixTracker => {
      const t = createPrefixTracker(0)
      for (let o = 0; o < 6; o++) t.add(o)
      for (const o of [0, 1, 2]) t.complete(o)
      t.confirmed(2)
      return t
    }

    it('continues when the broker position lies between our last confirmed one and the frontier', () => {
      const t = withWork()
      expect(t.resume(2)).toBe('continued')
      expect(t.resume(3)).toBe('continued') // our acknowledgement of 3 in flight had landed
      expect(t.acknowledged).toBe(3)
      expect(t.isHandedOut(4)).toBe(true)
      t.complete(3)
      t.complete(4)
      t.complete(5)
      expect(t.pending()).toBe(6)
    })

    it('resets when someone else acknowledged past our frontier, or the position went backwards', () => {
      expect(withWork().resume(5)).toBe('reset')
      expect(withWork().resume(1)).toBe('reset')
    })
  })

  it('stays fast with a long-blocked head', () => {
    const t = createPrefixTracker(0)
    for (let o = 0; o < 50_000; o++) t.add(o)
    for (let o = 1; o < 50_000; o++) t.complete(o)
    expect(t.frontier).toBe(0)
    expect(t.inFlight).toBe(1)
    t.complete(0)
    expect(t.frontier).toBe(50_000)
    for (let o = 50_000; o < 52_000; o++) {
      t.add(o)
      t.complete(o)
    }
    expect(t.frontier).toBe(52_000)
  })
})
