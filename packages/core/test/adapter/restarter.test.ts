/**
 * The restarter: one attempt at a time, background attempts with a growing backoff until one
 * succeeds, nothing after stop().
 */
import { describe, expect, it } from 'vitest'
import { createRestarter } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

describe('restarter', () => {
  it('run() joins the attempt under way and rejects with its error', async () => {
    let starts = 0
    let fail = true
    const restarter = createRestarter({
      async start() {
        starts += 1
        await sleep(20)
        if (fail) throw new Error('broker away')
      },
      active: () => true,
    })
    const both = Promise.allSettled([restarter.run(), restarter.run()])
    expect(restarter.busy).toBe(true)
    const [a, b] = await both
    expect(starts).toBe(1)
    expect(a.status).toBe('rejected')
    expect(b.status).toBe('rejected')
    expect(restarter.busy).toBe(false)
    fail = false
    await restarter.run()
    expect(starts).toBe(2)
    await restarter.stop()
  })

  it('soon() retries in the background with a growing backoff until an attempt succeeds', async () => {
    const at: number[] = []
    const failures: number[] = []
    const t0 = Date.now()
    const restarter = createRestarter({
      async start() {
        at.push(Date.now() - t0)
        if (at.length < 4) throw new Error('not yet')
      },
      active: () => true,
      onFailure: (_error, n) => failures.push(n),
      backoff: { initialMs: 20, maxMs: 80, multiplier: 2, jitter: 0 },
    })
    restarter.soon()
    restarter.soon() // already scheduled: no second timer
    for (let i = 0; i < 200 && at.length < 4; i++) await sleep(10)
    await sleep(20)
    expect(at).toHaveLength(4)
    expect(failures).toEqual([1, 2, 3])
    // 20, then +40, +80, +80 (capped)
    const gaps = at.map((t, i) => t - (at[i - 1] ?? 0))
    expect(gaps[0]).toBeGreaterThanOrEqual(15)
    expect(gaps[1]).toBeGreaterThanOrEqual(35)
    expect(gaps[2]).toBeGreaterThanOrEqual(75)
    expect(restarter.busy).toBe(false)
    await restarter.stop()
  })

  it('makes no attempt once the owner is inactive or stopped, and stop() waits for the one under way', async () => {
    let active = true
    let starts = 0
    const restarter = createRestarter({
      async start() {
        starts += 1
        await sleep(50)
        throw new Error('fails')
      },
      active: () => active,
      backoff: { initialMs: 10, maxMs: 10, jitter: 0 },
    })
    active = false
    restarter.soon()
    await sleep(30)
    expect(starts).toBe(0)
    await restarter.run()
    expect(starts).toBe(0)

    active = true
    restarter.soon()
    await sleep(25)
    expect(starts).toBe(1)
    const stopped = Date.now()
    await restarter.stop()
    expect(Date.now() - stopped).toBeGreaterThanOrEqual(20)
    await sleep(60)
    expect(starts).toBe(1)
    expect(restarter.busy).toBe(false)
  })
})
