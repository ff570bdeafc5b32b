/**
 * The subscribe side of a Messaging: option checks against the transport's capabilities,
 * starting consumers (consumer.ts), async-iterator consumption, provisioning groups.
 */
import type {
  Handler,
  Message,
  MessagingEvents,
  SubscribeOptions,
  Subscription,
  Topic,
  TopicPattern,
} from './api.js'
import type { Codec } from './codec.js'
import { startConsumer } from './consumer.js'
import type { DeliveryCounter } from './delivery-count.js'
import { ErrorCodes, MsgkitError } from './errors.js'
import type { IdempotencyStore } from './idempotency.js'
import type { Logger } from './logger.js'
import { assertGroupName, assertPattern } from './names.js'
import { invalid, topicName, unsupported } from './publishing.js'
import type { Transport } from './spi.js'
import type { Telemetry } from './telemetry/telemetry.js'

type AnyTopic<T> = Topic<T> | TopicPattern<T> | string

export interface SubscriptionsDeps {
  transport: Transport
  logger: Logger
  codec: Codec
  idempotencyStore: IdempotencyStore
  deliveryCounter: DeliveryCounter
  emit<E extends keyof MessagingEvents>(event: E, payload: MessagingEvents[E]): void
  publishTimeoutMs: number
  isClosed(): boolean
  telemetry: Telemetry
}

export interface Subscriptions {
  subscribe<T>(topic: AnyTopic<T>, options: SubscribeOptions, handler: Handler<T>): Promise<Subscription>
  consume<T>(
    topic: AnyTopic<T>,
    options: Omit<SubscribeOptions, 'concurrency'>,
  ): AsyncIterableIterator<Message<T>>
  provision(topic: Topic | string, group: string): Promise<void>
  readonly size: number
  /** close every subscription */
  close(options?: { timeoutMs?: number }): Promise<void>
}

function closedError(): MsgkitError {
  return new MsgkitError(
    ErrorCodes.CLOSED,
    'This msgkit instance is closed; create a new one with createMessaging().',
  )
}

/** Throws MSGKIT_INVALID_ARGUMENT for options that make no sense, whatever the transport. */
function checkOptions(options: SubscribeOptions): void {
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
}

/** Creates the subscribe side of a Messaging. */
export function createSubscriptions(deps: SubscriptionsDeps): Subscriptions {
  const { transport } = deps
  const live = new Set<Subscription>()
  const topicGroups = new Map<string, Set<string>>()

  const subscribe = async <T>(
    topic: AnyTopic<T>,
    options: SubscribeOptions,
    handler: Handler<T>,
  ): Promise<Subscription> => {
    if (deps.isClosed()) throw closedError()
    if (typeof handler !== 'function')
      throw invalid('subscribe(topic, options, handler): handler must be a function.')
    checkOptions(options)
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
    if (options.temporary && !caps.temporaryGroups)
      throw unsupported(
        'temporary groups (temporary: true)',
        transport,
        "Use a group name of your own and delete the group with the broker's tools when done.",
      )
    if (options.fromStart && !caps.replay)
      throw unsupported(
        'starting a group at the oldest kept message (fromStart: true)',
        transport,
        'This broker keeps messages only for the groups that existed when they were published.',
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
        logger: deps.logger,
        codec: deps.codec,
        idempotencyStore: deps.idempotencyStore,
        deliveryCounter: deps.deliveryCounter,
        emit: (event, payload) => deps.emit(event, payload as never),
        onClosed: () => live.delete(sub),
        publishDeadline: () => Date.now() + deps.publishTimeoutMs,
        telemetry: deps.telemetry,
      },
    )
    live.add(sub)
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

  return {
    subscribe,
    consume,
    async provision(topic, group) {
      if (deps.isClosed()) throw closedError()
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
    get size() {
      return live.size
    },
    async close(options) {
      await Promise.allSettled([...live].map((s) => s.close(options)))
    },
  }
}
