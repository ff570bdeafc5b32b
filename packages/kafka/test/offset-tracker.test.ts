import { describe, expect, it } from 'vitest'
import { OffsetTracker } from '../src/offset-tracker.js'

describe('OffsetTracker', () => {
  it('commits only the processed prefix', () => {
    const t = new OffsetTracker(10)
    for (const o of [10, 11, 12, 13]) t.add(o)
    expect(t.pendingCommit()).toBeUndefined()
    t.complete(11)
    t.complete(13)
    expect(t.frontier).toBe(10)
    expect(t.pendingCommit()).toBeUndefined()
    expect(t.complete(10)).toBe(true)
    expect(t.frontier).toBe(12)
    expect(t.pendingCommit()).toBe(12)
    t.markCommitted(12)
    expect(t.pendingCommit()).toBeUndefined()
    t.complete(12)
    expect(t.pendingCommit()).toBe(14)
  })

  it('tolerates gaps between offsets (compaction, transaction markers)', () => {
    const t = new OffsetTracker(0)
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
    const t = new OffsetTracker(0)
    t.add(0)
    t.skipTo(1)
    expect(t.frontier).toBe(0)
    t.complete(0)
    expect(t.frontier).toBe(2)
  })

  it('a given-back record holds the frontier and can be handed out again', () => {
    const t = new OffsetTracker(0)
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

  it('completing twice, unknown offsets and duplicates are harmless or refused', () => {
    const t = new OffsetTracker(3)
    t.add(3)
    expect(t.complete(3)).toBe(true)
    expect(t.complete(3)).toBe(false)
    expect(t.complete(99)).toBe(false)
    expect(() => t.add(2)).toThrow()
    t.add(4)
    expect(() => t.add(4)).toThrow()
  })

  it('isHandedOut covers done, in-flight and skipped offsets below next', () => {
    const t = new OffsetTracker(0)
    t.add(0)
    t.add(2)
    t.complete(0)
    expect(t.isHandedOut(0)).toBe(true)
    expect(t.isHandedOut(1)).toBe(true)
    expect(t.isHandedOut(2)).toBe(true)
    expect(t.isHandedOut(3)).toBe(false)
  })

  describe('resume after a rebalance', () => {
    const withWork = (): OffsetTracker => {
      const t = new OffsetTracker(0)
      for (let o = 0; o < 6; o++) t.add(o)
      for (const o of [0, 1, 2]) t.complete(o)
      t.markCommitted(2)
      return t
    }

    it('continues when the group committed offset is between our last commit and the frontier', () => {
      const t = withWork()
      expect(t.resume(2)).toBe('continued')
      expect(t.resume(3)).toBe('continued') // our in-flight commit of 3 had landed
      expect(t.committed).toBe(3)
      expect(t.isHandedOut(4)).toBe(true)
      t.complete(3)
      t.complete(4)
      t.complete(5)
      expect(t.pendingCommit()).toBe(6)
    })

    it('resets when someone else committed past our frontier, or the commit went backwards', () => {
      expect(withWork().resume(5)).toBe('reset')
      expect(withWork().resume(1)).toBe('reset')
    })
  })

  it('stays fast with a long-blocked head', () => {
    const t = new OffsetTracker(0)
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
