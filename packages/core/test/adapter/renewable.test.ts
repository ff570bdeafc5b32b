/**
 * The renewable client: replaced once after a failure that calls for it, the replaced one closed at
 * the next renewal or with the session, never while it may still be in use.
 */
import { describe, expect, it } from 'vitest'
import { createRenewable } from '../../src/adapter/index.js'

describe('renewable client', () => {
  it('renews once after a failure that calls for it; the replaced client is closed one renewal later', async () => {
    let opened = 0
    const closed: number[] = []
    const client = createRenewable<{ id: number }>({
      create: () => ({ id: ++opened }),
      connect: async () => {},
      close: async (c) => void closed.push(c.id),
      renewOn: (error) => (error as Error).message === 'stale',
    })
    const ran: number[] = []
    await client.use(async (c) => void ran.push(c.id))
    await expect(client.use(async () => Promise.reject(new Error('other')))).rejects.toThrow('other')
    expect(opened).toBe(1)
    // two calls on the same client fail: one renewal
    const fail = () => client.use(async () => Promise.reject(new Error('stale')))
    await Promise.allSettled([fail(), fail()])
    expect(opened).toBe(2)
    await client.use(async (c) => void ran.push(c.id))
    expect(ran).toEqual([1, 2])
    expect(closed).toEqual([])
    await fail().catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 1))
    expect(opened).toBe(3)
    expect(closed).toEqual([1])
    await client.close()
    expect(closed.sort()).toEqual([1, 2, 3])
    await fail().catch(() => {})
    expect(opened).toBe(3)
  })

  it('a client that failed to connect is closed, fails the calls on it, and a renewal tries a new one', async () => {
    let attempts = 0
    const closed: string[] = []
    const client = createRenewable<string>({
      create: () => `client ${++attempts}`,
      connect: async (c) => {
        if (c === 'client 1') throw new Error('stale')
      },
      close: async (c) => void closed.push(c),
      renewOn: (error) => (error as Error).message === 'stale',
    })
    await expect(client.use(async (c) => c)).rejects.toThrow('stale')
    expect(closed).toEqual(['client 1'])
    await expect(client.use(async (c) => c)).resolves.toBe('client 2')
    await client.close()
  })
})
