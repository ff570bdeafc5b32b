/**
 * A flush for brokers whose batch call takes one destination (SQS: one queue per SendMessageBatch
 * or DeleteMessageBatch, SNS: one topic per PublishBatch): the outbox's batch goes out as one call
 * per key, all at once, and each entry's outcome is put back in its place. A call that fails as a
 * whole fails the flush (the outbox retries it, or tries each entry alone) once every call has
 * answered; what the other calls confirmed meanwhile is remembered and not sent again. Given the
 * outbox's `confirmed`, each call's confirmed entries are passed to it as the call answers, so their
 * sends settle without waiting for the other calls.
 */
import type { FlushBatch, OutboxEntry } from './outbox.js'

/** One batch call for `key`: like a `FlushBatch`, outcomes in the order of `entries`. */
export type KeyedCall<S, W> = (
  session: S,
  key: string,
  entries: ReadonlyArray<OutboxEntry<W>>,
) => Promise<undefined | ReadonlyArray<unknown>>

/** Creates a flush that groups a batch by `keyOf(entry)` and makes one `call` per group. */
export function flushByKey<S, W>(
  keyOf: (entry: OutboxEntry<W>) => string,
  call: KeyedCall<S, W>,
): (
  session: S,
  batch: ReadonlyArray<OutboxEntry<W>>,
  settled?: (index: number) => void,
) => ReturnType<FlushBatch<S, W>> {
  const confirmed = new WeakSet<OutboxEntry<W>>()
  return async (session, batch, settled) => {
    const groups = new Map<string, number[]>()
    for (const [i, entry] of batch.entries()) {
      if (confirmed.has(entry)) continue
      const key = keyOf(entry)
      groups.set(key, [...(groups.get(key) ?? []), i])
    }
    const outcomes: unknown[] = batch.map(() => undefined)
    const send = async ([key, indexes]: [string, number[]]): Promise<void> => {
      const entries = indexes.map((i) => batch[i] as OutboxEntry<W>)
      const results = await call(session, key, entries)
      for (const [k, i] of indexes.entries()) {
        outcomes[i] = results?.[k]
        if (outcomes[i] !== undefined && outcomes[i] !== null) continue
        confirmed.add(batch[i] as OutboxEntry<W>)
        settled?.(i)
      }
    }
    const failed = (await Promise.allSettled([...groups].map(send))).find((r) => r.status === 'rejected')
    if (failed) throw failed.reason
    return outcomes
  }
}
