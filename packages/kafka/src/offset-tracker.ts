/**
 * Per-partition bookkeeping of which records were handed out and which are done, so that only the
 * processed prefix of a partition is committed. Pure: no kafkajs, no timers.
 *
 * Offsets handed out are strictly increasing but may have gaps (compaction, transaction markers).
 * Callers read the counters below; only the methods change them.
 */
type EntryState = 'in-flight' | 'done' | 'returned'

export class OffsetTracker {
  /** the offset to commit: every record handed out below it is done */
  frontier: number
  /** the last offset known to be committed */
  committed: number
  /** one past the highest offset handed out (or skipped) */
  next: number
  /** records handed out and neither done nor given back */
  inFlight = 0
  /** handed-out offsets at or above the frontier, in order (a Map keeps insertion order) */
  private readonly entries = new Map<number, EntryState>()

  /** `start`: the offset consumption starts at (the group's committed offset for the partition). */
  constructor(start: number) {
    this.frontier = start
    this.committed = start
    this.next = start
  }

  /** True when `offset` was handed out before and must not be handed out again (unless given back). */
  isHandedOut(offset: number): boolean {
    return offset < this.next && this.entries.get(offset) !== 'returned'
  }

  /** True when `offset` was given back (nack with requeue) and may be handed out again. */
  isReturned(offset: number): boolean {
    return this.entries.get(offset) === 'returned'
  }

  /** Register a record handed to core. Offsets must increase; a given-back offset may be reclaimed. */
  add(offset: number): void {
    const state = this.entries.get(offset)
    if (state !== undefined && state !== 'returned') throw new Error(`offset ${offset} is already handed out`)
    if (state === undefined && offset < this.next)
      throw new Error(`offset ${offset} is below the next expected offset ${this.next}`)
    this.entries.set(offset, 'in-flight')
    this.inFlight++
    if (state === undefined) this.next = offset + 1
  }

  /** Offsets up to `offset` that carried no record for core count as done once everything before them is. */
  skipTo(offset: number): void {
    if (offset < this.next) return
    this.add(offset)
    this.complete(offset)
  }

  /** The record is done (acked, or dropped on purpose). Returns true when the frontier moved. */
  complete(offset: number): boolean {
    const state = this.entries.get(offset)
    if (state === undefined || state === 'done') return false
    if (state === 'in-flight') this.inFlight--
    this.entries.set(offset, 'done')
    let moved = false
    for (const [o, s] of this.entries) {
      if (s !== 'done') break
      this.entries.delete(o)
      this.frontier = o + 1
      moved = true
    }
    return moved
  }

  /** The record was given back (nack with requeue): the frontier stays below it until it is done. */
  giveBack(offset: number): void {
    if (this.entries.get(offset) !== 'in-flight') return
    this.entries.set(offset, 'returned')
    this.inFlight--
  }

  /** The offset to commit now, or undefined when the frontier is already committed. */
  pendingCommit(): number | undefined {
    return this.frontier > this.committed ? this.frontier : undefined
  }

  /** The broker confirmed a commit of `offset`. */
  markCommitted(offset: number): void {
    if (offset > this.committed) this.committed = offset
  }

  /**
   * The partition was (re)assigned and the group's committed offset is `fetchOffset`. When it lies
   * between our last confirmed commit and our frontier, nobody else consumed the partition in
   * between: keep the bookkeeping (records still in flight with core are not handed out twice).
   * Otherwise the caller starts over with a new tracker at `fetchOffset`.
   */
  resume(fetchOffset: number): 'continued' | 'reset' {
    if (fetchOffset < this.committed || fetchOffset > this.frontier) return 'reset'
    this.committed = fetchOffset
    return 'continued'
  }
}
