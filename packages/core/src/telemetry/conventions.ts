/**
 * The OpenTelemetry messaging semantic conventions msgkit emits: attribute and metric names, the
 * `messaging.system` values, `error.type`, and the OTEL_SEMCONV_STABILITY_OPT_IN transition.
 * Names follow the current (Development-status) conventions: docs/messaging/messaging-spans.md and
 * messaging-metrics.md of open-telemetry/semantic-conventions. Written out here rather than taken
 * from @opentelemetry/semantic-conventions so core keeps no run-time dependency but zod.
 */
import { isMsgkitError } from '../errors.js'

export const Attr = {
  system: 'messaging.system',
  destinationName: 'messaging.destination.name',
  destinationTemplate: 'messaging.destination.template',
  partitionId: 'messaging.destination.partition.id',
  operationName: 'messaging.operation.name',
  operationType: 'messaging.operation.type',
  consumerGroup: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  bodySize: 'messaging.message.body.size',
  batchCount: 'messaging.batch.message_count',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  errorType: 'error.type',
  kafkaKey: 'messaging.kafka.message.key',
  kafkaOffset: 'messaging.kafka.offset',
  rabbitRoutingKey: 'messaging.rabbitmq.destination.routing_key',
  rabbitDeliveryTag: 'messaging.rabbitmq.message.delivery_tag',
  // msgkit's own, in its own namespace
  attempt: 'msgkit.message.attempt',
  retryDelay: 'msgkit.retry.delay_ms',
  deadLetterReason: 'msgkit.dead_letter.reason',
  deadLetterTopic: 'msgkit.dead_letter.topic',
  deadLetterOutcome: 'msgkit.dead_letter.outcome',
} as const

/**
 * The names v1.24 of the conventions (and the instrumentations still on it) used, emitted next to
 * the current ones with OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup.
 */
export const OldAttr = {
  operation: 'messaging.operation',
  kafkaConsumerGroup: 'messaging.kafka.consumer.group',
  kafkaPartition: 'messaging.kafka.destination.partition',
  kafkaOffset: 'messaging.kafka.message.offset',
} as const

/** v1.24's `messaging.operation` value for each current operation type. */
export const OLD_OPERATION: Readonly<Record<string, string>> = {
  send: 'publish',
  create: 'create',
  process: 'deliver',
  receive: 'receive',
}

export const Metric = {
  operationDuration: 'messaging.client.operation.duration',
  sentMessages: 'messaging.client.sent.messages',
  consumedMessages: 'messaging.client.consumed.messages',
  processDuration: 'messaging.process.duration',
  retries: 'msgkit.consumer.retries',
  deadLetters: 'msgkit.consumer.dead_letters',
  inFlight: 'msgkit.consumer.in_flight',
  reconnects: 'msgkit.client.reconnects',
} as const

/** The conventions' advice for both duration histograms (seconds). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/** `messaging.system` per transport name, where the transport does not say (Transport.telemetry). */
const SYSTEMS: Readonly<Record<string, string>> = {
  kafka: 'kafka',
  rabbitmq: 'rabbitmq',
  activemq: 'activemq',
  sqs: 'aws_sqs',
  memory: 'msgkit_memory',
}

/** The `messaging.system` of a transport without its own `telemetry.system`. */
export function systemOf(transportName: string): string {
  return SYSTEMS[transportName] ?? transportName
}

/**
 * What OTEL_SEMCONV_STABILITY_OPT_IN asks of the messaging conventions. msgkit has only ever
 * emitted the current names, so `messaging` changes nothing; `messaging/dup` (which wins over
 * `messaging`) adds the v1.24 names for dashboards built on older instrumentations. Span names and
 * kinds are always the current ones, as the conventions require for `dup`.
 */
export function semconvMode(
  env: string | undefined = process.env.OTEL_SEMCONV_STABILITY_OPT_IN,
): 'current' | 'dup' {
  if (!env) return 'current'
  const values = env.split(',').map((v) => v.trim().toLowerCase())
  return values.includes('messaging/dup') ? 'dup' : 'current'
}

/**
 * `error.type`: a MsgkitError's stable code (`MSGKIT_PUBLISH_TIMEOUT`), else the error's class
 * name (`TypeError`, a user's `PaymentDeclinedError`), else `_OTHER`. Low cardinality by design.
 */
export function errorType(error: unknown): string {
  if (isMsgkitError(error)) return error.code
  if (error instanceof Error) {
    const name = error.constructor?.name || error.name
    return name && name !== 'Object' ? name : '_OTHER'
  }
  return '_OTHER'
}
