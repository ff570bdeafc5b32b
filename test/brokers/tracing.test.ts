// No double tracing, on each real broker: with the driver's own OpenTelemetry instrumentation
// installed the way a service installs it (instrumentation-kafkajs / instrumentation-amqplib,
// registerInstrumentations, a global SDK with an async context manager and the W3C propagator),
// a publish → process through msgkit shows msgkit's spans as one connected trace:
//   - the instrumentation is live (a control publish with the bare driver records its span);
//   - msgkit's `send` is a child of the caller's span, `process` a child of `send`, the handler's
//     own span a child of `process`;
//   - the `traceparent` the consumer sees is msgkit's (the driver did not overwrite it);
//   - the driver records no span of its own for msgkit's publish, nor under the caller's span or
//     msgkit's `process` (acks, commits).
// The consumer side of the drivers' instrumentations starts its spans from ROOT_CONTEXT and the
// message headers, out of reach of core's suppression (Kafka: a root `poll <topic>` span per batch;
// RabbitMQ: a `<queue> process` span beside msgkit's `process`). An adapter removes them by calling
// its driver's consumer entry point through `uninstrumented()` from @msgkit/core/adapter; the second
// test holds an adapter to that once BYPASSES_CONSUMER_INSTRUMENTATION says it does it.
// Run by `pnpm test:brokers`, which sets MSGKIT_URL to the broker under test.
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { createMessaging, type Message, type Messaging } from '@msgkit/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DriverTracing, setUpDriverTracing } from '../../packages/core/test/support/driver-tracing.js'

const url = process.env.MSGKIT_URL ?? ''
const repoRoot = join(import.meta.dirname, '..', '..')
const kind = url.startsWith('kafka:') ? 'kafka' : /^amqps?:/.test(url) ? 'rabbitmq' : undefined
const secretFree = (u: string) => u.replace(/\/\/[^@/]*@/, '//***@')
const log = (text: string) => console.log(`[tracing] ${text}`)

/**
 * Adapters that call their driver's consumer entry point through `uninstrumented()` (kafka:
 * `Kafka.prototype.consumer`, rabbitmq: `Channel#consume`). Set an entry to true in the change that
 * makes the adapter do it; the second test then holds it to "no driver span for msgkit's deliveries".
 */
const BYPASSES_CONSUMER_INSTRUMENTATION: Readonly<Record<'kafka' | 'rabbitmq', boolean>> = {
  kafka: false,
  rabbitmq: true,
}

type Spans = ReturnType<DriverTracing['spans']>
const describeSpans = (spans: Spans): string =>
  spans.map((s) => `"${s.name}" (kind ${s.kind}, parent ${s.parentSpanContext?.spanId ?? 'none'})`).join(', ')

async function until<T>(check: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

// the bare drivers, just what the control needs
interface KafkaJs {
  Kafka: new (config: {
    clientId: string
    brokers: string[]
    logLevel: number
  }) => {
    admin(): {
      connect(): Promise<void>
      createTopics(o: { topics: Array<{ topic: string; numPartitions: number }> }): Promise<boolean>
      disconnect(): Promise<void>
    }
    producer(): {
      connect(): Promise<void>
      send(o: { topic: string; messages: Array<{ value: string }> }): Promise<unknown>
      disconnect(): Promise<void>
    }
  }
  logLevel: { NOTHING: number }
}
interface Amqplib {
  connect(url: string): Promise<{
    createConfirmChannel(): Promise<{
      assertQueue(q: string, o: object): Promise<{ queue: string }>
      publish(exchange: string, key: string, body: Buffer, options: object): boolean
      waitForConfirms(): Promise<void>
    }>
    close(): Promise<void>
  }>
}

/** Publishes one message with the bare driver; returns the destination its instrumentation names. */
async function controlPublish(tracing: DriverTracing): Promise<string> {
  if (kind === 'kafka') {
    const { Kafka, logLevel } = tracing.driver as KafkaJs
    const brokers = [new URL(url.replace(/^kafka:/, 'http:')).host]
    const kafka = new Kafka({ clientId: 'msgkit-tracing-control', brokers, logLevel: logLevel.NOTHING })
    const topic = `msgkit-tracing-control-${randomUUID()}`
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    await admin.disconnect()
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: [{ value: 'control' }] })
    await producer.disconnect()
    return topic
  }
  const amqp = tracing.driver as Amqplib
  const connection = await amqp.connect(url)
  try {
    const channel = await connection.createConfirmChannel()
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true })
    channel.publish('', queue, Buffer.from('control'), {})
    await channel.waitForConfirms()
    return queue
  } finally {
    await connection.close()
  }
}

describe.skipIf(kind === undefined)(
  `no double tracing on ${secretFree(url || '(MSGKIT_URL not set)')}`,
  () => {
    let tracing: DriverTracing
    const opened: Messaging[] = []
    /** what the first test recorded, for the second */
    let recorded: { traceId: string; driverSpans: Spans } | undefined

    beforeAll(() => {
      // before the adapter loads its driver: the instrumentation must see the driver load
      tracing =
        kind === 'kafka'
          ? setUpDriverTracing('kafkajs', join(repoRoot, 'packages', 'kafka', 'package.json'))
          : setUpDriverTracing('amqplib', join(repoRoot, 'packages', 'rabbitmq', 'package.json'))
    })

    afterAll(async () => {
      await Promise.allSettled(opened.map((m) => m.close()))
      await tracing?.shutdown()
    })

    it("msgkit's spans are the trace; the driver records nothing under them and keeps msgkit's traceparent", async () => {
      // 1. the instrumentation is live: the bare driver's publish is traced by it
      const controlDestination = await controlPublish(tracing)
      const control = await until(
        () => tracing.spans().find((s) => s.instrumentationScope.name === tracing.scope),
        `a span from ${tracing.scope} for the bare driver's publish (is the instrumentation hooked?)`,
      )
      log(
        `control: the bare driver's publish to ${controlDestination} was traced by ${tracing.scope} as "${control.name}"`,
      )
      const before = new Set(tracing.spans())

      // 2. the same broker through msgkit: a service publishes inside a request, another one consumes
      const publisher = await createMessaging(url)
      opened.push(publisher)
      const consumer = await createMessaging(url)
      opened.push(consumer)
      const topic = `t-${randomUUID()}`
      const group = `g-tracing-${randomUUID().slice(0, 8)}`
      const received: Message[] = []
      const tracer = tracing.provider.getTracer('service')
      await consumer.subscribe(topic, { group }, (message) => {
        received.push(message)
        tracer.startSpan('send mail').end()
      })
      await tracer.startActiveSpan('POST /orders', async (request) => {
        try {
          await publisher.publish(topic, { order: 1 })
        } finally {
          request.end()
        }
      })
      await until(() => received[0], 'the message at the consumer')
      const ours = (name: string) =>
        until(() => tracing.spans().find((s) => !before.has(s) && s.name === name), `span "${name}"`)
      const request = await ours('POST /orders')
      const send = await ours(`send ${topic}`)
      const processed = await ours(`process ${topic}`)
      const handlerWork = await ours('send mail')
      // let the driver's asynchronous spans (batches, acks, commits) end before judging
      await new Promise((r) => setTimeout(r, 1_000))

      const traceId = request.spanContext().traceId
      const id = (s: { spanContext(): { spanId: string } }) => s.spanContext().spanId
      expect(send.instrumentationScope.name, 'send span scope').toBe('@msgkit/core')
      expect(send.parentSpanContext?.spanId, 'send ← the request').toBe(id(request))
      expect(processed.parentSpanContext?.spanId, 'process ← send').toBe(id(send))
      expect(processed.spanContext().traceId, 'one trace').toBe(traceId)
      expect(handlerWork.parentSpanContext?.spanId, "handler's work ← process").toBe(id(processed))
      const sc = send.spanContext()
      expect(received[0]?.headers.traceparent, "the traceparent is msgkit's, not the driver's").toBe(
        `00-${sc.traceId}-${sc.spanId}-01`,
      )

      const driverSpans = tracing
        .spans()
        .filter((s) => !before.has(s) && s.instrumentationScope.name === tracing.scope)
      // nothing of the driver's under the caller's span (the publish side) or under msgkit's process
      // (acks, commits); a driver's consumer span beside msgkit's process is the second test's business
      const parents = new Set([id(request), id(processed), id(handlerWork)])
      const under = driverSpans.filter((s) => parents.has(s.parentSpanContext?.spanId ?? ''))
      expect(under, `driver spans under the request or msgkit's process: ${describeSpans(under)}`).toEqual([])
      // the publish side is suppressed: no kafkajs `send`, no amqplib `publish` for msgkit's publish
      const publishSide = driverSpans.filter((s) => /^(send|publish) /.test(s.name))
      expect(publishSide, `driver publish spans for msgkit's publish: ${describeSpans(publishSide)}`).toEqual(
        [],
      )
      recorded = { traceId, driverSpans }
      log(
        `${kind}: trace ${traceId}: POST /orders → send ${topic} → process ${topic} → send mail; ` +
          `driver spans recorded meanwhile: ${driverSpans.length === 0 ? 'none' : describeSpans(driverSpans)}`,
      )
    }, 120_000)

    it.skipIf(kind === undefined || !BYPASSES_CONSUMER_INSTRUMENTATION[kind])(
      `no driver span at all for msgkit's deliveries (the ${kind ?? ''} adapter must consume through uninstrumented())`,
      () => {
        expect(recorded, 'the first test ran').toBeDefined()
        const { traceId, driverSpans } = recorded as NonNullable<typeof recorded>
        const inOurTrace = driverSpans.filter((s) => s.spanContext().traceId === traceId)
        expect(inOurTrace, `driver spans inside msgkit's trace: ${describeSpans(inOurTrace)}`).toEqual([])
        expect(
          driverSpans,
          `driver spans while msgkit published and consumed: ${describeSpans(driverSpans)}`,
        ).toEqual([])
      },
    )
  },
)
