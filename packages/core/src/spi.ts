/**
 * The transport SPI: what an adapter implements. Everything above the wire (codecs, schemas,
 * retries, dead letters, concurrency, per-key order, idempotency, tracing) lives in core.
 * See docs/writing-a-transport.md.
 */
import type { Logger } from './logger.js'

export type Headers = Record<string, string>

/** What a transport can do natively; core refuses options a transport cannot honour. */
export interface Capabilities {
  /** Messages for a provisioned group survive a consumer's absence and a broker restart. */
  persistence: boolean
  /** Several groups on one topic each receive every message. */
  fanout: boolean
  /**
   * Messages with the same key are handled in publish order: `group` = across all members of a
   * group (the broker gives a key to one member at a time: Kafka partitions, ActiveMQ message
   * groups, SQS FIFO); `consumer` = within one member only (competing members of a group may
   * interleave a key: RabbitMQ, memory); false = no order.
   */
  orderedKeys: false | 'consumer' | 'group'
  /** Delayed delivery (`delayMs`), up to `maxMs`; false = unsupported. */
  delay: false | { maxMs: number }
  /** Pattern subscriptions (`orders.*`, `orders.>`). */
  patterns: boolean
  /** Largest encoded body in bytes. Header bytes are limited separately by `maxHeaderBytes`. */
  maxMessageBytes: number
  /** Largest sum of header name + value bytes (user headers plus msgkit's own). */
  maxHeaderBytes: number
  /** The transport can hold dead letters (a topic/queue core sends them to). */
  deadLetter: boolean
  /**
   * How the broker counts deliveries of a message: `exact` = every delivery carries the count
   * (`TransportMessage.attempt`); `flag` = only a redelivered flag; `none` = nothing. Where it is not
   * `exact`, core counts deliveries per message id itself so a message that keeps coming back (its
   * handler crashes the process, say) is dead-lettered after the configured attempts.
   */
  deliveryCount: 'exact' | 'flag' | 'none'
  /**
   * The broker tells the publisher when a message reached no group's storage (RabbitMQ `mandatory`
   * + basic.return). Where false, such a message may be lost silently (a topic no group was
   * provisioned for) and core cannot warn.
   */
  unroutable: boolean
  // ---- operator features (optional; absent = off). Each one names the member or request field a
  // transport implements when it declares the flag; core and the msgkit CLI refuse the feature with
  // MSGKIT_CAPABILITY_UNSUPPORTED where the flag is off or the member is missing.
  /** `SubscribeRequest.temporary`: a group that lives only as long as its subscription (`msgkit tail`). */
  temporaryGroups?: boolean
  /**
   * `SubscribeRequest.fromStart`: a new group can start at the oldest message the broker still keeps
   * (a log, like Kafka), not only at messages published from now on.
   */
  replay?: boolean
  /** `Transport.sendToGroup`: put messages into one group's storage only (dead-letter redrive). */
  sendToGroup?: boolean
  /**
   * `Transport.browse`: read the messages waiting for a group without removing them (`msgkit dlq
   * list/show`). `exact`: reading changes nothing. `redelivers`: the broker can only read by
   * delivering, so every message read comes back marked redelivered with its broker delivery count
   * one higher (RabbitMQ quorum queues: `x-delivery-count`; SQS: `ApproximateReceiveCount`).
   */
  browse?: false | 'exact' | 'redelivers'
}

/** A message on its way to the broker. Core has already encoded the body and set every field. */
export interface OutgoingMessage {
  id: string
  key?: string
  /**
   * user headers plus msgkit's reserved `msgkit-*` headers; all values are strings. The
   * `msgkit-content-type` header is left out for `application/json` (what a message without one
   * is read as); `contentType` always has it.
   */
  headers: Headers
  body: Uint8Array
  /**
   * epoch milliseconds. With msgkit's default id (a UUID v7) it is the millisecond the id encodes,
   * so a transport need not send it separately (see `compactWireHeaders`).
   */
  timestamp: number
  /** the body's content type, for brokers with a field of their own for it (AMQP `content-type`) */
  contentType?: string
  /**
   * true when core made `body` for this message (the codec encoded a value): nobody else holds it,
   * so a transport may keep it without a copy. Absent: the caller's own bytes, which it may reuse.
   */
  owned?: boolean
  /** only set when the transport declared `delay` */
  delayMs?: number
}

export interface SendOptions {
  /** epoch ms: give up (reject with MSGKIT_PUBLISH_TIMEOUT) if not confirmed by then, e.g. during an outage */
  deadline: number
  /**
   * Set (only on transports with capability `unroutable`): once every message of the send was
   * confirmed, reject with MSGKIT_UNROUTABLE (`details.ids`: the ids that reached no group's
   * storage) if there were such messages. Absent: do not ask the broker.
   */
  detectUnroutable?: boolean
}

/** A message as it came off the wire. */
export interface TransportMessage {
  /** msgkit's id when a msgkit producer sent it; otherwise the broker's id */
  id: string
  topic: string
  key?: string
  headers: Headers
  body: Uint8Array
  timestamp: number
  /** delivery count if the broker keeps one (1 = first delivery); undefined if it does not */
  attempt?: number
  /** the broker says this message was delivered before */
  redelivered: boolean
  /**
   * Broker facts about this delivery for tracing (Kafka partition and offset, RabbitMQ routing key
   * and delivery tag). Optional; core only reads it when a span is recorded. Never put user data here.
   */
  meta?: MessageMeta
}

/**
 * Broker-specific facts about one message, for the OpenTelemetry messaging conventions. Core turns
 * them into span attributes (names per docs/observability.md); a transport fills what it has.
 */
export interface MessageMeta {
  /** Kafka: the partition → `messaging.destination.partition.id` */
  partition?: string | number
  /** Kafka: the record's offset (int64 as a decimal string or a safe number) → `messaging.kafka.offset` */
  offset?: string | number
  /** RabbitMQ: the routing key → `messaging.rabbitmq.destination.routing_key` */
  routingKey?: string
  /** RabbitMQ: the delivery tag on its channel → `messaging.rabbitmq.message.delivery_tag` */
  deliveryTag?: number
}

/**
 * What a transport tells core for OpenTelemetry (docs/observability.md). Optional: without it core
 * derives `messaging.system` from the transport's name and leaves out `server.address`/`server.port`.
 * Core reads it after `connect()` and again after every reconnect (the host may have changed).
 */
export interface TransportTelemetry {
  /**
   * `messaging.system`: one of the conventions' values where one applies (`kafka`, `rabbitmq`,
   * `activemq`, `aws_sqs`), a custom lower-case value otherwise (the memory transport: `msgkit_memory`).
   */
  system: string
  /** `server.address`: the broker host this transport is connected to (no credentials, no reverse DNS) */
  serverAddress?: string
  /** `server.port` */
  serverPort?: number
  /**
   * Broker facts of an outgoing message known before it is sent (RabbitMQ: the routing key it will
   * be published with). Called only for a recorded span; must be cheap and must not throw.
   */
  outgoing?(topic: string, message: OutgoingMessage): MessageMeta | undefined
}

/** One delivery. Exactly one of ack/nack is called by core; a second call must be a no-op. */
export interface Delivery {
  message: TransportMessage
  /** Done with it: remove from the broker (Kafka: mark done; the processed prefix is committed). */
  ack(): Promise<void>
  /** Give it back. requeue=true (default): deliver again later; false: drop. */
  nack(options?: { requeue?: boolean }): Promise<void>
}

export interface SubscribeRequest {
  /** exactly one of topic / pattern */
  topic?: string
  /** msgkit pattern syntax: `*` = one dot-separated segment, trailing `>` = one or more segments */
  pattern?: string
  group: string
  /** how many unacked deliveries the transport may hand to core at once */
  prefetch: number
  /**
   * Only with capability `temporaryGroups`. The group exists for this subscription alone: fresh
   * storage (keeping what is published from now on), shared with no other subscription, removed
   * with whatever it holds when the subscription closes. When the process dies instead, the broker
   * removes it by itself (RabbitMQ: an exclusive queue, gone with its connection) or the adapter's
   * docs say when and how it goes. Never set for a group that a service could also use.
   */
  temporary?: boolean
  /**
   * Only with capability `replay`. A group with no position yet starts at the oldest message the
   * broker keeps for the topic, instead of at messages published from now on. A group that already
   * has a position keeps it.
   */
  fromStart?: boolean
}

/** What `Transport.browse` reads. */
export interface BrowseRequest {
  topic: string
  group: string
  /** hand over at most this many messages */
  limit: number
  /** stop early; everything read so far is put back before the promise settles */
  signal?: AbortSignal
}

/**
 * Called for each delivery. The promise resolves when core has room for more: a pull-based
 * transport awaits it before handing over the next delivery; a push-based one may ignore it
 * (its `prefetch` bounds the flow).
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<void>

export interface TransportSubscription {
  /** Stop handing over new deliveries. Deliveries already handed over can still be acked. */
  stop(): Promise<void>
  /** Release the subscription: whatever is still unacked goes back to the broker. Idempotent. */
  close(): Promise<void>
}

export type TransportEvent =
  | { type: 'connected' }
  | { type: 'disconnected'; error?: unknown }
  | { type: 'reconnecting'; attempt: number; delayMs: number; error?: unknown }
  | { type: 'error'; error: unknown }

export interface TransportContext {
  logger: Logger
  /** report connection state changes and background errors */
  emit(event: TransportEvent): void
  /**
   * Secret values of this transport's config (the URL's password, every `secretFields` value),
   * derived once by core. Never put them in errors or logs; `scrub` removes them from a text.
   */
  secrets: readonly string[]
  /** the text with every secret (and any URL password) replaced by `***` */
  scrub(text: string): string
}

/** A connected transport instance. Plain object; no base class. */
export interface Transport {
  readonly name: string
  readonly capabilities: Capabilities
  /** Facts for OpenTelemetry spans and metrics (optional; see TransportTelemetry). */
  readonly telemetry?: TransportTelemetry
  /**
   * The prefetch a subscription gets when its options set none (optional; core's default is
   * 8 × concurrency, from 16 to 1000). A transport whose throughput depends on a larger window
   * (measured: RabbitMQ) says so here.
   */
  defaultPrefetch?(concurrency: number): number
  /**
   * True when `send` (and `sendToGroup`) always settles by `options.deadline`, as sends through
   * the kit's outbox do (contract case SP-4 checks it). Core then keeps no timer of its own per
   * publish. Optional: without it, core rejects a send still open 2 s past its deadline with
   * MSGKIT_PUBLISH_TIMEOUT.
   */
  readonly keepsDeadlines?: boolean
  /** Connect (or fail with MSGKIT_CONNECTION_FAILED / MSGKIT_AUTH_FAILED within seconds). */
  connect(): Promise<void>
  /** Resolve only once the broker durably accepted every message; reject with a MsgkitError. */
  send(topic: string, messages: OutgoingMessage[], options: SendOptions): Promise<void>
  /** Make sure the group's storage exists so messages published from now on are kept for it. Idempotent. */
  provision(topic: string, group: string): Promise<void>
  subscribe(request: SubscribeRequest, onDelivery: DeliveryHandler): Promise<TransportSubscription>
  /** Close every subscription and the connection. Idempotent, safe to call concurrently. */
  close(): Promise<void>
  /**
   * Optional, with capability `sendToGroup`. Like `send`, but only `group`'s storage for `topic`
   * receives the messages: no other group of the topic, no pattern subscription. Resolves once the
   * broker durably stored every one; waits through an outage until `deadline`, then rejects with
   * MSGKIT_PUBLISH_TIMEOUT, exactly like `send`. Keeps id, key, headers and timestamp; ignores
   * `delayMs`. Never creates the group: where it has no storage for `topic`, reject with
   * MSGKIT_UNROUTABLE (`details.ids`) and store nothing there.
   */
  sendToGroup?(topic: string, group: string, messages: OutgoingMessage[], options: SendOptions): Promise<void>
  /**
   * Optional, with capability `browse`. Hands `onMessage` up to `limit` of the messages waiting in
   * `group`'s storage for `topic`, in the order the group would receive them (per partition on a
   * partitioned log), and leaves every one of them there: once the promise settles (resolved,
   * rejected or aborted) each message read is back in place, in its order, for the group's
   * consumers; none is removed, duplicated or reordered. While it runs the messages read may be
   * invisible to the group's consumers; messages a consumer holds unacked may be missed. Never
   * creates the group: one without storage reads as empty. See `Capabilities.browse` for what
   * reading may change (`redelivers`).
   */
  browse?(request: BrowseRequest, onMessage: (message: TransportMessage) => void): Promise<void>
}

/** What an adapter package exports (as `default`): name, schemes, config schema, factory. */
export interface TransportDefinition<Config = unknown> {
  name: string
  /** URL schemes that select this transport, e.g. ['amqp', 'amqps'] */
  schemes: readonly string[]
  /** zod (or compatible) schema; parses and defaults the transport's config */
  configSchema: ConfigSchema<Config>
  /** config field paths (dot-separated) whose values must never appear in errors or logs */
  secretFields?: readonly string[]
  /** maps a parsed `scheme://…` URL onto this transport's config object (before validation) */
  fromUrl?(url: ParsedUrl): Record<string, unknown>
  create(config: Config, context: TransportContext): Transport
}

/** The part of a zod schema core relies on (works with any copy of zod 4). */
export interface ConfigSchema<T> {
  safeParse(input: unknown):
    | { success: true; data: T }
    | {
        success: false
        error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> }
      }
}

/** A broker URL split into parts by core (`scheme://user:pass@h1:1,h2:2/path?a=1`). */
export interface ParsedUrl {
  scheme: string
  username?: string
  password?: string
  hosts: Array<{ host: string; port?: number }>
  /** path without the leading slash, percent-decoded ('' when absent) */
  path: string
  /** query parameters, last one wins */
  params: Record<string, string>
  /** the URL as given; contains secrets — never log it, use `redacted` */
  href: string
  /** the URL with the password replaced by `***` */
  redacted: string
}
