/**
 * The one question the kit asks of an adapter's error table: what kind of failure is this?
 * The kit decides what to do with each kind (wait for the reconnect, back off, reject) the same
 * way for every broker; the adapter only maps its client's errors (by code, from a table).
 */
import { type ErrorCode, ErrorCodes, isMsgkitError, MsgkitError } from '../errors.js'

/**
 * - `connection`: the session is gone or the broker is unreachable: wait for the reconnect, retry
 * - `transient`: the broker is there but said "not now" (leader moving, throttled): back off, retry
 * - `auth`: credentials refused (not retriable; on connect it wins over an unreachable host)
 * - `fatal`: this operation or message will never succeed as it is: reject it
 */
export type FailureKind = 'connection' | 'transient' | 'auth' | 'fatal'

/** What an operation was doing when it failed, for error texts. */
export interface FailureContext {
  /** e.g. 'connect', 'publish', 'provision', 'subscribe' */
  operation: string
  /** topic (or pattern) concerned, if any */
  topic?: string
  /** the endpoint (host:port) concerned, if any; never with credentials */
  endpoint?: string
}

/** An adapter's error table. */
export interface ErrorTable {
  classify(error: unknown): FailureKind
  /**
   * A typed, secret-free MsgkitError for a failure that is final (fatal, auth, or retries exhausted
   * at connect). Say what to do in the message. Return the error itself when it already is one.
   */
  toError(error: unknown, context: FailureContext): MsgkitError
}

/**
 * The kind of `error` by the adapter's table — except for a MsgkitError, which already says what it
 * is (a retriable one is transient, any other final), so no table has to know about them.
 */
export function failureKind(errors: ErrorTable, error: unknown): FailureKind {
  if (error instanceof MsgkitError || isMsgkitError(error)) {
    if (error.code === ErrorCodes.AUTH_FAILED) return 'auth'
    return error.retriable ? 'transient' : 'fatal'
  }
  return errors.classify(error)
}

/** The final error for `error`: a MsgkitError as it is, anything else through the table. */
export function finalError(errors: ErrorTable, error: unknown, context: FailureContext): MsgkitError {
  if (error instanceof MsgkitError) return error
  return errors.toError(error, context)
}

/**
 * The code of a final error, the same on every broker: refused credentials are MSGKIT_AUTH_FAILED,
 * anything else on (re)connect MSGKIT_CONNECTION_FAILED; a publish refused for good
 * MSGKIT_PUBLISH_REJECTED, one whose retriable failure outlasted it MSGKIT_PUBLISH_TIMEOUT (it may or
 * may not be stored); the rest MSGKIT_TRANSPORT_ERROR. An adapter may be more precise (MSGKIT_MESSAGE_TOO_LARGE).
 */
export function finalErrorCode(kind: FailureKind, operation: string): ErrorCode {
  if (kind === 'auth') return ErrorCodes.AUTH_FAILED
  if (operation === 'connect' || operation === 'reconnect') return ErrorCodes.CONNECTION_FAILED
  if (operation !== 'publish') return ErrorCodes.TRANSPORT_ERROR
  return kind === 'fatal' ? ErrorCodes.PUBLISH_REJECTED : ErrorCodes.PUBLISH_TIMEOUT
}

/**
 * The error of a first connect that tried several hosts: what each host said, and a refused login
 * anywhere wins over an unreachable host (retrying elsewhere cannot fix credentials).
 */
export function connectFailure(
  transport: string,
  attempts: ReadonlyArray<{ endpoint: string; error: MsgkitError; kind: FailureKind }>,
): MsgkitError {
  const auth = attempts.find((a) => a.kind === 'auth')
  const hosts = attempts.map((a) => ({ endpoint: a.endpoint, code: a.error.code, message: a.error.message }))
  if (attempts.length === 1 && attempts[0]) return attempts[0].error
  if (auth) {
    const others = attempts.filter((a) => a !== auth)
    const tail = others.length
      ? ` (other hosts: ${others.map((a) => `${a.endpoint}: ${a.error.message}`).join('; ')})`
      : ''
    return new MsgkitError(ErrorCodes.AUTH_FAILED, `${auth.error.message}${tail}`, {
      details: { transport, hosts },
    })
  }
  return new MsgkitError(
    ErrorCodes.CONNECTION_FAILED,
    `Could not connect to any ${transport} host: ${attempts.map((a) => `${a.endpoint}: ${a.error.message}`).join('; ')}`,
    { retriable: true, details: { transport, hosts } },
  )
}

/** The error for work refused because the transport is closed. */
export function closedError(transport: string, what = 'This transport'): MsgkitError {
  return new MsgkitError(ErrorCodes.CLOSED, `${what} is closed (${transport}); nothing was done.`)
}

/**
 * A lookup table from groups of whitespace-separated names (error classes, codes, protocol error
 * types) to what they mean, so an adapter's error table reads as data:
 * `namesTable({ connection: 'ECONNRESET EPIPE', auth: 'SASL_AUTHENTICATION_FAILED' })`.
 */
export function namesTable<K extends string>(groups: Partial<Record<K, string>>): ReadonlyMap<string, K> {
  return new Map(
    (Object.entries(groups) as Array<[K, string]>).flatMap(([kind, names]) =>
      names
        .trim()
        .split(/\s+/)
        .map((name): [string, K] => [name, kind]),
    ),
  )
}
