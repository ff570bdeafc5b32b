/**
 * Creation contexts in message headers: through the registered OpenTelemetry propagator, or, when
 * none is registered (the API's default propagator does nothing), through W3C `traceparent` /
 * `tracestate` written and read by core itself, so a trace crosses the broker either way.
 */
import type { Context, SpanContext } from '@opentelemetry/api'
import type { Headers } from '../spi.js'
import { formatTraceparent, parseTraceparent } from '../tracing.js'
import type { OtelApi } from './otel-api.js'

export interface Propagation {
  /** writes the creation context `context` into `headers` */
  inject(context: Context, headers: Headers): void
  /** the context carried by `headers` (a remote span context on ROOT), or undefined if none */
  extract(headers: Headers): Context | undefined
  /** the W3C traceparent of a span context */
  traceparentOf(spanContext: SpanContext): string
}

export function createPropagation(api: OtelApi): Propagation {
  // the API's no-op propagator knows no fields; a registered one (W3C, B3, composite) does
  const registered = (): boolean => api.propagation.fields().length > 0
  const traceparentOf = (sc: SpanContext): string => formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags)

  return {
    traceparentOf,
    inject(context, headers) {
      if (registered()) {
        api.propagation.inject(context, headers)
        return
      }
      const sc = api.trace.getSpanContext(context)
      if (!sc || !api.trace.isSpanContextValid(sc)) return
      headers.traceparent = traceparentOf(sc)
      const state = sc.traceState?.serialize()
      if (state) headers.tracestate = state
    },
    extract(headers) {
      if (registered()) {
        const context = api.propagation.extract(api.ROOT_CONTEXT, headers)
        const sc = api.trace.getSpanContext(context)
        if (sc && api.trace.isSpanContextValid(sc)) return context
      }
      const parsed = parseTraceparent(headers.traceparent)
      if (!parsed) return undefined
      const sc: SpanContext = {
        traceId: parsed.traceId,
        spanId: parsed.spanId,
        traceFlags: parsed.flags,
        isRemote: true,
      }
      const state = headers.tracestate
      if (state && typeof api.createTraceState === 'function') sc.traceState = api.createTraceState(state)
      return api.trace.setSpanContext(api.ROOT_CONTEXT, sc)
    },
  }
}
