/**
 * The ActiveMQ error table: the driver's failure kinds and ActiveMQ's ERROR-frame messages (STOMP
 * has no error codes: the broker's exact texts are the keys) → the kit's failure kinds and typed,
 * secret-free MsgkitErrors that say what to do.
 */
import { type ErrorCode, ErrorCodes, isMsgkitError, MsgkitError } from '@msgkit/core'
import type { ErrorTable, FailureKind } from '@msgkit/core/adapter'
import { StompError, type StompFailure } from './driver.js'

/** Per driver failure: what the kit does, and what to check when it happened on connect. */
const FAILURES: Readonly<Record<StompFailure, [FailureKind, string]>> = {
  unreachable: [
    'connection',
    'Is ActiveMQ running there, with a STOMP connector on that port (TLS: stomp+ssl)?',
  ],
  timeout: [
    'connection',
    'It accepted the connection but never answered CONNECT: a wrong port, or overloaded?',
  ],
  lost: ['connection', 'The broker closed the connection: a connection limit, or not a STOMP port?'],
  // an ERROR frame answering CONNECT: ActiveMQ's SecurityException ("User name [x] or password is invalid.")
  refused: ['auth', 'Check login and passcode.'],
  // an ERROR frame about one of our frames: that frame will never be taken as it is
  'error-frame': ['fatal', ''],
}

/** ERROR-frame messages of ActiveMQ 5.x's STOMP codec and broker (exact texts) that mean "too large". */
const TOO_LARGE: Readonly<Record<string, string>> = {
  'The maximum data length was exceeded': "maxMessageBytes is above the broker's maxDataLength: lower it",
  'The maximum header length was exceeded': "a header line is over the broker's maxHeaderLength",
  'The maximum number of headers was exceeded':
    "the frame has more header lines than the broker's maxHeaders",
  'java.lang.OutOfMemoryError: Java heap space':
    "the broker's heap cannot hold a message this large: lower maxMessageBytes or give the broker more heap",
}

/** The error table of one transport; `scrub` removes the config's secrets from texts. */
export function createErrorTable(scrub: (text: string) => string): ErrorTable {
  return {
    classify(error) {
      if (error instanceof StompError) return FAILURES[error.failure][0]
      return isMsgkitError(error) && error.retriable ? 'transient' : 'fatal'
    },
    toError(error, { operation, topic, endpoint }) {
      if (isMsgkitError(error)) return error
      const failure = error instanceof StompError ? error.failure : undefined
      const raw = error instanceof Error ? error.message : String(error)
      const text = scrub(raw)
      const at = endpoint ? ` at ${endpoint}` : ''
      const details = { operation, ...(topic ? { topic } : {}), ...(endpoint ? { endpoint } : {}), failure }
      const make = (code: ErrorCode, retriable: boolean, message: string) =>
        new MsgkitError(code, message, { retriable, details })
      const [kind, hint] = failure ? FAILURES[failure] : ['fatal', '']
      if (kind === 'auth')
        return make(ErrorCodes.AUTH_FAILED, false, `ActiveMQ${at} refused the login: ${text} ${hint}`)
      if (kind === 'connection' && (operation === 'connect' || operation === 'reconnect'))
        return make(
          ErrorCodes.CONNECTION_FAILED,
          true,
          `Could not connect to ActiveMQ${at}: ${text}. ${hint}`,
        )
      const what = `${operation}${topic ? ` ${topic}` : ''}`
      if (kind === 'connection')
        return make(ErrorCodes.TRANSPORT_ERROR, true, `Could not ${what} on ActiveMQ${at}: ${text}.`)
      const large = TOO_LARGE[raw]
      const refused = operation === 'publish' ? ErrorCodes.PUBLISH_REJECTED : ErrorCodes.TRANSPORT_ERROR
      return make(
        large ? ErrorCodes.MESSAGE_TOO_LARGE : refused,
        false,
        `ActiveMQ${at} refused to ${what}: ${text}${large ? `; ${large}` : ''}.`,
      )
    },
  }
}
