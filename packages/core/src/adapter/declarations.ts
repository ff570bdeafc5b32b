/**
 * Declarations done once: provisioning is idempotent on every broker but costs round trips, and
 * core asks for it on every subscribe and dead-letter topic. Each key's work runs once; callers
 * that come while it runs share it; a failure is forgotten, so the next call tries again.
 */

export interface Declarations {
  /** Run `work` for `key` unless it succeeded before (or is under way: then wait for that run). */
  once(key: string, work: () => Promise<void>): Promise<void>
  /** Forget `key` (it was deleted behind our back), or every key (a new session knows nothing). */
  forget(key?: string): void
}

/** Creates an empty set of declarations (one per session, or one per transport where they outlive sessions). */
export function createDeclarations(): Declarations {
  const runs = new Map<string, Promise<void>>()
  return {
    once(key, work) {
      let run = runs.get(key)
      if (!run) {
        run = (async () => work())().catch((error: unknown) => {
          if (runs.get(key) === run) runs.delete(key)
          throw error
        })
        runs.set(key, run)
      }
      return run
    },
    forget(key) {
      if (key === undefined) runs.clear()
      else runs.delete(key)
    },
  }
}
