/**
 * Waiting with a bound for work that may never finish against a frozen broker — a polite disconnect,
 * a final commit, a consumer leaving its group — where giving up is fine and failing is no news.
 */
import { withTimeout } from '../timeout.js'

/** Resolves once `work` settled or `ms` passed, whichever is first; never rejects. */
export async function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  await withTimeout(work, ms, () => new Error('timed out')).catch(() => {})
}
