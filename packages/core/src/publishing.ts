/**
 * The publish path: validate and encode a body, build the outgoing message (id, key, headers,
 * timestamp, delay), check it against the transport's limits, hand it to the transport with a
 * deadline, and track what is in flight per producer so `close()` can wait for it.
 */
import { createDeadlineTimer } from './adapter/deadlines.js'
import { SETTLED } from './adapter/delivery.js'
import type {
  BatchItem,
  MessagingEvents,
  Producer,
  PublishOptions,
  PublishReceipt,
  Topic,
  UnroutablePolicy,
} from './api.js'
import { type Codec, ContentTypes } from './codec.js'
import { ErrorCodes, isMsgkitError, MsgkitError } from './errors.js'
import { describeError } from './events.js'
import { lastUuidv7Ms, uuidv7 } from './ids.js'
import { tooLarge } from './limits.js'
import type { Logger } from './logger.js'
import { assertTopicName } from './names.js'
import type { Headers, OutgoingMessage, SendOptions, Transport } from './spi.js'
import type { Telemetry } from './telemetry/telemetry.js'
import { describeSchemaIssues } from './topics.js'
import { childTraceparent } from './tracing.js'
import { isReservedHeader, WireHeaders } from './wire.js'

/** Grace a transport gets past its own deadline before core gives up on a send. */
const OVERRUN_GRACE_MS = 2_000
/** `publish(topic, body)` without options (no object per call) */
const NO_OPTIONS: PublishOptions = Object.freeze({})

export function invalid(message: string): MsgkitError {
  return new MsgkitError(ErrorCodes.INVALID_ARGUMENT, message)
}

/** The MSGKIT_CAPABILITY_UNSUPPORTED error for `what` on `transport`. */
export function unsupported(what: string, transport: Transport, hint: string): MsgkitError {
  return new MsgkitError(
    ErrorCodes.CAPABILITY_UNSUPPORTED,
    `The ${transport.name} transport does not support ${what}. ${hint}`,
    { details: { transport: transport.name, capability: what } },
  )
}

/** names that passed `assertTopicName` (publishing checks the name on every call: remember the recent ones) */
const validNames = new Set<string>()

/** The topic's name (validated) from a Topic or a string. */
export function topicName(topic: Topic<unknown> | string): string {
  const name = typeof topic === 'string' ? topic : topic?.name
  if (validNames.has(name as string)) return name as string
  assertTopicName(name as string)
  if (validNames.size >= 1_000) validNames.clear()
  validNames.add(name as string)
  return name as string
}

function typedTopic<T>(topic: Topic<T> | string): Topic<T> | undefined {
  return typeof topic === 'string' ? undefined : topic
}

export interface PublishingDeps {
  transport: Transport
  codec: Codec
  logger: Logger
  emit<E extends keyof MessagingEvents>(event: E, payload: MessagingEvents[E]): void
  /** default publish timeout (ms) */
  timeoutMs: number
  /** default policy for messages that reach no group */
  unroutable: UnroutablePolicy
  /** true once the Messaging is closed */
  isClosed(): boolean
  /** OpenTelemetry spans and metrics (`telemetryOff` when not installed or disabled) */
  telemetry: Telemetry
}

export interface Publishing {
  /** a new producer handle, tracked for close */
  producer(): Producer
  /** wait for every producer's in-flight publishes; later ones reject with MSGKIT_CLOSED */
  close(): Promise<void>
}

/** Creates the publish side of a Messaging. */
export function createPublishing(deps: PublishingDeps): Publishing {
  const { transport, telemetry } = deps
  const keepsDeadlines = transport.keepsDeadlines === true
  const overrun = createDeadlineTimer()
  const producers = new Set<Producer>()

  const prepare = <T>(
    name: string,
    typed: Topic<T> | undefined,
    body: T,
    opts: PublishOptions = NO_OPTIONS,
    /** telemetry on: writes the creation context instead of core's own traceparent */
    inject?: (headers: Headers) => void,
  ): OutgoingMessage => {
    if (typed?.schema) {
      const result = typed.schema.safeParse(body)
      if (!result.success) {
        throw new MsgkitError(
          ErrorCodes.SCHEMA_INVALID,
          `Message for topic ${name} does not match its schema: ${describeSchemaIssues(result.error)}. Nothing was sent.`,
        )
      }
    }
    const { body: bytes, contentType } = (typed?.codec ?? deps.codec).encode(body)
    const headers: Record<string, string> = {}
    if (opts.headers !== undefined) {
      for (const k in opts.headers) {
        const v = opts.headers[k]
        if (typeof v !== 'string')
          throw invalid(`Header ${JSON.stringify(k)} must be a string (got ${typeof v}). Nothing was sent.`)
        if (k.length === 0) throw invalid('Header names must not be empty. Nothing was sent.')
        if (isReservedHeader(k))
          throw invalid(`Header ${JSON.stringify(k)} uses the reserved prefix "msgkit-". Nothing was sent.`)
        headers[k] = v
      }
    }
    if (inject) inject(headers)
    else if (headers.traceparent === undefined) {
      const tp = childTraceparent()
      if (tp) headers.traceparent = tp
    }
    // a message without a content type is JSON: the default codec's JSON needs no header
    if (contentType !== ContentTypes.json) headers[WireHeaders.contentType] = contentType
    if (opts.key !== undefined && (typeof opts.key !== 'string' || opts.key.length === 0))
      throw invalid('`key` must be a non-empty string. Nothing was sent.')
    if (
      opts.id !== undefined &&
      (typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 200)
    )
      throw invalid('`id` must be a string of 1-200 characters. Nothing was sent.')
    // a default id is a UUID v7 and the timestamp its exact millisecond: brokers need not carry both
    const id = opts.id ?? uuidv7()
    const timestamp = opts.id === undefined ? lastUuidv7Ms() : Date.now()
    const message: OutgoingMessage = { id, headers, body: bytes, timestamp, contentType }
    if (bytes !== body) message.owned = true
    if (opts.key !== undefined) message.key = opts.key
    if (opts.delayMs !== undefined && opts.delayMs !== 0) {
      const delay = transport.capabilities.delay
      if (!Number.isFinite(opts.delayMs) || opts.delayMs < 0)
        throw invalid('`delayMs` must be a non-negative number. Nothing was sent.')
      if (!delay)
        throw unsupported(
          'delayed delivery (delayMs)',
          transport,
          'Schedule the message yourself or use a transport with delay support (memory, rabbitmq, activemq, sqs).',
        )
      if (opts.delayMs > delay.maxMs)
        throw unsupported(`delays over ${delay.maxMs} ms`, transport, `Use delayMs <= ${delay.maxMs}.`)
      message.delayMs = Math.round(opts.delayMs)
    }
    const error = tooLarge(transport.capabilities, transport.name, name, message)
    if (error) throw error
    return message
  }

  const canDetect = transport.capabilities.unroutable
  /** whether to ask the transport about unroutable messages; throws for `reject` where it cannot tell */
  const detectUnroutable = (policy: UnroutablePolicy): boolean => {
    if (policy === 'reject' && !canDetect)
      throw unsupported(
        "detecting unroutable messages (unroutable: 'reject')",
        transport,
        "Provision the topic's groups before publishing (messaging.provision) and use unroutable: 'warn' or 'ignore'.",
      )
    return policy !== 'ignore' && canDetect
  }

  /**
   * What a failed send rejects with: the transport's own MsgkitError or a TRANSPORT_ERROR around
   * it; undefined for an unroutable message under the `warn` policy (logged, emitted, and settled
   * as a success: stored nowhere, but confirmed).
   */
  const sendFailure = (
    name: string,
    messages: OutgoingMessage[],
    policy: UnroutablePolicy,
    error: unknown,
  ): unknown => {
    if (isMsgkitError(error) && error.code === ErrorCodes.UNROUTABLE && policy === 'warn') {
      const ids = (error.details?.ids as string[] | undefined) ?? messages.map((m) => m.id)
      deps.logger.warn(
        { topic: name, ids },
        'published message(s) reached no group: nobody provisioned a group for this topic yet, so the broker dropped them',
      )
      deps.emit('unroutable', { topic: name, ids })
      return undefined
    }
    if (isMsgkitError(error)) return error
    return new MsgkitError(
      ErrorCodes.TRANSPORT_ERROR,
      `Publishing to ${name} failed: ${describeError(error).message}`,
      {
        cause: error,
        retriable: true,
      },
    )
  }

  /**
   * transport.send with a deadline; a transport that overruns it gets a short grace, then a
   * timeout (unless it declares `keepsDeadlines`). Resolves with `result` (one promise per send:
   * this is every publish's path; a transport that is done when send returns — SETTLED, as the
   * memory transport — costs no deadline and no reaction); `settled` runs once either way.
   */
  const send = <R>(
    name: string,
    messages: OutgoingMessage[],
    timeoutMs: number,
    policy: UnroutablePolicy,
    result: R,
    settled?: () => void,
  ): Promise<R> => {
    const deadline = Date.now() + timeoutMs
    let sending: Promise<void>
    try {
      const options: SendOptions = detectUnroutable(policy)
        ? { deadline, detectUnroutable: true }
        : { deadline }
      sending = transport.send(name, messages, options)
    } catch (error) {
      // a bad policy, or a transport that threw instead of rejecting
      settled?.()
      const failure = sendFailure(name, messages, policy, error)
      return failure === undefined ? Promise.resolve(result) : Promise.reject(failure)
    }
    if (sending === SETTLED) {
      settled?.()
      return Promise.resolve(result)
    }
    // the transport settles by the deadline itself (the kit's outbox does): no guard per publish
    if (keepsDeadlines)
      return sending.then(
        () => {
          settled?.()
          return result
        },
        (error: unknown) => {
          settled?.()
          const failure = sendFailure(name, messages, policy, error)
          if (failure === undefined) return result
          throw failure
        },
      )
    return new Promise<R>((resolve, reject) => {
      let done = false
      const finish = (error?: unknown): void => {
        if (done) return
        done = true
        guard.cancel()
        settled?.()
        if (error === undefined) resolve(result)
        else reject(error)
      }
      const guard = overrun.schedule(deadline + OVERRUN_GRACE_MS, () =>
        finish(
          new MsgkitError(
            ErrorCodes.PUBLISH_TIMEOUT,
            `Publishing to ${name} was not confirmed within ${timeoutMs} ms. The broker may be down; the message may or may not have been stored.`,
            { retriable: true },
          ),
        ),
      )
      sending.then(
        () => finish(),
        (error: unknown) => finish(sendFailure(name, messages, policy, error)),
      )
    })
  }

  /** publish with a `send` span around it (telemetry on) */
  const publishTraced = <T>(
    name: string,
    typed: Topic<T> | undefined,
    body: T,
    opts: PublishOptions | undefined,
  ): { message: OutgoingMessage; sending: Promise<void> } => {
    const traced = telemetry.send(name, opts?.headers)
    let message: OutgoingMessage
    try {
      message = prepare(name, typed, body, opts, traced.inject)
    } catch (error) {
      traced.end(error)
      throw error
    }
    traced.message(message)
    const sending = send(
      name,
      [message],
      opts?.timeoutMs ?? deps.timeoutMs,
      opts?.unroutable ?? deps.unroutable,
      undefined,
    )
    sending.then(
      () => traced.end(),
      (error: unknown) => traced.end(error),
    )
    return { message, sending }
  }

  const makeProducer = (): Producer => {
    let producerClosed = false
    // publishes in flight are counted, not collected: close() waits for the count to reach 0
    let inflight = 0
    let idle: Promise<void> | undefined
    let wakeIdle: (() => void) | undefined
    const settled = (): void => {
      inflight -= 1
      if (inflight === 0 && wakeIdle) {
        const wake = wakeIdle
        wakeIdle = idle = undefined
        wake()
      }
    }
    const track = <R>(p: Promise<R>): Promise<R> => {
      inflight += 1
      p.then(settled, settled)
      return p
    }
    const assertOpen = (): void => {
      if (deps.isClosed() || producerClosed)
        throw new MsgkitError(
          ErrorCodes.CLOSED,
          'This msgkit producer is closed; create a new one with createMessaging().',
        )
    }
    const producer: Producer = {
      publish<T>(topic: Topic<T> | string, body: T, opts?: PublishOptions): Promise<PublishReceipt> {
        try {
          assertOpen()
          const name = topicName(topic as Topic<unknown> | string)
          if (telemetry.on) {
            const { message, sending } = publishTraced(name, typedTopic(topic), body, opts)
            const receipt: PublishReceipt = { id: message.id, topic: name }
            return track(sending.then(() => receipt))
          }
          const message = prepare(name, typedTopic(topic), body, opts)
          const receipt: PublishReceipt = { id: message.id, topic: name }
          const policy = opts?.unroutable ?? deps.unroutable
          inflight += 1
          return send(name, [message], opts?.timeoutMs ?? deps.timeoutMs, policy, receipt, settled)
        } catch (error) {
          return Promise.reject(error)
        }
      },
      publishBatch<T>(
        topic: Topic<T> | string,
        items: ReadonlyArray<BatchItem<T>>,
      ): Promise<PublishReceipt[]> {
        try {
          assertOpen()
          if (!Array.isArray(items))
            throw invalid('publishBatch takes an array of { body, key?, headers?, id?, delayMs? }.')
          const name = topicName(topic as Topic<unknown> | string)
          const typed = typedTopic(topic)
          if (items.length === 0) return Promise.resolve([])
          const traced = telemetry.on ? telemetry.batch(name, items.length) : undefined
          let messages: OutgoingMessage[]
          try {
            messages = traced
              ? items.map((item) => prepare(name, typed, item.body, item, traced.item(item.headers)))
              : items.map((item) => prepare(name, typed, item.body, item))
          } catch (error) {
            traced?.end(error)
            throw error
          }
          let timeout = 0
          // the strictest policy of the batch applies to all of it
          let policy: UnroutablePolicy = 'ignore'
          for (const item of items) {
            timeout = Math.max(timeout, item.timeoutMs ?? deps.timeoutMs)
            const p = item.unroutable ?? deps.unroutable
            if (p === 'reject' || (p === 'warn' && policy === 'ignore')) policy = p
          }
          traced?.sending(messages)
          const receipts = messages.map((m): PublishReceipt => ({ id: m.id, topic: name }))
          inflight += 1
          const sending = send(name, messages, timeout, policy, receipts, settled)
          if (traced)
            sending.then(
              () => traced.end(),
              (error: unknown) => traced.end(error),
            )
          return sending
        } catch (error) {
          return Promise.reject(error)
        }
      },
      async close() {
        producerClosed = true
        if (inflight === 0) return
        idle ??= new Promise<void>((resolve) => {
          wakeIdle = resolve
        })
        await idle
      },
    }
    producers.add(producer)
    return producer
  }

  return {
    producer: makeProducer,
    async close() {
      await Promise.allSettled([...producers].map((p) => p.close()))
      overrun.clear()
    },
  }
}
