/**
 * The outbox: where sends wait for the broker. Concurrent `send` calls are coalesced into batches
 * handed to the adapter's `flush` at the end of the current tick (or after `lingerMs`); through an
 * outage each message waits for the reconnect until its own deadline, then its send rejects with
 * MSGKIT_PUBLISH_TIMEOUT. Every send settles exactly once. The adapter only says how to put a batch
 * on the wire and how to classify what went wrong.
 */
import type { BackoffOptions } from '../api.js'
import { ErrorCodes, MsgkitError } from '../errors.js'
import { describeError } from '../events.js'
import { backoffDelay } from '../retry.js'
import { createDeadlineTimer, type DeadlineHandle } from './deadlines.js'
import { closedError, type ErrorTable, failureKind, finalError } from './errors.js'
import type { Supervisor } from './supervisor.js'

/** One message waiting in the outbox, in the adapter's own prepared (wire) form. */
export interface OutboxEntry<W> {
  readonly topic: string
  readonly wire: W
  /** for batching by size; whatever unit the adapter's batch limit uses */
  readonly bytes: number
  readonly deadline: number
}

/**
 * Puts a batch on the wire and resolves once the broker confirmed it. Resolve with nothing when
 * every entry was confirmed, or with one outcome per entry (`undefined` = confirmed, otherwise the
 * error for that entry: classified like a thrown one). Throwing fails the whole batch, except the
 * entries already passed to `confirmed`.
 *
 * `confirmed(index)` (optional to call): the broker confirmed that entry now. Its send settles
 * without waiting for the rest of the batch, and it is never sent again, whatever the batch's end.
 * Brokers that confirm message by message (RabbitMQ) call it from their confirm callback, so a
 * caller does not wait for the slowest confirm of its batch.
 */
export type FlushBatch<S, W> = (
  session: S,
  batch: ReadonlyArray<OutboxEntry<W>>,
  confirmed: (index: number) => void,
) => Promise<undefined | ReadonlyArray<unknown>>

export interface OutboxOptions<S, W> {
  /** transport name for texts */
  name: string
  supervisor: Supervisor<S>
  errors: ErrorTable
  flush: FlushBatch<S, W>
  /** most entries per batch (default 500) */
  maxBatchMessages?: number
  /** most `bytes` per batch (default unlimited); an entry larger than this goes alone */
  maxBatchBytes?: number
  /** wait this long for more sends before flushing (default 0: at the end of the current tick) */
  lingerMs?: number
  /**
   * batches on the wire at once (default 1). Publish order holds when the batches on the wire fail
   * together (a lost connection: they go back in order); a transient failure of one batch while a
   * later one succeeds reorders them, so keep 1 where the broker refuses single messages that way.
   */
  maxInFlight?: number
  /** backoff between transient failures (default 50 ms doubling to 1 s) */
  backoff?: BackoffOptions
}

export interface Outbox<W> {
  /** Queue `entries` (one send); resolves once all are confirmed, rejects once with the first failure. */
  send(topic: string, wires: ReadonlyArray<{ wire: W; bytes: number }>, deadline: number): Promise<void>
  /**
   * The same for `items` in the adapter's own form, each turned into its wire form by `prepare`. A
   * `prepare` that throws (a message too large, a bad header) rejects the send and queues nothing;
   * the promise is the outbox's own, so an adapter's `send` can return it as it is.
   */
  send<M>(
    topic: string,
    items: ReadonlyArray<M>,
    deadline: number,
    prepare: (item: M) => { wire: W; bytes: number },
  ): Promise<void>
  /** entries queued or on the wire */
  readonly pending: number
  /**
   * Stop accepting sends (they reject with MSGKIT_CLOSED); give what is queued up to `graceMs` to be
   * confirmed, then reject the rest with MSGKIT_CLOSED. Idempotent.
   */
  close(graceMs?: number): Promise<void>
}

/** How long close() gives queued sends by default. */
export const DEFAULT_CLOSE_GRACE_MS = 5_000

interface Ticket {
  remaining: number
  settled: boolean
  resolve(): void
  reject(error: unknown): void
  deadline: DeadlineHandle
  topic: string
}

interface Item<W> extends OutboxEntry<W> {
  ticket: Ticket
  /** publish order: failed batches go back in it, whatever order they failed in */
  seq: number
  /** this entry failed as part of a batch: send it alone to learn whether it is the culprit */
  alone: boolean
  /** the broker confirmed it (counted in its ticket): never sent again */
  done: boolean
}

/** Creates an outbox on a supervisor. */
export function createOutbox<S, W>(options: OutboxOptions<S, W>): Outbox<W> {
  const { name, supervisor, errors } = options
  const maxMessages = options.maxBatchMessages ?? 500
  const maxBytes = options.maxBatchBytes ?? Number.POSITIVE_INFINITY
  const lingerMs = options.lingerMs ?? 0
  const maxInFlight = options.maxInFlight ?? 1
  const backoff = options.backoff ?? { initialMs: 50, maxMs: 1_000, multiplier: 2, jitter: 0.2 }
  const deadlines = createDeadlineTimer()

  // a FIFO of items: an array with a moving head, compacted now and then (no shift() on a long array)
  let queue: Array<Item<W> | undefined> = []
  let head = 0
  let queued = 0
  let seq = 0
  let onWire = 0
  let flushes = 0
  let failures = 0
  /** a run is due: on this tick's end (`true`) or after the linger (its timer) */
  let scheduled: NodeJS.Timeout | true | undefined
  let retryTimer: NodeJS.Timeout | undefined
  let waitingForSession = false
  let closing = false
  let abandoned = false
  let lastProblem: unknown
  const idle = new Set<() => void>()
  /** batches handed to flush and not finished yet */
  const wire = new Set<Array<Item<W>>>()

  const settle = (ticket: Ticket, error?: unknown): void => {
    if (ticket.settled) return
    ticket.settled = true
    ticket.deadline.cancel()
    if (error === undefined) ticket.resolve()
    else ticket.reject(error)
  }

  const timeoutError = (ticket: Ticket): MsgkitError =>
    new MsgkitError(
      ErrorCodes.PUBLISH_TIMEOUT,
      `Publishing to ${ticket.topic} was not confirmed by ${name} before its deadline${
        lastProblem === undefined ? '' : ` (last problem: ${describeError(lastProblem).message})`
      }. The broker may be unreachable; the message may or may not have been stored.`,
      { retriable: true, details: { topic: ticket.topic, transport: name } },
    )

  const push = (item: Item<W>): void => {
    queue.push(item)
    queued += 1
  }
  /** put items back at the front, in publish order */
  const unshift = (items: ReadonlyArray<Item<W>>): void => {
    const live = items.filter((i) => !i.ticket.settled)
    if (live.length === 0) return
    const next = queue[head]
    if (next && next.seq < (live[live.length - 1] as Item<W>).seq) {
      // batches that were on the wire together come back one by one: merge them into their places
      queue = [...live, ...(queue.slice(head) as Array<Item<W>>)].sort((a, b) => a.seq - b.seq)
      head = 0
    } else if (head >= live.length) {
      head -= live.length
      for (let i = 0; i < live.length; i++) queue[head + i] = live[i]
    } else {
      queue = [...live, ...queue.slice(head)]
      head = 0
    }
    queued += live.length
  }
  const compact = (): void => {
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head)
      head = 0
    }
  }

  const take = (): Array<Item<W>> => {
    const batch: Array<Item<W>> = []
    let bytes = 0
    while (head < queue.length) {
      const next = queue[head] as Item<W>
      if (next.ticket.settled) {
        queue[head++] = undefined
        queued -= 1
        continue
      }
      if (batch.length > 0) {
        const first = batch[0] as Item<W>
        if (next.alone || first.alone || batch.length >= maxMessages || bytes + next.bytes > maxBytes) break
      }
      queue[head++] = undefined
      queued -= 1
      batch.push(next)
      bytes += next.bytes
    }
    compact()
    return batch
  }

  const checkIdle = (): void => {
    if (queued === 0 && onWire === 0) for (const f of [...idle]) f()
  }

  const schedule = (): void => {
    if (scheduled || retryTimer || waitingForSession || abandoned) return
    if (flushes >= maxInFlight || queued === 0) return
    if (lingerMs > 0) scheduled = setTimeout(run, lingerMs)
    else {
      // once the current callback has run (scheduled from a promise job: once the promise jobs
      // have run): the sends of the callers one I/O event woke (confirms read from one socket
      // chunk) or one loop made share a batch, and a lone publish goes out in this turn rather
      // than one I/O turn later
      scheduled = true
      process.nextTick(run)
    }
  }

  const retryLater = (): void => {
    if (retryTimer || abandoned) return
    failures += 1
    retryTimer = setTimeout(
      () => {
        retryTimer = undefined
        schedule()
      },
      backoffDelay(failures, backoff),
    )
  }

  const confirm = (item: Item<W>): void => {
    if (item.done) return
    item.done = true
    item.ticket.remaining -= 1
    if (item.ticket.remaining === 0) settle(item.ticket)
  }

  const fail = (item: Item<W>, error: unknown): void => {
    item.ticket.remaining = 0
    settle(item.ticket, error)
  }

  /** Sorts one failed entry by its error's kind. Returns whether it goes back to the queue. */
  const onFailure = (item: Item<W>, error: unknown, session: S, inBatch: boolean): 'retry' | 'done' => {
    if (item.ticket.settled) return 'done'
    const kind = failureKind(errors, error)
    lastProblem = error
    if (kind === 'connection') {
      supervisor.lost(session, error)
      return 'retry'
    }
    if (kind === 'transient') return 'retry'
    if (inBatch) {
      // one bad message must not fail its neighbours: try each alone
      item.alone = true
      return 'retry'
    }
    fail(item, finalError(errors, error, { operation: 'publish', topic: item.topic }))
    return 'done'
  }

  const run = (): void => {
    scheduled = undefined
    if (abandoned || queued === 0 || flushes >= maxInFlight) return
    if (supervisor.state === 'closed') {
      // the transport closed underneath us: nothing queued can go out any more
      for (let i = head; i < queue.length; i++) {
        const item = queue[i]
        if (item) settle(item.ticket, closedError(name))
      }
      queue = []
      head = 0
      queued = 0
      checkIdle()
      return
    }
    const session = supervisor.session
    if (session === undefined) {
      // down: wait for the reconnect (every entry still has its own deadline)
      waitingForSession = true
      const until = Date.now() + 3_600_000
      supervisor
        .waitUp(until, () => new MsgkitError(ErrorCodes.PUBLISH_TIMEOUT, `${name} stayed unreachable`))
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => {
          waitingForSession = false
          schedule()
        })
      return
    }
    const batch = take()
    if (batch.length === 0) {
      checkIdle()
      return
    }
    flushes += 1
    onWire += batch.length
    wire.add(batch)
    void flushBatch(session, batch).finally(() => {
      wire.delete(batch)
      flushes -= 1
      onWire -= batch.length
      schedule()
      checkIdle()
    })
    // more room on the wire: start the next batch now
    schedule()
  }

  const flushBatch = async (session: S, batch: Array<Item<W>>): Promise<void> => {
    let outcomes: undefined | ReadonlyArray<unknown>
    try {
      outcomes = await options.flush(session, batch, (i) => {
        const item = batch[i]
        if (item && !abandoned) confirm(item)
      })
    } catch (error) {
      if (abandoned) return
      const back = batch.filter(
        (item) => !item.done && onFailure(item, error, session, batch.length > 1) === 'retry',
      )
      unshift(back)
      if (failureKind(errors, error) === 'transient') retryLater()
      return
    }
    if (abandoned) return
    const back: Array<Item<W>> = []
    let transient = false
    for (const [i, item] of batch.entries()) {
      const error = outcomes?.[i]
      if (item.done || error === undefined || error === null) confirm(item)
      else if (onFailure(item, error, session, false) === 'retry') {
        back.push(item)
        if (failureKind(errors, error) === 'transient') transient = true
      }
    }
    if (back.length < batch.length) failures = 0
    unshift(back)
    if (transient) retryLater()
  }

  return {
    send(
      topic: string,
      items: ReadonlyArray<unknown>,
      deadline: number,
      prepare?: (item: unknown) => { wire: W; bytes: number },
    ) {
      if (closing || abandoned) return Promise.reject(closedError(name))
      let wires: ReadonlyArray<{ wire: W; bytes: number }>
      try {
        wires = prepare ? items.map(prepare) : (items as ReadonlyArray<{ wire: W; bytes: number }>)
      } catch (error) {
        return Promise.reject(error)
      }
      if (wires.length === 0) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const ticket: Ticket = {
          remaining: wires.length,
          settled: false,
          resolve,
          reject,
          topic,
          deadline: { cancel() {} },
        }
        ticket.deadline = deadlines.schedule(deadline, () => settle(ticket, timeoutError(ticket)))
        for (const w of wires)
          push({
            topic,
            wire: w.wire,
            bytes: w.bytes,
            deadline,
            ticket,
            alone: false,
            done: false,
            seq: seq++,
          })
        schedule()
      })
    },

    get pending() {
      return queued + onWire
    },

    async close(graceMs = DEFAULT_CLOSE_GRACE_MS) {
      if (abandoned) return
      closing = true
      if (queued + onWire > 0) {
        let timer: NodeJS.Timeout | undefined
        let done!: () => void
        await Promise.race([
          new Promise<void>((resolve) => {
            done = resolve
            idle.add(done)
          }),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, graceMs)
          }),
        ])
        idle.delete(done)
        clearTimeout(timer)
      }
      abandoned = true
      if (scheduled) {
        if (scheduled !== true) clearTimeout(scheduled)
        scheduled = undefined
      }
      clearTimeout(retryTimer)
      retryTimer = undefined
      const error = new MsgkitError(
        ErrorCodes.CLOSED,
        `The ${name} transport was closed before this message was confirmed; it may or may not have been stored.`,
      )
      for (let i = head; i < queue.length; i++) {
        const item = queue[i]
        if (item) settle(item.ticket, error)
      }
      // a flush that never returns (a frozen broker) must not keep its sends open forever
      for (const batch of wire) for (const item of batch) settle(item.ticket, error)
      queue = []
      head = 0
      queued = 0
      deadlines.clear()
    },
  }
}
