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

import type { MessageMeta, OutgoingMessage, TransportTelemetry } from '../spi.js'
import type { Supervisor } from './supervisor.js'

/**
 * `Transport.telemetry` for an adapter on the supervisor: the system name and the `host:port` of
 * the endpoint the live session is connected to (read anew after every reconnect).
 */
export function endpointTelemetry(
  system: string,
  supervisor: Pick<Supervisor<unknown>, 'endpoint'>,
  outgoing?: (topic: string, message: OutgoingMessage) => MessageMeta | undefined,
): TransportTelemetry {
  const part = (i: number): string | undefined => {
    const label = supervisor.endpoint
    if (label === undefined) return undefined
    const colon = label.lastIndexOf(':')
    return i === 0
      ? colon < 0
        ? label
        : label.slice(0, colon)
      : colon < 0
        ? undefined
        : label.slice(colon + 1)
  }
  const telemetry: TransportTelemetry = {
    system,
    get serverAddress() {
      return part(0)
    },
    get serverPort() {
      const port = Number(part(1))
      return Number.isInteger(port) && port > 0 ? port : undefined
    },
  }
  if (outgoing) telemetry.outgoing = outgoing
  return telemetry
}

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
