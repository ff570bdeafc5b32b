/**
 * @msgkit/core/adapter — the adapter kit: what every broker adapter needs and no broker defines.
 *
 * - {@link createSupervisor}: one connection state machine (connect across hosts, reconnect with
 *   backoff, restore hooks, events, `waitUp`, `perform` across a reconnect, one close path);
 * - {@link createOutbox}: sends wait through an outage until their own deadline, batched, each
 *   send settled exactly once; the adapter writes `flush(batch)` and an error table;
 * - {@link createDelivery}: settle once, and a settle after the session is gone is a no-op;
 * - {@link createDeadlineTimer}: many deadlines, one timer;
 * - {@link uninstrumented}: a driver's consumer entry point without its OpenTelemetry wrapper.
 *
 * See docs/writing-a-transport.md.
 * @packageDocumentation
 */
export { createDeadlineTimer, type DeadlineHandle, type DeadlineTimer } from './deadlines.js'
export {
  createDelivery,
  createInFlightCounter,
  type DeliverySettlement,
  type InFlightCounter,
} from './delivery.js'
export {
  closedError,
  connectFailure,
  type ErrorTable,
  type FailureContext,
  type FailureKind,
  failureKind,
  finalError,
} from './errors.js'
export { endpointTelemetry, uninstrumented } from './instrumentation.js'
export {
  createOutbox,
  DEFAULT_CLOSE_GRACE_MS,
  type FlushBatch,
  type Outbox,
  type OutboxEntry,
  type OutboxOptions,
} from './outbox.js'
export {
  createSupervisor,
  type RestoreHook,
  type SessionDriver,
  type Supervisor,
  type SupervisorOptions,
  type SupervisorState,
} from './supervisor.js'
