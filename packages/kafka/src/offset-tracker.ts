/**
 * Per-partition bookkeeping of which records were handed out and which are done, so that only the
 * processed prefix of a partition is committed. Pure: no kafkajs, no timers.
 *
 * Offsets handed out are strictly increasing but may have gaps (compaction, transaction markers).
 * `frontier` is the offset to commit: every record handed out below it is done.
 */

type EntryState = 'in-flight' | 'done' | 'returned'

interface Entry {
  offset: number
  state: EntryState
}

/** The outcome of re-assigning a partition: keep the bookkeeping or start over. */
export type ResumeOutcome = 'continued' | 'reset'

export class OffsetTracker {
  /** records handed out at or above the frontier, in offset order; entries before `head` are gone */
  private entries: Entry[] = []
  private head = 0
  private byOffset = new Map<number, Entry>()
  private frontierOffset: number
  private committedOffset: number
  private nextOffset: number
  private inFlightCount = 0

  /** `start`: the offset consumption starts at (the group's committed offset for the partition). */
  constructor(start: number) {
    this.frontierOffset = start
    this.committedOffset = start
    this.nextOffset = start
  }

  /** Offset to commit: every handed-out record below it is done. */
  get frontier(): number {
    return this.frontierOffset
  }

  /** Last offset known to be committed. */
  get committed(): number {
    return this.committedOffset
  }

  /** One past the highest offset handed out (or skipped). */
  get next(): number {
    return this.nextOffset
  }

  /** Records handed out and neither done nor given back. */
  get inFlight(): number {
    return this.inFlightCount
  }

  /** True when `offset` was handed out before and must not be handed out again (unless given back). */
  isHandedOut(offset: number): boolean {
    if (offset >= this.nextOffset) return false
    const entry = this.byOffset.get(offset)
    return entry === undefined || entry.state !== 'returned'
  }

  /** True when `offset` was given back (nack with requeue) and may be handed out again. */
  isReturned(offset: number): boolean {
    return this.byOffset.get(offset)?.state === 'returned'
  }

  /** Register a record handed to core. Offsets must increase; a given-back offset may be reclaimed. */
  add(offset: number): void {
    const existing = this.byOffset.get(offset)
    if (existing) {
      if (existing.state !== 'returned') throw new Error(`offset ${offset} is already handed out`)
      existing.state = 'in-flight'
      this.inFlightCount++
      return
    }
    if (offset < this.nextOffset)
      throw new Error(`offset ${offset} is below the next expected offset ${this.nextOffset}`)
    const entry: Entry = { offset, state: 'in-flight' }
    this.entries.push(entry)
    this.byOffset.set(offset, entry)
    this.nextOffset = offset + 1
    this.inFlightCount++
  }

  /**
   * Offsets up to and including `offset` that carried no record for core (transaction markers,
   * filtered records) count as done once everything before them is.
   */
  skipTo(offset: number): void {
    if (offset < this.nextOffset) return
    this.add(offset)
    this.complete(offset)
  }

  /** The record is done (acked, or dropped on purpose). Returns true when the frontier moved. */
  complete(offset: number): boolean {
    const entry = this.byOffset.get(offset)
    if (!entry || entry.state === 'done') return false
    if (entry.state === 'in-flight') this.inFlightCount--
    entry.state = 'done'
    return this.advance()
  }

  /** The record was given back (nack with requeue): the frontier stays below it until it is done. */
  giveBack(offset: number): void {
    const entry = this.byOffset.get(offset)
    if (entry && entry.state === 'in-flight') {
      entry.state = 'returned'
      this.inFlightCount--
    }
  }

  /** The offset to commit now, or undefined when the frontier is already committed. */
  pendingCommit(): number | undefined {
    return this.frontierOffset > this.committedOffset ? this.frontierOffset : undefined
  }

  /** The broker confirmed a commit of `offset`. */
  markCommitted(offset: number): void {
    if (offset > this.committedOffset) this.committedOffset = offset
  }

  /**
   * The partition was (re)assigned and the group's committed offset is `fetchOffset`. When it lies
   * between our last confirmed commit and our frontier, nobody else consumed the partition in
   * between: keep the bookkeeping (records still in flight with core are not handed out twice).
   * Otherwise start over at `fetchOffset`; the caller must then use a new tracker.
   */
  resume(fetchOffset: number): ResumeOutcome {
    if (fetchOffset < this.committedOffset || fetchOffset > this.frontierOffset) return 'reset'
    this.committedOffset = fetchOffset
    return 'continued'
  }

  private advance(): boolean {
    let moved = false
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!
      if (entry.state !== 'done') break
      this.frontierOffset = entry.offset + 1
      this.byOffset.delete(entry.offset)
      this.head++
      moved = true
    }
    // compact now and then so the array does not grow without bound
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
    return moved
  }
}
