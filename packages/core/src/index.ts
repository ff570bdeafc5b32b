/**
 * @msgkit/core — one small API to publish and consume messages; the broker is configuration.
 * @packageDocumentation
 */
export type * from './api.js'
export { type Codec, ContentTypes, jsonCodec } from './codec.js'
export type { MessagingConfig } from './config.js'
export {
  type DeadLetter,
  type DeadLetterQueue,
  deadLetterQueue,
  type PurgeReport,
  type RedriveOptions,
  type RedriveProgress,
  type RedriveReport,
  requireTransportFeature,
  type StopReason,
} from './dead-letter-queue.js'
export {
  type ErrorCode,
  ErrorCodes,
  isMsgkitError,
  isNonRetryable,
  MsgkitError,
  NonRetryableError,
} from './errors.js'
export { createMemoryIdempotencyStore, type IdempotencyStore } from './idempotency.js'
export { uuidv7, uuidv7Time } from './ids.js'
export { tooLarge, wireHeaderBytes } from './limits.js'
export { type Logger, silentLogger } from './logger.js'
export { createMemoryBroker, getMemoryBroker, type MemoryBroker } from './memory/broker.js'
export { type MemoryTransportConfig, memoryConfigSchema, memoryTransport } from './memory/definition.js'
export { createMessaging } from './messaging.js'
export {
  assertGroupName,
  assertPattern,
  assertTopicName,
  DEAD_LETTER_GROUP,
  deadLetterTopicOf,
  patternToRegExp,
} from './names.js'
export { isTransportDefinition, loadTransport, transportForScheme, transportRegistry } from './registry.js'
export { backoffDelay, sleep } from './retry.js'
export type * from './spi.js'
export { withTimeout } from './timeout.js'
export { definePattern, defineTopic } from './topics.js'
export { nestParams, parseBrokerUrl, redactUrl } from './urls.js'
export {
  compactWireHeaders,
  contentTypeOf,
  fromWireHeaders,
  headerBytes,
  headerText,
  isReservedHeader,
  type NativeFields,
  RESERVED_HEADER_PREFIX,
  readWireFields,
  toWireHeaders,
  WireHeaders,
} from './wire.js'
