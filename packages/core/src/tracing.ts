/**
 * W3C trace-context propagation through the `traceparent` header, and the ambient trace context a
 * handler's publishes continue. Without OpenTelemetry this is all core does for tracing; with it
 * (telemetry/), the ambient context also carries the OpenTelemetry context of the `process` span,
 * so publishes inside a handler are its children even when no context manager is registered.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

interface Ambient {
  traceparent: string | undefined
  /** the OpenTelemetry Context of the running `process` span (telemetry on) */
  context?: unknown
}

const ambient = new AsyncLocalStorage<Ambient>()

/** Runs `fn` with `traceparent` as the ambient trace context (what a handler's publishes continue). */
export function runWithTraceparent<R>(traceparent: string | undefined, fn: () => R): R {
  if (!traceparent || !TRACEPARENT.test(traceparent)) return fn()
  return ambient.run({ traceparent }, fn)
}

/** Runs `fn` with an OpenTelemetry context (and its traceparent) as the ambient trace context. */
export function runWithContext<R>(traceparent: string | undefined, context: unknown, fn: () => R): R {
  return ambient.run({ traceparent, context }, fn)
}

/** Runs `fn` with no ambient trace context (work that belongs to no message). */
export function runWithoutAmbient<R>(fn: () => R): R {
  return ambient.exit(fn)
}

/** The OpenTelemetry context of the handler we are in, if any. */
export function ambientContext(): unknown {
  return ambient.getStore()?.context
}

/** The ambient traceparent, if any. */
export function ambientTraceparent(): string | undefined {
  return ambient.getStore()?.traceparent
}

/** The traceparent to put on an outgoing message: a child of the ambient context, if any. */
export function childTraceparent(): string | undefined {
  const parent = ambient.getStore()?.traceparent
  if (!parent) return undefined
  const m = TRACEPARENT.exec(parent)
  if (!m) return undefined
  return `00-${m[1]}-${randomBytes(8).toString('hex')}-${m[3]}`
}

/** True for a syntactically valid traceparent value. */
export function isTraceparent(value: string): boolean {
  return TRACEPARENT.test(value)
}

/** The parts of a valid traceparent, or undefined. An all-zero trace or span id is invalid. */
export function parseTraceparent(
  value: string | undefined,
): { traceId: string; spanId: string; flags: number } | undefined {
  if (value === undefined) return undefined
  const m = TRACEPARENT.exec(value)
  if (!m) return undefined
  const traceId = m[1] as string
  const spanId = m[2] as string
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return { traceId, spanId, flags: Number.parseInt(m[3] as string, 16) }
}

/** A traceparent value from its parts. */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, '0')}`
}
