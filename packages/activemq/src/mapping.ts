/**
 * msgkit messages ↔ STOMP frames. Out: always `persistent` (none survived a restart without), the key
 * as `JMSXGroupID` and in msgkit-key (ActiveMQ does not deliver JMSXGroupID), the delay as
 * `AMQ_SCHEDULED_DELAY`, ActiveMQ's STOMP limits checked before the wire; msgkit headers for the id
 * and key, and for the time unless the id (a UUID v7) encodes it: STOMP carries none of them natively.
 * In: the broker's headers stripped; id / key / time from msgkit's headers or the id, else the broker's.
 */
import {
  compactWireHeaders,
  ErrorCodes,
  type Headers,
  MsgkitError,
  type OutgoingMessage,
  readWireFields,
  type TransportMessage,
  WireHeaders,
} from '@msgkit/core'
import type { FrameHeaders, InboundFrame } from './driver.js'

/** ActiveMQ's STOMP codec (5.x): one header line `name:value` (escaped, UTF-8), and lines per frame. */
export const MAX_HEADER_LINE_BYTES = 10_240
export const MAX_HEADER_LINES = 1_000

/** A SEND frame: its headers (without `receipt` and `content-length`, which the driver adds) and body. */
export interface Frame {
  headers: FrameHeaders
  body: Uint8Array
}

/** What the broker puts on a delivered frame, and ActiveMQ's control headers: never user headers. */
const BROKER = `message-id destination subscription ack expires priority timestamp persistent redelivered
  receipt content-length transaction original-destination originalExpiration scheduledJobId redeliveryDelay
  amq-msg-type`.split(/\s+/)
const BROKER_HEADERS = new Set(BROKER)
/** Names STOMP or ActiveMQ give a meaning on SEND (a bad `priority`, say, drops the connection). */
const RESERVED = new Set([...BROKER, 'id', 'reply-to'].map((name) => name.toLowerCase()))
const JMS = /^(JMS|AMQ_|_AMQ|activemq\.)/i
/** `reply-to` may be set when it is a destination: JMS's JMSReplyTo. */
const DESTINATION = /^\/(queue|topic|temp-queue|temp-topic)\/./

const invalid = (name: string, why: string) =>
  new MsgkitError(
    ErrorCodes.INVALID_ARGUMENT,
    `Header name ${JSON.stringify(name)} ${why}: use another name.`,
  )

/** Bytes of `text` once STOMP 1.2-escaped (`\\`, CR, LF and `:` take two bytes each). */
const escapedBytes = (text: string): number =>
  Buffer.byteLength(text) + (text.match(/[\\\r\n:]/g)?.length ?? 0)

/** Throws unless a user header can travel: a name ActiveMQ keeps as it is, and no reserved meaning. */
function checkUserHeader(name: string, value: string): void {
  // the broker does not unescape header names: `a:b` would arrive as `a\cb`
  if (name === '' || /[:\\\r\n]/.test(name))
    throw invalid(name, 'cannot travel over STOMP (empty, or : \\ CR LF)')
  if (name === 'reply-to' && DESTINATION.test(value)) return
  if (RESERVED.has(name.toLowerCase()) || JMS.test(name))
    throw invalid(name, 'is reserved by STOMP/ActiveMQ (message-id, priority, expires, JMS*, AMQ_*, …)')
}

/**
 * The SEND frame of `message` to `destination`, or MSGKIT_MESSAGE_TOO_LARGE / MSGKIT_INVALID_ARGUMENT
 * before the wire. `extra`: msgkit headers of a re-sent copy (see requeueHeaders).
 */
export function toFrame(
  destination: string,
  topic: string,
  message: OutgoingMessage,
  limits: { maxMessageBytes: number },
  extra: Headers = {},
): Frame {
  for (const [name, value] of Object.entries(message.headers))
    if (!name.startsWith('msgkit-')) checkUserHeader(name, value)
  const headers: FrameHeaders = {
    ...compactWireHeaders(message, {}),
    ...extra,
    destination,
    persistent: 'true',
  }
  if (message.key !== undefined) headers.JMSXGroupID = message.key
  if (message.delayMs !== undefined && message.delayMs > 0)
    headers.AMQ_SCHEDULED_DELAY = String(Math.ceil(message.delayMs))
  const bytes = message.body.byteLength
  const lines = Object.keys(headers).length + 2 // + receipt and content-length, added by the driver
  let longest: [string, number] = ['', 0]
  for (const [name, value] of Object.entries(headers)) {
    const line = escapedBytes(name) + 1 + escapedBytes(value)
    if (line > longest[1]) longest = [name, line]
  }
  const refusal =
    bytes > limits.maxMessageBytes
      ? `is ${bytes} bytes; at most ${limits.maxMessageBytes} (maxMessageBytes)`
      : lines > MAX_HEADER_LINES
        ? `needs ${lines} header lines; ActiveMQ takes at most ${MAX_HEADER_LINES}`
        : longest[1] > MAX_HEADER_LINE_BYTES
          ? `has a ${longest[1]}-byte header line (${longest[0]}, escaped); ActiveMQ takes at most ${MAX_HEADER_LINE_BYTES}`
          : undefined
  if (refusal)
    throw new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `A message for ActiveMQ topic ${topic} ${refusal}. Nothing was sent.`,
      { details: { topic, bytes, lines, longestHeaderLine: longest[1] } },
    )
  return { headers, body: message.body }
}

/** A delivered frame as core expects it; works for frames from any producer, JMS included. */
export function fromFrame(frame: InboundFrame, topic: string): TransportMessage {
  const raw = frame.headers
  const headers: Headers = {}
  for (const [name, value] of Object.entries(raw))
    if (!BROKER_HEADERS.has(name) && !JMS.test(name)) headers[name] = value
  const own = readWireFields(headers) // msgkit < 0.2 wrote msgkit-timestamp always: read first
  // a copy re-sent by nack(requeue) says which delivery it is; the broker only flags redeliveries
  const attempt = Number(raw[WireHeaders.attempt])
  const counted = Number.isInteger(attempt) && attempt > 1
  const body = frame.body
  const message: TransportMessage = {
    id: own.id ?? raw['message-id'] ?? '',
    topic,
    headers,
    body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    timestamp: own.timestamp ?? (Number(raw.timestamp) || Date.now()),
    redelivered: raw.redelivered === 'true' || counted,
  }
  if (counted) message.attempt = attempt
  if (own.key !== undefined) message.key = own.key
  return message
}

/** msgkit headers of the copy nack(requeue) sends back to the queue (same id, key, time, headers). */
export const requeueHeaders = (message: TransportMessage): Headers => ({
  [WireHeaders.attempt]: String((message.attempt ?? 1) + 1),
  'msgkit-topic': message.topic,
})
