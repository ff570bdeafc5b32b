/** createMessaging: the public entry point tying config, transport, publishing and consuming together. */
import type {
  BatchItem,
  CloseOptions,
  Handler,
  HealthReport,
  Message,
  Messaging,
  MessagingOptions,
  Producer,
  PublishOptions,
  PublishReceipt,
  SubscribeOptions,
  Subscription,
  Topic,
  TopicPattern,
} from './api.js'
import { type Codec, jsonCodec } from './codec.js'
import { type MessagingConfig, resolveConfig, scrubSecrets } from './config.js'
import { startConsumer } from './consumer.js'
import { ErrorCodes, isMsgkitError, MsgkitError } from './errors.js'
import { createEmitter, describeError } from './events.js'
import { createMemoryIdempotencyStore } from './idempotency.js'
import { uuidv7 } from './ids.js'
import { safeLogger } from './logger.js'
import { assertGroupName, assertPattern, assertTopicName } from './names.js'
import type { ModuleLoader } from './registry.js'
import type { OutgoingMessage, Transport } from './spi.js'
import { withTimeout } from './timeout.js'
import { describeSchemaIssues } from './topics.js'
import { childTraceparent } from './tracing.js'
import { headerBytes, isReservedHeader, WireHeaders } from './wire.js'

const DEFAULT_PUBLISH_TIMEOUT = 30_000
const CONNECT_TIMEOUT = 30_000
// msgkit-id + msgkit-timestamp names and a 13-digit timestamp
const WIRE_ID_OVERHEAD = WireHeaders.id.length + WireHeaders.timestamp.length + 13

type AnyTopic<T> = Topic<T> | TopicPattern<T> | string

function topicName(topic: Topic<unknown> | string): string {
  const name = typeof topic === 'string' ? topic : topic?.name
  assertTopicName(name as string)
  return name as string
}

function typedTopic<T>(topic: Topic<T> | string): Topic<T> | undefined {
  return typeof topic === 'string' ? undefined : topic
}

function unsupported(what: string, transport: Transport, hint: string): MsgkitError {
  return new MsgkitError(
    ErrorCodes.CAPABILITY_UNSUPPORTED,
    `The ${transport.name} transport does not support ${what}. ${hint}`,
    {
      details: { transport: transport.name, capability: what },
    },
  )
}

function invalid(message: string): MsgkitError {
  return new MsgkitError(ErrorCodes.INVALID_ARGUMENT, message)
}

/** Creates a Messaging instance from a broker URL or a config object, connected and ready. */
export async function createMessaging(
  config: string | MessagingConfig,
  options: MessagingOptions & { loadModule?: ModuleLoader } = {},
): Promise<Messaging> {
  const { loadModule, ...extra } = options
  const resolved = await resolveConfig(config, extra, loadModule)
  const logger = safeLogger(resolved.options.logger)
  const codec: Codec = resolved.options.codec ?? jsonCodec
  const publishTimeout = resolved.options.publish?.timeoutMs ?? DEFAULT_PUBLISH_TIMEOUT
  const idempotencyStore = resolved.options.idempotencyStore ?? createMemoryIdempotencyStore()
  const emitter = createEmitter(logger)

  let state: HealthReport['status'] = 'connecting'
  let lastError: string | undefined
  const transport: Transport = resolved.definition.create(resolved.transportConfig as never, {
    logger,
    emit(event) {
      const name = resolved.definition.name
      switch (event.type) {
        case 'connected':
          if (state === 'closed') return
          state = 'up'
          logger.info({ transport: name }, 'connected')
          emitter.emit('connected', { transport: name })
          return
        case 'disconnected':
          if (state === 'closed') return
          state = 'down'
          if (event.error) lastError = describeError(event.error).message
          logger.warn(
            { transport: name, err: event.error ? describeError(event.error) : undefined },
            'disconnected',
          )
          emitter.emit('disconnected', { transport: name, error: event.error })
          return
        case 'reconnecting':
          if (state === 'closed') return
          state = 'connecting'
          logger.info({ transport: name, attempt: event.attempt, delayMs: event.delayMs }, 'reconnecting')
          emitter.emit('reconnecting', {
            transport: name,
            attempt: event.attempt,
            delayMs: event.delayMs,
            error: event.error,
          })
          return
        case 'error':
          lastError = describeError(event.error).message
          logger.error({ transport: name, err: describeError(event.error) }, 'transport error')
          emitter.emit('error', { error: event.error })
          return
      }
    },
  })

  try {
    await withTimeout(
      transport.connect(),
      CONNECT_TIMEOUT,
      () =>
        new MsgkitError(
          ErrorCodes.CONNECTION_FAILED,
          `Connecting to the ${transport.name} broker took longer than ${CONNECT_TIMEOUT} ms. Is it running and reachable?`,
          { retriable: true },
        ),
    )
  } catch (error) {
    await transport.close().catch(() => {})
    if (isMsgkitError(error)) throw error
    throw new MsgkitError(
      ErrorCodes.CONNECTION_FAILED,
      scrubSecrets(
        `Could not connect to the ${transport.name} broker: ${describeError(error).message}. Check that it is running and that the URL/credentials are right.`,
        resolved.secrets,
      ),
      { retriable: true },
    )
  }
  state = 'up'

  let closed = false
  let closing: Promise<void> | undefined
  const subscriptions = new Set<Subscription>()
  const topicGroups = new Map<string, Set<string>>()

  const prepare = <T>(
    name: string,
    typed: Topic<T> | undefined,
    body: T,
    opts: PublishOptions = {},
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
    const { body: bytes, contentType } = (typed?.codec ?? codec).encode(body)
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v !== 'string')
        throw invalid(`Header ${JSON.stringify(k)} must be a string (got ${typeof v}). Nothing was sent.`)
      if (k.length === 0) throw invalid('Header names must not be empty. Nothing was sent.')
      if (isReservedHeader(k))
        throw invalid(`Header ${JSON.stringify(k)} uses the reserved prefix "msgkit-". Nothing was sent.`)
      headers[k] = v
    }
    if (headers.traceparent === undefined) {
      const tp = childTraceparent()
      if (tp) headers.traceparent = tp
    }
    headers[WireHeaders.contentType] = contentType
    if (opts.key !== undefined && (typeof opts.key !== 'string' || opts.key.length === 0))
      throw invalid('`key` must be a non-empty string. Nothing was sent.')
    if (
      opts.id !== undefined &&
      (typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 200)
    )
      throw invalid('`id` must be a string of 1-200 characters. Nothing was sent.')
    const message: OutgoingMessage = { id: opts.id ?? uuidv7(), headers, body: bytes, timestamp: Date.now() }
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
    const caps = transport.capabilities
    if (bytes.byteLength > caps.maxMessageBytes) {
      throw new MsgkitError(
        ErrorCodes.MESSAGE_TOO_LARGE,
        `Message for topic ${name} is ${bytes.byteLength} bytes; the ${transport.name} transport takes at most ${caps.maxMessageBytes}. Nothing was sent: store the payload elsewhere and send a reference.`,
        { details: { topic: name, bytes: bytes.byteLength, max: caps.maxMessageBytes } },
      )
    }
    // user headers plus the id / key / timestamp headers an adapter may add (see toWireHeaders)
    const hb =
      headerBytes(headers) +
      WIRE_ID_OVERHEAD +
      Buffer.byteLength(message.id) +
      (message.key === undefined ? 0 : WireHeaders.key.length + Buffer.byteLength(message.key))
    if (hb > caps.maxHeaderBytes) {
      throw new MsgkitError(
        ErrorCodes.MESSAGE_TOO_LARGE,
        `Headers of a message for topic ${name} take ${hb} bytes; the ${transport.name} transport takes at most ${caps.maxHeaderBytes}. Nothing was sent.`,
        { details: { topic: name, headerBytes: hb, max: caps.maxHeaderBytes } },
      )
    }
    return message
  }

  const send = async (name: string, messages: OutgoingMessage[], timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    try {
      // a transport that overruns its deadline still gets a little grace before we give up on it
      await withTimeout(
        transport.send(name, messages, { deadline }),
        timeoutMs + 2_000,
        () =>
          new MsgkitError(
            ErrorCodes.PUBLISH_TIMEOUT,
            `Publishing to ${name} was not confirmed within ${timeoutMs} ms. The broker may be down; the message may or may not have been stored.`,
            { retriable: true },
          ),
      )
    } catch (error) {
      if (isMsgkitError(error)) throw error
      throw new MsgkitError(
        ErrorCodes.TRANSPORT_ERROR,
        `Publishing to ${name} failed: ${describeError(error).message}`,
        { cause: error, retriable: true },
      )
    }
  }

  const makeProducer = (): Producer => {
    let producerClosed = false
    const inflight = new Set<Promise<unknown>>()
    const track = <R>(p: Promise<R>): Promise<R> => {
      inflight.add(p)
      const forget = (): void => {
        inflight.delete(p)
      }
      p.then(forget, forget)
      return p
    }
    const assertOpen = (): void => {
      if (closed || producerClosed)
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
          const message = prepare(name, typedTopic(topic), body, opts)
          return track(
            send(name, [message], opts?.timeoutMs ?? publishTimeout).then(() => ({
              id: message.id,
              topic: name,
            })),
          )
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
          const messages = items.map((item) => prepare(name, typed, item.body, item))
          if (messages.length === 0) return Promise.resolve([])
          const timeout = Math.max(...items.map((i) => i.timeoutMs ?? publishTimeout))
          return track(
            send(name, messages, timeout).then(() => messages.map((m) => ({ id: m.id, topic: name }))),
          )
        } catch (error) {
          return Promise.reject(error)
        }
      },
      async close() {
        producerClosed = true
        await Promise.allSettled([...inflight])
      },
    }
    producers.add(producer)
    return producer
  }

  const producers = new Set<Producer>()
  const root = makeProducer()

  const subscribe = async <T>(
    topic: AnyTopic<T>,
    options: SubscribeOptions,
    handler: Handler<T>,
  ): Promise<Subscription> => {
    if (closed)
      throw new MsgkitError(
        ErrorCodes.CLOSED,
        'This msgkit instance is closed; create a new one with createMessaging().',
      )
    if (typeof handler !== 'function')
      throw invalid('subscribe(topic, options, handler): handler must be a function.')
    if (!options || typeof options !== 'object')
      throw invalid('subscribe(topic, options, handler): options with a `group` are required.')
    assertGroupName(options.group)
    const concurrency = options.concurrency ?? 1
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000)
      throw invalid('`concurrency` must be an integer from 1 to 10000.')
    if (options.prefetch !== undefined && (!Number.isInteger(options.prefetch) || options.prefetch < 1))
      throw invalid('`prefetch` must be a positive integer.')
    if (
      options.retry &&
      options.retry.attempts !== undefined &&
      (!Number.isInteger(options.retry.attempts) || options.retry.attempts < 1)
    ) {
      throw invalid('`retry.attempts` must be an integer >= 1 (total handler calls, including the first).')
    }
    if (
      options.delivery !== undefined &&
      options.delivery !== 'at-least-once' &&
      options.delivery !== 'at-most-once'
    ) {
      throw invalid("`delivery` must be 'at-least-once' or 'at-most-once'.")
    }
    const caps = transport.capabilities
    const isPattern = typeof topic === 'object' && topic.kind === 'pattern'
    let spec: { topic?: string; pattern?: string }
    if (isPattern) {
      assertPattern(topic.pattern)
      if (!caps.patterns)
        throw unsupported('pattern subscriptions', transport, 'Subscribe to each topic by name instead.')
      spec = { pattern: topic.pattern }
    } else spec = { topic: topicName(topic as Topic<unknown> | string) }
    if (options.ordered === true && !caps.orderedKeys)
      throw unsupported(
        'per-key ordering (ordered: true)',
        transport,
        'Use ordered: false or a transport with ordered keys.',
      )
    if (options.deadLetter && !caps.deadLetter)
      throw unsupported(
        'dead-lettering',
        transport,
        'Set deadLetter: false and handle failures in your handler.',
      )
    const bindingName = spec.topic ?? `pattern:${spec.pattern}`
    const groups = topicGroups.get(bindingName) ?? new Set<string>()
    if (!caps.fanout && groups.size > 0 && !groups.has(options.group)) {
      throw unsupported(
        'several groups on one topic (fan-out)',
        transport,
        `Topic ${bindingName} already has group ${[...groups][0]}; use one group per topic on this transport.`,
      )
    }
    groups.add(options.group)
    topicGroups.set(bindingName, groups)
    const typed = typeof topic === 'string' ? undefined : topic
    const sub = await startConsumer<T>(
      {
        ...spec,
        ...(typed?.schema ? { schema: typed.schema } : {}),
        ...(typed?.codec ? { codec: typed.codec } : {}),
        options,
        handler,
      },
      {
        transport,
        logger,
        codec,
        idempotencyStore,
        emit: (event, payload) => emitter.emit(event, payload as never),
        onClosed: () => subscriptions.delete(sub),
        publishDeadline: () => Date.now() + publishTimeout,
      },
    )
    subscriptions.add(sub)
    return sub
  }

  const consume = <T>(
    topic: AnyTopic<T>,
    options: Omit<SubscribeOptions, 'concurrency'>,
  ): AsyncIterableIterator<Message<T>> => {
    // handler ↔ iterator hand-off: the handler resolves when the loop asks for the next message
    const queue: Array<{ message: Message<T>; done: () => void }> = []
    const takers: Array<(r: IteratorResult<Message<T>>) => void> = []
    let current: (() => void) | undefined
    let sub: Subscription | undefined
    let ended = false
    let failure: unknown
    const starting = subscribe<T>(topic, { ...options, concurrency: 1 }, (message) => {
      return new Promise<void>((resolve) => {
        const item = { message, done: resolve }
        const taker = takers.shift()
        if (taker) {
          current = resolve
          taker({ value: message, done: false })
        } else queue.push(item)
      })
    }).then(
      (s) => {
        sub = s
      },
      (error: unknown) => {
        failure = error
        ended = true
        for (const t of takers.splice(0)) t({ value: undefined, done: true })
      },
    )
    const finish = async (): Promise<IteratorResult<Message<T>>> => {
      ended = true
      current?.()
      current = undefined
      await starting
      await sub?.close()
      for (const t of takers.splice(0)) t({ value: undefined, done: true })
      return { value: undefined, done: true }
    }
    const iterator: AsyncIterableIterator<Message<T>> = {
      async next() {
        current?.()
        current = undefined
        await starting
        if (failure) throw failure
        if (ended) return { value: undefined, done: true }
        const item = queue.shift()
        if (item) {
          current = item.done
          return { value: item.message, done: false }
        }
        return new Promise<IteratorResult<Message<T>>>((resolve) => takers.push(resolve))
      },
      return: finish,
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    return iterator
  }

  const messaging: Messaging = {
    transport,
    capabilities: transport.capabilities,
    publish: root.publish,
    publishBatch: root.publishBatch,
    subscribe,
    consume,
    async provision(topic, group) {
      if (closed) throw new MsgkitError(ErrorCodes.CLOSED, 'This msgkit instance is closed.')
      const name = topicName(topic as Topic<unknown> | string)
      assertGroupName(group)
      if (!transport.capabilities.persistence) {
        throw unsupported(
          'provisioning groups that keep messages while no consumer runs (persistence)',
          transport,
          'Start the consumer before publishing.',
        )
      }
      await transport.provision(name, group)
    },
    producer() {
      return makeProducer()
    },
    health() {
      return {
        status: closed ? 'closed' : state,
        transport: transport.name,
        subscriptions: subscriptions.size,
        ...(lastError ? { lastError } : {}),
      }
    },
    on: emitter.on,
    close(closeOptions?: CloseOptions) {
      if (closing) return closing
      closed = true
      closing = (async () => {
        await Promise.allSettled([...subscriptions].map((s) => s.close(closeOptions)))
        await Promise.allSettled([...producers].map((p) => p.close()))
        try {
          await transport.close()
        } catch (error) {
          logger.warn({ err: describeError(error) }, 'closing the transport failed')
        }
        state = 'closed'
      })()
      return closing
    },
  }
  return messaging
}
