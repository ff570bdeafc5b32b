/**
 * The coalescer against an in-process "broker" that confirms requests when the test says so: one
 * request in flight, what became due meanwhile in the next one, failures retried after a backoff,
 * drain bounded.
 */
import { describe, expect, it } from 'vitest'
import { createCoalescer } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

/** Offsets acked by the consumer (`due`) and requests the broker got; each request waits for `answer`. */
function ledger(options: { failFirst?: number; hang?: boolean } = {}) {
  const state = {
    acked: 0,
    committed: 0,
    requests: [] as number[],
    inFlight: 0,
    maxInFlight: 0,
    failures: 0,
    answers: [] as Array<() => void>,
  }
  const coalescer = createCoalescer({
    due: () => state.acked > state.committed,
    async flush() {
      const upTo = state.acked
      state.requests.push(upTo)
      state.inFlight += 1
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight)
      try {
        if (options.hang) await new Promise(() => {})
        await new Promise<void>((resolve) => state.answers.push(resolve))
        if (state.requests.length <= (options.failFirst ?? 0)) throw new Error('broker said no')
        state.committed = upTo
      } finally {
        state.inFlight -= 1
      }
    },
    onError: () => {
      state.failures += 1
    },
    backoff: { initialMs: 30, maxMs: 30, jitter: 0 },
  })
  const answerAll = async (): Promise<void> => {
    for (let i = 0; i < 50 && (state.inFlight > 0 || state.acked > state.committed); i++) {
      for (const a of state.answers.splice(0)) a()
      await sleep(5)
    }
  }
  return { state, coalescer, answerAll }
}

describe('coalescer', () => {
  it('one request in flight; what became due meanwhile goes out in exactly one more', async () => {
    const { state, coalescer, answerAll } = ledger()
    for (let i = 1; i <= 3; i++) {
      state.acked = i
      coalescer.request()
    }
    await sleep(5)
    expect(state.requests).toEqual([3])
    // acks while the first request is in flight
    for (let i = 4; i <= 9; i++) {
      state.acked = i
      coalescer.request()
    }
    await sleep(5)
    expect(state.requests).toEqual([3])
    await answerAll()
    expect(state.requests).toEqual([3, 9])
    expect(state.committed).toBe(9)
    expect(state.maxInFlight).toBe(1)
    // nothing due: a request sends nothing
    coalescer.request()
    await sleep(5)
    expect(state.requests).toEqual([3, 9])
    coalescer.close()
  })

  it('a failed request is tried again after the backoff, including what became due meanwhile', async () => {
    const { state, coalescer, answerAll } = ledger({ failFirst: 1 })
    state.acked = 1
    coalescer.request()
    await sleep(5)
    state.acked = 2
    coalescer.request()
    for (const a of state.answers.splice(0)) a()
    await sleep(5)
    expect(state.failures).toBe(1)
    expect(state.requests).toEqual([1])
    // the backoff stands: a request now does not go out early
    coalescer.request()
    await sleep(5)
    expect(state.requests).toEqual([1])
    await sleep(40)
    await answerAll()
    expect(state.requests).toEqual([1, 2])
    expect(state.committed).toBe(2)
    coalescer.close()
  })

  it('drain() waits for the request in flight, sends the rest, retries a failure, and is bounded', async () => {
    const { state, coalescer } = ledger({ failFirst: 1 })
    state.acked = 1
    coalescer.request()
    await sleep(5)
    state.acked = 5
    const answering = setInterval(() => {
      for (const a of state.answers.splice(0)) a()
    }, 5)
    await coalescer.drain(2_000)
    clearInterval(answering)
    expect(state.committed).toBe(5)
    expect(state.failures).toBe(1)
    coalescer.close()

    const frozen = ledger({ hang: true })
    frozen.state.acked = 1
    const started = Date.now()
    await frozen.coalescer.drain(150)
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(frozen.state.committed).toBe(0)
    frozen.coalescer.close()
  })

  it('after close() nothing more is sent', async () => {
    const { state, coalescer } = ledger()
    coalescer.close()
    state.acked = 1
    coalescer.request()
    await sleep(20)
    expect(state.requests).toEqual([])
  })
})
