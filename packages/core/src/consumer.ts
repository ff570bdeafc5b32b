/**
 * The subscription engine: the one place where decoding, schema checks, concurrency, per-key
 * order, retries, dead letters, delivery counts, idempotency and graceful shutdown happen — for
 * every transport.
 */
import { SETTLED } from './adapter/delivery.js'
import type {
  CloseOptions,
  DeadLetterInfo,
  Handler,
  Message,
  Schema,
  SubscribeOptions,
  Subscription,
} from './api.js'
import { type Codec, ContentTypes } from './codec.js'
import { createDeadLetterer, readDeadLetter } from './dead-letter.js'
import type { DeliveryCounter } from './delivery-count.js'
import { ErrorCodes, isNonRetryable, MsgkitError } from './errors.js'
import { describeError } from './events.js'
import type { IdempotencyStore } from './idempotency.js'
import type { Logger } from './logger.js'
import { deadLetterTopicOf, patternToRegExp } from './names.js'
import { backoffDelay, sleep } from './retry.js'
import type { Delivery, Headers, SubscribeRequest, Transport, TransportSubscription } from './spi.js'
import type { DeliveryTrace, ProcessTrace, SubscriptionTrace, Telemetry } from './telemetry/telemetry.js'
import { describeSchemaIssues } from './topics.js'
import { runWithTraceparent } from './tracing.js'
import { isReservedHeader, WireHeaders } from './wire.js'

export interface ConsumerDeps {
  transport: Transport
  logger: Logger
  codec: Codec
  idempotencyStore: IdempotencyStore
  /** counts deliveries where the broker does not (capability deliveryCount) */
  deliveryCounter: DeliveryCounter
  emit: (event: 'retry' | 'dead-lettered' | 'dropped' | 'error', payload: never) => void
  /** called once the subscription has fully closed */
  onClosed: () => void
  publishDeadline: () => number
  /** OpenTelemetry spans and metrics (`telemetryOff` when not installed or disabled) */
  telemetry: Telemetry
}

export interface ConsumerSpec<T> {
  topic?: string
  pattern?: string
  schema?: Schema<T>
  codec?: Codec
  options: SubscribeOptions
  handler: Handler<T>
}

/** One delivery's decoded state, kept across its handler calls (retries). */
interface Job {
  delivery: Delivery
  body: unknown
  /** the first attempt's user headers (later attempts get a fresh copy) */
  userHeaders: Headers
  first: number
  dl: DeadLetterInfo | undefined
  idemKey: string | undefined
  acked: boolean
  dt: DeliveryTrace | undefined
}

/** A message without a usable body (decode or schema failed): its rejection, under way. */
class Undecodable {
  constructor(readonly rejected: Promise<void>) {}
}

const DEFAULT_CLOSE_TIMEOUT = 30_000
const DAY = 24 * 60 * 60 * 1000

/** Starts a subscription; resolves once the transport is consuming. */
export async function startConsumer<T>(spec: ConsumerSpec<T>, deps: ConsumerDeps): Promise<Subscription> {
  const { options, handler } = spec
  const { transport, logger } = deps
  const group = options.group
  const concurrency = options.concurrency ?? 1
  const ordered = options.ordered ?? transport.capabilities.orderedKeys !== false
  const maxAttempts = options.retry === false ? 1 : (options.retry?.attempts ?? 3)
  const backoff = options.retry === false ? {} : (options.retry?.backoff ?? {})
  // reading a dead-letter topic does not dead-letter again unless asked to
  const isDeadLetterTopic = spec.topic?.endsWith('.dlq') ?? false
  const deadLetter = options.deadLetter ?? (transport.capabilities.deadLetter && !isDeadLetterTopic)
  const explicitDlTopic = typeof options.deadLetter === 'object' ? options.deadLetter.topic : undefined
  const atMostOnce = options.delivery === 'at-most-once'
  const idempotency = options.idempotency
  const store =
    typeof idempotency === 'object' ? (idempotency.store ?? deps.idempotencyStore) : deps.idempotencyStore
  const idemTtl = typeof idempotency === 'object' ? (idempotency.ttlMs ?? DAY) : DAY
  // enough buffered to keep the handlers busy across a broker round trip; small enough that a crash redelivers little
  // (a transport may know better: RabbitMQ's throughput depends on a large window)
  const prefetch =
    options.prefetch ??
    transport.defaultPrefetch?.(concurrency) ??
    Math.min(1000, Math.max(16, concurrency * 8))
  const codec = spec.codec ?? deps.codec
  const name = spec.topic ?? spec.pattern ?? ''
  const telemetry = deps.telemetry
  let traces: SubscriptionTrace | undefined
  /** the subscription's instruments while telemetry records something (asked per delivery) */
  const tracing = (): SubscriptionTrace | undefined => {
    if (!telemetry.on) return undefined
    traces ??= telemetry.subscription({
      group,
      ...(spec.topic !== undefined ? { topic: spec.topic } : {}),
      ...(spec.pattern !== undefined ? { pattern: spec.pattern } : {}),
    })
    return traces
  }
  /** each delivery's trace (telemetry on), for its settle span */
  const traceOf = new WeakMap<Delivery, DeliveryTrace>()

  const pending: Delivery[] = []
  const busyKeys = new Set<string>()
  const inFlightIds = new Map<string, Promise<void>>()
  let running = 0
  let closing = false
  let closePromise: Promise<void> | undefined
  let resolveClosed!: () => void
  const closed = new Promise<void>((r) => {
    resolveClosed = r
  })
  const abort = new AbortController()
  const context = { signal: abort.signal }
  // handlers under way are counted (`running`); close() waits for the count to reach 0
  let idle: { promise: Promise<void>; resolve: () => void } | undefined
  const whenIdle = (): Promise<void> => {
    if (running === 0) return Promise.resolve()
    if (!idle) {
      let resolve!: () => void
      const promise = new Promise<void>((r) => {
        resolve = r
      })
      idle = { promise, resolve }
    }
    return idle.promise
  }
  // one promise for everyone waiting for room: push-based transports never await it, and a
  // promise per delivery would pile up (a leak, and a quadratic wake-up)
  let room: { promise: Promise<void>; resolve: () => void } | undefined

  const wakeRoom = (): void => {
    if (room && (closing || pending.length + running < prefetch)) {
      const r = room
      room = undefined
      r.resolve()
    }
  }

  const reportError = (error: unknown, what: string): void => {
    logger.error({ topic: name, group, err: describeError(error) }, what)
    deps.emit('error', { error, topic: name, group } as never)
  }

  // the broker will redeliver an unacked message: at-least-once holds, report and go on
  const settleFailed = (how: 'ack' | 'requeue') => (error: unknown) =>
    reportError(error, `msgkit could not ${how} a message`)
  const ackFailed = settleFailed('ack')
  const requeueFailed = settleFailed('requeue')
  /** Acks or gives back; never rejects. No async frame: this is every message's path. */
  const settle = (delivery: Delivery, how: 'ack' | 'requeue'): Promise<void> => {
    const failed = how === 'ack' ? ackFailed : requeueFailed
    try {
      const trace = traces ? traceOf.get(delivery) : undefined
      let settling: Promise<void>
      if (trace) {
        // the driver's own instrumentation stays quiet under msgkit's spans
        const call = (): Promise<void> =>
          telemetry.driver(() => (how === 'ack' ? delivery.ack() : delivery.nack({ requeue: true })))
        settling = trace.settle(how === 'ack' ? 'ack' : 'nack', call)
      } else if (telemetry.on) {
        settling = telemetry.driver(() => (how === 'ack' ? delivery.ack() : delivery.nack({ requeue: true })))
      } else settling = how === 'ack' ? delivery.ack() : delivery.nack({ requeue: true })
      // settled already (the memory transport, the kit's wrapper over a synchronous settle): nothing to catch
      return settling === SETTLED ? settling : settling.then(undefined, failed)
    } catch (error) {
      failed(error)
      return Promise.resolve()
    }
  }

  const deadLetterTopicFor = (topic: string): string => explicitDlTopic ?? deadLetterTopicOf(topic, group)
  const deadLetterer = createDeadLetterer({
    transport,
    topicFor: deadLetterTopicFor,
    deadline: deps.publishDeadline,
  })
  // where the broker keeps no exact delivery count, core counts (see delivery-count.ts)
  const countMode = transport.capabilities.deliveryCount
  // Core counts the times a handler started on a message where the broker keeps no exact count,
  // and wherever a shared store is configured: then a message that was only prefetched by a
  // consumer that crashed is not blamed for the crash (a broker's count includes such give-backs).
  const coreCounts = countMode !== 'exact' || deps.deliveryCounter.shared
  const countKey = (id: string): string => `deliveries:${group}:${id}`

  /** The message is done with (handled, dead-lettered or dropped): settle it and forget its count. */
  const finish = (delivery: Delivery, acked: boolean): Promise<void> => {
    if (!coreCounts) return acked ? SETTLED : settle(delivery, 'ack')
    return (async () => {
      if (!acked) await settle(delivery, 'ack')
      try {
        await deps.deliveryCounter.forget(countKey(delivery.message.id))
      } catch (error) {
        reportError(error, 'forgetting a delivery count failed')
      }
    })()
  }

  /** Gives up on a message without retrying: dead-letter it (or drop it when dead letters are off). */
  const reject = async (
    delivery: Delivery,
    reason: string,
    error: unknown,
    attempts: number,
    acked: boolean,
    /** the process span this happens in (telemetry on) */
    trace?: ProcessTrace,
  ): Promise<void> => {
    const m = delivery.message
    if (!deadLetter) {
      logger.error(
        { topic: m.topic, group, id: m.id, reason, err: describeError(error) },
        'message dropped (dead letters are off)',
      )
      trace?.rejected(error, reason, 'off', undefined)
      return finish(delivery, acked)
    }
    const dlTopic = deadLetterTopicFor(m.topic)
    const { outcome, error: problem } = await deadLetterer.send({
      message: m,
      topic: m.topic,
      group,
      reason,
      error,
      attempts,
    })
    trace?.rejected(error, reason, outcome, dlTopic)
    if (outcome === 'retry') {
      // the broker is away: the message stays where it is and comes back
      reportError(
        problem,
        `msgkit could not dead-letter message ${m.id} to ${dlTopic}; it stays on the broker`,
      )
      if (!acked) await settle(delivery, 'requeue')
      return
    }
    if (outcome === 'dropped') {
      // never back to the broker to loop: it is gone, and everyone is told
      logger.error(
        { topic: m.topic, group, id: m.id, reason, deadLetterTopic: dlTopic, err: describeError(problem) },
        'message dropped: not even a reduced dead letter could be published',
      )
      deps.emit('dropped', { topic: m.topic, group, id: m.id, reason, error: problem } as never)
      reportError(problem, `msgkit dropped message ${m.id}: its dead letter was refused by ${dlTopic}`)
      return finish(delivery, acked)
    }
    const truncated = outcome === 'reduced'
    logger.warn(
      { topic: m.topic, group, id: m.id, reason, deadLetterTopic: dlTopic, truncated },
      truncated
        ? 'message dead-lettered in reduced form (the full one did not fit)'
        : 'message dead-lettered',
    )
    deps.emit('dead-lettered', {
      topic: m.topic,
      group,
      id: m.id,
      reason,
      deadLetterTopic: dlTopic,
      ...(truncated ? { truncated } : {}),
    } as never)
    return finish(delivery, acked)
  }

  /**
   * This delivery's number when no store is asked: the broker's count, or a first delivery where
   * the broker can say it is one (only redeliveries are counted). Undefined: ask `deliveryNumber`.
   */
  const knownAttempt = (raw: Delivery['message']): number | undefined => {
    if (!coreCounts) return Math.max(1, raw.attempt ?? (raw.redelivered ? 2 : 1))
    if (countMode !== 'none' && !raw.redelivered && (raw.attempt ?? 1) <= 1) return 1
    return undefined
  }

  /** This delivery's number as core counts it (capability deliveryCount, or a shared store). */
  const deliveryNumber = async (delivery: Delivery): Promise<number> => {
    const raw = delivery.message
    const floor = raw.redelivered ? 2 : 1
    try {
      return await deps.deliveryCounter.count(countKey(raw.id), floor)
    } catch (error) {
      reportError(error, 'counting a delivery failed; going by the broker flag')
      return floor
    }
  }

  /**
   * The decoded, schema-checked body; or, for a message that has none, an `Undecodable` holding its
   * rejection (dead letter or drop). Synchronous: the fast path calls it too.
   */
  const decodeBody = (delivery: Delivery, acked: boolean, dt?: DeliveryTrace): unknown => {
    const raw = delivery.message
    let body: unknown
    try {
      // no content type: JSON (msgkit leaves the header out for it; foreign producers often do)
      body = codec.decode(raw.body, raw.headers[WireHeaders.contentType] ?? ContentTypes.json)
    } catch (error) {
      return new Undecodable(reject(delivery, 'decode-failed', error, 1, acked, dt?.process(1)))
    }
    if (!spec.schema) return body
    const result = spec.schema.safeParse(body)
    if (result.success) return result.data
    const error = new MsgkitError(
      ErrorCodes.SCHEMA_INVALID,
      `Message body does not match the topic's schema: ${describeSchemaIssues(result.error)}`,
    )
    return new Undecodable(reject(delivery, 'schema-invalid', error, 1, acked, dt?.process(1)))
  }

  /** What the handler gets. User headers are a copy: the stored ones are shared read-only. */
  const makeMessage = (
    raw: Delivery['message'],
    body: unknown,
    headers: Headers,
    attempt: number,
    dl: DeadLetterInfo | undefined,
  ): Message<T> => {
    const message: Message<T> = {
      id: raw.id,
      topic: raw.topic,
      body: body as T,
      headers,
      timestamp: raw.timestamp,
      attempt,
      redelivered: raw.redelivered,
    }
    if (raw.key !== undefined) message.key = raw.key
    if (dl) message.deadLetter = dl
    return message
  }
  const userHeadersOf = (headers: Headers): Headers => {
    const out: Headers = {}
    for (const k in headers) if (!isReservedHeader(k)) out[k] = headers[k] as string
    return out
  }
  /** the message for attempt `n`: on the first attempt no copy; a retry gets fresh headers (the handler may have changed them) */
  const messageFor = (job: Job, n: number): Message<T> =>
    makeMessage(
      job.delivery.message,
      job.body,
      n === job.first ? job.userHeaders : userHeadersOf(job.delivery.message.headers),
      n,
      job.dl,
    )

  const handle = async (delivery: Delivery): Promise<void> => {
    const raw = delivery.message
    let dt: DeliveryTrace | undefined
    const subscriptionTrace = tracing()
    if (subscriptionTrace) {
      dt = subscriptionTrace.delivery(raw)
      traceOf.set(delivery, dt)
    }
    let acked = false
    if (atMostOnce) {
      await settle(delivery, 'ack')
      acked = true
    }
    const userHeaders = userHeadersOf(raw.headers)
    const body = decodeBody(delivery, acked, dt)
    if (body instanceof Undecodable) return body.rejected

    const idemKey = idempotency ? `${group}:${raw.id}` : undefined
    if (idemKey) {
      // the same id already being handled here: wait for it, then decide
      for (let prior = inFlightIds.get(idemKey); prior; prior = inFlightIds.get(idemKey)) await prior
      try {
        if (await store.has(idemKey)) {
          logger.debug({ topic: raw.topic, group, id: raw.id }, 'duplicate skipped (idempotency)')
          return finish(delivery, acked)
        }
      } catch (error) {
        reportError(error, 'idempotency store failed; message given back')
        if (!acked) await settle(delivery, 'requeue')
        return
      }
    }

    // the broker's count costs no await; core's count may (a shared store)
    const attempt = knownAttempt(raw) ?? (await deliveryNumber(delivery))
    const job: Job = {
      delivery,
      body,
      userHeaders,
      first: attempt,
      dl: readDeadLetter(raw.headers),
      idemKey,
      acked,
      dt,
    }
    let done!: () => void
    if (idemKey) inFlightIds.set(idemKey, new Promise<void>((r) => (done = r)))
    try {
      return await attempts(job, attempt, false, undefined)
    } finally {
      if (idemKey) {
        inFlightIds.delete(idemKey)
        done()
      }
    }
  }

  /**
   * The handler calls of one delivery from `attempt` on, with retries, dead letters and the
   * final settle. `failed`: attempt `attempt` has already been made and failed with `failure`.
   */
  const attempts = async (job: Job, start: number, failed: boolean, failure: unknown): Promise<void> => {
    const { delivery, acked, dt } = job
    const raw = delivery.message
    let attempt = start
    let error: unknown = failure
    let pt: ProcessTrace | undefined
    for (;;) {
      if (!failed) {
        // delivered too often (a crash loop): dead-letter it. Not where dead letters are off: there the
        // message would be dropped on a count alone, and counts also rise for reasons that are no
        // failure (a broker counts prefetched give-backs and browsing; dead-letter topics are read
        // with dead letters off) — its handler runs, and its own failures still end in a drop
        if (attempt > maxAttempts && deadLetter) {
          return reject(
            delivery,
            'handler-failed',
            new Error(`delivered ${attempt} times, more than the ${maxAttempts} attempts allowed`),
            attempt - 1,
            acked,
            dt?.process(attempt),
          )
        }
        pt = dt?.process(attempt)
        try {
          const n = attempt
          const call = () => handler(messageFor(job, n), context)
          await (pt ? pt.run(call) : runWithTraceparent(raw.headers.traceparent, call))
        } catch (e) {
          failed = true
          error = e
        }
        if (!failed) {
          pt?.succeeded()
          if (job.idemKey) {
            try {
              await store.add(job.idemKey, idemTtl)
            } catch (e) {
              reportError(e, 'idempotency store failed to record a handled message')
            }
          }
          return finish(delivery, acked)
        }
      }
      failed = false
      if (abort.signal.aborted) {
        // close() gave up on this handler: give the message back for redelivery
        pt?.failed(error)
        if (!acked) await settle(delivery, 'requeue')
        return
      }
      if (isNonRetryable(error)) return reject(delivery, 'non-retryable', error, attempt, acked, pt)
      if (attempt >= maxAttempts) return reject(delivery, 'handler-failed', error, attempt, acked, pt)
      const delayMs = backoffDelay(attempt, backoff)
      logger.warn(
        {
          topic: raw.topic,
          group,
          id: raw.id,
          attempt: attempt,
          delayMs,
          err: describeError(error),
        },
        'handler failed; retrying',
      )
      pt?.retrying(error, delayMs)
      deps.emit('retry', {
        topic: raw.topic,
        group,
        id: raw.id,
        attempt: attempt,
        delayMs,
        error,
      } as never)
      if (!(await sleep(delayMs, abort.signal))) {
        if (!acked) await settle(delivery, 'requeue')
        return
      }
      attempt += 1
    }
  }

  const taskFailed = (error: unknown): void => reportError(error, 'msgkit consumer failed unexpectedly')
  /** a handler (and its settle) is done: its slot and key are free */
  const release = (key: string | undefined): void => {
    running -= 1
    if (key !== undefined) busyKeys.delete(key)
    if (running === 0 && idle) {
      const wake = idle
      idle = undefined
      wake.resolve()
    }
  }
  const completed = (key: string | undefined): void => {
    release(key)
    wakeRoom()
    pump()
  }
  /** `completed(key)` once `task` is over, whatever its outcome */
  const completeAfter = (task: Promise<void>, key: string | undefined): void => {
    task.then(
      () => completed(key),
      (error: unknown) => {
        taskFailed(error)
        completed(key)
      },
    )
  }

  // The fast path: no telemetry, no idempotency, at-least-once, and the attempt known without
  // asking a store. Everything up to the handler call is synchronous; a handler that returns
  // without a promise is settled at once (no promise, no microtask: the memory transport then
  // hands its whole ready batch over in one go), a promise gets one reaction that settles and
  // frees the slot. Failures continue on the general path (`attempts`).
  const fastPath = !idempotency && !atMostOnce
  /** a fast-path delivery's state for the general path (a handler call failed) */
  const plainJob = (
    delivery: Delivery,
    body: unknown,
    userHeaders: Headers,
    first: number,
    dl: DeadLetterInfo | undefined,
  ): Job => ({ delivery, body, userHeaders, first, dl, idemKey: undefined, acked: false, dt: undefined })
  const afterHandler = (
    result: PromiseLike<unknown>,
    delivery: Delivery,
    key: string | undefined,
    attempt: number,
    body: unknown,
    userHeaders: Headers,
    dl: DeadLetterInfo | undefined,
  ): void => {
    Promise.resolve(result).then(
      () => {
        const settled = finish(delivery, false)
        if (settled === SETTLED) completed(key)
        else completeAfter(settled, key)
      },
      (error: unknown) => {
        completeAfter(attempts(plainJob(delivery, body, userHeaders, attempt, dl), attempt, true, error), key)
      },
    )
  }
  const callWithTraceparent = (traceparent: string, message: Message<T>): unknown =>
    runWithTraceparent(traceparent, () => handler(message, context))
  /**
   * Handles one delivery (its slot is taken); true when it is done already, else `completed(key)`
   * follows once it is.
   */
  const start = (delivery: Delivery, key: string | undefined): boolean => {
    if (!fastPath || telemetry.on) {
      completeAfter(handle(delivery), key)
      return false
    }
    const raw = delivery.message
    const attempt = knownAttempt(raw)
    if (attempt === undefined || (attempt > maxAttempts && deadLetter)) {
      completeAfter(handle(delivery), key)
      return false
    }
    const headers = raw.headers
    const userHeaders = userHeadersOf(headers)
    const body = decodeBody(delivery, false)
    if (body instanceof Undecodable) {
      completeAfter(body.rejected, key)
      return false
    }
    const dl = readDeadLetter(headers)
    const message = makeMessage(raw, body, userHeaders, attempt, dl)
    let result: unknown
    try {
      const traceparent = headers.traceparent
      result =
        traceparent === undefined ? handler(message, context) : callWithTraceparent(traceparent, message)
    } catch (error) {
      completeAfter(attempts(plainJob(delivery, body, userHeaders, attempt, dl), attempt, true, error), key)
      return false
    }
    if (
      result !== null &&
      (typeof result === 'object' || typeof result === 'function') &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      afterHandler(result as PromiseLike<unknown>, delivery, key, attempt, body, userHeaders, dl)
      return false
    }
    const settled = finish(delivery, false)
    if (settled === SETTLED) return true
    completeAfter(settled, key)
    return false
  }

  let pumping = false
  const pump = (): void => {
    // one loop at a time: a delivery handed over (or settled) inside a handler is picked up by
    // the loop already running, not by a nested one
    if (pumping) return
    pumping = true
    try {
      while (!closing && running < concurrency && pending.length > 0) {
        let index = 0
        if (ordered) {
          // the first message whose key is not being handled, and behind no earlier one of its key
          index = -1
          let skipped: Set<string> | undefined
          for (let i = 0; i < pending.length; i++) {
            const key = pending[i]?.message.key
            if (key === undefined || (!busyKeys.has(key) && !skipped?.has(key))) {
              index = i
              break
            }
            skipped ??= new Set()
            skipped.add(key)
          }
          if (index < 0) break
        }
        const delivery = (index === 0 ? pending.shift() : pending.splice(index, 1)[0]) as Delivery
        running += 1
        const key = ordered ? delivery.message.key : undefined
        if (key !== undefined) busyKeys.add(key)
        let done = true
        try {
          done = start(delivery, key)
        } catch (error) {
          taskFailed(error)
        }
        if (done) release(key)
      }
    } finally {
      pumping = false
    }
    wakeRoom()
  }

  const patternFilter = spec.pattern === undefined ? undefined : patternToRegExp(spec.pattern)
  const receive = (delivery: Delivery): Promise<void> => {
    if (closing) {
      void settle(delivery, 'requeue')
      return SETTLED
    }
    if (patternFilter && !patternFilter.test(delivery.message.topic)) {
      // brokers whose routing cannot exclude dead-letter topics (AMQP bindings) still hand them over
      void settle(delivery, 'ack')
      return SETTLED
    }
    pending.push(delivery)
    pump()
    if (pending.length + running < prefetch) return SETTLED
    if (!room) {
      let resolve!: () => void
      const promise = new Promise<void>((r) => {
        resolve = r
      })
      room = { promise, resolve }
    }
    return room.promise
  }
  // telemetry on: a delivery is handled outside the driver's (suppressed) context, so the user's
  // handler and listeners trace normally
  const onDelivery = (delivery: Delivery): Promise<void> =>
    telemetry.on ? telemetry.outside(() => receive(delivery)) : receive(delivery)

  if (deadLetter && spec.topic !== undefined) await deadLetterer.provision(deadLetterTopicFor(spec.topic))
  const request: SubscribeRequest =
    spec.topic !== undefined
      ? { topic: spec.topic, group, prefetch }
      : { pattern: spec.pattern as string, group, prefetch }
  if (options.temporary) request.temporary = true
  if (options.fromStart) request.fromStart = true
  const transportSub: TransportSubscription = await transport.subscribe(request, onDelivery)

  const close = (closeOptions: CloseOptions = {}): Promise<void> => {
    if (closePromise) return closePromise
    closing = true
    closePromise = (async () => {
      const timeoutMs = closeOptions.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT
      try {
        await transportSub.stop()
      } catch (error) {
        reportError(error, 'stopping the transport subscription failed')
      }
      for (const delivery of pending.splice(0)) await settle(delivery, 'requeue')
      wakeRoom()
      if (running > 0) {
        let timer: NodeJS.Timeout | undefined
        const finished = whenIdle().then(() => true)
        const timedOut = new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), timeoutMs)
        })
        const allDone = await Promise.race([finished, timedOut])
        clearTimeout(timer)
        if (!allDone) {
          logger.warn(
            { topic: name, group, inFlight: running, timeoutMs },
            'close timed out; aborting in-flight handlers',
          )
          abort.abort(
            new MsgkitError(
              ErrorCodes.HANDLER_TIMEOUT,
              `Subscription closed after ${timeoutMs} ms; handler aborted.`,
            ),
          )
          // aborted handlers settle their message (requeue) as soon as they notice; don't wait for handlers that ignore the signal
          await Promise.race([whenIdle(), sleep(50)])
        }
      }
      try {
        await transportSub.close()
      } catch (error) {
        reportError(error, 'closing the transport subscription failed')
      }
      traces?.close()
      deps.onClosed()
      resolveClosed()
    })()
    return closePromise
  }

  if (options.signal) {
    if (options.signal.aborted) void close()
    else options.signal.addEventListener('abort', () => void close(), { once: true })
  }

  return {
    topic: name,
    group,
    closed,
    get inFlight() {
      return running
    },
    close,
  }
}
