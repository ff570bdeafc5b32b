/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** give up after this many ms (default 5_000) */
  timeoutMs?: number
  /** poll every this many ms (default 20) */
  intervalMs?: number
  /** what was awaited, for the timeout error */
  message?: string
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Poll `condition` until it returns a truthy value (or a promise of one) and resolve with it.
 * A condition that throws counts as "not yet"; on timeout the last error is the `cause`.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 5_000
  const intervalMs = options.intervalMs ?? 20
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await condition()
      if (value) return value as NonNullable<T>
      lastError = undefined
    } catch (error) {
      lastError = error
    }
    const left = deadline - Date.now()
    if (left <= 0) break
    await sleep(Math.min(intervalMs, left))
  }
  const what = options.message ?? 'condition'
  const detail = lastError instanceof Error ? `: ${lastError.message}` : ''
  throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms${detail}`, { cause: lastError })
}
