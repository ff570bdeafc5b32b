/**
 * The restarter: brings a consumer back after it crashed, was cancelled, or must be replaced. One
 * attempt at a time (asking again while one is under way joins it), retried in the background with
 * a growing backoff until one succeeds or the owner stopped. Kafka replaces a crashed group member
 * with it; a channel consumer that the broker cancelled is the same shape.
 */
import type { BackoffOptions } from '../api.js'
import { backoffDelay } from '../retry.js'

export interface RestarterOptions {
  /**
   * One attempt: (re)start the consumer, throw when that failed. Called again after a success, so
   * it must do nothing when the consumer already runs as it should.
   */
  start(): Promise<void>
  /** false once the owner stopped or closed: no attempt is made or scheduled any more */
  active(): boolean
  /** a failed background attempt (the next follows after the backoff), for the adapter's log */
  onFailure?(error: unknown, failures: number): void
  /** wait before a background attempt (default 200 ms doubling to 5 s) */
  backoff?: BackoffOptions
}

export interface Restarter {
  /** One attempt now, or the one under way; rejects with its error (no retry: see `soon`). */
  run(): Promise<void>
  /**
   * In the background: an attempt after the backoff, repeated with a growing backoff until one
   * succeeds. A no-op while one is scheduled; one under way is followed by another.
   */
  soon(): void
  /** an attempt is under way or scheduled */
  readonly busy: boolean
  /** Schedule nothing any more; resolves once the attempt under way finished (never rejects). */
  stop(): Promise<void>
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 5_000, multiplier: 2, jitter: 0.2 }

/** Creates a restarter. */
export function createRestarter(options: RestarterOptions): Restarter {
  const backoff = options.backoff ?? DEFAULT_BACKOFF
  let running: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  let failures = 0
  let stopped = false
  const live = (): boolean => !stopped && options.active()

  const run = (): Promise<void> => {
    running ??= (async () => {
      if (!live()) return
      await options.start()
      failures = 0
    })().finally(() => {
      running = undefined
    })
    return running
  }

  const soon = (): void => {
    if (timer || !live()) return
    timer = setTimeout(
      () => {
        timer = undefined
        run().catch((error: unknown) => {
          failures += 1
          try {
            options.onFailure?.(error, failures)
          } catch {
            // a logger's problem is not the restart's
          }
          soon()
        })
      },
      backoffDelay(failures + 1, backoff),
    )
  }

  return {
    run,
    soon,
    get busy() {
      return running !== undefined || timer !== undefined
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      timer = undefined
      await running?.catch(() => {})
    },
  }
}
