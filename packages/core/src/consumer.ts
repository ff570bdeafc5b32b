/**
 * The subscription engine: the one place where decoding, schema checks, concurrency, per-key
 * order, retries, dead letters, delivery counts, idempotency and graceful shutdown happen — for
 * every transport.
 */
import type { CloseOptions, Handler, Message, Schema, SubscribeOptions, Subscription } from './api.js'
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

interface Pending {
  delivery: Delivery
  key: string | undefined
}

const DEFAULT_CLOSE_TIMEOUT = 30_000
/** returned where nothing is left to wait for (every delivery passes here: no promise each) */
const RESOLVED: Promise<void> = Promise.resolve()
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

  const pending: Pending[] = []
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
      return settling.then(undefined, failed)
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
    if (!coreCounts) return acked ? RESOLVED : settle(delivery, 'ack')
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

  /** This delivery's number, counted by the broker or (capability deliveryCount) by core. */
  const deliveryNumber = async (delivery: Delivery): Promise<number> => {
    const raw = delivery.message
    // a first delivery costs nothing where the broker can say it is one: only redeliveries are counted
    if (countMode !== 'none' && !raw.redelivered && (raw.attempt ?? 1) <= 1) return 1
    const floor = raw.redelivered ? 2 : 1
    try {
      return await deps.deliveryCounter.count(countKey(raw.id), floor)
    } catch (error) {
      reportError(error, 'counting a delivery failed; going by the broker flag')
      return floor
    }
  }

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
    const userHeaders: Headers = {}
    for (const k in raw.headers) if (!isReservedHeader(k)) userHeaders[k] = raw.headers[k] as string

    let body: unknown
    try {
      // no content type: JSON (msgkit leaves the header out for it; foreign producers often do)
      body = codec.decode(raw.body, raw.headers[WireHeaders.contentType] ?? ContentTypes.json)
    } catch (error) {
      return reject(delivery, 'decode-failed', error, 1, acked, dt?.process(1))
    }
    if (spec.schema) {
      const result = spec.schema.safeParse(body)
      if (!result.success) {
        const error = new MsgkitError(
          ErrorCodes.SCHEMA_INVALID,
          `Message body does not match the topic's schema: ${describeSchemaIssues(result.error)}`,
        )
        return reject(delivery, 'schema-invalid', error, 1, acked, dt?.process(1))
      }
      body = result.data
    }

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
    let attempt = coreCounts
      ? await deliveryNumber(delivery)
      : Math.max(1, raw.attempt ?? (raw.redelivered ? 2 : 1))
    const first = attempt
    const dl = readDeadLetter(raw.headers)
    /** What the handler gets: on the first attempt no copy; a retry gets fresh headers (the handler may have changed them). */
    const messageFor = (n: number): Message<T> => {
      let headers = userHeaders
      if (n !== first) {
        headers = {}
        for (const k in raw.headers) if (!isReservedHeader(k)) headers[k] = raw.headers[k] as string
      }
      const message: Message<T> = {
        id: raw.id,
        topic: raw.topic,
        body: body as T,
        headers,
        timestamp: raw.timestamp,
        attempt: n,
        redelivered: raw.redelivered,
      }
      if (raw.key !== undefined) message.key = raw.key
      if (dl) message.deadLetter = dl
      return message
    }

    let done!: () => void
    if (idemKey) inFlightIds.set(idemKey, new Promise<void>((r) => (done = r)))
    try {
      for (;;) {
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
        let error: unknown
        let failed = false
        const pt = dt?.process(attempt)
        try {
          const call = () => handler(messageFor(attempt), context)
          await (pt ? pt.run(call) : runWithTraceparent(raw.headers.traceparent, call))
        } catch (e) {
          failed = true
          error = e
        }
        if (failed && abort.signal.aborted) {
          // close() gave up on this handler: give the message back for redelivery
          pt?.failed(error)
          if (!acked) await settle(delivery, 'requeue')
          return
        }
        if (!failed) {
          pt?.succeeded()
          if (idemKey) {
            try {
              await store.add(idemKey, idemTtl)
            } catch (e) {
              reportError(e, 'idempotency store failed to record a handled message')
            }
          }
          return finish(delivery, acked)
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
    } finally {
      if (idemKey) {
        inFlightIds.delete(idemKey)
        done()
      }
    }
  }

  const taskFailed = (error: unknown): void => reportError(error, 'msgkit consumer failed unexpectedly')
  const pump = (): void => {
    while (!closing && running < concurrency && pending.length > 0) {
      let index = 0
      if (ordered) {
        // the first message whose key is not being handled, and behind no earlier one of its key
        index = -1
        let skipped: Set<string> | undefined
        for (let i = 0; i < pending.length; i++) {
          const key = pending[i]?.key
          if (key === undefined || (!busyKeys.has(key) && !skipped?.has(key))) {
            index = i
            break
          }
          skipped ??= new Set()
          skipped.add(key)
        }
        if (index < 0) return
      }
      const item = (index === 0 ? pending.shift() : pending.splice(index, 1)[0]) as Pending
      running += 1
      const key = ordered ? item.key : undefined
      if (key !== undefined) busyKeys.add(key)
      const done = (): void => {
        running -= 1
        if (key !== undefined) busyKeys.delete(key)
        if (running === 0 && idle) {
          const wake = idle
          idle = undefined
          wake.resolve()
        }
        wakeRoom()
        pump()
      }
      handle(item.delivery).then(done, (error: unknown) => {
        taskFailed(error)
        done()
      })
    }
  }

  const patternFilter = spec.pattern === undefined ? undefined : patternToRegExp(spec.pattern)
  const receive = (delivery: Delivery): Promise<void> => {
    if (closing) {
      void settle(delivery, 'requeue')
      return RESOLVED
    }
    if (patternFilter && !patternFilter.test(delivery.message.topic)) {
      // brokers whose routing cannot exclude dead-letter topics (AMQP bindings) still hand them over
      void settle(delivery, 'ack')
      return RESOLVED
    }
    pending.push({ delivery, key: delivery.message.key })
    pump()
    if (pending.length + running < prefetch) return RESOLVED
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
      for (const item of pending.splice(0)) await settle(item.delivery, 'requeue')
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
