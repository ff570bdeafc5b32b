/** Idempotency stores: remember which message ids a group has handled. */

/** Pluggable store (memory by default; Redis, SQL… by implementing these three methods). */
export interface IdempotencyStore {
  /** true when `key` was recorded as handled and has not expired */
  has(key: string): Promise<boolean>
  /** record `key` as handled for `ttlMs` */
  add(key: string, ttlMs: number): Promise<void>
  /** optional: release resources */
  close?(): Promise<void>
}

/** In-process store with expiry; bounded by `maxEntries` (oldest evicted first). */
export function createMemoryIdempotencyStore(options: { maxEntries?: number } = {}): IdempotencyStore {
  const max = options.maxEntries ?? 100_000
  const entries = new Map<string, number>()
  return {
    async has(key) {
      const expires = entries.get(key)
      if (expires === undefined) return false
      if (expires <= Date.now()) {
        entries.delete(key)
        return false
      }
      return true
    },
    async add(key, ttlMs) {
      entries.delete(key)
      entries.set(key, Date.now() + ttlMs)
      while (entries.size > max) {
        const oldest = entries.keys().next().value
        if (oldest === undefined) break
        entries.delete(oldest)
      }
    },
  }
}
