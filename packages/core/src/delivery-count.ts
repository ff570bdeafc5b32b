/**
 * Delivery counts where the broker keeps none (capability `deliveryCount`: `flag` or `none`):
 * core counts deliveries per (group, message id) so that a message that keeps coming back — its
 * handler crashes the process, say — is dead-lettered after the configured attempts instead of
 * looping forever. The count lives in the idempotency store when it can count (a shared store
 * makes it survive the process), otherwise in this process's memory.
 */
import type { IdempotencyStore } from './idempotency.js'
import { createMemoryIdempotencyStore } from './idempotency.js'

/** How long a delivery count is kept without news of its message. */
const COUNT_TTL_MS = 7 * 24 * 60 * 60 * 1000

export interface DeliveryCounter {
  /** whether the counts survive this process (a shared store) */
  readonly shared: boolean
  /** record one more delivery of `key`; returns this delivery's number (at least `atLeast`) */
  count(key: string, atLeast: number): Promise<number>
  /** the message was settled: forget its count */
  forget(key: string): Promise<void>
}

/** Counts in `store` when it implements counting, else in memory. */
export function createDeliveryCounter(store: IdempotencyStore): DeliveryCounter {
  const counting =
    typeof store.countDelivery === 'function' && typeof store.forgetDeliveries === 'function'
      ? store
      : createMemoryIdempotencyStore()
  const shared = counting === store && !isMemoryDefault(store)
  return {
    shared,
    count: (key, atLeast) =>
      (counting.countDelivery as NonNullable<IdempotencyStore['countDelivery']>)(key, atLeast, COUNT_TTL_MS),
    forget: (key) => (counting.forgetDeliveries as NonNullable<IdempotencyStore['forgetDeliveries']>)(key),
  }
}

const memoryDefaults = new WeakSet<IdempotencyStore>()

/** Marks the store core created itself (counts then do not survive the process). */
export function markMemoryDefault(store: IdempotencyStore): IdempotencyStore {
  memoryDefaults.add(store)
  return store
}

function isMemoryDefault(store: IdempotencyStore): boolean {
  return memoryDefaults.has(store)
}
