/**
 * @msgkit/core/adapter — the adapter kit: what every broker adapter needs and no broker defines.
 *
 * - {@link createSupervisor}: one connection state machine (connect across hosts, reconnect with
 *   backoff, restore hooks, events, `waitUp`, `perform` across a reconnect, one close path);
 * - {@link createOutbox}: sends wait through an outage until their own deadline, batched, each
 *   send settled exactly once; the adapter writes `flush(batch)` and an error table;
 * - {@link createDelivery}: settle once, and a settle after the session is gone is a no-op;
 * - {@link createIntake}: a pull-based consumer's prefetch, with one shared tick (a heartbeat) while full;
 * - {@link createCoalescer}: settles (commits, batched acks, deletes) in the background, one request
 *   in flight, what arrived meanwhile coalesced, failures retried, a bounded `drain`;
 * - {@link whenDrained}: wait out a driver's full write buffer (`drain`, or `close`);
 * - {@link createCumulativeAcks}: RabbitMQ-style `multiple` acks once per I/O turn, over the finished
 *   prefix only (never past a delivery still being handled);
 * - {@link createPrefixTracker}: which deliveries of an ordered stream are done, so only the done
 *   prefix is acknowledged (a Kafka commit, a RabbitMQ `multiple` ack);
 * - {@link createRestarter}: a consumer brought back after a crash, one attempt at a time, with backoff;
 * - {@link createConsumerSlot}: the one consumer a subscription runs on, replaced when it crashes or no longer fits;
 * - {@link createStreamLedger}: a group member's assigned streams (partitions): done-prefix commits across rebalances, requeues;
 * - {@link createRenewable}: a client of a session replaced when it went bad (stale metadata, a sequence to restart);
 * - {@link bounded}: wait for work a frozen broker may never finish, at most so long, never failing;
 * - {@link createSubscriptionSet}: a transport's open subscriptions, closed with it, none leaked by a late start;
 * - {@link createDeadlineTimer}: many deadlines, one timer;
 * - {@link createDeclarations}: idempotent declarations run once per key (with their result), failures tried again;
 * - {@link flushByKey}: an outbox flush made of one batch call per destination, outcomes put back in place;
 * - {@link createPullLoop}: a pull-based consumer's receives (long polls) under `prefetch`, through outages;
 * - {@link createLeases}: held messages' leases (an SQS visibility timeout) renewed before they run out;
 * - {@link httpSessionDriver}: the supervisor's session for a broker spoken to over HTTP (clients + a probe);
 * - {@link namesTable}: an error table's lookup from groups of names (data, not regexes);
 * - {@link uninstrumented}: a driver's consumer entry point without its OpenTelemetry wrapper.
 *
 * See docs/writing-a-transport.md.
 * @packageDocumentation
 */
export { type DrainingEmitter, whenDrained } from './backpressure.js'
export { bounded } from './bounded.js'
export { type Coalescer, type CoalescerOptions, createCoalescer } from './coalescer.js'
export {
  flagSchema,
  hostsSchema,
  intSchema,
  reconnectSchema,
  type TlsOptions,
  tlsOptionsSchema,
  tlsSchema,
  tlsSocketOptions,
} from './config.js'
export { type ConsumerSlot, type ConsumerSlotOptions, createConsumerSlot } from './consumer-slot.js'
export {
  type CumulativeAcks,
  type CumulativeAcksOptions,
  createCumulativeAcks,
} from './cumulative-acks.js'
export { createDeadlineTimer, type DeadlineHandle, type DeadlineTimer } from './deadlines.js'
export { createDeclarations, type Declarations } from './declarations.js'
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
  finalErrorCode,
  namesTable,
} from './errors.js'
export { flushByKey, type KeyedCall } from './flush-by-key.js'
export { type HttpSessionOptions, httpSessionDriver } from './http-session.js'
export { endpointTelemetry, uninstrumented } from './instrumentation.js'
export { createIntake, type Intake } from './intake.js'
export { createLeases, type Leases, type LeasesOptions } from './leases.js'
export {
  createOutbox,
  DEFAULT_CLOSE_GRACE_MS,
  type FlushBatch,
  type Outbox,
  type OutboxEntry,
  type OutboxOptions,
} from './outbox.js'
export { createPrefixTracker, type PrefixTracker } from './prefix-tracker.js'
export { createPullLoop, type PullLoop, type PullLoopOptions } from './pull-loop.js'
export { createRenewable, type Renewable, type RenewableOptions } from './renewable.js'
export { createRestarter, type Restarter, type RestarterOptions } from './restarter.js'
export {
  createStreamLedger,
  type StreamLease,
  type StreamLedger,
  type StreamLedgerOptions,
} from './stream-ledger.js'
export { createSubscriptionSet, type SubscriptionSet } from './subscriptions.js'
export {
  createSupervisor,
  type RestoreHook,
  type SessionDriver,
  type Supervisor,
  type SupervisorOptions,
  type SupervisorState,
} from './supervisor.js'
