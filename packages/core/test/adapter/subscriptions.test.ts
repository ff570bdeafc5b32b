/**
 * The subscription set: closed with the transport, nothing accepted after close, and a subscription
 * whose start finishes after close() began is closed rather than leaked.
 */
import { describe, expect, it } from 'vitest'
import { createSubscriptionSet } from '../../src/adapter/index.js'
import { ErrorCodes, sleep } from '../../src/index.js'

function subscription() {
  const s = { closed: 0, stopped: 0, stop: async () => void s.stopped++, close: async () => void s.closed++ }
  return s
}

describe('subscription set', () => {
  it('closes open subscriptions once, forgets closed ones, and refuses new ones after close()', async () => {
    const set = createSubscriptionSet('test')
    const a = subscription()
    const b = subscription()
    const handleA = await set.add(async () => a)
    await set.add(async () => b)
    await handleA.stop()
    await handleA.close()
    await set.close()
    await set.close()
    expect([a.stopped, a.closed, b.closed]).toEqual([1, 1, 1])
    await expect(set.add(async () => subscription())).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
  })

  it('a start that finishes after close() began is closed and its add rejects with MSGKIT_CLOSED', async () => {
    const set = createSubscriptionSet('test')
    const late = subscription()
    const adding = set.add(async () => {
      await sleep(50)
      return late
    })
    await sleep(5)
    const closing = set.close()
    await expect(adding).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
    await closing
    expect(late.closed).toBe(1)
  })

  it('a failed start leaves nothing behind', async () => {
    const set = createSubscriptionSet('test')
    await expect(
      set.add(async () => {
        throw new Error('refused')
      }),
    ).rejects.toThrow('refused')
    await set.close()
  })
})
