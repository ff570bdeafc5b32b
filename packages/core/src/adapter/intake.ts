/**
 * The intake of a pull-based consumer (Kafka, SQS): at most `limit` deliveries handed over and not
 * yet settled — the transport-level `prefetch`, which the client does not hold for the adapter.
 * The fetch loop waits for room before handing over the next one; while it waits, one timer shared
 * by every waiter ticks each `tickMs` (none per delivery), so the adapter can keep its lease (a
 * Kafka heartbeat, an SQS visibility extension); `wake()` ends every wait at once (a stop, a new member).
 */
import { sleep } from '../retry.js'
import { createInFlightCounter, type DeliverySettlement } from './delivery.js'

export interface Intake {
  /** deliveries handed over and not yet settled */
  readonly count: number
  /** wraps a settlement so that settling (or invalidation) frees its place, once */
  track(settlement: DeliverySettlement): DeliverySettlement
  /**
   * Resolves once fewer than `limit` are unsettled, or once `stale()` is true (checked after each
   * tick and `wake()`). `onTick` runs on every tick while waiting; what it throws rejects the wait.
   */
  room(stale: () => boolean, onTick?: () => Promise<void>): Promise<void>
  /**
   * Resolves once nothing is unsettled, after `ms`, or once `stale()` (checked after each `wake()`):
   * core finishing what it holds before a rebalance or a close.
   */
  drained(ms: number, stale: () => boolean): Promise<void>
  /** End every wait now: each checks `stale()` again. */
  wake(): void
}

/** Creates an intake holding `limit` unsettled deliveries, ticking every `tickMs` while full. */
export function createIntake(limit: number, tickMs: number): Intake {
  const counter = createInFlightCounter()
  let waking = new AbortController()
  let tick: Promise<boolean> | undefined
  /** true when the tick ran out, false when woken */
  const nextTick = (): Promise<boolean> =>
    (tick ??= sleep(tickMs, waking.signal).finally(() => {
      tick = undefined
    }))
  return {
    get count() {
      return counter.count
    },
    track: (settlement) => counter.track(settlement),
    async room(stale, onTick) {
      while (counter.count >= limit && !stale()) {
        const ticked = await Promise.race([counter.room(limit).then(() => false), nextTick()])
        if (ticked && onTick && !stale()) await onTick()
      }
    },
    async drained(ms, stale) {
      const until = Date.now() + ms
      while (counter.count > 0 && !stale() && Date.now() < until)
        await Promise.race([counter.room(1), sleep(until - Date.now(), waking.signal)])
    },
    wake() {
      waking.abort()
      waking = new AbortController()
    },
  }
}
