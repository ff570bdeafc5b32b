/** The public API types: messages, topics, options, the Messaging object. */
import type { Codec } from './codec.js'
import type { IdempotencyStore } from './idempotency.js'
import type { Logger } from './logger.js'
import type { Capabilities, Headers, Transport } from './spi.js'

export type { Headers }

/** Why and when a message was dead-lettered (present on messages read from a dead-letter topic). */
export interface DeadLetterInfo {
  reason: 'handler-failed' | 'non-retryable' | 'decode-failed' | 'schema-invalid' | string
  errorName: string
  errorMessage: string
  attempts: number
  topic: string
  group: string
  /** epoch ms */
  time: number
  /**
   * Set when the full message could not be dead-lettered (too large for the broker with the
   * envelope, or refused) and a reduced copy was sent instead: what was cut, the original body's
   * size and sha256. The body of a reduced dead letter is raw bytes (a prefix of the original).
   */
  truncated?: { parts: string[]; originalBytes: number; originalSha256: string; because: string }
}

/** A consumed message. */
export interface Message<T = unknown> {
  id: string
  topic: string
  key?: string
  body: T
  /** user headers only; msgkit's and the broker's own headers are never in here */
  headers: Headers
  /** epoch ms, set by the producer */
  timestamp: number
  /** 1 on the first delivery, counts retries and (where the broker keeps a count) redeliveries */
  attempt: number
  /** the broker delivered this message before (e.g. after a consumer crash) */
  redelivered: boolean
  /** set when this message was read from a dead-letter topic */
  deadLetter?: DeadLetterInfo
}

/** Anything with zod's `safeParse` (zod 3/4 schemas fit). */
export interface Schema<T> {
  safeParse(value: unknown):
    | { success: true; data: T }
    | {
        success: false
        error: {
          issues?: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey> }>
          message?: string
        }
      }
}

/** A named, typed topic. Make one with `defineTopic`. */
export interface Topic<T = unknown> {
  readonly kind: 'topic'
  readonly name: string
  readonly schema?: Schema<T>
  readonly codec?: Codec
}

/** A pattern over topic names (`orders.*`, `orders.>`). Make one with `definePattern`. */
export interface TopicPattern<T = unknown> {
  readonly kind: 'pattern'
  readonly pattern: string
  readonly schema?: Schema<T>
  readonly codec?: Codec
}

export interface PublishOptions {
  key?: string
  headers?: Headers
  /** defaults to a new UUID v7; set it to make a re-publish recognisable (idempotency) */
  id?: string
  /** deliver no earlier than this many ms from now (transport capability `delay`) */
  delayMs?: number
  /** give up after this many ms (default from config `publish.timeoutMs`) */
  timeoutMs?: number
  /**
   * A message that reaches no group (nobody provisioned one for its topic) is lost on RabbitMQ,
   * ActiveMQ virtual topics and SNS. `warn` (default): resolve, log a warning and emit `unroutable`;
   * `reject`: reject with MSGKIT_UNROUTABLE; `ignore`: say nothing. Where the transport cannot tell
   * (capability `unroutable` false) `warn` says nothing and `reject` fails with
   * MSGKIT_CAPABILITY_UNSUPPORTED. Default from config `publish.unroutable`.
   */
  unroutable?: UnroutablePolicy
}

export type UnroutablePolicy = 'ignore' | 'warn' | 'reject'

export interface PublishReceipt {
  id: string
  topic: string
}

export interface BatchItem<T> extends PublishOptions {
  body: T
}

export interface BackoffOptions {
  /** first retry delay (default 100) */
  initialMs?: number
  /** cap (default 10_000) */
  maxMs?: number
  /** growth per attempt (default 2) */
  multiplier?: number
  /** 0..1: fraction of the delay randomised (default 0.2); 0 = exact */
  jitter?: number
}

export interface RetryOptions {
  /** total handler calls including the first (default 3); 1 = no retry */
  attempts?: number
  backoff?: BackoffOptions
}

export interface IdempotencyOptions {
  store?: IdempotencyStore
  /** how long a handled id is remembered (default 24 h) */
  ttlMs?: number
}

export interface SubscribeOptions {
  /** competing consumers share a group; every group gets every message */
  group: string
  /** handlers running at once (default 1) */
  concurrency?: number
  /** keep per-key order when concurrency > 1 (default true) */
  ordered?: boolean
  retry?: RetryOptions | false
  /** send messages that exhausted their retries to `<topic>.<group>.dlq` (default true) */
  deadLetter?: boolean | { topic?: string }
  /** default 'at-least-once' */
  delivery?: 'at-least-once' | 'at-most-once'
  /** effectively-once: skip messages whose id was already handled by this group */
  idempotency?: boolean | IdempotencyOptions
  /** aborting it closes the subscription */
  signal?: AbortSignal
  /** deliveries buffered ahead of the handlers (default 8 × concurrency, from 16 to 1000) */
  prefetch?: number
  /**
   * The group lives only as long as this subscription: created fresh, removed with its messages at
   * `close()` (transport capability `temporaryGroups`). For a process that wants every message
   * while it runs and nothing after, e.g. `msgkit tail`. Use a group name of its own.
   */
  temporary?: boolean
  /**
   * A group that has no position yet starts at the oldest message the broker still keeps, not at
   * messages published from now on (transport capability `replay`: Kafka).
   */
  fromStart?: boolean
}

export interface HandlerContext {
  /** fires when close({ timeoutMs }) gives up on this handler */
  signal: AbortSignal
}

export type Handler<T> = (message: Message<T>, context: HandlerContext) => unknown | Promise<unknown>

export interface CloseOptions {
  /** wait at most this long for in-flight handlers (default 30_000); then abort them */
  timeoutMs?: number
}

/** A running consumer. */
export interface Subscription {
  readonly topic: string
  readonly group: string
  /** resolves when the subscription has fully closed */
  readonly closed: Promise<void>
  /** handlers running right now */
  readonly inFlight: number
  /** stop intake, finish in-flight handlers (up to timeoutMs), ack, release. Idempotent. */
  close(options?: CloseOptions): Promise<void>
}

/** A publishing handle with its own lifecycle. */
export interface Producer {
  publish<T>(topic: Topic<T> | string, body: T, options?: PublishOptions): Promise<PublishReceipt>
  publishBatch<T>(topic: Topic<T> | string, items: ReadonlyArray<BatchItem<T>>): Promise<PublishReceipt[]>
  /** waits for pending publishes; later publishes reject with MSGKIT_CLOSED. Idempotent. */
  close(): Promise<void>
}

export interface HealthReport {
  status: 'up' | 'connecting' | 'down' | 'closed'
  transport: string
  subscriptions: number
  lastError?: string
}

export interface MessagingEvents {
  connected: { transport: string }
  disconnected: { transport: string; error?: unknown }
  reconnecting: { transport: string; attempt: number; delayMs: number; error?: unknown }
  retry: { topic: string; group: string; id: string; attempt: number; delayMs: number; error: unknown }
  'dead-lettered': {
    topic: string
    group: string
    id: string
    reason: string
    deadLetterTopic: string
    /** the dead letter was reduced to fit (see DeadLetterInfo.truncated) */
    truncated?: boolean
  }
  /** a published message reached no group's storage (publish option `unroutable: 'warn'`) */
  unroutable: { topic: string; ids: string[] }
  /** a message that could not even be dead-lettered in reduced form was acked and is gone */
  dropped: { topic: string; group: string; id: string; reason: string; error: unknown }
  error: { error: unknown; topic?: string; group?: string }
}

export type EventName = keyof MessagingEvents

/** The object `createMessaging` returns. */
export interface Messaging extends Producer {
  readonly transport: Transport
  readonly capabilities: Capabilities
  subscribe<T>(
    topic: Topic<T> | TopicPattern<T> | string,
    options: SubscribeOptions,
    handler: Handler<T>,
  ): Promise<Subscription>
  /** async-iterator consumption: each message is acked when the loop asks for the next one */
  consume<T>(
    topic: Topic<T> | TopicPattern<T> | string,
    options: Omit<SubscribeOptions, 'concurrency'>,
  ): AsyncIterableIterator<Message<T>>
  /** make sure a group exists so messages published from now on are kept for it */
  provision(topic: Topic | string, group: string): Promise<void>
  /** a separate publishing handle sharing this connection */
  producer(): Producer
  health(): HealthReport
  on<E extends EventName>(event: E, listener: (payload: MessagingEvents[E]) => void): () => void
  /** stop intake, finish in-flight handlers, ack, flush, disconnect. Idempotent. */
  close(options?: CloseOptions): Promise<void>
}

/**
 * OpenTelemetry settings (docs/observability.md). Tracing and metrics need the optional peer
 * `@opentelemetry/api`; without it, or with `telemetry: false`, core records nothing and only passes
 * a `traceparent` header along. The provider types are structural so this package's types do not
 * depend on `@opentelemetry/api`: pass a `TracerProvider` / `MeterProvider` from it.
 */
export interface TelemetryOptions {
  /** where spans go (default: the global one, `trace.getTracerProvider()`) */
  tracerProvider?: { getTracer(name: string, version?: string, options?: object): unknown }
  /** where metrics go (default: the global one, `metrics.getMeterProvider()`, read once at createMessaging) */
  meterProvider?: { getMeter(name: string, version?: string, options?: object): unknown }
  /**
   * `process` spans are children of the message's creation context (the producer's `send` or
   * `create` span) and also link to it (default `'parent'`); `'link'` makes them roots that only link
   * to it, the conventions' default for consumers that want one trace per processing.
   */
  processContext?: 'parent' | 'link'
  /** `publishBatch`: a `create` span per message, linked from one `send` span (default true, as the conventions recommend) */
  createSpans?: boolean
  /** `ack` / `nack` spans (operation type `settle`) and their durations (default false) */
  settleSpans?: boolean
  /** record `messaging.message.body.size` (Opt-In in the conventions; default false) */
  bodySize?: boolean
}

export interface MessagingOptions {
  logger?: Logger
  /** default codec for topics without one (default: JSON, bytes and strings pass through) */
  codec?: Codec
  publish?: { timeoutMs?: number; unroutable?: UnroutablePolicy }
  idempotencyStore?: IdempotencyStore
  /** OpenTelemetry traces and metrics (docs/observability.md); false = off even with the API installed */
  telemetry?: TelemetryOptions | false
}
