/** Idempotency stores: remember which message ids a group has handled, and how often each was delivered. */

/** Pluggable store (memory by default; Redis, SQL… by implementing these methods). */
export interface IdempotencyStore {
  /** true when `key` was recorded as handled and has not expired */
  has(key: string): Promise<boolean>
  /** record `key` as handled for `ttlMs` */
  add(key: string, ttlMs: number): Promise<void>
  /**
   * Optional: count one more delivery of `key` and return the count, at least `atLeast`
   * (atomically: count = max(stored + 1, atLeast)), kept for `ttlMs`. A store shared by every
   * instance of a service lets msgkit stop a message that crashes whichever process handles it,
   * on brokers that keep no delivery count (Kafka) or only a redelivered flag (ActiveMQ).
   */
  countDelivery?(key: string, atLeast: number, ttlMs: number): Promise<number>
  /** Optional: forget the delivery count of `key` (the message was settled). */
  forgetDeliveries?(key: string): Promise<void>
  /** optional: release resources */
  close?(): Promise<void>
}

/** A Map with expiry, bounded by `max` entries (oldest evicted first). */
function expiringMap<V>(max: number) {
  const entries = new Map<string, { value: V; expires: number }>()
  return {
    get(key: string): V | undefined {
      const e = entries.get(key)
      if (e === undefined) return undefined
      if (e.expires <= Date.now()) {
        entries.delete(key)
        return undefined
      }
      return e.value
    },
    set(key: string, value: V, ttlMs: number): void {
      entries.delete(key)
      entries.set(key, { value, expires: Date.now() + ttlMs })
      while (entries.size > max) {
        const oldest = entries.keys().next().value
        if (oldest === undefined) break
        entries.delete(oldest)
      }
    },
    delete(key: string): void {
      entries.delete(key)
    },
  }
}

/**
 * In-process store with expiry; bounded by `maxEntries` (oldest evicted first). Its delivery counts
 * live as long as the process: they stop a message that fails over and over in this process, not
 * one that crashes it (use a shared store for that).
 */
export function createMemoryIdempotencyStore(options: { maxEntries?: number } = {}): IdempotencyStore {
  const max = options.maxEntries ?? 100_000
  const handled = expiringMap<true>(max)
  const deliveries = expiringMap<number>(max)
  return {
    async has(key) {
      return handled.get(key) === true
    },
    async add(key, ttlMs) {
      handled.set(key, true, ttlMs)
    },
    async countDelivery(key, atLeast, ttlMs) {
      const n = Math.max((deliveries.get(key) ?? 0) + 1, atLeast)
      deliveries.set(key, n, ttlMs)
      return n
    },
    async forgetDeliveries(key) {
      deliveries.delete(key)
    },
  }
}
