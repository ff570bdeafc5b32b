/**
 * The supervisor's `openTimeoutMs`: an open that does not answer gives up with a retriable
 * MSGKIT_CONNECTION_FAILED naming the endpoint, and a session that opens after all is closed.
 */
import { describe, expect, it } from 'vitest'
import { createSupervisor, type ErrorTable } from '../../src/adapter/index.js'
import { ErrorCodes, MsgkitError, silentLogger, sleep } from '../../src/index.js'

const errors: ErrorTable = {
  classify: () => 'connection',
  toError: (error) => new MsgkitError(ErrorCodes.CONNECTION_FAILED, String(error), { retriable: true }),
}

describe('supervisor openTimeoutMs', () => {
  it('gives up a slow open, closes the session that opens late, and connects when the next open answers', async () => {
    let opens = 0
    const closed: number[] = []
    const supervisor = createSupervisor<number>({
      name: 'slow',
      context: { logger: silentLogger, emit: () => {}, secrets: [], scrub: (t) => t },
      errors,
      driver: {
        endpoints: ['slow:1'],
        openTimeoutMs: 30,
        open: async () => {
          const n = ++opens
          if (n === 1) await sleep(80)
          return n
        },
        close: async (s) => void closed.push(s),
      },
    })
    const t0 = Date.now()
    const error = await supervisor.connect().catch((e: unknown) => e)
    expect(Date.now() - t0).toBeLessThan(70)
    expect(error).toMatchObject({ code: ErrorCodes.CONNECTION_FAILED, retriable: true })
    expect((error as Error).message).toContain('slow:1')
    await sleep(80)
    expect(closed).toEqual([1])
    await expect(supervisor.connect()).resolves.toBe(2)
    await supervisor.close()
    expect(closed).toEqual([1, 2])
  })
})
