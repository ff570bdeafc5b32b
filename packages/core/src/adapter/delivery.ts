/**
 * The delivery wrapper: what every adapter hands to core for one consumed message. It settles at
 * most once (a second ack/nack is a no-op), and a settle after the session the message came on is
 * gone is a no-op too: the broker has already taken the message back and will redeliver it, and
 * acking it on a newer session would be an error (RabbitMQ: unknown delivery tag) or a wrong ack.
 */
import type { Delivery, TransportMessage } from '../spi.js'

export interface DeliverySettlement {
  /** remove the message from the broker */
  ack(): void | Promise<void>
  /** give it back (`requeue`: deliver again later) or drop it */
  nack(requeue: boolean): void | Promise<void>
  /** false once the session this delivery came on is gone (default: always valid) */
  valid?(): boolean
}

/**
 * A promise that is already resolved and never rejects. Returned by `ack`/`nack` (and by core's
 * `onDelivery`) when the work is done by the time they return: callers may recognise it and skip
 * attaching a reaction — one promise and one microtask less per message. Optional: any other
 * promise works the same, only slower.
 */
export const SETTLED: Promise<void> = Promise.resolve()

/** Wraps one consumed message and the adapter's settle functions into a Delivery for core. */
export function createDelivery(message: TransportMessage, settlement: DeliverySettlement): Delivery {
  let settled = false
  // no async frame: every message of every adapter passes here
  const once = (work: () => void | Promise<void>): Promise<void> => {
    if (settled) return SETTLED
    settled = true
    try {
      if (settlement.valid && !settlement.valid()) return SETTLED
      const result = work()
      return result === undefined ? SETTLED : Promise.resolve(result)
    } catch (error) {
      return Promise.reject(error)
    }
  }
  return {
    message,
    ack: () => once(() => settlement.ack()),
    nack: (options) => once(() => settlement.nack(options?.requeue ?? true)),
  }
}

/**
 * Counts what a subscription has handed over and not yet settled, so an adapter can hold its
 * intake at `prefetch` where the broker does not do it for it (pull-based clients).
 */
export interface InFlightCounter {
  readonly count: number
  /** resolves once fewer than `limit` are in flight (at once when already so) */
  room(limit: number): Promise<void>
  /** wraps a settlement so that settling (or invalidation) lowers the count once */
  track(settlement: DeliverySettlement): DeliverySettlement
}

/** Creates an in-flight counter. */
export function createInFlightCounter(): InFlightCounter {
  let count = 0
  // one promise per limit, however often room() is asked while blocked
  const waiting = new Map<number, { promise: Promise<void>; resolve: () => void }>()
  const release = (): void => {
    count -= 1
    for (const [limit, w] of waiting) {
      if (count < limit) {
        waiting.delete(limit)
        w.resolve()
      }
    }
  }
  return {
    get count() {
      return count
    },
    room(limit) {
      if (count < limit) return Promise.resolve()
      let w = waiting.get(limit)
      if (!w) {
        let resolve!: () => void
        const promise = new Promise<void>((r) => {
          resolve = r
        })
        w = { promise, resolve }
        waiting.set(limit, w)
      }
      return w.promise
    },
    track(settlement) {
      count += 1
      let done = false
      const finish = (): void => {
        if (done) return
        done = true
        release()
      }
      return {
        ack: () => {
          finish()
          return settlement.ack()
        },
        nack: (requeue) => {
          finish()
          return settlement.nack(requeue)
        },
        valid: () => {
          const ok = settlement.valid ? settlement.valid() : true
          if (!ok) finish()
          return ok
        },
      }
    },
  }
}
