/**
 * The coalescer: settles with the broker in the background, one request at a time. What becomes due
 * while a request is in flight goes out in the next one; a failed request is retried after a
 * backoff; `drain(ms)` flushes with a bound (before a close, a rebalance). Kafka's offset commits,
 * RabbitMQ's batched acks and SQS's DeleteMessageBatch are all this. The adapter keeps its own
 * bookkeeping of what is due and says how to send it.
 */
import type { BackoffOptions } from '../api.js'
import { backoffDelay, sleep } from '../retry.js'
import { withTimeout } from '../timeout.js'

export interface CoalescerOptions {
  /** whether anything is due now */
  due(): boolean
  /**
   * Send everything due now and resolve once the broker confirmed it (mark it done in your
   * bookkeeping here). Throw to have it tried again after the backoff.
   */
  flush(): Promise<void>
  /** a failed flush, for the adapter's log (it is tried again) */
  onError?(error: unknown): void
  /** wait between failed flushes (default 200 ms doubling to 2 s) */
  backoff?: BackoffOptions
}

export interface Coalescer {
  /** Something became due: flush on the next I/O turn, or once more after the flush in flight. */
  request(): void
  /**
   * Flush until nothing is due, waiting for the flush in flight and retrying failed ones (100 ms
   * apart); gives up after `ms`. Never rejects.
   */
  drain(ms: number): Promise<void>
  /** No further flushes (one in flight finishes). Idempotent. */
  close(): void
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 2_000, multiplier: 2, jitter: 0.2 }

/** Creates a coalescer. */
export function createCoalescer(options: CoalescerOptions): Coalescer {
  const backoff = options.backoff ?? DEFAULT_BACKOFF
  let inFlight: Promise<boolean> | undefined
  let again = false
  let failures = 0
  let closed = false
  let soon: NodeJS.Immediate | undefined
  let retry: NodeJS.Timeout | undefined

  /** one flush, or the one in flight (then another after it); resolves with success, never rejects */
  const run = (): Promise<boolean> => {
    if (inFlight) {
      again = true
      return inFlight
    }
    if (!options.due()) return Promise.resolve(true)
    again = false
    const flush = (async () => options.flush())().then(
      () => {
        failures = 0
        return true
      },
      (error: unknown) => {
        failures += 1
        try {
          options.onError?.(error)
        } catch {
          // a logger's problem is not the flush's
        }
        return false
      },
    )
    inFlight = flush.then((ok) => {
      inFlight = undefined
      if (!ok) later(backoffDelay(failures, backoff))
      else if (again) request()
      return ok
    })
    return inFlight
  }

  const later = (ms: number): void => {
    if (closed || retry) return
    retry = setTimeout(() => {
      retry = undefined
      void run()
    }, ms)
  }

  const request = (): void => {
    // a pending retry flushes everything due: let the backoff stand
    if (closed || soon || retry) return
    if (inFlight) {
      again = true
      return
    }
    soon = setImmediate(() => {
      soon = undefined
      void run()
    })
  }

  const cancel = (): void => {
    clearImmediate(soon)
    clearTimeout(retry)
    soon = retry = undefined
  }

  return {
    request,
    async drain(ms) {
      cancel()
      const deadline = Date.now() + ms
      while (Date.now() < deadline && (inFlight || options.due())) {
        const ok = await withTimeout(run(), deadline - Date.now(), () => new Error('drain')).catch(() => true)
        if (!ok) await sleep(Math.min(100, Math.max(0, deadline - Date.now())))
      }
    },
    close() {
      closed = true
      cancel()
    },
  }
}
