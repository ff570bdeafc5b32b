/**
 * The settled prefix of one ordered stream of deliveries: which were handed out and which are done,
 * so that only a position below which everything is done gets acknowledged — a Kafka partition's
 * committed offset, a RabbitMQ channel's `multiple` ack up to a delivery tag. With concurrency > 1
 * deliveries finish out of order; acknowledging past an unfinished one would lose it on a crash.
 *
 * Sequence numbers (offsets, delivery tags) handed out increase but may have gaps (compaction,
 * transaction markers). Pure: no I/O, no timers; pair it with the coalescer to send the position.
 */

export interface PrefixTracker {
  /** the position to acknowledge: everything handed out below it is done */
  readonly frontier: number
  /** the last position the broker confirmed */
  readonly acknowledged: number
  /** one past the highest sequence number handed out (or skipped) */
  readonly next: number
  /** handed out and neither done nor given back */
  readonly inFlight: number
  /** True when `seq` was handed out before and must not be again (unless given back). */
  isHandedOut(seq: number): boolean
  /** True when `seq` was given back (nack with requeue) and may be handed out again. */
  isReturned(seq: number): boolean
  /** Register a delivery handed out. Sequence numbers must increase; a given-back one may be reclaimed. */
  add(seq: number): void
  /** Numbers up to `seq` that carried nothing to hand out count as done once everything before them is. */
  skipTo(seq: number): void
  /** The delivery is done (acked, or dropped on purpose). Returns true when the frontier moved. */
  complete(seq: number): boolean
  /** The delivery was given back to be handed out again: the frontier stays below it until it is done. */
  giveBack(seq: number): void
  /** The position to acknowledge now, or undefined when the frontier is already acknowledged. */
  pending(): number | undefined
  /** The broker confirmed an acknowledgement of `position`. */
  confirmed(position: number): void
  /**
   * The stream was handed to us again and the broker's acknowledged position is `position`. When
   * it lies between our last confirmed position and our frontier, nobody else consumed in between:
   * keep the bookkeeping (deliveries still being handled are not handed out twice). Otherwise the
   * caller starts over with a new tracker at `position`.
   */
  resume(position: number): 'continued' | 'reset'
}

type State = 'in-flight' | 'done' | 'returned'

/** Creates a tracker for a stream whose next delivery is `start` (e.g. the committed offset). */
export function createPrefixTracker(start: number): PrefixTracker {
  let frontier = start
  let acknowledged = start
  let next = start
  let inFlight = 0
  // handed-out numbers at or above the frontier, in order (a Map keeps insertion order)
  const entries = new Map<number, State>()

  const tracker: PrefixTracker = {
    get frontier() {
      return frontier
    },
    get acknowledged() {
      return acknowledged
    },
    get next() {
      return next
    },
    get inFlight() {
      return inFlight
    },
    isHandedOut: (seq) => seq < next && entries.get(seq) !== 'returned',
    isReturned: (seq) => entries.get(seq) === 'returned',
    add(seq) {
      const state = entries.get(seq)
      if (state !== undefined && state !== 'returned') throw new Error(`${seq} is already handed out`)
      if (state === undefined && seq < next) throw new Error(`${seq} is below the next expected ${next}`)
      entries.set(seq, 'in-flight')
      inFlight += 1
      if (state === undefined) next = seq + 1
    },
    skipTo(seq) {
      if (seq < next) return
      tracker.add(seq)
      tracker.complete(seq)
    },
    complete(seq) {
      const state = entries.get(seq)
      if (state === undefined || state === 'done') return false
      if (state === 'in-flight') inFlight -= 1
      entries.set(seq, 'done')
      let moved = false
      for (const [s, st] of entries) {
        if (st !== 'done') break
        entries.delete(s)
        frontier = s + 1
        moved = true
      }
      return moved
    },
    giveBack(seq) {
      if (entries.get(seq) !== 'in-flight') return
      entries.set(seq, 'returned')
      inFlight -= 1
    },
    pending: () => (frontier > acknowledged ? frontier : undefined),
    confirmed(position) {
      if (position > acknowledged) acknowledged = position
    },
    resume(position) {
      if (position < acknowledged || position > frontier) return 'reset'
      acknowledged = position
      return 'continued'
    },
  }
  return tracker
}
