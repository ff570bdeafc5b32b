/**
 * The stream ledger: the ordered streams (Kafka partitions, Kinesis shards, Pulsar partitions) a group
 * member was assigned, each with a prefix tracker, so only the done prefix of an owned stream is
 * acknowledged (committed), in the background through a coalescer.
 *
 * - A rebalance takes streams away: nothing more is handed out or acknowledged for them. A stream
 *   handed back while its bookkeeping is still there is resumed when the group's acknowledged
 *   position shows nobody else consumed it in between (deliveries still being handled are then not
 *   handed out twice), and started over at that position otherwise.
 * - A delivery given back (nack with requeue) is handed out again after a short delay once there is
 *   room, while its stream is still ours; otherwise it stays unacknowledged and the stream's next
 *   owner gets it.
 */
import { createCoalescer } from './coalescer.js'
import type { DeliverySettlement } from './delivery.js'
import { createPrefixTracker, type PrefixTracker } from './prefix-tracker.js'

export interface StreamLedgerOptions<S> {
  /** a stream's identity (the same stream may come as different objects) */
  key(stream: S): string
  /** Acknowledge these positions; resolve once the broker confirmed them (throw: retried after a backoff). */
  commit(positions: ReadonlyArray<{ stream: S; position: number }>): Promise<void>
  /** a failed commit, for the adapter's log (it is tried again) */
  onCommitError?(error: unknown): void
  /** waits for room under the prefetch (e.g. `intake.room`) before a given-back delivery goes out again */
  room?(stale: () => boolean): Promise<void>
  /** how long a given-back delivery waits before it goes out again (default 250 ms) */
  requeueDelayMs?: number
}

/** What one fetch hands out from one stream; it ends when the stream is revoked or started over. */
export interface StreamLease<S> {
  readonly stream: S
  /** still ours, with the same bookkeeping: deliveries may be handed out under it */
  readonly valid: boolean
  /** `seq` was handed out under this lease and not given back: do not hand it out again */
  handedOut(seq: number): boolean
  /**
   * Registers `seq` as handed out and returns its settlement: ack (and nack without requeue) mark it
   * done; nack with requeue gives it back, and `again()` hands it over again later (see above).
   */
  take(seq: number, again: () => void): DeliverySettlement
  /** Positions up to `seq` carried nothing to hand out (markers, filtered records). True when that moved anything. */
  skipTo(seq: number): boolean
}

export interface StreamLedger<S> {
  /**
   * The member's assignment now (all other streams are revoked). Returns the streams handed back
   * with their bookkeeping still there: `resume` each with the group's acknowledged position, or
   * the next `lease` decides by the position it fetched from.
   */
  assign(streams: Iterable<S>): S[]
  /** Every stream revoked (the member crashed or is being replaced). */
  revokeAll(): void
  /** The group's acknowledged position of a stream `assign` returned. */
  resume(stream: S, position: number): void
  /** A lease on `stream` fetched from `fetched`, or undefined when the stream is not ours. */
  lease(stream: S, fetched: number): StreamLease<S> | undefined
  /** Acknowledge what is done now, within `ms` (before a rebalance or a retirement). Never rejects. */
  drain(ms: number): Promise<void>
  /** No further acknowledgements or redeliveries. */
  close(): void
}

interface Entry<S> {
  stream: S
  owned: boolean
  tracker?: PrefixTracker
  /** handed back with a tracker from before: decide continue or start over before using it */
  checkResume?: boolean
}

/** Creates an empty ledger. */
export function createStreamLedger<S>(options: StreamLedgerOptions<S>): StreamLedger<S> {
  const entries = new Map<string, Entry<S>>()
  const requeueDelayMs = options.requeueDelayMs ?? 250
  let closed = false

  const due = () =>
    [...entries.values()].flatMap((e) => {
      const position = e.owned && !e.checkResume ? e.tracker?.pending() : undefined
      return e.tracker && position !== undefined ? [{ e, tracker: e.tracker, position }] : []
    })
  const commits = createCoalescer({
    due: () => due().length > 0,
    async flush() {
      const batch = due()
      await options.commit(batch.map(({ e, position }) => ({ stream: e.stream, position })))
      for (const c of batch) c.tracker.confirmed(c.position)
    },
    onError: options.onCommitError,
  })

  const resume = (e: Entry<S>, position: number): void => {
    e.checkResume = false
    if (e.tracker?.resume(position) !== 'continued') e.tracker = createPrefixTracker(position)
  }

  const leaseOf = (e: Entry<S>, tracker: PrefixTracker): StreamLease<S> => {
    const lease: StreamLease<S> = {
      stream: e.stream,
      get valid() {
        return e.owned && e.tracker === tracker
      },
      handedOut: (seq) => tracker.isHandedOut(seq),
      take(seq, again) {
        tracker.add(seq)
        const done = (): void => {
          if (tracker.complete(seq) && lease.valid) commits.request()
        }
        const gone = (): boolean => closed || !lease.valid
        const redeliver = async (): Promise<void> => {
          await options.room?.(gone)
          if (!gone() && tracker.isReturned(seq)) again()
        }
        return {
          ack: done,
          nack(requeue) {
            if (!requeue) return done()
            tracker.giveBack(seq)
            setTimeout(() => void redeliver(), requeueDelayMs)
          },
        }
      },
      skipTo(seq) {
        if (!Number.isFinite(seq) || seq < tracker.next) return false
        tracker.skipTo(seq)
        commits.request()
        return true
      },
    }
    return lease
  }

  return {
    assign(streams) {
      for (const e of entries.values()) e.owned = false
      const back: S[] = []
      for (const stream of streams) {
        const e = entries.get(options.key(stream))
        if (!e) entries.set(options.key(stream), { stream, owned: true })
        else {
          e.owned = true
          e.checkResume = e.tracker !== undefined
          if (e.tracker) back.push(e.stream)
        }
      }
      return back
    },
    revokeAll() {
      for (const e of entries.values()) e.owned = false
    },
    resume(stream, position) {
      const e = entries.get(options.key(stream))
      if (!e?.owned || !e.checkResume) return
      resume(e, position)
      commits.request()
    },
    lease(stream, fetched) {
      const e = entries.get(options.key(stream))
      if (!e?.owned) return undefined
      if (!e.tracker || e.checkResume) resume(e, fetched)
      return leaseOf(e, e.tracker as PrefixTracker)
    },
    drain: (ms) => commits.drain(ms),
    close() {
      closed = true
      commits.close()
    },
  }
}
