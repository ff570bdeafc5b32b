import type { BackoffOptions } from './api.js'

/** Delay before retry number `retry` (1 = first retry): exponential, capped, with jitter. */
export function backoffDelay(retry: number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? 100
  const max = options.maxMs ?? 10_000
  const multiplier = options.multiplier ?? 2
  const jitter = Math.min(Math.max(options.jitter ?? 0.2, 0), 1)
  const base = Math.min(max, initial * multiplier ** Math.max(0, retry - 1))
  // jitter only ever shortens up to `jitter` of the tail above... keep the floor at (1 - jitter/2) * base
  const spread = base * jitter
  return Math.max(0, Math.round(base - spread / 2 + Math.random() * spread))
}

/** Sleeps `ms`, resolving early (with false) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      resolve(false)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
