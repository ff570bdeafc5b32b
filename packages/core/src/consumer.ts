/**
 * The subscription engine: the one place where decoding, schema checks, concurrency, per-key
 * order, retries, dead letters, idempotency and graceful shutdown happen — for every transport.
 */
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
import { ErrorCodes, isNonRetryable, MsgkitError } from './errors.js'
import { describeError } from './events.js'
import type { IdempotencyStore } from './idempotency.js'
import type { Logger } from './logger.js'
import { DEAD_LETTER_GROUP, deadLetterTopicOf, patternToRegExp } from './names.js'
import { backoffDelay, sleep } from './retry.js'
import type { Delivery, Headers, OutgoingMessage, Transport, TransportSubscription } from './spi.js'
import { describeSchemaIssues } from './topics.js'
import { runWithTraceparent } from './tracing.js'
import { isReservedHeader, WireHeaders } from './wire.js'

export interface ConsumerDeps {
  transport: Transport
  logger: Logger
  codec: Codec
  idempotencyStore: IdempotencyStore
  emit: (event: 'retry' | 'dead-lettered' | 'error', payload: never) => void
  /** called once the subscription has fully closed */
  onClosed: () => void
  publishDeadline: () => number
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
const DAY = 24 * 60 * 60 * 1000

/** Reads the dead-letter envelope out of msgkit headers, if present. */
function readDeadLetter(headers: Headers): DeadLetterInfo | undefined {
  const reason = headers[WireHeaders.deadLetterReason]
  if (reason === undefined) return undefined
  return {
    reason,
    errorName: headers[WireHeaders.deadLetterErrorName] ?? '',
    errorMessage: headers[WireHeaders.deadLetterErrorMessage] ?? '',
    attempts: Number(headers[WireHeaders.deadLetterAttempts] ?? 0),
    topic: headers[WireHeaders.deadLetterTopic] ?? '',
    group: headers[WireHeaders.deadLetterGroup] ?? '',
    time: Number(headers[WireHeaders.deadLetterTime] ?? 0),
  }
}

/** Header values must stay short and single-line on every broker. */
function headerSafe(text: string, max = 1024): string {
  const flat = text.replace(/[\r\n]+/g, ' ')
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** Starts a subscription; resolves once the transport is consuming. */
export async function startConsumer<T>(spec: ConsumerSpec<T>, deps: ConsumerDeps): Promise<Subscription> {
  const { options, handler } = spec
  const { transport, logger } = deps
  const group = options.group
  const concurrency = options.concurrency ?? 1
  const ordered = options.ordered ?? transport.capabilities.orderedKeys
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
  const prefetch = options.prefetch ?? Math.min(1000, Math.max(16, concurrency * 8))
  const codec = spec.codec ?? deps.codec
  const name = spec.topic ?? spec.pattern ?? ''

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
  const active = new Set<Promise<void>>()
  const roomWaiters: Array<() => void> = []
  const provisionedDl = new Set<string>()

  const wakeRoom = (): void => {
    while (roomWaiters.length > 0 && (closing || pending.length + running < prefetch)) roomWaiters.shift()?.()
  }

  const reportError = (error: unknown, what: string): void => {
    logger.error({ topic: name, group, err: describeError(error) }, what)
    deps.emit('error', { error, topic: name, group } as never)
  }

  const settle = async (delivery: Delivery, how: 'ack' | 'requeue'): Promise<void> => {
    try {
      if (how === 'ack') await delivery.ack()
      else await delivery.nack({ requeue: true })
    } catch (error) {
      // the broker will redeliver an unacked message: at-least-once holds, report and go on
      reportError(error, `msgkit could not ${how} a message`)
    }
  }

  const deadLetterTopicFor = (topic: string): string => explicitDlTopic ?? deadLetterTopicOf(topic, group)

  const sendDeadLetter = async (
    delivery: Delivery,
    reason: string,
    error: unknown,
    attempts: number,
  ): Promise<boolean> => {
    const m = delivery.message
    const dlTopic = deadLetterTopicFor(m.topic)
    const err = error instanceof Error ? error : new Error(String(error))
    const headers: Headers = { ...m.headers }
    headers[WireHeaders.deadLetterReason] = reason
    headers[WireHeaders.deadLetterErrorName] = headerSafe(err.name || 'Error', 200)
    headers[WireHeaders.deadLetterErrorMessage] = headerSafe(err.message)
    headers[WireHeaders.deadLetterAttempts] = String(attempts)
    headers[WireHeaders.deadLetterTopic] = m.topic
    headers[WireHeaders.deadLetterGroup] = group
    headers[WireHeaders.deadLetterTime] = String(Date.now())
    if (reason === 'decode-failed') {
      // readers of the dead-letter topic get the undecodable body as raw bytes instead of failing again
      const original = headers[WireHeaders.contentType]
      if (original !== undefined) headers[WireHeaders.deadLetterContentType] = original
      headers[WireHeaders.contentType] = ContentTypes.bytes
    }
    const out: OutgoingMessage = { id: m.id, headers, body: m.body, timestamp: m.timestamp }
    if (m.key !== undefined) out.key = m.key
    try {
      if (!provisionedDl.has(dlTopic)) {
        await transport.provision(dlTopic, DEAD_LETTER_GROUP)
        provisionedDl.add(dlTopic)
      }
      await transport.send(dlTopic, [out], { deadline: deps.publishDeadline() })
    } catch (sendError) {
      reportError(
        sendError,
        `msgkit could not dead-letter message ${m.id} to ${dlTopic}; it stays on the broker`,
      )
      return false
    }
    logger.warn(
      { topic: m.topic, group, id: m.id, reason, deadLetterTopic: dlTopic },
      'message dead-lettered',
    )
    deps.emit('dead-lettered', { topic: m.topic, group, id: m.id, reason, deadLetterTopic: dlTopic } as never)
    return true
  }

  /** Gives up on a message without retrying: dead-letter it (or drop it when dead letters are off). */
  const reject = async (
    delivery: Delivery,
    reason: string,
    error: unknown,
    attempts: number,
    acked: boolean,
  ): Promise<void> => {
    if (!deadLetter) {
      logger.error(
        { topic: delivery.message.topic, group, id: delivery.message.id, reason, err: describeError(error) },
        'message dropped (dead letters are off)',
      )
      if (!acked) await settle(delivery, 'ack')
      return
    }
    const ok = await sendDeadLetter(delivery, reason, error, attempts)
    if (acked) return
    await settle(delivery, ok ? 'ack' : 'requeue')
  }

  const handle = async (delivery: Delivery): Promise<void> => {
    const raw = delivery.message
    let acked = false
    if (atMostOnce) {
      await settle(delivery, 'ack')
      acked = true
    }
    const userHeaders: Headers = {}
    for (const [k, v] of Object.entries(raw.headers)) if (!isReservedHeader(k)) userHeaders[k] = v

    let body: unknown
    try {
      body = codec.decode(raw.body, raw.headers[WireHeaders.contentType])
    } catch (error) {
      return reject(delivery, 'decode-failed', error, 1, acked)
    }
    if (spec.schema) {
      const result = spec.schema.safeParse(body)
      if (!result.success) {
        const error = new MsgkitError(
          ErrorCodes.SCHEMA_INVALID,
          `Message body does not match the topic's schema: ${describeSchemaIssues(result.error)}`,
        )
        return reject(delivery, 'schema-invalid', error, 1, acked)
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
          if (!acked) await settle(delivery, 'ack')
          return
        }
      } catch (error) {
        reportError(error, 'idempotency store failed; message given back')
        if (!acked) await settle(delivery, 'requeue')
        return
      }
    }

    const message: Message<T> = {
      id: raw.id,
      topic: raw.topic,
      body: body as T,
      headers: userHeaders,
      timestamp: raw.timestamp,
      attempt: Math.max(1, raw.attempt ?? (raw.redelivered ? 2 : 1)),
      redelivered: raw.redelivered,
    }
    if (raw.key !== undefined) message.key = raw.key
    const dl = readDeadLetter(raw.headers)
    if (dl) message.deadLetter = dl

    let done!: () => void
    if (idemKey) inFlightIds.set(idemKey, new Promise<void>((r) => (done = r)))
    try {
      for (;;) {
        if (message.attempt > maxAttempts) {
          return reject(
            delivery,
            'handler-failed',
            new Error(`delivered ${message.attempt} times, more than the ${maxAttempts} attempts allowed`),
            message.attempt - 1,
            acked,
          )
        }
        let error: unknown
        let failed = false
        try {
          await runWithTraceparent(userHeaders.traceparent, () =>
            handler({ ...message, headers: { ...message.headers } }, { signal: abort.signal }),
          )
        } catch (e) {
          failed = true
          error = e
        }
        if (failed && abort.signal.aborted) {
          // close() gave up on this handler: give the message back for redelivery
          if (!acked) await settle(delivery, 'requeue')
          return
        }
        if (!failed) {
          if (idemKey) {
            try {
              await store.add(idemKey, idemTtl)
            } catch (e) {
              reportError(e, 'idempotency store failed to record a handled message')
            }
          }
          if (!acked) await settle(delivery, 'ack')
          return
        }
        if (isNonRetryable(error)) return reject(delivery, 'non-retryable', error, message.attempt, acked)
        if (message.attempt >= maxAttempts)
          return reject(delivery, 'handler-failed', error, message.attempt, acked)
        const delayMs = backoffDelay(message.attempt, backoff)
        logger.warn(
          {
            topic: raw.topic,
            group,
            id: raw.id,
            attempt: message.attempt,
            delayMs,
            err: describeError(error),
          },
          'handler failed; retrying',
        )
        deps.emit('retry', {
          topic: raw.topic,
          group,
          id: raw.id,
          attempt: message.attempt,
          delayMs,
          error,
        } as never)
        if (!(await sleep(delayMs, abort.signal))) {
          if (!acked) await settle(delivery, 'requeue')
          return
        }
        message.attempt += 1
      }
    } finally {
      if (idemKey) {
        inFlightIds.delete(idemKey)
        done()
      }
    }
  }

  const pump = (): void => {
    while (!closing && running < concurrency && pending.length > 0) {
      let index = -1
      if (ordered) {
        const skipped = new Set<string>()
        for (let i = 0; i < pending.length; i++) {
          const key = pending[i]?.key
          if (key === undefined) {
            index = i
            break
          }
          if (busyKeys.has(key) || skipped.has(key)) {
            skipped.add(key)
            continue
          }
          index = i
          break
        }
      } else index = 0
      if (index < 0) return
      const [item] = pending.splice(index, 1) as [Pending]
      running += 1
      if (ordered && item.key !== undefined) busyKeys.add(item.key)
      const task = handle(item.delivery)
        .catch((error: unknown) => reportError(error, 'msgkit consumer failed unexpectedly'))
        .finally(() => {
          running -= 1
          if (ordered && item.key !== undefined) busyKeys.delete(item.key)
          active.delete(task)
          wakeRoom()
          pump()
        })
      active.add(task)
    }
  }

  const patternFilter = spec.pattern === undefined ? undefined : patternToRegExp(spec.pattern)
  const onDelivery = (delivery: Delivery): Promise<void> => {
    if (closing) {
      void settle(delivery, 'requeue')
      return Promise.resolve()
    }
    if (patternFilter && !patternFilter.test(delivery.message.topic)) {
      // brokers whose routing cannot exclude dead-letter topics (AMQP bindings) still hand them over
      void settle(delivery, 'ack')
      return Promise.resolve()
    }
    pending.push({ delivery, key: delivery.message.key })
    pump()
    if (pending.length + running < prefetch) return Promise.resolve()
    return new Promise<void>((resolve) => roomWaiters.push(resolve))
  }

  if (deadLetter && spec.topic !== undefined) {
    const dlTopic = deadLetterTopicFor(spec.topic)
    await transport.provision(dlTopic, DEAD_LETTER_GROUP)
    provisionedDl.add(dlTopic)
  }
  const request =
    spec.topic !== undefined
      ? { topic: spec.topic, group, prefetch }
      : { pattern: spec.pattern as string, group, prefetch }
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
      if (active.size > 0) {
        let timer: NodeJS.Timeout | undefined
        const finished = Promise.all([...active]).then(() => true)
        const timedOut = new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), timeoutMs)
        })
        const allDone = await Promise.race([finished, timedOut])
        clearTimeout(timer)
        if (!allDone) {
          logger.warn(
            { topic: name, group, inFlight: active.size, timeoutMs },
            'close timed out; aborting in-flight handlers',
          )
          abort.abort(
            new MsgkitError(
              ErrorCodes.HANDLER_TIMEOUT,
              `Subscription closed after ${timeoutMs} ms; handler aborted.`,
            ),
          )
          // aborted handlers settle their message (requeue) as soon as they notice; don't wait for handlers that ignore the signal
          await Promise.race([Promise.all([...active]), sleep(50)])
        }
      }
      try {
        await transportSub.close()
      } catch (error) {
        reportError(error, 'closing the transport subscription failed')
      }
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
