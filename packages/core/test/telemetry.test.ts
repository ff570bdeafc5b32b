/**
 * Core's OpenTelemetry support with the real SDK: the API absent, the options, the broker facts a
 * transport declares, OTEL_SEMCONV_STABILITY_OPT_IN, reconnects, and the suppression that keeps
 * a driver's own instrumentation quiet under msgkit's spans. The cross-transport behaviour (one
 * trace from publish to process, retries, batches, metrics) is the TR family of the contract suite.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { isTracingSuppressed, W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  AggregationTemporality,
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
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMessaging,
  getMemoryBroker,
  type Message,
  type MessageMeta,
  silentLogger,
  type Transport,
} from '../src/index.js'
import { semconvMode } from '../src/telemetry/conventions.js'
import { suppressingDriver } from '../src/telemetry/suppressing-driver.js'
import { telemetryOff } from '../src/telemetry/telemetry.js'
import { memoryVariant } from './support/memory-variant.js'

let n = 0
const brokerName = (): string => `core-telemetry-${Date.now()}-${++n}`

async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

function recorder() {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new CollectingReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  return {
    tracerProvider,
    meterProvider,
    telemetry: { tracerProvider, meterProvider },
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    span(name: string, what = name): Promise<ReadableSpan> {
      return until(() => exporter.getFinishedSpans().find((s) => s.name === name), what)
    },
    async metric(name: string): Promise<MetricData | undefined> {
      const { resourceMetrics } = await reader.collect()
      for (const scope of resourceMetrics.scopeMetrics)
        for (const metric of scope.metrics) if (metric.descriptor.name === name) return metric
      return undefined
    },
  }
}

const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {})
  delete process.env.OTEL_SEMCONV_STABILITY_OPT_IN
})

type Options = Parameters<typeof createMessaging>[1]
async function open(url: string | Parameters<typeof createMessaging>[0], options?: Options) {
  const m = await createMessaging(url, options)
  closers.push(() => m.close())
  return m
}

/** A loader under which @opentelemetry/api is not installed (as a user without it sees it). */
const withoutOtelApi = (specifier: string): Promise<unknown> => {
  if (specifier === '@opentelemetry/api') {
    const error = new Error(`Cannot find package '@opentelemetry/api' imported from ${import.meta.url}`)
    ;(error as { code?: string }).code = 'ERR_MODULE_NOT_FOUND'
    return Promise.reject(error)
  }
  return import(specifier)
}

describe('without @opentelemetry/api', () => {
  it('works as before: no header at the root, a child traceparent inside a handler', async () => {
    const warnings: unknown[] = []
    const logger = { debug() {}, info() {}, warn: (...a: unknown[]) => warnings.push(a), error() {} }
    const url = `memory://${brokerName()}`
    const m = await open(url, { loadModule: withoutOtelApi, logger })
    const seen: Message[] = []
    await m.subscribe('second', { group: 'g' }, (msg) => {
      seen.push(msg)
    })
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    await m.subscribe('first', { group: 'g' }, async (msg) => {
      seen.push(msg)
      await m.publish('second', 'child')
    })
    await m.publish('first', 'root', { headers: { traceparent: incoming } })
    await m.publish('second', 'no context')
    await until(() => seen.length === 3, 'three messages')
    const noContext = seen.find((s) => s.body === 'no context') as Message
    const child = seen.find((s) => s.body === 'child') as Message
    expect(noContext.headers.traceparent, 'no ambient context: no header').toBeUndefined()
    expect(child.headers.traceparent, 'same trace, new span id').toMatch(
      /^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/,
    )
    expect(warnings, 'a missing optional peer is not worth a warning').toEqual([])
  })

  it('core never imports @opentelemetry/api eagerly (only `import type` and the lazy loader)', () => {
    const src = join(import.meta.dirname, '..', 'src')
    const files: string[] = []
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry)
        if (statSync(path).isDirectory()) walk(path)
        else if (path.endsWith('.ts')) files.push(path)
      }
    }
    walk(src)
    const offenders = files.filter((file) =>
      [
        ...readFileSync(file, 'utf8').matchAll(
          /^(?:import|export)\s+(type\s+)?[\s\S]*?from\s+['"]([^'"]+)['"]/gm,
        ),
      ].some((m) => m[1] === undefined && m[2]?.startsWith('@opentelemetry/')),
    )
    expect(offenders, 'value imports of @opentelemetry/* in core').toEqual([])
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8'))
    expect(Object.keys(pkg.dependencies), 'core depends on zod only at run time').toEqual(['zod'])
    expect(pkg.peerDependenciesMeta['@opentelemetry/api']?.optional, 'the API is an optional peer').toBe(true)
  })
})

describe('with the SDK', () => {
  it('telemetry: false records nothing, even with a provider registered globally', async () => {
    const r = recorder()
    const registered = trace.setGlobalTracerProvider(r.tracerProvider)
    try {
      const m = await open(`memory://${brokerName()}`, { telemetry: false })
      const seen: Message[] = []
      await m.subscribe('t', { group: 'g' }, (msg) => {
        seen.push(msg)
      })
      await m.publish('t', 'x')
      await until(() => seen.length === 1, 'delivery')
      expect(r.spans()).toEqual([])
      expect(seen[0]?.headers.traceparent).toBeUndefined()
    } finally {
      if (registered) trace.disable()
    }
  })

  it('a failed publish: send span ERROR with error.type = the msgkit code, counted with error.type', async () => {
    const r = recorder()
    const m = await open(`memory://${brokerName()}`, { telemetry: r.telemetry })
    const schema = {
      safeParse: (v: unknown) =>
        typeof v === 'string'
          ? { success: true as const, data: v }
          : { success: false as const, error: { issues: [{ message: 'not a string' }] } },
    }
    await expect(
      m.publish({ kind: 'topic', name: 'typed', schema }, 42 as unknown as string),
    ).rejects.toMatchObject({
      code: 'MSGKIT_SCHEMA_INVALID',
    })
    const span = await r.span('send typed')
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
    expect(span.attributes['error.type']).toBe('MSGKIT_SCHEMA_INVALID')
    const sent = await r.metric('messaging.client.sent.messages')
    expect(sent?.dataPoints.map((p) => [p.attributes['error.type'], p.value])).toEqual([
      ['MSGKIT_SCHEMA_INVALID', 1],
    ])
  })

  it("processContext 'link': the process span is a root that links to the creation context", async () => {
    const r = recorder()
    const m = await open(`memory://${brokerName()}`, {
      telemetry: { ...r.telemetry, processContext: 'link' },
    })
    await m.subscribe('t', { group: 'g' }, () => {})
    await m.publish('t', 'x')
    const send = await r.span('send t')
    const processed = await r.span('process t')
    expect(processed.parentSpanContext).toBeUndefined()
    expect(processed.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId])
  })

  it('settleSpans: `ack <topic>` CLIENT, operation type settle, a child of the process span; bodySize', async () => {
    const r = recorder()
    const m = await open(`memory://${brokerName()}`, {
      telemetry: { ...r.telemetry, settleSpans: true, bodySize: true },
    })
    await m.subscribe('t', { group: 'g' }, () => {})
    await m.publish('t', 'hello')
    const processed = await r.span('process t')
    const ack = await r.span('ack t')
    expect(ack.kind).toBe(SpanKind.CLIENT)
    expect(ack.attributes['messaging.operation.type']).toBe('settle')
    expect(ack.attributes['messaging.operation.name']).toBe('ack')
    expect(ack.parentSpanContext?.spanId).toBe(processed.spanContext().spanId)
    // a string body goes out as its UTF-8 bytes
    expect(processed.attributes['messaging.message.body.size']).toBe(5)
    const send = await r.span('send t')
    expect(send.attributes['messaging.message.body.size']).toBe(5)
    const durations = await r.metric('messaging.client.operation.duration')
    expect(durations?.dataPoints.map((p) => p.attributes['messaging.operation.name']).sort()).toEqual([
      'ack',
      'send',
    ])
  })

  it('a pattern subscription: span named after the pattern, messaging.destination.template', async () => {
    const r = recorder()
    const m = await open(`memory://${brokerName()}`, { telemetry: r.telemetry })
    await m.subscribe({ kind: 'pattern', pattern: 'orders.*' }, { group: 'g' }, () => {})
    await m.publish('orders.created', 1)
    const processed = await r.span('process orders.*')
    expect(processed.attributes['messaging.destination.template']).toBe('orders.*')
    expect(processed.attributes['messaging.destination.name']).toBe('orders.created')
  })

  it('reconnects are counted (msgkit.client.reconnects)', async () => {
    const r = recorder()
    const name = brokerName()
    const m = await open(`memory://${name}`, { telemetry: r.telemetry })
    const back = new Promise<void>((resolve) => m.on('connected', () => resolve()))
    await getMemoryBroker(name).restart(50)
    await back
    const reconnects = await r.metric('msgkit.client.reconnects')
    expect(reconnects?.dataPoints.map((p) => [p.attributes['messaging.system'], p.value])).toEqual([
      ['msgkit_memory', 1],
    ])
    expect(reconnects?.descriptor.unit).toBe('{reconnect}')
  })
})

/** The memory transport, claiming to be a Kafka cluster, with partition and offset on each delivery. */
function kafkaLike(facts: { meta: MessageMeta }) {
  return memoryVariant('kafka-like', (inner) => ({
    telemetry: { system: 'kafka', serverAddress: 'broker-1.internal', serverPort: 9092 },
    subscribe: (request, onDelivery) =>
      inner.subscribe(request, (delivery) =>
        onDelivery({ ...delivery, message: { ...delivery.message, meta: facts.meta } }),
      ),
  }))
}

describe('what a transport declares', () => {
  it('reaches core through the tracing wrapper: every member, the optional ones included', async () => {
    const r = recorder()
    let requested: number | undefined
    const definition = memoryVariant('declaring', (inner) => ({
      keepsDeadlines: true,
      defaultPrefetch: () => 1_234,
      subscribe: (request, onDelivery) => {
        requested = request.prefetch
        return inner.subscribe(request, onDelivery)
      },
      sendToGroup: async () => {},
      browse: async () => {},
    }))
    const m = await open({ transport: definition, broker: brokerName() }, { telemetry: r.telemetry })
    await m.subscribe('t', { group: 'g' }, () => {})
    expect(requested, "the transport's default prefetch, with tracing on").toBe(1_234)
    // the same for members core reads elsewhere: the wrapper has each one the transport has
    const inner = definition.create({ broker: brokerName() } as never, {
      logger: silentLogger,
      emit: () => {},
      secrets: [],
      scrub: (t) => t,
    })
    const wrapped = suppressingDriver(inner, telemetryOff)
    for (const member of Object.keys(inner) as Array<keyof Transport>) {
      expect(wrapped[member] === undefined, `${member} kept by the wrapper`).toBe(inner[member] === undefined)
    }
    expect(wrapped.keepsDeadlines).toBe(true)
    await inner.close()
  })

  it('system, server.*, Kafka key, partition and offset on the spans', async () => {
    const r = recorder()
    const m = await open(
      { transport: kafkaLike({ meta: { partition: 2, offset: '42' } }), broker: brokerName() },
      { telemetry: r.telemetry },
    )
    await m.subscribe('t', { group: 'g' }, () => {})
    await m.publish('t', 'x', { key: 'user-7' })
    const send = await r.span('send t')
    const processed = await r.span('process t')
    for (const span of [send, processed]) {
      expect(span.attributes['messaging.system']).toBe('kafka')
      expect(span.attributes['server.address']).toBe('broker-1.internal')
      expect(span.attributes['server.port']).toBe(9092)
      expect(span.attributes['messaging.kafka.message.key']).toBe('user-7')
      expect(span.attributes['messaging.operation']).toBeUndefined()
    }
    expect(processed.attributes['messaging.destination.partition.id']).toBe('2')
    expect(processed.attributes['messaging.kafka.offset']).toBe(42)
    expect(processed.attributes['messaging.kafka.consumer.group']).toBeUndefined()
  })

  it('OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup adds the v1.24 names next to the current ones', async () => {
    expect(semconvMode('http,messaging')).toBe('current')
    expect(semconvMode('messaging, messaging/dup')).toBe('dup')
    process.env.OTEL_SEMCONV_STABILITY_OPT_IN = 'messaging/dup'
    const r = recorder()
    const m = await open(
      { transport: kafkaLike({ meta: { partition: 2, offset: 42 } }), broker: brokerName() },
      { telemetry: r.telemetry },
    )
    await m.subscribe('t', { group: 'g' }, () => {})
    await m.publish('t', 'x')
    const send = await r.span('send t')
    const processed = await r.span('process t')
    expect(send.attributes['messaging.operation.type']).toBe('send')
    expect(send.attributes['messaging.operation']).toBe('publish')
    expect(processed.attributes['messaging.operation']).toBe('deliver')
    expect(processed.attributes['messaging.kafka.consumer.group']).toBe('g')
    expect(processed.attributes['messaging.consumer.group.name']).toBe('g')
    expect(processed.attributes['messaging.kafka.destination.partition']).toBe(2)
    expect(processed.attributes['messaging.kafka.message.offset']).toBe(42)
    expect(processed.attributes['messaging.kafka.offset']).toBe(42)
    // names and kinds are always the current ones
    expect(processed.kind).toBe(SpanKind.CONSUMER)
  })
})

/**
 * A driver instrumented the way instrumentation-kafkajs / -amqplib instrument theirs: on every
 * send it starts its own PRODUCER span in the active context and injects it into the outgoing
 * headers; every settle, subscribe and connect runs through it too.
 */
function instrumentedDriver(tracerProvider: BasicTracerProvider, seen: { suppressed: boolean[] }) {
  const tracer = tracerProvider.getTracer('fake-driver-instrumentation')
  const instrument = (what: string) => {
    seen.suppressed.push(isTracingSuppressed(context.active()))
    const span = tracer.startSpan(`driver ${what}`, { kind: SpanKind.PRODUCER })
    return span
  }
  return memoryVariant('instrumented', (inner) => ({
    connect: () => {
      instrument('connect').end()
      return inner.connect()
    },
    send: (topic, messages, options) => {
      for (const message of messages) {
        const span = instrument('send')
        // what the instrumentations do: overwrite the creation context with their own span
        propagation.inject(trace.setSpan(context.active(), span), message.headers)
        span.end()
      }
      return inner.send(topic, messages, options)
    },
    subscribe: (request, onDelivery) => {
      instrument('subscribe').end()
      return inner.subscribe(request, (delivery) =>
        onDelivery({
          ...delivery,
          ack: () => {
            instrument('ack').end()
            return delivery.ack()
          },
        }),
      )
    },
  }))
}

describe('no double tracing under a driver instrumentation', () => {
  it("the driver's spans are suppressed and its injection does not overwrite msgkit's traceparent", async () => {
    const ownContext = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    const ownPropagator = propagation.setGlobalPropagator(new W3CTraceContextPropagator())
    try {
      const r = recorder()
      const seen = { suppressed: [] as boolean[] }
      const m = await open(
        { transport: instrumentedDriver(r.tracerProvider, seen), broker: brokerName() },
        { telemetry: r.telemetry },
      )
      const received: Message[] = []
      await m.subscribe('t', { group: 'g' }, (msg) => {
        received.push(msg)
        // the handler itself is not suppressed: the user's spans are recorded
        r.tracerProvider.getTracer('user').startSpan('user work').end()
      })
      await m.publish('t', 'x')
      await until(() => received.length === 1, 'delivery')
      const send = await r.span('send t')
      const processed = await r.span('process t')
      await r.span('user work')
      await until(() => seen.suppressed.length >= 4, 'connect, subscribe, send and ack through the driver')
      expect(seen.suppressed, 'every driver call ran with tracing suppressed').toEqual(
        seen.suppressed.map(() => true),
      )
      expect(
        r.spans().filter((s) => s.name.startsWith('driver ')),
        'driver spans recorded',
      ).toEqual([])
      const sc = send.spanContext()
      expect(received[0]?.headers.traceparent, "msgkit's creation context arrives").toBe(
        `00-${sc.traceId}-${sc.spanId}-01`,
      )
      expect(processed.parentSpanContext?.spanId).toBe(sc.spanId)
      expect((await r.span('user work')).parentSpanContext?.spanId).toBe(processed.spanContext().spanId)
    } finally {
      if (ownContext) context.disable()
      if (ownPropagator) propagation.disable()
    }
  })
})
