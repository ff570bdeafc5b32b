/** W3C trace-context propagation through the `traceparent` header. */
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

const ambient = new AsyncLocalStorage<{ traceparent: string }>()

/** Runs `fn` with `traceparent` as the ambient trace context (what a handler's publishes continue). */
export function runWithTraceparent<R>(traceparent: string | undefined, fn: () => R): R {
  if (!traceparent || !TRACEPARENT.test(traceparent)) return fn()
  return ambient.run({ traceparent }, fn)
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
