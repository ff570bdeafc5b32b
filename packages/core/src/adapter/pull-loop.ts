/**
 * The pull loop of a consumer whose client asks for messages (SQS ReceiveMessage, any HTTP long
 * poll): pulls run while there is room under `prefetch` — the deliveries handed over and not yet
 * settled, plus what the open pulls may still bring — one at a time while the queue is empty, up to
 * `maxPulls` at once while messages flow, each for a whole batch unless it is the only one open.
 * Each pull waits for a live session; a pull that fails with the connection marks the session lost
 * (the next one waits for the new session), any other failure is reported and backed off, so the
 * loop cannot spin. `stop` starts no new pull; an open one is left
 * to finish (a long poll cut short can hide what the broker already picked for it) unless it
 * outlasts the grace given.
 */
import type { BackoffOptions } from '../api.js'
import { backoffDelay, sleep } from '../retry.js'
import { createInFlightCounter, type DeliverySettlement } from './delivery.js'
import { closedError, type ErrorTable, failureKind } from './errors.js'
import type { Supervisor } from './supervisor.js'

export interface PullLoopOptions<S> {
  /** transport name for texts */
  name: string
  supervisor: Supervisor<S>
  errors: ErrorTable
  /** most deliveries unsettled, those the open pulls may bring counted */
  prefetch: number
  /** most messages one pull asks for */
  maxBatch: number
  /** pulls open at once while messages flow (while the last pull came back empty: one) */
  maxPulls: number
  /**
   * One pull of up to `want` messages on `session`: hand each over (its settlement wrapped by
   * `track`) and resolve with how many came. `signal` aborts once stop()'s grace ran out.
   */
  pull(session: S, want: number, signal: AbortSignal): Promise<number>
  /** a pull failed other than with the connection; `failures` in a row. The loop backs off after it. */
  onError(error: unknown, failures: number): void
  /** wait after a failed pull (default 200 ms doubling to 5 s) */
  backoff?: BackoffOptions
}

export interface PullLoop {
  /** deliveries handed over and not yet settled */
  readonly count: number
  /** pulls open */
  readonly pulling: number
  /** stop() was called */
  readonly stopped: boolean
  /** wraps a settlement so that settling (or invalidation) frees its place, once */
  track(settlement: DeliverySettlement): DeliverySettlement
  /** Start pulling. */
  start(): void
  /**
   * Start no new pull. Resolves once no pull is open; with `graceMs`, open pulls are aborted after
   * that long. Idempotent (a later call may add the grace).
   */
  stop(graceMs?: number): Promise<void>
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 5_000, multiplier: 2, jitter: 0.2 }
/** how long a pull waits for a session: a stop ends the wait earlier */
const SESSION_WAIT_MS = 3_600_000

/** Creates a pull loop (not started). */
export function createPullLoop<S>(options: PullLoopOptions<S>): PullLoop {
  const { supervisor, prefetch } = options
  const counter = createInFlightCounter()
  const stopping = new AbortController()
  const aborting = new AbortController()
  const whenStopped = new Promise<undefined>((resolve) =>
    stopping.signal.addEventListener('abort', () => resolve(undefined)),
  )
  /** what the open pulls may still bring */
  let reserved = 0
  let open = 0
  let failures = 0
  /** the last pull came back empty */
  let idle = true
  let wake = (): void => {}
  let loop: Promise<void> = Promise.resolve()
  let grace: NodeJS.Timeout | undefined

  const pullOnce = async (want: number): Promise<void> => {
    let session: S | undefined
    try {
      // through an outage: wait for the next session, unless the loop stops first
      session = await Promise.race([
        supervisor.waitUp(Date.now() + SESSION_WAIT_MS, () => closedError(options.name)),
        whenStopped,
      ])
      if (!session || stopping.signal.aborted) return
      idle = (await options.pull(session, want, aborting.signal)) === 0
      failures = 0
    } catch (error) {
      if (stopping.signal.aborted) return
      if (session && failureKind(options.errors, error) === 'connection')
        return supervisor.lost(session, error)
      failures += 1
      try {
        options.onError(error, failures)
      } catch {} // a reporter's problem is not the loop's: it still backs off
      await sleep(backoffDelay(failures, options.backoff ?? DEFAULT_BACKOFF), stopping.signal)
    }
  }

  const run = async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      const free = prefetch - counter.count - reserved
      // a partial pull only when none is open: a request costs the same whatever it brings (SQS bills
      // per request), so while one is out the next waits for room for a whole batch
      const room = open === 0 ? free > 0 : free >= options.maxBatch
      if (room && open < (idle ? 1 : options.maxPulls)) {
        const want = Math.min(options.maxBatch, free)
        reserved += want
        open += 1
        void pullOnce(want).finally(() => {
          reserved -= want
          open -= 1
          wake()
        })
        continue
      }
      // a pull returned, a delivery was settled, or stop()
      const changed = new Promise<void>((resolve) => (wake = resolve))
      await Promise.race([changed, counter.count > 0 ? counter.room(counter.count) : changed])
    }
    while (open > 0) await new Promise<void>((resolve) => (wake = resolve))
    clearTimeout(grace)
  }

  return {
    get count() {
      return counter.count
    },
    get pulling() {
      return open
    },
    get stopped() {
      return stopping.signal.aborted
    },
    track: (settlement) => counter.track(settlement),
    start() {
      if (!stopping.signal.aborted) loop = run()
    },
    stop(graceMs) {
      stopping.abort()
      wake()
      if (graceMs !== undefined && grace === undefined && open > 0)
        grace = setTimeout(() => aborting.abort(), graceMs)
      return loop
    },
  }
}
