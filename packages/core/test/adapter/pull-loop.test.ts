/**
 * The pull loop of a pull-based consumer: never more than `prefetch` unsettled (open pulls counted),
 * one pull while idle and several while busy, failures reported and backed off, a lost session
 * waited out, and a stop that lets open pulls finish (or aborts them after a grace).
 */
import { describe, expect, it } from 'vitest'
import {
  createPullLoop,
  createSupervisor,
  type DeliverySettlement,
  type ErrorTable,
  type PullLoopOptions,
} from '../../src/adapter/index.js'
import { ErrorCodes, MsgkitError, silentLogger, sleep } from '../../src/index.js'

class Cut extends Error {}
const errors: ErrorTable = {
  classify: (error) => (error instanceof Cut ? 'connection' : 'fatal'),
  toError: (error) => new MsgkitError(ErrorCodes.TRANSPORT_ERROR, String(error)),
}
type Session = { id: number }

function setUp(overrides: Partial<PullLoopOptions<Session>> & Pick<PullLoopOptions<Session>, 'pull'>) {
  let sessions = 0
  const supervisor = createSupervisor<Session>({
    name: 'pull',
    context: { logger: silentLogger, emit: () => {}, secrets: [], scrub: (t) => t },
    errors,
    backoff: { initialMs: 10, maxMs: 10, jitter: 0 },
    driver: { endpoints: ['here'], open: async () => ({ id: ++sessions }), close: async () => {} },
  })
  const loop = createPullLoop<Session>({
    name: 'pull',
    supervisor,
    errors,
    prefetch: 5,
    maxBatch: 3,
    maxPulls: 2,
    onError: () => {},
    backoff: { initialMs: 20, maxMs: 20, jitter: 0 },
    ...overrides,
  })
  return { supervisor, loop }
}

const settlement = (): DeliverySettlement => ({ ack: () => {}, nack: () => {} })

describe('pull loop', () => {
  it('holds prefetch with the open pulls counted, one pull while idle, more while messages flow, partial pulls only alone', async () => {
    let open = 0
    let most = 0
    const wants: number[] = []
    const partialBesideAnother: number[] = []
    const held: DeliverySettlement[] = []
    let available = 11
    const { supervisor, loop } = setUp({
      prefetch: 11,
      maxPulls: 3,
      async pull(_, want) {
        wants.push(want)
        if (want < 3 && open > 0) partialBesideAnother.push(want)
        open += 1
        most = Math.max(most, open)
        await sleep(5)
        open -= 1
        const n = Math.min(want, available)
        available -= n
        for (let i = 0; i < n; i++) held.push(loop.track(settlement()))
        expect(loop.count).toBeLessThanOrEqual(11)
        return n
      },
    })
    await supervisor.connect()
    loop.start()
    await sleep(60)
    // idle at first: one pull of 3; then two of 3 at once; the last 2 places only once neither is open
    expect(wants.slice(0, 4)).toEqual([3, 3, 3, 2])
    expect(most).toBe(2)
    // a request costs the same whatever it brings: no small pull beside a running one
    expect(partialBesideAnother).toEqual([])
    expect(loop.count).toBe(11)
    for (const s of held.splice(0)) await s.ack()
    await sleep(40)
    expect(loop.count).toBe(0)
    await loop.stop()
    expect(loop.pulling).toBe(0)
    await supervisor.close()
  })

  it('marks a session lost on a connection failure and pulls on the next; backs off and reports others', async () => {
    const seen: number[] = []
    const failures: number[] = []
    let calls = 0
    const { supervisor, loop } = setUp({
      async pull(session) {
        calls += 1
        seen.push(session.id)
        if (calls === 1) throw new Cut('reset')
        if (calls <= 3) throw new Error('refused')
        await sleep(5)
        return 0
      },
      onError: (_, n) => failures.push(n),
    })
    await supervisor.connect()
    loop.start()
    await sleep(150)
    await loop.stop()
    expect(seen.slice(0, 2)).toEqual([1, 2])
    expect(failures).toEqual([1, 2])
    // two failures backed off 20 ms each: the loop did not spin
    expect(calls).toBeLessThan(40)
    await supervisor.close()
  })

  it('keeps backing off when the error reporter throws', async () => {
    let calls = 0
    const { supervisor, loop } = setUp({
      pull: async () => {
        calls += 1
        throw new Error('refused')
      },
      onError: () => {
        throw new Error('broken logger')
      },
    })
    await supervisor.connect()
    loop.start()
    await sleep(100)
    await loop.stop()
    expect(calls).toBeGreaterThan(1)
    expect(calls).toBeLessThan(10)
    await supervisor.close()
  })

  it('stop waits for an open pull, and aborts it only after the grace', async () => {
    let aborted = false
    const { supervisor, loop } = setUp({
      pull: (_, __, signal) =>
        new Promise<number>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true
            resolve(0)
          })
        }),
    })
    await supervisor.connect()
    loop.start()
    await sleep(10)
    expect(loop.pulling).toBe(1)
    let done = false
    const stopped = loop.stop().then(() => (done = true))
    await sleep(30)
    expect(done).toBe(false)
    expect(loop.stopped).toBe(true)
    const started = Date.now()
    await loop.stop(20)
    await stopped
    expect(aborted).toBe(true)
    expect(Date.now() - started).toBeLessThan(1_000)
    await supervisor.close()
  })
})
