/**
 * The intake of a pull-based consumer: hands over at most `limit` unsettled deliveries, ticks while
 * full (for a heartbeat), and a wake ends the waits of a stopped subscription.
 */
import { describe, expect, it } from 'vitest'
import { createIntake } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

const settlement = () => ({ ack: () => {}, nack: () => {} })

describe('intake', () => {
  it('holds at the limit and makes room when a delivery settles', async () => {
    const intake = createIntake(2, 1_000)
    const a = intake.track(settlement())
    intake.track(settlement())
    expect(intake.count).toBe(2)
    let roomy = false
    const waiting = intake.room(() => false).then(() => (roomy = true))
    await sleep(20)
    expect(roomy).toBe(false)
    await a.ack()
    await a.ack() // settles once
    await waiting
    expect(intake.count).toBe(1)
    // room at once while below the limit
    await intake.room(() => false)
  })

  it('ticks while full, one tick for every waiter, and what the tick throws rejects the wait', async () => {
    const intake = createIntake(1, 30)
    intake.track(settlement())
    let ticks = 0
    const onTick = async (): Promise<void> => {
      ticks += 1
    }
    const waits = [intake.room(() => ticks >= 6, onTick), intake.room(() => ticks >= 6, onTick)]
    await Promise.all(waits)
    // two waiters share each tick: three timer periods gave six ticks, not twelve
    expect(ticks).toBe(6)

    const failing = intake.room(
      () => false,
      async () => {
        throw new Error('rebalance')
      },
    )
    await expect(failing).rejects.toThrow('rebalance')
  })

  it('wake() ends every wait at once once stale', async () => {
    const intake = createIntake(1, 60_000)
    intake.track(settlement())
    let stopped = false
    const started = Date.now()
    const waiting = intake.room(() => stopped)
    await sleep(10)
    stopped = true
    intake.wake()
    await waiting
    expect(Date.now() - started).toBeLessThan(1_000)
  })
  it('drained() waits until nothing is unsettled, at most ms, and ends on a wake once stale', async () => {
    const intake = createIntake(4, 1_000)
    await intake.drained(1_000, () => false) // nothing held: at once
    const a = intake.track(settlement())
    setTimeout(() => void a.ack(), 20)
    let t0 = Date.now()
    await intake.drained(1_000, () => false)
    expect(Date.now() - t0).toBeLessThan(500)
    intake.track(settlement())
    t0 = Date.now()
    await intake.drained(30, () => false)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25)
    let stale = false
    const waiting = intake.drained(5_000, () => stale)
    stale = true
    intake.wake()
    t0 = Date.now()
    await waiting
    expect(Date.now() - t0).toBeLessThan(500)
    expect(intake.count).toBe(1)
  })
})
