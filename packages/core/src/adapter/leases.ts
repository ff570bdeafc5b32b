/**
 * Leases on held messages, for brokers that hide a delivered message only for a while (SQS's
 * visibility timeout, a Pub/Sub ack deadline, a Service Bus lock): while the adapter holds one
 * (handed to core, not settled yet: running or waiting for a free handler) its lease is renewed
 * before it runs out, so a slow handler never sees its message redelivered underneath itself. One
 * timer for all, ticking every third of the lease while anything was held; a lease is renewed at the
 * last tick before it could run out, so a message settled within a third of the lease costs nothing.
 */
import type { DeliverySettlement } from './delivery.js'

export interface LeasesOptions<V> {
  /** how long the broker hides a message after a delivery or a renewal */
  leaseMs: number
  /**
   * Renew `key`'s lease for another `leaseMs` (an SQS ChangeMessageVisibility). Report nothing: a
   * renewal that fails lets the message come back early, at-least-once still holds.
   */
  renew(key: string, value: V): void
}

export interface Leases<V> {
  /**
   * Hold `key` (with what renewing it takes) until its delivery settles: the settlement returned
   * lets go of it first, and settles nothing once `close` took it (given back: someone else may
   * hold the message by now).
   */
  hold(key: string, value: V, settlement: DeliverySettlement): DeliverySettlement
  /** Renew nothing any more; returns what was still held (to give it back) and forgets it. */
  close(): Array<[string, V]>
}

/** Creates the leases of one subscription; the timer runs from the first `hold` until `close`. */
export function createLeases<V>(options: LeasesOptions<V>): Leases<V> {
  const { leaseMs } = options
  const tickMs = Math.max(500, Math.floor(leaseMs / 3))
  const held = new Map<string, { value: V; expiresAt: number }>()
  let timer: NodeJS.Timeout | undefined
  let closed = false

  /** Renew what would run out before the tick after next. */
  const tick = (): void => {
    const now = Date.now()
    for (const [key, lease] of held) {
      if (lease.expiresAt - now > 2 * tickMs) continue
      lease.expiresAt = now + leaseMs
      try {
        options.renew(key, lease.value)
      } catch {} // as a failed renewal: the message may come back early
    }
  }

  return {
    hold(key, value, settlement) {
      if (!closed) {
        held.set(key, { value, expiresAt: Date.now() + leaseMs })
        timer ??= setInterval(tick, tickMs)
      }
      return {
        ack() {
          held.delete(key)
          return settlement.ack()
        },
        nack(requeue) {
          held.delete(key)
          return settlement.nack(requeue)
        },
        valid: () => held.has(key) && (settlement.valid?.() ?? true),
      }
    },
    close() {
      closed = true
      clearInterval(timer)
      const rest = [...held].map(([key, lease]): [string, V] => [key, lease.value])
      held.clear()
      return rest
    },
  }
}
