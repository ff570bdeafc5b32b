/**
 * TR: OpenTelemetry traces and metrics on the messaging semantic conventions, recorded by the real
 * SDK (in-memory span exporter, a collecting metric reader) the same way on every transport.
 * A "publishing process" and a "consuming process" are two Messaging instances, each with its own
 * tracer and meter provider: what connects their spans is only what travels in the message.
 */
import type { Messaging, MessagingOptions } from '@msgkit/core'
import { context, propagation, type SpanContext, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
} from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { expect } from 'vitest'
import { createHandlerSpy } from '../helpers/handler-spy.js'
import { waitFor } from '../helpers/wait-for.js'
import { CASE_MS, report, type SuiteKit, WAIT_MS } from './support.js'

/** The conventions' `messaging.system` of the transports msgkit knows (memory: msgkit's own value). */
const KNOWN_SYSTEMS: Readonly<Record<string, string>> = {
  kafka: 'kafka',
  rabbitmq: 'rabbitmq',
  activemq: 'activemq',
  sqs: 'aws_sqs',
  memory: 'msgkit_memory',
}

/** Collects on demand; no export timer. */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** One "process": its own tracer and meter provider, recording in memory. */
interface Recorder {
  telemetry: NonNullable<Exclude<MessagingOptions['telemetry'], false>>
  spans(): ReadableSpan[]
  metrics(): Promise<Map<string, MetricData>>
  shutdown(): Promise<void>
}

function recorder(): Recorder {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new CollectingReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  return {
    telemetry: { tracerProvider, meterProvider },
    spans: () => exporter.getFinishedSpans(),
    async metrics() {
      const { resourceMetrics } = await reader.collect()
      const byName = new Map<string, MetricData>()
      for (const scope of resourceMetrics.scopeMetrics)
        for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric)
      return byName
    },
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()])
    },
  }
}

/** Runs `body` with fresh recorders and always shuts them down. */
async function withRecorders<T>(count: number, body: (recorders: Recorder[]) => Promise<T>): Promise<T> {
  const recorders = Array.from({ length: count }, recorder)
  try {
    return await body(recorders)
  } finally {
    await Promise.all(recorders.map((r) => r.shutdown()))
  }
}

/** The `messaging.system` a transport must report: its own declaration, else the known value for its name. */
function expectedSystem(messaging: Messaging): string | undefined {
  return messaging.transport.telemetry?.system ?? KNOWN_SYSTEMS[messaging.transport.name]
}

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId
const idOf = (span: ReadableSpan): string => span.spanContext().spanId
const traceOf = (span: ReadableSpan): string => span.spanContext().traceId
const describe = (spans: ReadableSpan[]): string =>
  spans.map((s) => `${s.name} [${SpanKind[s.kind]}] ${idOf(s)} ← ${parentOf(s) ?? 'root'}`).join('; ')

/** Wait until `recorder` has finished spans matching `predicate`, at least `count` of them. */
async function spansOf(
  recorder: Recorder,
  predicate: (span: ReadableSpan) => boolean,
  count: number,
  what: string,
): Promise<ReadableSpan[]> {
  return waitFor(
    () => {
      const found = recorder.spans().filter(predicate)
      return found.length >= count ? found : undefined
    },
    { timeoutMs: WAIT_MS, message: `${what} (finished spans so far: ${describe(recorder.spans())})` },
  )
}

/** The attributes every span of this transport carries: system, and server.* when it declares them. */
function expectTransportAttributes(span: ReadableSpan, messaging: Messaging, what: string): void {
  const system = expectedSystem(messaging)
  if (system !== undefined)
    expect(span.attributes['messaging.system'], `${what}: messaging.system`).toBe(system)
  else expect(span.attributes['messaging.system'], `${what}: messaging.system`).toMatch(/^[a-z0-9_.]+$/)
  const declared = messaging.transport.telemetry
  if (declared?.serverAddress !== undefined)
    expect(span.attributes['server.address'], `${what}: server.address`).toBe(declared.serverAddress)
  if (declared?.serverPort !== undefined)
    expect(span.attributes['server.port'], `${what}: server.port`).toBe(declared.serverPort)
}

function expectOperation(span: ReadableSpan, name: string, type: string, what: string): void {
  expect(span.attributes['messaging.operation.name'], `${what}: messaging.operation.name`).toBe(name)
  expect(span.attributes['messaging.operation.type'], `${what}: messaging.operation.type`).toBe(type)
}

/** `child` is a child of `parent` in the same trace, and links to it (the creation context). */
function expectChildAndLink(child: ReadableSpan, parent: ReadableSpan, what: string): void {
  expect(traceOf(child), `${what}: same trace`).toBe(traceOf(parent))
  expect(parentOf(child), `${what}: parent span`).toBe(idOf(parent))
  expect(
    child.links.map((l) => l.context.spanId),
    `${what}: links to the creation context`,
  ).toContain(idOf(parent))
}

function sumOf(
  metric: MetricData | undefined,
  match: (attributes: DataPoint<unknown>['attributes']) => boolean,
): number {
  if (!metric) return 0
  let sum = 0
  for (const point of metric.dataPoints as DataPoint<number | Histogram>[]) {
    if (!match(point.attributes)) continue
    sum += typeof point.value === 'number' ? point.value : point.value.count
  }
  return sum
}

export function tracingCases(kit: SuiteKit): void {
  kit.describe('tracing', () => {
    kit.it(
      'TR-1 publish → consume across two instances: one trace, `send <topic>` PRODUCER → `process <topic>` CONSUMER (child and link), the conventions attributes, a W3C traceparent header',
      async (t) => {
        await withRecorders(2, async ([producerSide, consumerSide]) => {
          const publisher = await kit.open({ telemetry: producerSide!.telemetry })
          const consumer = await kit.open({ telemetry: consumerSide!.telemetry })
          const topic = kit.topic()
          const group = kit.group('tr1')
          const spy = createHandlerSpy()
          await consumer.subscribe(topic, { group }, spy.handler)
          const receipt = await publisher.publish(
            topic,
            { order: 1 },
            { key: 'k-1', headers: { tenant: 'acme' } },
          )
          const received = await spy.waitForMessage((m) => m.id === receipt.id, { timeoutMs: WAIT_MS })

          const [send] = await spansOf(producerSide!, (s) => s.name === `send ${topic}`, 1, 'the send span')
          const [processed] = await spansOf(
            consumerSide!,
            (s) => s.name === `process ${topic}`,
            1,
            'the process span',
          )
          expect(send!.kind, 'send span kind').toBe(SpanKind.PRODUCER)
          expect(processed!.kind, 'process span kind').toBe(SpanKind.CONSUMER)
          expectChildAndLink(processed!, send!, 'process span')
          expect(producerSide!.spans(), 'the publishing side records exactly one span').toHaveLength(1)

          expectTransportAttributes(send!, publisher, 'send span')
          expectOperation(send!, 'send', 'send', 'send span')
          expect(send!.attributes['messaging.destination.name'], 'send: destination').toBe(topic)
          expect(send!.attributes['messaging.message.id'], 'send: message id').toBe(receipt.id)
          expect(
            send!.attributes['messaging.batch.message_count'],
            'a single publish is no batch',
          ).toBeUndefined()
          expect(send!.status.code, 'send status').toBe(SpanStatusCode.UNSET)

          expectTransportAttributes(processed!, consumer, 'process span')
          expectOperation(processed!, 'process', 'process', 'process span')
          expect(processed!.attributes['messaging.destination.name'], 'process: destination').toBe(topic)
          expect(processed!.attributes['messaging.consumer.group.name'], 'process: group').toBe(group)
          expect(processed!.attributes['messaging.message.id'], 'process: message id').toBe(receipt.id)
          expect(processed!.attributes['msgkit.message.attempt'], 'process: attempt').toBe(1)
          expect(processed!.attributes['error.type'], 'no error.type on success').toBeUndefined()
          if (expectedSystem(consumer) === 'kafka')
            expect(processed!.attributes['messaging.kafka.message.key'], 'process: Kafka key').toBe('k-1')

          // the creation context travels as W3C trace context, visible to any consumer
          const sc = send!.spanContext()
          expect(received.headers.traceparent, 'traceparent header').toBe(
            `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`,
          )
          expect(received.headers.tenant, 'user headers untouched').toBe('acme')
          const declared = consumer.transport.telemetry
          await report(
            t,
            `trace ${sc.traceId}: ${describe([send!, processed!])}; system ${String(processed!.attributes['messaging.system'])}` +
              (declared?.serverAddress
                ? `, server ${declared.serverAddress}:${declared.serverPort ?? ''}`
                : ', no server.* declared'),
          )
        })
      },
      CASE_MS,
    )

    kit.it(
      'TR-2 a handler that publishes continues the trace: send → process → send → process, one trace, each a child of the one before',
      async (t) => {
        await withRecorders(3, async ([orders, mail, archive]) => {
          const publisher = await kit.open({ telemetry: orders!.telemetry })
          const relay = await kit.open({ telemetry: mail!.telemetry })
          const sink = await kit.open({ telemetry: archive!.telemetry })
          const first = kit.topic()
          const second = kit.topic()
          const done = createHandlerSpy()
          await sink.subscribe(second, { group: kit.group('tr2b') }, done.handler)
          await relay.subscribe(first, { group: kit.group('tr2a') }, async (message) => {
            await relay.publish(second, { from: message.id })
          })
          await publisher.publish(first, 'start')
          await done.waitForCount(1, { timeoutMs: WAIT_MS })

          const [send1] = await spansOf(orders!, (s) => s.name === `send ${first}`, 1, 'first send')
          const [process1] = await spansOf(mail!, (s) => s.name === `process ${first}`, 1, 'first process')
          const [send2] = await spansOf(mail!, (s) => s.name === `send ${second}`, 1, 'second send')
          const [process2] = await spansOf(
            archive!,
            (s) => s.name === `process ${second}`,
            1,
            'second process',
          )
          expectChildAndLink(process1!, send1!, 'first process')
          expect(parentOf(send2!), "the handler's publish is a child of its process span").toBe(
            idOf(process1!),
          )
          expect(send2!.kind, 'second send kind').toBe(SpanKind.PRODUCER)
          expectChildAndLink(process2!, send2!, 'second process')
          expect(new Set([send1, process1, send2, process2].map((s) => traceOf(s!))).size, 'one trace').toBe(
            1,
          )
          await report(t, `one trace: ${describe([send1!, process1!, send2!, process2!])}`)
        })
      },
      CASE_MS,
    )

    kit.it(
      'TR-3 retries and dead letters: one `process` span per handler call, ERROR with error.type, a `msgkit.retry` event, then `msgkit.dead_letter`; retry and dead-letter counters',
      async (t) => {
        await withRecorders(2, async ([producerSide, consumerSide]) => {
          const publisher = await kit.open({ telemetry: producerSide!.telemetry })
          const consumer = await kit.open({ telemetry: consumerSide!.telemetry })
          const topic = kit.topic()
          const group = kit.group('tr3')
          class PaymentDeclinedError extends Error {}
          const spy = createHandlerSpy(() => {
            throw new PaymentDeclinedError('card declined')
          })
          const deadLetter = consumer.capabilities.deadLetter
          await consumer.subscribe(
            topic,
            { group, retry: { attempts: 2, backoff: { initialMs: 50, jitter: 0 } }, deadLetter },
            spy.handler,
          )
          const receipt = await publisher.publish(topic, 'declined')
          await spy.waitForCount(2, { timeoutMs: WAIT_MS })
          const calls = await spansOf(
            consumerSide!,
            (s) => s.name === `process ${topic}`,
            2,
            'two process spans',
          )
          const [send] = await spansOf(producerSide!, (s) => s.name === `send ${topic}`, 1, 'the send span')
          calls.sort(
            (a, b) =>
              Number(a.attributes['msgkit.message.attempt']) - Number(b.attributes['msgkit.message.attempt']),
          )
          const [firstCall, lastCall] = calls
          for (const [i, span] of calls.entries()) {
            expect(span.attributes['msgkit.message.attempt'], `call ${i + 1}: attempt`).toBe(i + 1)
            expect(span.status.code, `call ${i + 1}: status`).toBe(SpanStatusCode.ERROR)
            expect(span.attributes['error.type'], `call ${i + 1}: error.type`).toBe('PaymentDeclinedError')
            expect(span.attributes['messaging.message.id'], `call ${i + 1}: message id`).toBe(receipt.id)
            expectChildAndLink(span, send!, `call ${i + 1}`)
          }
          const retry = firstCall!.events.find((e) => e.name === 'msgkit.retry')
          expect(retry, 'first call: msgkit.retry event').toBeDefined()
          expect(retry!.attributes?.['msgkit.retry.delay_ms'], 'retry delay').toBe(50)
          expect(
            firstCall!.events.some((e) => e.name === 'msgkit.dead_letter'),
            'no dead letter on the first call',
          ).toBe(false)
          const dead = await waitFor(() => lastCall!.events.find((e) => e.name === 'msgkit.dead_letter'), {
            timeoutMs: WAIT_MS,
            message: 'msgkit.dead_letter event on the last call',
          })
          expect(dead.attributes?.['msgkit.dead_letter.reason'], 'dead letter reason').toBe('handler-failed')
          if (deadLetter) {
            expect(dead.attributes?.['msgkit.dead_letter.topic'], 'dead letter topic').toBe(
              `${topic}.${group}.dlq`,
            )
            expect(['sent', 'reduced'], 'dead letter outcome').toContain(
              dead.attributes?.['msgkit.dead_letter.outcome'],
            )
          } else
            expect(dead.attributes?.['msgkit.dead_letter.outcome'], 'dead letters off: dropped').toBe('off')
          expect(
            firstCall!.events.some((e) => e.name === 'exception'),
            'the handler error is recorded as an exception event',
          ).toBe(true)

          const metrics = await consumerSide!.metrics()
          const ofGroup = (a: Record<string, unknown>) => a['messaging.consumer.group.name'] === group
          expect(sumOf(metrics.get('msgkit.consumer.retries'), ofGroup), 'msgkit.consumer.retries').toBe(1)
          expect(
            sumOf(metrics.get('msgkit.consumer.dead_letters'), ofGroup),
            'msgkit.consumer.dead_letters',
          ).toBe(1)
          expect(
            sumOf(
              metrics.get('messaging.process.duration'),
              (a) => ofGroup(a) && a['error.type'] === 'PaymentDeclinedError',
            ),
            'failed handler calls in messaging.process.duration',
          ).toBe(2)
          await report(
            t,
            `2 calls, events ${calls.map((s) => s.events.map((e) => e.name).join('+')).join(' | ')}; dead letter ${String(dead.attributes?.['msgkit.dead_letter.outcome'])}`,
          )
        })
      },
      CASE_MS,
    )

    kit.it(
      'TR-4 publishBatch: a `create <topic>` PRODUCER per message, one `send <topic>` CLIENT with messaging.batch.message_count linking to each; each `process` is a child of its own `create`',
      async (t) => {
        await withRecorders(2, async ([producerSide, consumerSide]) => {
          const publisher = await kit.open({ telemetry: producerSide!.telemetry })
          const consumer = await kit.open({ telemetry: consumerSide!.telemetry })
          const topic = kit.topic()
          const spy = createHandlerSpy()
          await consumer.subscribe(topic, { group: kit.group('tr4') }, spy.handler)
          const receipts = await publisher.publishBatch(topic, [{ body: 'a' }, { body: 'b' }, { body: 'c' }])
          await spy.waitForCount(3, { timeoutMs: WAIT_MS })

          const creates = await spansOf(
            producerSide!,
            (s) => s.name === `create ${topic}`,
            3,
            'three create spans',
          )
          const [send] = await spansOf(
            producerSide!,
            (s) => s.name === `send ${topic}`,
            1,
            'the batch send span',
          )
          expect(creates, 'exactly three create spans').toHaveLength(3)
          expect(send!.kind, 'batch send kind').toBe(SpanKind.CLIENT)
          expect(send!.attributes['messaging.batch.message_count'], 'batch count').toBe(3)
          expect(send!.attributes['messaging.message.id'], 'no message id on a batch span').toBeUndefined()
          expectOperation(send!, 'send', 'send', 'batch send')
          expect(send!.links.map((l) => l.context.spanId).sort(), 'send links to every create span').toEqual(
            creates.map(idOf).sort(),
          )
          const createById = new Map(creates.map((c) => [c.attributes['messaging.message.id'], c]))
          expect([...createById.keys()].sort(), 'one create span per message id').toEqual(
            receipts.map((r) => r.id).sort(),
          )
          const processes = await spansOf(
            consumerSide!,
            (s) => s.name === `process ${topic}`,
            3,
            'three process spans',
          )
          for (const span of processes) {
            const create = createById.get(span.attributes['messaging.message.id'])
            expect(create, 'a create span for the processed message').toBeDefined()
            expect(create!.kind, 'create kind').toBe(SpanKind.PRODUCER)
            expectOperation(create!, 'create', 'create', 'create span')
            expectChildAndLink(span, create!, `process of ${String(span.attributes['messaging.message.id'])}`)
          }
          await report(
            t,
            `batch of 3: send ${idOf(send!)} links ${send!.links.length}; ${describe(processes)}`,
          )
        })
      },
      CASE_MS,
    )

    kit.it(
      'TR-5 metrics: messaging.client.sent.messages, messaging.client.consumed.messages, messaging.client.operation.duration and messaging.process.duration (s) with the conventions attributes; in-flight back to 0',
      async (t) => {
        await withRecorders(2, async ([producerSide, consumerSide]) => {
          const publisher = await kit.open({ telemetry: producerSide!.telemetry })
          const consumer = await kit.open({ telemetry: consumerSide!.telemetry })
          const topic = kit.topic()
          const group = kit.group('tr5')
          const spy = createHandlerSpy()
          await consumer.subscribe(topic, { group, concurrency: 2 }, spy.handler)
          for (let i = 0; i < 5; i++) await publisher.publish(topic, { i })
          await publisher.publishBatch(topic, [{ body: 5 }, { body: 6 }])
          await spy.waitForCount(7, { timeoutMs: WAIT_MS })
          await spansOf(consumerSide!, (s) => s.name === `process ${topic}`, 7, 'seven process spans')

          const sent = await producerSide!.metrics()
          const toTopic = (a: Record<string, unknown>) => a['messaging.destination.name'] === topic
          const sentMessages = sent.get('messaging.client.sent.messages')
          expect(sentMessages?.descriptor.unit, 'sent.messages unit').toBe('{message}')
          expect(sumOf(sentMessages, toTopic), 'messaging.client.sent.messages').toBe(7)
          const operation = sent.get('messaging.client.operation.duration')
          expect(operation?.descriptor.unit, 'operation.duration unit').toBe('s')
          expect(
            sumOf(operation, (a) => toTopic(a) && a['messaging.operation.name'] === 'send'),
            'one send duration per publish call',
          ).toBe(6)
          for (const point of sentMessages!.dataPoints.filter((p) => toTopic(p.attributes))) {
            expect(point.attributes['messaging.system'], 'sent.messages: system').toBe(
              expectedSystem(publisher) ?? point.attributes['messaging.system'],
            )
            expect(point.attributes['messaging.operation.name'], 'sent.messages: operation').toBe('send')
            expect(
              point.attributes['messaging.message.id'],
              'no per-message attribute on a metric',
            ).toBeUndefined()
          }

          const consumed = await consumerSide!.metrics()
          const ofGroup = (a: Record<string, unknown>) =>
            a['messaging.consumer.group.name'] === group && toTopic(a)
          const consumedMessages = consumed.get('messaging.client.consumed.messages')
          expect(consumedMessages?.descriptor.unit, 'consumed.messages unit').toBe('{message}')
          expect(sumOf(consumedMessages, ofGroup), 'messaging.client.consumed.messages').toBe(7)
          const processDuration = consumed.get('messaging.process.duration')
          expect(processDuration?.descriptor.unit, 'process.duration unit').toBe('s')
          expect(sumOf(processDuration, ofGroup), 'messaging.process.duration count').toBe(7)
          expect(
            sumOf(
              consumed.get('msgkit.consumer.in_flight'),
              (a) => a['messaging.consumer.group.name'] === group,
            ),
            'msgkit.consumer.in_flight after the handlers finished',
          ).toBe(0)
          await report(t, `7 sent (6 send operations), 7 consumed, 7 process durations; in-flight 0`)
        })
      },
      CASE_MS,
    )

    kit.it(
      'TR-6 a creation context the user set (their own traceparent header) is kept: the send span is CLIENT and links to it, the process span is its child',
      async (t) => {
        await withRecorders(2, async ([producerSide, consumerSide]) => {
          const publisher = await kit.open({ telemetry: producerSide!.telemetry })
          const consumer = await kit.open({ telemetry: consumerSide!.telemetry })
          const topic = kit.topic()
          const spy = createHandlerSpy()
          await consumer.subscribe(topic, { group: kit.group('tr6') }, spy.handler)
          const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
          await publisher.publish(topic, 'custom', { headers: { traceparent } })
          const [received] = await spy.waitForCount(1, { timeoutMs: WAIT_MS })
          expect(received!.headers.traceparent, "the user's traceparent arrives unchanged").toBe(traceparent)
          const [send] = await spansOf(producerSide!, (s) => s.name === `send ${topic}`, 1, 'the send span')
          const [processed] = await spansOf(
            consumerSide!,
            (s) => s.name === `process ${topic}`,
            1,
            'the process span',
          )
          expect(send!.kind, "send kind when the creation context is the user's").toBe(SpanKind.CLIENT)
          expect(
            send!.links.map((l) => l.context.spanId),
            "send links to the user's context",
          ).toEqual(['b7ad6b7169203331'])
          expect(traceOf(processed!), "process continues the user's trace").toBe(
            '0af7651916cd43dd8448eb211c80319c',
          )
          expect(parentOf(processed!), "process parent = the user's span").toBe('b7ad6b7169203331')
          await report(
            t,
            `send ${SpanKind[send!.kind]} linked to the user's span; process ← b7ad6b7169203331`,
          )
        })
      },
      CASE_MS,
    )

    kit.it(
      'TR-7 with the SDK set up as a service does (W3C propagator, async context manager): a publish under an active span continues it; inside the handler the process span is the active span',
      async (t) => {
        // registered for this case only, and only if nobody registered one before
        const ownContext = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
        const ownPropagator = propagation.setGlobalPropagator(new W3CTraceContextPropagator())
        try {
          await withRecorders(2, async ([producerSide, consumerSide]) => {
            const publisher = await kit.open({ telemetry: producerSide!.telemetry })
            const consumer = await kit.open({ telemetry: consumerSide!.telemetry })
            const topic = kit.topic()
            let active: SpanContext | undefined
            let handlerSpan: SpanContext | undefined
            const spy = createHandlerSpy(() => {
              active = trace.getActiveSpan()?.spanContext()
              // the user's own work inside the handler
              const span = (consumerSide!.telemetry.tracerProvider as BasicTracerProvider)
                .getTracer('user')
                .startSpan('send mail')
              handlerSpan = span.spanContext()
              span.end()
            })
            await consumer.subscribe(topic, { group: kit.group('tr7') }, spy.handler)
            const userTracer = (producerSide!.telemetry.tracerProvider as BasicTracerProvider).getTracer(
              'user',
            )
            await userTracer.startActiveSpan('POST /orders', { kind: SpanKind.SERVER }, async (request) => {
              try {
                await publisher.publish(topic, 'under a request')
              } finally {
                request.end()
              }
            })
            await spy.waitForCount(1, { timeoutMs: WAIT_MS })
            const [request] = await spansOf(
              producerSide!,
              (s) => s.name === 'POST /orders',
              1,
              'the request span',
            )
            const [send] = await spansOf(producerSide!, (s) => s.name === `send ${topic}`, 1, 'the send span')
            const [processed] = await spansOf(
              consumerSide!,
              (s) => s.name === `process ${topic}`,
              1,
              'the process span',
            )
            const [user] = await spansOf(
              consumerSide!,
              (s) => s.name === 'send mail',
              1,
              "the handler's own span",
            )
            expect(parentOf(send!), 'send is a child of the active request span').toBe(idOf(request!))
            expectChildAndLink(processed!, send!, 'process span')
            expect(active?.spanId, 'the active span inside the handler').toBe(idOf(processed!))
            expect(parentOf(user!), "the handler's own span is a child of the process span").toBe(
              idOf(processed!),
            )
            expect(handlerSpan?.traceId, 'one trace from the request to the handler').toBe(traceOf(request!))
            await report(
              t,
              `${describe([request!, send!, processed!, user!])}${ownContext ? '' : ' (a context manager was already registered)'}`,
            )
          })
        } finally {
          if (ownContext) context.disable()
          if (ownPropagator) propagation.disable()
        }
      },
      CASE_MS,
    )
  })
}
