/** kafkajs errors → MsgkitError, through tables keyed by kafkajs error class name and protocol error type. */
import { type ErrorCode, ErrorCodes, isMsgkitError, MsgkitError } from '@msgkit/core'

/** What msgkit was doing when kafkajs failed; decides the code of a generic failure. */
export type KafkaOperation = 'connect' | 'publish' | 'provision' | 'consume'

/** How an error class or protocol error is classified. */
export type ErrorClass = 'connection' | 'auth' | 'too-large' | 'rejected' | 'transient' | 'timeout'

/** kafkajs error classes (their `name`); wrappers are unwrapped before this lookup. */
const BY_NAME: Readonly<Record<string, ErrorClass>> = {
  KafkaJSConnectionError: 'connection',
  KafkaJSConnectionClosedError: 'connection',
  KafkaJSBrokerNotFound: 'connection',
  KafkaJSNoBrokerAvailableError: 'connection',
  KafkaJSGroupCoordinatorNotFound: 'connection',
  KafkaJSRequestTimeoutError: 'timeout',
  KafkaJSLockTimeout: 'timeout',
  KafkaJSTimeout: 'timeout',
  KafkaJSSASLAuthenticationError: 'auth',
  KafkaJSMetadataNotLoaded: 'transient',
  KafkaJSTopicMetadataNotLoaded: 'transient',
  KafkaJSStaleTopicMetadataAssignment: 'transient',
  // ours: autoCreateTopics is off and the topic does not exist
  KafkaTopicMissingError: 'rejected',
}

/** Kafka protocol error types (kafkajs `error.type`). Anything absent: transient if the broker says retriable. */
const BY_PROTOCOL_TYPE: Readonly<Record<string, ErrorClass>> = {
  SASL_AUTHENTICATION_FAILED: 'auth',
  UNSUPPORTED_SASL_MECHANISM: 'auth',
  ILLEGAL_SASL_STATE: 'auth',
  TOPIC_AUTHORIZATION_FAILED: 'rejected',
  GROUP_AUTHORIZATION_FAILED: 'rejected',
  CLUSTER_AUTHORIZATION_FAILED: 'rejected',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'rejected',
  MESSAGE_TOO_LARGE: 'too-large',
  RECORD_LIST_TOO_LARGE: 'too-large',
  INVALID_TOPIC_EXCEPTION: 'rejected',
  INVALID_RECORD: 'rejected',
  CORRUPT_MESSAGE: 'rejected',
  INVALID_REQUIRED_ACKS: 'rejected',
  INVALID_TIMESTAMP: 'rejected',
  POLICY_VIOLATION: 'rejected',
  UNSUPPORTED_VERSION: 'rejected',
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 'rejected',
  INVALID_PARTITIONS: 'rejected',
  INVALID_REPLICATION_FACTOR: 'rejected',
  INVALID_CONFIG: 'rejected',
  UNKNOWN_TOPIC_OR_PARTITION: 'transient',
  LEADER_NOT_AVAILABLE: 'transient',
  NOT_LEADER_FOR_PARTITION: 'transient',
  NOT_ENOUGH_REPLICAS: 'transient',
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 'transient',
  REQUEST_TIMED_OUT: 'timeout',
  NETWORK_EXCEPTION: 'connection',
  COORDINATOR_NOT_AVAILABLE: 'transient',
  NOT_COORDINATOR: 'transient',
  COORDINATOR_LOAD_IN_PROGRESS: 'transient',
  REBALANCE_IN_PROGRESS: 'transient',
  ILLEGAL_GENERATION: 'transient',
  UNKNOWN_MEMBER_ID: 'transient',
  OUT_OF_ORDER_SEQUENCE_NUMBER: 'transient',
  UNKNOWN_PRODUCER_ID: 'transient',
  INVALID_PRODUCER_EPOCH: 'transient',
}

interface KafkaLikeError {
  name?: string
  type?: string
  message?: string
  retriable?: boolean
  cause?: unknown
  errors?: unknown[]
}

/** kafkajs wraps the real failure (retries exhausted, non-retriable wrapper): dig to the root. */
export function rootCause(error: unknown): unknown {
  let current = error
  for (let depth = 0; depth < 10; depth++) {
    const e = current as KafkaLikeError | null
    if (!e || typeof e !== 'object') return current
    const wrapper = e.name === 'KafkaJSNumberOfRetriesExceeded' || e.name === 'KafkaJSNonRetriableError'
    if (wrapper && e.cause !== undefined && e.cause !== current) {
      current = e.cause
      continue
    }
    // KafkaJSAggregateError / KafkaJSCreateTopicError: classify by the first inner error
    if (e.name === 'KafkaJSAggregateError' && Array.isArray(e.errors) && e.errors.length > 0) {
      current = e.errors[0]
      continue
    }
    return current
  }
  return current
}

/** The class of a kafkajs error (after unwrapping); undefined when the tables do not know it. */
export function classify(error: unknown): ErrorClass | undefined {
  const root = rootCause(error) as KafkaLikeError | null
  if (!root || typeof root !== 'object') return undefined
  if (typeof root.type === 'string') {
    const byType = BY_PROTOCOL_TYPE[root.type]
    if (byType) return byType
    return root.retriable === true ? 'transient' : undefined
  }
  if (typeof root.name === 'string') {
    const byName = BY_NAME[root.name]
    if (byName) return byName
  }
  // node socket errors surfacing without a kafkajs wrapper
  const code = (root as { code?: unknown }).code
  if (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH)$/.test(code)
  ) {
    return 'connection'
  }
  return undefined
}

const isTransientClass = (c: ErrorClass | undefined): boolean =>
  c === 'connection' || c === 'transient' || c === 'timeout'

/** True when trying again later may succeed (connection trouble, leader moves, rebalances). */
export function isTransient(error: unknown): boolean {
  return isTransientClass(classify(error))
}

/** True when the error means the broker (or the route to it) is unreachable. */
export function isConnectionLoss(error: unknown): boolean {
  const c = classify(error)
  return c === 'connection' || c === 'timeout'
}

function codeFor(klass: ErrorClass | undefined, operation: KafkaOperation): ErrorCode {
  switch (klass) {
    case 'auth':
      return ErrorCodes.AUTH_FAILED
    case 'too-large':
      return ErrorCodes.MESSAGE_TOO_LARGE
    case 'connection':
    case 'timeout':
      if (operation === 'connect') return ErrorCodes.CONNECTION_FAILED
      if (operation === 'publish') return ErrorCodes.PUBLISH_TIMEOUT
      return ErrorCodes.TRANSPORT_ERROR
    case 'rejected':
      return operation === 'publish' ? ErrorCodes.PUBLISH_REJECTED : ErrorCodes.TRANSPORT_ERROR
    default:
      return operation === 'connect' ? ErrorCodes.CONNECTION_FAILED : ErrorCodes.TRANSPORT_ERROR
  }
}

/** MSGKIT_CLOSED for calls on a closed transport. */
export function transportClosed(): MsgkitError {
  return new MsgkitError(ErrorCodes.CLOSED, 'The Kafka transport is closed.')
}

/** Replaces every secret in `text` with `***`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('***')
  return out
}

/**
 * A MsgkitError for a kafkajs failure. The message is built from the root cause's message with
 * secrets scrubbed; the kafkajs error is not attached as `cause` when it could carry secrets.
 */
export function toMsgkitError(
  error: unknown,
  operation: KafkaOperation,
  context: string,
  secrets: readonly string[] = [],
): MsgkitError {
  if (isMsgkitError(error)) return error as MsgkitError
  const root = rootCause(error) as KafkaLikeError | null
  const klass = classify(error)
  const detail = scrub(String(root?.message ?? root ?? 'unknown error'), secrets)
  const type = typeof root?.type === 'string' ? ` (${root.type})` : ''
  const message = scrub(`${context}: ${detail}${type}`, secrets)
  return new MsgkitError(codeFor(klass, operation), message, {
    retriable: isTransientClass(klass),
    details: { kafkaError: typeof root?.name === 'string' ? root.name : undefined, kafkaType: root?.type },
    // kafkajs errors carry no credentials, but a scrubbed copy is all we keep when secrets exist
    cause: secrets.length === 0 ? error : new Error(detail),
  })
}
