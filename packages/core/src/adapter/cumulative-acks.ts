/**
 * Cumulative acks, for brokers that acknowledge "everything up to N" in one frame (AMQP 0-9-1's
 * basic.ack with `multiple`: RabbitMQ). Finished deliveries are acknowledged once per I/O turn, up
 * to the end of the contiguous finished prefix only: never past a delivery still being handled,
 * which a crash would then lose. Nacks go out at once, alone. Finished deliveries held behind a
 * slow one are acked alone once `maxHeld` of them pile up, so a slow handler cannot fill the
 * broker's prefetch window with finished but unacknowledged messages and stall the consumer.
 *
 * One per channel (sequence numbers are the channel's delivery tags). A callback that throws (the
 * channel is closing) is ignored: the broker takes back whatever was not acknowledged. Built on the
 * prefix tracker (what is done) and the coalescer (one flush per turn).
 */
import { createCoalescer } from './coalescer.js'
import { createPrefixTracker } from './prefix-tracker.js'

export interface CumulativeAcksOptions {
  /** the first sequence number (RabbitMQ: delivery tags start at 1 on every channel) */
  start: number
  /** acknowledge every outstanding delivery up to and including `seq` (basic.ack, multiple) */
  ackUpTo(seq: number): void
  /** acknowledge `seq` alone */
  ackOne(seq: number): void
  /** give `seq` back (`requeue`) or drop it, alone */
  nackOne(seq: number, requeue: boolean): void
  /** finished deliveries held behind an unfinished one before they are acked one by one (default 64) */
  maxHeld?: number
}

export interface CumulativeAcks {
  /** a delivery was handed out; sequence numbers increase */
  add(seq: number): void
  /** the delivery is done: acknowledged with the next cumulative ack */
  ack(seq: number): void
  /** give it back or drop it: sent at once */
  nack(seq: number, requeue: boolean): void
  /** acknowledge everything finished now, the held ones too (before the channel closes) */
  flush(): void
  /** nothing is sent any more (the channel is gone: the broker takes back what was not acked) */
  close(): void
}

/** Creates the ack bookkeeping of one channel. */
export function createCumulativeAcks(options: CumulativeAcksOptions): CumulativeAcks {
  const maxHeld = options.maxHeld ?? 64
  const safely = (send: () => void): void => {
    try {
      send()
    } catch {} // the channel is closing: the broker takes the message back
  }
  const tracker = createPrefixTracker(options.start)
  // settled alone (acked alone or nacked): never the end of a cumulative ack, which must be outstanding
  const alone = new Set<number>()
  // acked, above the frontier (behind an unfinished one), not sent yet
  const held = new Set<number>()
  let closed = false

  const send = (): void => {
    const upTo = tracker.pending()
    if (closed || upTo === undefined) return
    let last = upTo - 1
    while (last >= tracker.acknowledged && alone.has(last)) last--
    if (last >= tracker.acknowledged) safely(() => options.ackUpTo(last))
    tracker.confirmed(upTo)
    for (const seq of alone) if (seq < upTo) alone.delete(seq)
  }
  const coalescer = createCoalescer({
    due: () => !closed && tracker.pending() !== undefined,
    flush: async () => send(),
  })
  const complete = (seq: number): void => {
    if (!tracker.complete(seq)) return
    for (const s of held) if (s < tracker.frontier) held.delete(s)
    coalescer.request()
  }

  return {
    add: (seq) => tracker.add(seq),
    ack(seq) {
      if (closed) return
      complete(seq)
      if (seq < tracker.frontier) return
      held.add(seq)
      if (held.size < maxHeld) return
      for (const s of held) {
        safely(() => options.ackOne(s))
        alone.add(s)
      }
      held.clear()
    },
    nack(seq, requeue) {
      if (closed) return
      safely(() => options.nackOne(seq, requeue))
      alone.add(seq)
      complete(seq)
    },
    flush() {
      send()
      // finished ones held behind an unfinished delivery are acked too: handled, never handed back
      for (const s of held) safely(() => options.ackOne(s))
      held.clear()
    },
    close() {
      closed = true
      coalescer.close()
    },
  }
}
