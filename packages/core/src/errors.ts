/** Stable error codes. A code never changes meaning once released. */
export const ErrorCodes = {
  CONFIG_INVALID: 'MSGKIT_CONFIG_INVALID',
  URL_INVALID: 'MSGKIT_URL_INVALID',
  TRANSPORT_UNKNOWN: 'MSGKIT_TRANSPORT_UNKNOWN',
  TRANSPORT_MISSING: 'MSGKIT_TRANSPORT_MISSING',
  CAPABILITY_UNSUPPORTED: 'MSGKIT_CAPABILITY_UNSUPPORTED',
  CONNECTION_FAILED: 'MSGKIT_CONNECTION_FAILED',
  AUTH_FAILED: 'MSGKIT_AUTH_FAILED',
  PUBLISH_TIMEOUT: 'MSGKIT_PUBLISH_TIMEOUT',
  PUBLISH_REJECTED: 'MSGKIT_PUBLISH_REJECTED',
  CLOSED: 'MSGKIT_CLOSED',
  MESSAGE_TOO_LARGE: 'MSGKIT_MESSAGE_TOO_LARGE',
  ENCODE_FAILED: 'MSGKIT_ENCODE_FAILED',
  DECODE_FAILED: 'MSGKIT_DECODE_FAILED',
  SCHEMA_INVALID: 'MSGKIT_SCHEMA_INVALID',
  INVALID_ARGUMENT: 'MSGKIT_INVALID_ARGUMENT',
  NON_RETRYABLE: 'MSGKIT_NON_RETRYABLE',
  HANDLER_TIMEOUT: 'MSGKIT_HANDLER_TIMEOUT',
  TRANSPORT_ERROR: 'MSGKIT_TRANSPORT_ERROR',
  UNROUTABLE: 'MSGKIT_UNROUTABLE',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

export interface MsgkitErrorOptions {
  cause?: unknown
  /** true when trying the same operation again may succeed */
  retriable?: boolean
  /** structured, secret-free context for logs */
  details?: Record<string, unknown>
}

/** The one base class of every error msgkit throws: match on `code`, never on text. */
export class MsgkitError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly details: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message: string, options: MsgkitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'MsgkitError'
    this.code = code
    this.retriable = options.retriable ?? false
    this.details = options.details
  }
}

/** Throw from a handler to dead-letter the message at once, without retries. */
export class NonRetryableError extends MsgkitError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.NON_RETRYABLE, message, { ...options, retriable: false })
    this.name = 'NonRetryableError'
  }
}

/** True for errors msgkit created (any package, any copy of core). */
export function isMsgkitError(error: unknown): error is MsgkitError {
  return (
    error instanceof MsgkitError ||
    (typeof error === 'object' &&
      error !== null &&
      typeof (error as { code?: unknown }).code === 'string' &&
      (error as { code: string }).code.startsWith('MSGKIT_'))
  )
}

/** True when a handler error asks not to be retried. */
export function isNonRetryable(error: unknown): boolean {
  if (error instanceof NonRetryableError) return true
  // only an explicit request counts: other msgkit errors inside a handler (e.g. MSGKIT_CLOSED during
  // shutdown) are ordinary failures and get retried / redelivered
  return isMsgkitError(error) && error.code === ErrorCodes.NON_RETRYABLE
}
