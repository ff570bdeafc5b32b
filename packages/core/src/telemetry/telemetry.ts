/**
 * OpenTelemetry traces and metrics on the messaging semantic conventions, the same for every
 * transport (docs/observability.md):
 *   - `send <topic>` (PRODUCER) around each publish; publishBatch: a `create <topic>` (PRODUCER) per
 *     message, linked from one `send <topic>` (CLIENT) with `messaging.batch.message_count`;
 *   - `process <topic>` (CONSUMER) around each handler call, a child of (and linked to) the
 *     message's creation context; retries and dead letters are events on it;
 *   - optionally `ack <topic>` / `nack <topic>` (CLIENT, operation type `settle`);
 *   - the conventions' four metrics plus msgkit's retries, dead letters, in-flight and reconnects.
 * Every call into the transport runs with tracing suppressed (the SDK's suppression key), so the
 * drivers' own instrumentations (kafkajs, amqplib) neither record spans nor overwrite the
 * `traceparent` core wrote.
 */

import { randomBytes } from 'node:crypto'
import type {
  Attributes,
  Context,
  Counter,
  Histogram,
  Link,
  Meter,
  ObservableUpDownCounter,
  Span,
  SpanContext,
  Tracer,
} from '@opentelemetry/api'
import type { TelemetryOptions } from '../api.js'
import type { Headers, MessageMeta, OutgoingMessage, Transport, TransportMessage } from '../spi.js'
import { ambientContext, ambientTraceparent, runWithContext, runWithoutAmbient } from '../tracing.js'
import {
  Attr,
  DURATION_BUCKETS,
  errorType,
  Metric,
  OLD_OPERATION,
  OldAttr,
  semconvMode,
  systemOf,
} from './conventions.js'
import type { OtelApi } from './otel-api.js'
import { createPropagation } from './propagation.js'

const SCOPE = '@msgkit/core'

/**
 * What core's publish and consume paths call. Check `on` first, per operation: false means nothing
 * would be recorded (no API, `telemetry: false`, or the API with neither a tracer nor a meter
 * provider registered), and core takes its plain path: only `traceparent` is passed along.
 */
export interface Telemetry {
  readonly on: boolean
  /** runs a call into the transport with tracing suppressed for the driver underneath */
  driver<R>(fn: () => R): R
  /** runs `fn` in no trace context at all (a delivery's handling, user listeners of transport events) */
  outside<R>(fn: () => R): R
  /** the transport connected (initial) or reconnected: re-reads Transport.telemetry, counts reconnects */
  connected(initial: boolean): void
  /** a single publish; `userHeaders`: the headers the user passed (a custom creation context?) */
  send(topic: string, userHeaders: Headers | undefined): SendTrace
  /** a publishBatch of `count` messages */
  batch(topic: string, count: number): BatchTrace
  /** a subscription's instruments */
  subscription(spec: { topic?: string; pattern?: string; group: string }): SubscriptionTrace
}

export interface SendTrace {
  /** writes the creation context into the outgoing headers (not when the user gave their own) */
  inject(headers: Headers): void
  /** the prepared message: id, key, size, broker facts */
  message(message: OutgoingMessage): void
  /** the send is over; `error` if it failed (also for a publish that failed before the wire) */
  end(error?: unknown): void
}

export interface BatchTrace {
  /** the injector for the next item (its `create` span starts when it is called) */
  item(userHeaders: Headers | undefined): (headers: Headers) => void
  /** every item is prepared: ends the `create` spans, starts the `send` span */
  sending(messages: ReadonlyArray<OutgoingMessage>): void
  end(error?: unknown): void
}

export interface SubscriptionTrace {
  /** a delivery reached core (counted as consumed) */
  delivery(message: TransportMessage): DeliveryTrace
  /** the subscription closed: its in-flight gauge goes away */
  close(): void
}

export interface DeliveryTrace {
  /** one handler call (or the processing that rejected the message before any handler call) */
  process(attempt: number): ProcessTrace
  /** an ack or nack of this delivery (a span only with `settleSpans`) */
  settle(operation: 'ack' | 'nack', fn: () => Promise<void>): Promise<void>
}

export interface ProcessTrace {
  /** runs the handler in the span's context */
  run<R>(fn: () => R): R
  /** the handler succeeded (or the duplicate was skipped) */
  succeeded(): void
  /** the handler failed and will be called again after `delayMs` */
  retrying(error: unknown, delayMs: number): void
  /** the message leaves its topic for good: dead-lettered (`sent`/`reduced`), dropped, or given back (`retry`) */
  rejected(
    error: unknown,
    reason: string,
    outcome: 'sent' | 'reduced' | 'dropped' | 'retry' | 'off',
    deadLetterTopic: string | undefined,
  ): void
  /** the handler failed and the message goes back to the broker (close aborted it) */
  failed(error: unknown): void
}

/** Telemetry off: the API is not installed, or `telemetry: false`. */
export const telemetryOff: Telemetry = {
  on: false,
  driver: (fn) => fn(),
  outside: (fn) => fn(),
  connected() {},
  send() {
    throw new Error('telemetry is off')
  },
  batch() {
    throw new Error('telemetry is off')
  },
  subscription() {
    throw new Error('telemetry is off')
  },
}

interface Facts {
  system: string
  serverAddress?: string
  serverPort?: number
}

function readFacts(transport: Transport): Facts {
  let t: Transport['telemetry']
  try {
    t = transport.telemetry
  } catch {
    t = undefined
  }
  const facts: Facts = { system: t?.system || systemOf(transport.name) }
  if (typeof t?.serverAddress === 'string' && t.serverAddress !== '') facts.serverAddress = t.serverAddress
  if (typeof t?.serverPort === 'number' && Number.isInteger(t.serverPort)) facts.serverPort = t.serverPort
  return facts
}

/** Adds the attributes of broker facts (`meta`) to `attributes`. */
function addMeta(attributes: Attributes, meta: MessageMeta | undefined, system: string, dup: boolean): void {
  if (!meta) return
  if (meta.partition !== undefined) {
    attributes[Attr.partitionId] = String(meta.partition)
    if (dup && system === 'kafka') attributes[OldAttr.kafkaPartition] = Number(meta.partition)
  }
  if (meta.offset !== undefined) {
    const offset = Number(meta.offset)
    if (Number.isSafeInteger(offset)) {
      attributes[Attr.kafkaOffset] = offset
      if (dup) attributes[OldAttr.kafkaOffset] = offset
    }
  }
  if (meta.routingKey !== undefined && meta.routingKey !== '')
    attributes[Attr.rabbitRoutingKey] = meta.routingKey
  if (meta.deliveryTag !== undefined) attributes[Attr.rabbitDeliveryTag] = meta.deliveryTag
}

const seconds = (startedMs: number): number => (performance.now() - startedMs) / 1000

/** Creates the telemetry of one Messaging. */
export function createTelemetry(
  api: OtelApi,
  transport: Transport,
  options: TelemetryOptions = {},
): Telemetry {
  const { trace, context, SpanKind, SpanStatusCode, ROOT_CONTEXT } = api
  const tracer: Tracer = (options.tracerProvider as ReturnType<typeof trace.getTracerProvider> | undefined)
    ? (options.tracerProvider as ReturnType<typeof trace.getTracerProvider>).getTracer(SCOPE)
    : trace.getTracer(SCOPE)
  const meter: Meter = options.meterProvider
    ? (options.meterProvider as ReturnType<typeof api.metrics.getMeterProvider>).getMeter(SCOPE)
    : api.metrics.getMeter(SCOPE)
  // Is anything listening? The global tracer provider is a proxy whose delegate is the API's no-op
  // provider until an SDK registers (which may happen after createMessaging: asked per operation).
  // The global meter is fixed when it is taken (the metrics API has no proxy).
  const globalTracers = trace.getTracerProvider() as { getDelegate?: () => unknown }
  const noopTracers = new api.ProxyTracerProvider().getDelegate()
  const tracingLive =
    options.tracerProvider !== undefined || typeof globalTracers.getDelegate !== 'function'
      ? () => true
      : () => globalTracers.getDelegate?.() !== noopTracers
  const metricsLive =
    options.meterProvider !== undefined || meter.constructor !== api.createNoopMeter().constructor
  const propagation = createPropagation(api)
  const dup = semconvMode() === 'dup'
  const processAsChild = (options.processContext ?? 'parent') === 'parent'
  const createSpans = options.createSpans ?? true
  const settleSpans = options.settleSpans ?? false
  const bodySize = options.bodySize ?? false
  // the SDK's key (@opentelemetry/core `suppressTracing`): createContextKey is Symbol.for, so it is the same key
  const SUPPRESS = api.createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING')
  // With a context manager registered (NodeSDK, NodeTracerProvider.register()), context.with
  // carries the process span into the handler; without one, core's own async-local store does.
  // Once seen, a manager is assumed to stay.
  const PROBE = ROOT_CONTEXT.setValue(api.createContextKey('msgkit context manager probe'), true)
  let managerSeen = false
  const hasContextManager = (): boolean => {
    if (!managerSeen) managerSeen = context.with(PROBE, () => context.active() === PROBE)
    return managerSeen
  }

  const durationAdvice = { advice: { explicitBucketBoundaries: DURATION_BUCKETS } }
  const operationDuration: Histogram = meter.createHistogram(Metric.operationDuration, {
    description: 'Duration of messaging operation initiated by a producer or consumer client.',
    unit: 's',
    ...durationAdvice,
  })
  const processDuration: Histogram = meter.createHistogram(Metric.processDuration, {
    description: 'Duration of processing operation.',
    unit: 's',
    ...durationAdvice,
  })
  const sentMessages: Counter = meter.createCounter(Metric.sentMessages, {
    description: 'Number of messages producer attempted to send to the broker.',
    unit: '{message}',
  })
  const consumedMessages: Counter = meter.createCounter(Metric.consumedMessages, {
    description: 'Number of messages that were delivered to the application.',
    unit: '{message}',
  })
  const retries: Counter = meter.createCounter(Metric.retries, {
    description: 'Handler calls that failed and are retried in process (msgkit).',
    unit: '{retry}',
  })
  const deadLetters: Counter = meter.createCounter(Metric.deadLetters, {
    description:
      'Messages that left their topic without being handled: dead-lettered, or dropped where that failed too (msgkit).',
    unit: '{message}',
  })
  // observed when metrics are collected, not recorded per message: the running count per subscription
  const running = new Map<Attributes, { count: number }>()
  const inFlight: ObservableUpDownCounter = meter.createObservableUpDownCounter(Metric.inFlight, {
    description: 'Handler calls running right now (msgkit).',
    unit: '{message}',
  })
  inFlight.addCallback((result) => {
    for (const [attributes, state] of running) result.observe(state.count, attributes)
  })
  const reconnects: Counter = meter.createCounter(Metric.reconnects, {
    description: 'Times the connection to the broker was re-established after it was lost (msgkit).',
    unit: '{reconnect}',
  })

  let facts = readFacts(transport)
  /** system and server.*: on every span and metric */
  let base: Attributes = {}
  const sendMetricAttrs = new Map<string, Attributes>()
  const refresh = (): void => {
    facts = readFacts(transport)
    base = { [Attr.system]: facts.system }
    if (facts.serverAddress !== undefined) base[Attr.serverAddress] = facts.serverAddress
    if (facts.serverPort !== undefined) base[Attr.serverPort] = facts.serverPort
    sendMetricAttrs.clear()
  }
  refresh()

  const operation = (attributes: Attributes, name: string, type: string): Attributes => {
    attributes[Attr.operationName] = name
    attributes[Attr.operationType] = type
    if (dup) {
      const old = OLD_OPERATION[type]
      if (old !== undefined) attributes[OldAttr.operation] = old
    }
    return attributes
  }

  /** metric attributes of sends to `topic` (cached: built once per topic, bounded) */
  const sendAttrs = (topic: string): Attributes => {
    let attrs = sendMetricAttrs.get(topic)
    if (!attrs) {
      if (sendMetricAttrs.size >= 1_000) sendMetricAttrs.clear()
      attrs = operation({ ...base, [Attr.destinationName]: topic }, 'send', 'send')
      sendMetricAttrs.set(topic, attrs)
    }
    return attrs
  }

  const withError = (attributes: Attributes, error: unknown): Attributes => ({
    ...attributes,
    [Attr.errorType]: errorType(error),
  })

  const fail = (span: Span, error: unknown, record: boolean): void => {
    if (!span.isRecording()) return
    span.setAttribute(Attr.errorType, errorType(error))
    if (record && error instanceof Error) span.recordException(error)
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    })
  }

  /** the context a publish continues: the active span's, else the handler we are in (no context manager) */
  const publishParent = (): Context => {
    const active = context.active()
    if (trace.getSpanContext(active) !== undefined) return active
    const inHandler = ambientContext() as Context | undefined
    if (inHandler !== undefined) return inHandler
    // a handler of a Messaging with telemetry off, in the same process
    const tp = ambientTraceparent()
    if (tp !== undefined) return propagation.extract({ traceparent: tp }) ?? active
    return active
  }

  /** the creation context a user put in their headers, if any */
  const customContext = (userHeaders: Headers | undefined): SpanContext | undefined => {
    if (userHeaders === undefined) return undefined
    const ctx = propagation.extract(userHeaders)
    return ctx === undefined ? undefined : trace.getSpanContext(ctx)
  }

  /**
   * The context to inject for `span`: its own. A span that is not its own (the API's no-op tracer
   * hands back the parent's span context when no SDK is registered) gets a fresh child span id, as
   * core does without OpenTelemetry, so every message still carries a context of its own.
   */
  const creationOf = (parent: Context, span: Span): Context => {
    const sc = span.spanContext()
    const parentSc = trace.getSpanContext(parent)
    if (trace.isSpanContextValid(sc) && sc.spanId !== parentSc?.spanId) return trace.setSpan(parent, span)
    if (parentSc === undefined || !trace.isSpanContextValid(parentSc)) return parent
    return trace.setSpanContext(parent, {
      ...parentSc,
      spanId: randomBytes(8).toString('hex'),
      isRemote: false,
    })
  }

  const messageAttributes = (span: Span, topic: string, message: OutgoingMessage): void => {
    if (!span.isRecording()) return
    span.setAttribute(Attr.messageId, message.id)
    if (message.key !== undefined && facts.system === 'kafka') span.setAttribute(Attr.kafkaKey, message.key)
    if (bodySize) span.setAttribute(Attr.bodySize, message.body.byteLength)
    const outgoing = transport.telemetry?.outgoing
    if (outgoing) {
      const attrs: Attributes = {}
      try {
        addMeta(attrs, outgoing(topic, message), facts.system, dup)
      } catch {
        // a transport's describing function must not break publishing
      }
      span.setAttributes(attrs)
    }
  }

  const telemetry: Telemetry = {
    get on() {
      return metricsLive || tracingLive()
    },
    // nothing to suppress while no SDK is registered: the drivers' instrumentations record nothing either
    driver: (fn) => (tracingLive() ? context.with(context.active().setValue(SUPPRESS, true), fn) : fn()),
    outside: (fn) => context.with(ROOT_CONTEXT, () => runWithoutAmbient(fn)),
    connected(initial) {
      refresh()
      if (!initial) reconnects.add(1, base)
    },

    send(topic, userHeaders) {
      const started = performance.now()
      const parent = publishParent()
      const custom = customContext(userHeaders)
      const attributes = operation({ ...base, [Attr.destinationName]: topic }, 'send', 'send')
      const span = tracer.startSpan(
        `send ${topic}`,
        custom
          ? { kind: SpanKind.CLIENT, attributes, links: [{ context: custom }] }
          : { kind: SpanKind.PRODUCER, attributes },
        parent,
      )
      let done = false
      return {
        inject(headers) {
          if (!custom) propagation.inject(creationOf(parent, span), headers)
        },
        message: (message) => messageAttributes(span, topic, message),
        end(error) {
          if (done) return
          done = true
          const metricAttrs = error === undefined ? sendAttrs(topic) : withError(sendAttrs(topic), error)
          if (error !== undefined) fail(span, error, false)
          span.end()
          operationDuration.record(seconds(started), metricAttrs)
          sentMessages.add(1, metricAttrs)
        },
      }
    },

    batch(topic, count) {
      const started = performance.now()
      const parent = publishParent()
      const links: Link[] = []
      const creates: Array<Span | undefined> = []
      // without create spans the send span is the creation context of every message: start it now
      let send: Span | undefined
      const sendAttributes = (): Attributes =>
        operation({ ...base, [Attr.destinationName]: topic, [Attr.batchCount]: count }, 'send', 'send')
      if (!createSpans)
        send = tracer.startSpan(
          `send ${topic}`,
          { kind: SpanKind.PRODUCER, attributes: sendAttributes() },
          parent,
        )
      let done = false
      return {
        item(userHeaders) {
          const custom = customContext(userHeaders)
          if (custom) {
            links.push({ context: custom })
            creates.push(undefined)
            return () => {}
          }
          if (!createSpans) {
            creates.push(undefined)
            return (headers) => propagation.inject(creationOf(parent, send as Span), headers)
          }
          const create = tracer.startSpan(
            `create ${topic}`,
            {
              kind: SpanKind.PRODUCER,
              attributes: operation({ ...base, [Attr.destinationName]: topic }, 'create', 'create'),
            },
            parent,
          )
          creates.push(create)
          links.push({ context: create.spanContext() })
          return (headers) => propagation.inject(creationOf(parent, create), headers)
        },
        sending(messages) {
          messages.forEach((message, i) => {
            const create = creates[i]
            if (create) {
              messageAttributes(create, topic, message)
              create.end()
            }
          })
          creates.length = 0
          if (send) {
            if (links.length > 0 && typeof send.addLinks === 'function') send.addLinks(links)
          } else
            send = tracer.startSpan(
              `send ${topic}`,
              { kind: SpanKind.CLIENT, attributes: sendAttributes(), links },
              parent,
            )
        },
        end(error) {
          if (done) return
          done = true
          for (const create of creates) {
            // a batch that failed while its items were prepared
            if (create) {
              fail(create, error, false)
              create.end()
            }
          }
          const metricAttrs = error === undefined ? sendAttrs(topic) : withError(sendAttrs(topic), error)
          if (send) {
            if (error !== undefined) fail(send, error, false)
            send.end()
          }
          operationDuration.record(seconds(started), metricAttrs)
          sentMessages.add(count, metricAttrs)
        },
      }
    },

    subscription(spec) {
      const group = spec.group
      // a pattern is the low-cardinality name of what a pattern subscription reads (`messaging.destination.template`)
      const template = spec.pattern
      const metricAttrs = operation(
        template === undefined
          ? { ...base, [Attr.destinationName]: spec.topic as string, [Attr.consumerGroup]: group }
          : { ...base, [Attr.destinationTemplate]: template, [Attr.consumerGroup]: group },
        'process',
        'process',
      )
      if (dup && facts.system === 'kafka') metricAttrs[OldAttr.kafkaConsumerGroup] = group
      const spanName = template === undefined ? `process ${spec.topic}` : `process ${template}`
      // msgkit's own counters: no operation attributes, the subscription's destination and group
      const ownAttrs: Attributes = { ...metricAttrs }
      delete ownAttrs[Attr.operationName]
      delete ownAttrs[Attr.operationType]
      delete ownAttrs[OldAttr.operation]
      const handlers = { count: 0 }
      running.set(ownAttrs, handlers)

      return {
        close() {
          running.delete(ownAttrs)
        },
        delivery(message) {
          consumedMessages.add(1, metricAttrs)
          let extracted = false
          let creation: Context | undefined
          let creationSpan: SpanContext | undefined
          /** where the last process span ran: settle spans are its children */
          let lastProcess: Context | undefined
          const creationContext = (): void => {
            if (extracted) return
            extracted = true
            creation = propagation.extract(message.headers)
            creationSpan = creation === undefined ? undefined : trace.getSpanContext(creation)
          }
          return {
            process(attempt) {
              creationContext()
              const started = performance.now()
              const attributes = operation(
                { ...base, [Attr.destinationName]: message.topic, [Attr.consumerGroup]: group },
                'process',
                'process',
              )
              if (template !== undefined) attributes[Attr.destinationTemplate] = template
              attributes[Attr.messageId] = message.id
              attributes[Attr.attempt] = attempt
              if (message.key !== undefined && facts.system === 'kafka')
                attributes[Attr.kafkaKey] = message.key
              if (bodySize) attributes[Attr.bodySize] = message.body.byteLength
              if (dup && facts.system === 'kafka') attributes[OldAttr.kafkaConsumerGroup] = group
              addMeta(attributes, message.meta, facts.system, dup)
              const parent = processAsChild && creation !== undefined ? creation : ROOT_CONTEXT
              const span = tracer.startSpan(
                spanName,
                {
                  kind: SpanKind.CONSUMER,
                  attributes,
                  ...(creationSpan ? { links: [{ context: creationSpan }] } : {}),
                },
                parent,
              )
              const spanContext = trace.setSpan(parent, span)
              lastProcess = spanContext
              handlers.count += 1
              let done = false
              const finish = (error: unknown, record: boolean): void => {
                if (done) return
                done = true
                handlers.count -= 1
                if (error !== undefined) fail(span, error, record)
                span.end()
                processDuration.record(
                  seconds(started),
                  error === undefined ? metricAttrs : withError(metricAttrs, error),
                )
              }
              return {
                run(fn) {
                  if (hasContextManager()) return context.with(spanContext, fn)
                  const sc = span.spanContext()
                  const tp = trace.isSpanContextValid(sc) ? propagation.traceparentOf(sc) : undefined
                  return runWithContext(tp, spanContext, fn)
                },
                succeeded: () => finish(undefined, false),
                retrying(error, delayMs) {
                  if (span.isRecording())
                    span.addEvent('msgkit.retry', { [Attr.attempt]: attempt, [Attr.retryDelay]: delayMs })
                  retries.add(1, withError(ownAttrs, error))
                  finish(error, true)
                },
                rejected(error, reason, outcome, deadLetterTopic) {
                  if (outcome !== 'retry') {
                    if (span.isRecording()) {
                      const event: Attributes = {
                        [Attr.deadLetterReason]: reason,
                        [Attr.deadLetterOutcome]: outcome,
                      }
                      if (deadLetterTopic !== undefined) event[Attr.deadLetterTopic] = deadLetterTopic
                      span.addEvent('msgkit.dead_letter', event)
                    }
                    deadLetters.add(1, {
                      ...ownAttrs,
                      [Attr.deadLetterReason]: reason,
                      [Attr.deadLetterOutcome]: outcome,
                    })
                  }
                  finish(error, true)
                },
                failed: (error) => finish(error, false),
              }
            },
            async settle(operationName, fn) {
              if (!settleSpans) return fn()
              creationContext()
              const started = performance.now()
              const attributes = operation(
                { ...base, [Attr.destinationName]: message.topic, [Attr.consumerGroup]: group },
                operationName,
                'settle',
              )
              attributes[Attr.messageId] = message.id
              const parent = lastProcess ?? creation ?? ROOT_CONTEXT
              const span = tracer.startSpan(
                `${operationName} ${template ?? message.topic}`,
                {
                  kind: SpanKind.CLIENT,
                  attributes,
                  ...(creationSpan ? { links: [{ context: creationSpan }] } : {}),
                },
                parent,
              )
              const durationAttrs = operation({ ...ownAttrs }, operationName, 'settle')
              try {
                await fn()
                span.end()
                operationDuration.record(seconds(started), durationAttrs)
              } catch (error) {
                fail(span, error, false)
                span.end()
                operationDuration.record(seconds(started), withError(durationAttrs, error))
                throw error
              }
            },
          }
        },
      }
    },
  }
  return telemetry
}
