/**
 * The RabbitMQ error table: what amqplib or the broker said → the kind of failure (the kit decides
 * what to do with it) and the typed, secret-free MsgkitError a user sees, with what to do about it.
 */
import { type ErrorCode, ErrorCodes, isMsgkitError, MsgkitError } from '@msgkit/core'
import type { ErrorTable, FailureKind } from '@msgkit/core/adapter'

/**
 * AMQP reply codes (amqplib's `error.code` on a channel or connection close) by kind. Any other code
 * is `fatal`: 311 too large, 402, 403 ACCESS_REFUSED on a channel (no permission; a refused login is
 * `auth`, below), 406 PRECONDITION_FAILED (other arguments, a message over max_message_size), 530, 540.
 */
const REPLY_CODES: Readonly<Record<number, FailureKind>> = {
  // CONNECTION_FORCED (an operator, a node shutting down), frame and protocol errors, INTERNAL_ERROR
  ...Object.fromEntries([320, 501, 502, 503, 504, 505, 541].map((code) => [code, 'connection'])),
  // NO_CONSUMERS, NOT_FOUND (deleted behind our back: the retry declares it again), RESOURCE_LOCKED, RESOURCE_ERROR
  ...Object.fromEntries([313, 404, 405, 506].map((code) => [code, 'transient'])),
}

/** Errors without a reply code, by socket errno or amqplib's message; first match wins. */
const BY_TEXT: ReadonlyArray<[RegExp, FailureKind]> = [
  [/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/, 'connection'],
  [/ACCESS[-_]REFUSED|Login was refused/, 'auth'],
  [/^message nacked$/, 'transient'],
  [/^Connection closed|Heartbeat timeout|Socket closed|Unexpected close|ETIMEDOUT/, 'connection'],
]

/** A message over a size limit: the broker's max_message_size, amqplib's header buffer. */
const TOO_LARGE = /max size|larger than|byte encoding buffer/i
/** What to try, by reply code or message: said in the error text. */
const HINTS: ReadonlyArray<[RegExp, string]> = [
  [/^403$/, 'The user lacks permission (configure / write / read) on this vhost for it.'],
  [
    /^406$/,
    'It already exists with other settings (for example a classic queue while queueType is quorum, or another x-single-active-consumer): delete it, or configure msgkit to match it.',
  ],
  [TOO_LARGE, "Keep maxMessageBytes at or under the broker's max_message_size."],
  [/^message nacked$/, 'basic.nack: an internal error, or a queue limit with overflow=reject-publish.'],
]
/** What to try when a connect failed, by errno or message; first match wins. */
const CONNECT_HINTS: ReadonlyArray<[RegExp, string]> = [
  [/^ECONNREFUSED$/, 'Nothing accepts connections there: is RabbitMQ running, and is the port right?'],
  [/^(ENOTFOUND|EAI_AGAIN)$/, 'The host name does not resolve.'],
  [/ETIMEDOUT/, 'No AMQP handshake in time: a firewall, a wrong port, or an overloaded broker.'],
  [/ConnectionClose/, 'The broker ended the handshake: does the vhost exist, may the user use it?'],
  [/Frame size|Unexpected|frame/i, 'What answered does not speak AMQP 0-9-1: a wrong port (TLS on 5671)?'],
  [/./, 'Check that RabbitMQ is running and reachable.'],
]

/** The connection a request ran on died: wait for the reconnect, then retry. */
export class SessionLost extends Error {
  override name = 'SessionLost'
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))
const codeOf = (error: unknown): unknown => (error as { code?: unknown } | null)?.code
/** The value of the first row whose pattern matches the error's code or message. */
const lookup = <T>(rows: ReadonlyArray<[RegExp, T]>, error: unknown): T | undefined =>
  rows.find(([p]) => p.test(String(codeOf(error))) || p.test(errorText(error)))?.[1]

function classify(error: unknown): FailureKind {
  if (error instanceof SessionLost) return 'connection'
  if (error instanceof RangeError) return 'fatal' // amqplib: a header table over its buffer
  const code = codeOf(error)
  if (typeof code === 'number') return REPLY_CODES[code] ?? 'fatal'
  // what no row names is transient: a channel gone while its connection lives ('Channel closed' / 'ended')
  return lookup(BY_TEXT, error) ?? 'transient'
}

/** The error table of one transport; `where(endpoint)` names a host without the password. */
export function createErrorTable(options: {
  where(endpoint?: string): string
  scrub(text: string): string
}): ErrorTable {
  return {
    classify,
    toError(cause, { operation, topic = '', endpoint }) {
      if (isMsgkitError(cause)) return cause
      const kind = classify(cause)
      const text = errorText(cause)
      const code = codeOf(cause)
      const at = options.where(endpoint)
      const details = { operation, ...(topic ? { topic } : {}), ...(endpoint ? { where: at } : {}), code }
      const make = (errorCode: ErrorCode, retriable: boolean, message: string) =>
        new MsgkitError(errorCode, options.scrub(message), { retriable, details })
      if (kind === 'auth')
        return make(
          ErrorCodes.AUTH_FAILED,
          false,
          `RabbitMQ at ${at} refused the login (ACCESS_REFUSED). Check the user name and password; note that the guest user may only connect from localhost.`,
        )
      if (operation === 'connect' || operation === 'reconnect')
        return make(
          ErrorCodes.CONNECTION_FAILED,
          true,
          `Could not connect to RabbitMQ at ${at}: ${text}; ${lookup(CONNECT_HINTS, cause)}`,
        )
      const tooLarge = operation === 'publish' && (code === 311 || TOO_LARGE.test(text))
      const refused = operation === 'publish' ? ErrorCodes.PUBLISH_REJECTED : ErrorCodes.TRANSPORT_ERROR
      return make(
        tooLarge ? ErrorCodes.MESSAGE_TOO_LARGE : refused,
        kind !== 'fatal', // a nack is transient: retried until the deadline
        `RabbitMQ refused to ${operation} ${topic}: ${text}. ${lookup(HINTS, cause) ?? ''}`,
      )
    },
  }
}
