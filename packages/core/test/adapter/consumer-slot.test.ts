/**
 * The consumer slot: one current consumer, replaced in the background when it crashes or no longer
 * fits; a crash of an old one changes nothing; a crash while starting fails that start.
 */
import { describe, expect, it } from 'vitest'
import { createConsumerSlot } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

type C = { id: number }

function slotWithLog(overrides: { start?(c: C): Promise<void>; needed?(c: C | undefined): boolean } = {}) {
  const log: string[] = []
  let next = 0
  let active = true
  const slot = createConsumerSlot<C>({
    create: () => ({ id: ++next }),
    start: async (c) => {
      log.push(`start ${c.id}`)
      await overrides.start?.(c)
    },
    retire: async (c, replaced) => void log.push(`${replaced ? 'retire' : 'dispose'} ${c.id}`),
    prepare: async () => void log.push('prepare'),
    ...(overrides.needed ? { needed: overrides.needed } : {}),
    active: () => active,
    backoff: { initialMs: 5, maxMs: 20, multiplier: 2, jitter: 0 },
  })
  return { slot, log, stop: () => (active = false) }
}

describe('consumer slot', () => {
  it('starts one consumer, replaces it after a crash, ignores a crash of an old one', async () => {
    const { slot, log } = slotWithLog()
    await slot.start()
    await slot.start() // one is running: nothing to do
    const first = slot.current as C
    expect(first.id).toBe(1)
    expect(slot.crashed(first, new Error('boom'))).toBe(true)
    expect(slot.current).toBeUndefined()
    for (let i = 0; i < 50 && slot.current === undefined; i++) await sleep(5)
    expect(slot.current?.id).toBe(2)
    expect(slot.crashed(first, new Error('late'))).toBe(false)
    expect(slot.current?.id).toBe(2)
    await slot.close()
    expect(log).toEqual(['prepare', 'start 1', 'prepare', 'start 2', 'retire 2'])
  })

  it('a crash during the start fails that start with the crash; the failed one is disposed', async () => {
    const crash = new Error('crashed while joining')
    let slotRef: ReturnType<typeof createConsumerSlot<C>> | undefined
    const { slot, log } = slotWithLog({
      start: async (c) => {
        if (c.id === 1) slotRef?.crashed(c, crash)
      },
    })
    slotRef = slot
    await expect(slot.start()).rejects.toBe(crash)
    expect(log.slice(0, 3)).toEqual(['prepare', 'start 1', 'dispose 1'])
    for (let i = 0; i < 50 && slot.current === undefined; i++) await sleep(5)
    expect(slot.current?.id).toBe(2)
    await slot.close()
  })

  it('refresh() replaces a consumer that no longer fits: the old one retires first', async () => {
    let wanted = 1
    let have = 0
    const { slot, log } = slotWithLog({
      needed: (c) => !c || have !== wanted,
      start: async () => {
        have = wanted
      },
    })
    await slot.start()
    wanted = 2
    slot.refresh()
    for (let i = 0; i < 50 && slot.current?.id !== 2; i++) await sleep(5)
    expect(log).toEqual(['prepare', 'start 1', 'retire 1', 'prepare', 'start 2'])
    await slot.close()
  })

  it('starts nothing once stopped; close() waits for a start under way at most waitMs, then retires it', async () => {
    const { slot, log, stop } = slotWithLog({ start: async () => void (await sleep(200)) })
    const starting = slot.start()
    await sleep(10)
    const t0 = Date.now()
    stop()
    await slot.close(20)
    expect(Date.now() - t0).toBeLessThan(150)
    await expect(starting).rejects.toThrow(/stopped/)
    // still starting when close() gave up waiting: retired by close(), once
    expect(log).toEqual(['prepare', 'start 1', 'retire 1'])
    expect(slot.current).toBeUndefined()
    // stopped before anything began: nothing is created
    const idle = slotWithLog()
    idle.stop()
    await idle.slot.start()
    expect(idle.log).toEqual([])
  })
})
