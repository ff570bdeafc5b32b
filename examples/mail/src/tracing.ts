/**
 * `pnpm demo --trace` (or MAIL_TRACE=1): OpenTelemetry set up as a service sets it up — a global
 * tracer provider, an async context manager, the W3C propagator — and, at the end, the recorded
 * spans printed as trees, one per trace. msgkit needs nothing else: with the API installed and a
 * provider registered, every publish and every handler call is a span (docs/observability.md).
 * A real service exports to a collector instead (OTLP exporter + BatchSpanProcessor).
 */
import { context, propagation, SpanKind, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'

export interface DemoTracing {
  /** runs `fn` inside a span named `name` (the request that triggered a service's work) */
  inSpan<T>(name: string, fn: () => Promise<T>): Promise<T>
  /** prints every trace recorded so far as a tree, then shuts the provider down */
  print(write?: (line: string) => void): Promise<void>
}

/** Registers the SDK globally; call it before the first createMessaging. */
export function startTracing(): DemoTracing {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(provider)
  const tracer = trace.getTracer('mail-demo')
  return {
    inSpan: (name, fn) =>
      tracer.startActiveSpan(name, { kind: SpanKind.SERVER }, async (span) => {
        try {
          return await fn()
        } finally {
          span.end()
        }
      }),
    async print(write = (line) => console.log(line)) {
      await provider.forceFlush()
      for (const line of traceTrees(exporter.getFinishedSpans())) write(line)
      await provider.shutdown()
    },
  }
}

const ms = (span: ReadableSpan): string =>
  `${(span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(1)} ms`

/** What matters about a span in one line: kind, duration, and the messaging facts. */
function describe(span: ReadableSpan): string {
  const a = span.attributes
  const facts = [
    SpanKind[span.kind],
    ms(span),
    a['messaging.system'] ? `system=${a['messaging.system']}` : '',
    a['messaging.consumer.group.name'] ? `group=${a['messaging.consumer.group.name']}` : '',
    a['msgkit.message.attempt'] !== undefined ? `attempt=${a['msgkit.message.attempt']}` : '',
    a['messaging.message.id'] ? `id=${String(a['messaging.message.id']).slice(0, 13)}…` : '',
    a['server.address'] ? `server=${a['server.address']}:${a['server.port'] ?? ''}` : '',
    a['error.type'] ? `error=${a['error.type']}` : '',
  ].filter(Boolean)
  const events = span.events.map((e) => e.name).join(', ')
  return `${span.name}  (${facts.join(', ')})${events ? ` events: ${events}` : ''}`
}

/** Spans as trees: one per trace, children in start order, a span whose parent was not recorded is a root. */
export function traceTrees(spans: ReadonlyArray<ReadableSpan>): string[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]))
  const children = new Map<string, ReadableSpan[]>()
  const roots: ReadableSpan[] = []
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId
    if (parent !== undefined && byId.has(parent))
      children.set(parent, [...(children.get(parent) ?? []), span])
    else roots.push(span)
  }
  const start = (s: ReadableSpan) => s.startTime[0] * 1e9 + s.startTime[1]
  const lines: string[] = []
  const walk = (span: ReadableSpan, prefix: string, last: boolean): void => {
    lines.push(`${prefix}${last ? '└─ ' : '├─ '}${describe(span)}`)
    const kids = (children.get(span.spanContext().spanId) ?? []).sort((x, y) => start(x) - start(y))
    for (const [i, kid] of kids.entries())
      walk(kid, `${prefix}${last ? '   ' : '│  '}`, i === kids.length - 1)
  }
  for (const root of roots.sort((x, y) => start(x) - start(y))) {
    lines.push(`trace ${root.spanContext().traceId}`)
    walk(root, '', true)
  }
  return lines
}
