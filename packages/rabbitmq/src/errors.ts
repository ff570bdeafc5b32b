/** amqplib / RabbitMQ failures → MsgkitError with a stable code and a secret-free message. */
import { ErrorCodes, MsgkitError } from '@msgkit/core'

/** AMQP reply codes we act on. */
export const ReplyCodes = {
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  PRECONDITION_FAILED: 406,
} as const

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}

/** The AMQP reply code a channel or connection error carries (amqplib puts it on `.code`). */
export function replyCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'number' ? code : undefined
}

/** Removes every secret from a text before it goes into an error or a log line. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('***')
  return out
}

/** An error for a failed connection attempt: AUTH_FAILED for a refused login, else CONNECTION_FAILED. */
export function connectError(
  error: unknown,
  where: string,
  username: string,
  secrets: readonly string[],
): MsgkitError {
  const text = scrub(errorText(error), secrets)
  const code = (error as { code?: unknown } | null)?.code
  if (/ACCESS[-_]REFUSED|\b403\b/.test(text)) {
    return new MsgkitError(
      ErrorCodes.AUTH_FAILED,
      `RabbitMQ at ${where} refused the login of user "${username}" (ACCESS_REFUSED). Check the user name and password; note that the guest user may only connect from localhost.`,
      { details: { where } },
    )
  }
  let hint: string
  if (code === 'ECONNREFUSED')
    hint = 'nothing accepts connections there: is RabbitMQ running, and is the port right?'
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') hint = 'the host name does not resolve.'
  else if (/ETIMEDOUT/.test(text))
    hint = 'no AMQP handshake in time: a firewall, a wrong port, or an overloaded broker.'
  else if (/ConnectionClose/.test(text))
    hint =
      'the broker closed the connection during the handshake: does the vhost exist, and may this user use it?'
  else if (/Frame size|Unexpected|frame/i.test(text))
    hint = 'what answered does not speak AMQP 0-9-1: a wrong port (TLS on 5671, AMQP on 5672)?'
  else hint = 'check that RabbitMQ is running and reachable.'
  return new MsgkitError(
    ErrorCodes.CONNECTION_FAILED,
    `Could not connect to RabbitMQ at ${where}: ${text}; ${hint}`,
    {
      retriable: true,
      details: { where, ...(typeof code === 'string' ? { errno: code } : {}) },
    },
  )
}

/** A declaration that the broker refused, with the likely reason spelled out. */
export function topologyError(error: unknown, what: string): MsgkitError {
  const text = errorText(error)
  const code = replyCode(error)
  let hint = ''
  if (code === ReplyCodes.PRECONDITION_FAILED) {
    hint =
      ' It already exists with different settings (for example a classic queue while queueType is quorum, or another x-single-active-consumer): delete it, or configure msgkit to match it.'
  } else if (code === ReplyCodes.ACCESS_REFUSED) hint = ' The user lacks configure permission on this vhost.'
  return new MsgkitError(ErrorCodes.TRANSPORT_ERROR, `RabbitMQ refused to declare ${what}: ${text}.${hint}`, {
    cause: error,
    retriable: code === undefined,
    details: { what, ...(code === undefined ? {} : { replyCode: code }) },
  })
}
