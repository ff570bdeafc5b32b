/**
 * The Kafka error table: kafkajs errors → the kit's failure kinds and typed MsgkitErrors, looked up
 * by kafkajs error class name and Kafka protocol error type (data, never regexes on message text).
 */
import { type ErrorCode, ErrorCodes, isMsgkitError, MsgkitError } from '@msgkit/core'
import { type ErrorTable, type FailureKind, finalErrorCode, namesTable } from '@msgkit/core/adapter'

/** How msgkit sees a kafkajs error. */
export type ErrorClass = 'connection' | 'transient' | 'auth' | 'too-large' | 'rejected'

/** kafkajs error classes (`name`, after unwrapping retry wrappers; the last two are ours), and Node socket codes. */
const BY_NAME = namesTable<ErrorClass>({
  // KafkaJSRequestTimeoutError: no answer within requestTimeout, a frozen broker: reconnect
  connection: `KafkaJSConnectionError KafkaJSConnectionClosedError KafkaJSBrokerNotFound KafkaJSNoBrokerAvailableError
    KafkaJSGroupCoordinatorNotFound KafkaJSRequestTimeoutError
    ECONNREFUSED ECONNRESET EPIPE ENOTFOUND EAI_AGAIN ETIMEDOUT EHOSTUNREACH`,
  transient: `KafkaJSLockTimeout KafkaJSTimeout KafkaJSMetadataNotLoaded KafkaJSTopicMetadataNotLoaded
    KafkaJSStaleTopicMetadataAssignment`,
  auth: 'KafkaJSSASLAuthenticationError',
  rejected: 'KafkaTopicMissingError',
})

/** Kafka protocol error types (`type`). Anything absent is transient when the broker marks it retriable. */
const BY_PROTOCOL_TYPE = namesTable<ErrorClass>({
  auth: 'SASL_AUTHENTICATION_FAILED UNSUPPORTED_SASL_MECHANISM ILLEGAL_SASL_STATE',
  'too-large': 'MESSAGE_TOO_LARGE RECORD_LIST_TOO_LARGE',
  rejected: `TOPIC_AUTHORIZATION_FAILED GROUP_AUTHORIZATION_FAILED CLUSTER_AUTHORIZATION_FAILED
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED INVALID_TOPIC_EXCEPTION INVALID_RECORD CORRUPT_MESSAGE
    INVALID_REQUIRED_ACKS INVALID_TIMESTAMP POLICY_VIOLATION UNSUPPORTED_VERSION UNSUPPORTED_FOR_MESSAGE_FORMAT
    INVALID_PARTITIONS INVALID_REPLICATION_FACTOR INVALID_CONFIG`,
  connection: 'NETWORK_EXCEPTION',
  // group churn, a producer session to renew, and stale metadata (see staleMetadata)
  transient: `REBALANCE_IN_PROGRESS ILLEGAL_GENERATION UNKNOWN_MEMBER_ID OUT_OF_ORDER_SEQUENCE_NUMBER
    UNKNOWN_PRODUCER_ID INVALID_PRODUCER_EPOCH UNKNOWN_TOPIC_OR_PARTITION`,
})

type KafkaLikeError = { name?: string; type?: string; message?: string; retriable?: boolean; code?: unknown }

/** kafkajs wraps the real failure (retries exhausted, non-retriable, aggregate): dig to the root. */
export function rootCause(error: unknown): unknown {
  let e = error as (KafkaLikeError & { cause?: unknown; errors?: unknown[] }) | null
  for (let depth = 0; depth < 10 && e && typeof e === 'object'; depth++) {
    if ((e.name === 'KafkaJSNumberOfRetriesExceeded' || e.name === 'KafkaJSNonRetriableError') && e.cause)
      e = e.cause as typeof e
    else if (e.name === 'KafkaJSAggregateError' && e.errors?.length) e = e.errors[0] as typeof e
    else break
  }
  return e
}

/**
 * A kafkajs client asks for every topic it ever used in each metadata refresh, and Kafka fails the
 * whole refresh with UNKNOWN_TOPIC_OR_PARTITION once one of them was deleted: that client fails for
 * good, so the caller renews it and retries (also right for a new topic whose metadata has not spread).
 */
export const staleMetadata = (error: unknown): boolean =>
  (rootCause(error) as KafkaLikeError | null)?.type === 'UNKNOWN_TOPIC_OR_PARTITION'

/** The class of a kafkajs error (after unwrapping); undefined when the tables do not know it. */
export function classifyKafka(error: unknown): ErrorClass | undefined {
  const root = rootCause(error) as KafkaLikeError | null
  if (!root || typeof root !== 'object') return undefined
  if (typeof root.type === 'string')
    return BY_PROTOCOL_TYPE.get(root.type) ?? (root.retriable ? 'transient' : undefined)
  return BY_NAME.get(String(root.name)) ?? BY_NAME.get(String(root.code))
}

/** The kit's kind: a message too large or refused is final for that message; unknown errors are not retried. */
const kindOf = (klass: ErrorClass | undefined): FailureKind =>
  klass === undefined || klass === 'too-large' || klass === 'rejected' ? 'fatal' : klass

const HINTS: Partial<Record<ErrorCode, string>> = {
  [ErrorCodes.AUTH_FAILED]:
    ' Check the SASL user, password and mechanism, and that the listener speaks SASL.',
  [ErrorCodes.CONNECTION_FAILED]: ' Is the broker running and reachable there (host, port, TLS)?',
}

/** The error table of one transport; `scrub` removes the config's secrets from texts. */
export function createKafkaErrors(scrub: (text: string) => string): ErrorTable {
  return {
    classify(error) {
      if (isMsgkitError(error)) return error.retriable ? 'transient' : 'fatal'
      return kindOf(classifyKafka(error))
    },
    toError(error, context) {
      if (isMsgkitError(error)) return error
      const root = rootCause(error) as KafkaLikeError | null
      const klass = classifyKafka(error)
      const kind = kindOf(klass)
      const code =
        klass === 'too-large' ? ErrorCodes.MESSAGE_TOO_LARGE : finalErrorCode(kind, context.operation)
      const raw = String(root?.message ?? root ?? 'unknown error')
      const detail = scrub(raw)
      const where = `${context.topic ? ` ${context.topic}` : ''}${context.endpoint ? ` at ${context.endpoint}` : ''}`
      const type = typeof root?.type === 'string' ? ` (${root.type})` : ''
      return new MsgkitError(
        code,
        `Kafka ${context.operation}${where} failed: ${detail}${type}.${HINTS[code] ?? ''}`,
        {
          retriable: kind === 'connection' || kind === 'transient',
          details: { kafkaError: root?.name, kafkaType: root?.type },
          // kafkajs errors carry no credentials, but where a secret was scrubbed keep only the scrubbed text
          cause: detail === raw ? error : new Error(detail),
        },
      )
    },
  }
}
