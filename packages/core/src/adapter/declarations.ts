/**
 * Declarations done once: provisioning is idempotent on every broker but costs round trips, and
 * core asks for it on every subscribe and dead-letter topic. Each key's work runs once; callers
 * that come while it runs share it; a failure is forgotten, so the next call tries again. What the
 * work resolves to (a queue URL, a topic ARN) is kept with it and handed to every caller.
 */

export interface Declarations {
  /** Run `work` for `key` unless it succeeded before (or is under way: then wait for that run). */
  once<T = void>(key: string, work: () => Promise<T>): Promise<T>
  /**
   * Forget `key` (it was deleted behind our back), every key for which `key` returns true, or every
   * key (a new session knows nothing).
   */
  forget(key?: string | ((key: string) => boolean)): void
}

/** Creates an empty set of declarations (one per session, or one per transport where they outlive sessions). */
export function createDeclarations(): Declarations {
  const runs = new Map<string, Promise<unknown>>()
  return {
    once<T>(key: string, work: () => Promise<T>): Promise<T> {
      let run = runs.get(key) as Promise<T> | undefined
      if (!run) {
        const started: Promise<T> = (async () => work())().catch((error: unknown) => {
          if (runs.get(key) === started) runs.delete(key)
          throw error
        })
        run = started
        runs.set(key, run)
      }
      return run
    },
    forget(key) {
      if (key === undefined) runs.clear()
      else if (typeof key === 'string') runs.delete(key)
      else for (const k of [...runs.keys()]) if (key(k)) runs.delete(k)
    },
  }
}
