/**
 * Driver calls that bypass a driver's own OpenTelemetry instrumentation.
 *
 * Core runs every transport call with tracing suppressed (docs/observability.md), which silences
 * the producer side of the drivers' instrumentations: no span of theirs under msgkit's `send`, and
 * no `traceparent` of theirs over the one core wrote. Their consumer side starts its spans from
 * ROOT_CONTEXT and the message headers (instrumentation-kafkajs wraps `consumer.run` and records a
 * root `poll`/`receive` span per batch; instrumentation-amqplib wraps `Channel#consume`), out of
 * reach of any suppression. So an adapter calls its driver's consumer entry point through
 * `uninstrumented`: msgkit's `process` span is then the only one for its deliveries, and the
 * user's other uses of the driver stay instrumented.
 */

interface Wrapped {
  __wrapped?: unknown
  __original?: unknown
}

/**
 * The function an instrumentation wrapped (`@opentelemetry/instrumentation` wraps with shimmer,
 * which keeps the original as `__original` and marks the wrapper `__wrapped`), or `fn` itself when
 * nothing wrapped it. Call it with the driver object as `this`:
 * `uninstrumented(Kafka.prototype.consumer).call(kafka, options)`.
 */
export function uninstrumented<F extends (...args: never[]) => unknown>(fn: F): F {
  let current: unknown = fn
  // an instrumentation registered twice wraps twice
  for (let depth = 0; depth < 8; depth++) {
    const w = current as Wrapped
    if (typeof current !== 'function' || w.__wrapped !== true || typeof w.__original !== 'function') break
    current = w.__original
  }
  return current as F
}
