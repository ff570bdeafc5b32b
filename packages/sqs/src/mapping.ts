/**
 * msgkit messages ↔ SQS/SNS messages: body as text or base64, headers as ≤ 10 attributes (the rest
 * packed into one), FIFO ids, size as AWS counts it. Conventions for foreign clients: docs/brokers/sqs.md.
 */
import { createHash } from 'node:crypto'
import type { Message } from '@aws-sdk/client-sqs'
import type { Headers, OutgoingMessage, TransportMessage } from '@msgkit/core'
import { compactWireHeaders, ErrorCodes, MsgkitError, readWireFields } from '@msgkit/core'

/** msgkit's own attributes of this mapping (for foreign consumers too). */
export const Attributes = {
  /** `base64`: the body is base64 of the bytes; `empty`: the body is empty (AWS refuses empty bodies) */
  encoding: 'msgkit-body-encoding',
  /** a JSON object of the headers that are not attributes of their own */
  packed: 'msgkit-headers',
  /** fan-out on: due this many ms after SentTimestamp (SNS has no DelaySeconds: the consumer waits) */
  delay: 'msgkit-delay-ms',
} as const

/** SQS takes 10 attributes (SNS drops raw deliveries with more); sizes are body + attributes */
export const MAX_ATTRIBUTES = 10
export const SQS_MAX_BYTES = 1_048_576
export const SNS_MAX_BYTES = 262_144
/** kept for attributes (names, types, values, packing); headers as core counts them get most of it */
export const ATTRIBUTE_BUDGET = 16_384
export const MAX_HEADER_BYTES = 12_288
/** The largest body that fits as base64 next to a full attribute budget under `limit`. */
export const maxBodyBytes = (limit: number): number => Math.floor((limit - ATTRIBUTE_BUDGET) / 4) * 3

/** What AWS takes in bodies and values (XML characters): no U+0000–U+0008, lone surrogates, U+FFFE/F */
const XML_SAFE = /^[\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u
const NAME = /^(?!(aws|amazon)\.)(?!.*\.\.)[A-Za-z0-9_-](?:[A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-])?$/i
const allowed = (name: string, value: string): boolean =>
  NAME.test(name) && value !== '' && XML_SAFE.test(value)
/** MessageGroupId / MessageDeduplicationId: ≤ 128 printable ASCII characters, else a digest */
const awsToken = (text: string): string =>
  /^[\x21-\x7e]{1,128}$/.test(text) ? text : `h-${createHash('sha256').update(text).digest('hex')}`
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export type StringAttribute = { DataType: 'String'; StringValue: string }

/** One message as SendMessageBatch / PublishBatch take it, prepared once so that retries reuse it. */
export interface Wire {
  body: string
  attributes: Record<string, StringAttribute>
  groupId?: string
  deduplicationId?: string
  delaySeconds?: number
  /** body + every attribute's name, data type and value, in UTF-8 bytes (as AWS counts) */
  bytes: number
}

function encodeBody(body: Uint8Array): { body: string; encoding?: 'base64' | 'empty' } {
  if (body.byteLength === 0) return { body: '-', encoding: 'empty' }
  try {
    const text = strictUtf8.decode(body)
    if (XML_SAFE.test(text)) return { body: text }
  } catch {} // not UTF-8
  const base64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64')
  return { body: base64, encoding: 'base64' }
}

/** msgkit's own that a foreign consumer needs first, then user headers, then the rest of msgkit's. */
const FIRST = /^msgkit-(id|body-encoding|content-type|key|timestamp|delay-ms)$/
const rank = (name: string): number => (FIRST.test(name) ? 0 : name.startsWith('msgkit-') ? 2 : 1)

/** Headers → at most 10 String attributes; the rest, and what AWS would refuse, in one packed JSON. */
export function toAttributes(headers: Headers): Record<string, StringAttribute> {
  const names = Object.keys(headers).sort((a, b) => rank(a) - rank(b))
  const ok = names.filter((n) => allowed(n, headers[n] as string))
  const alone = ok.length === names.length && names.length <= MAX_ATTRIBUTES
  const out: Record<string, StringAttribute> = {}
  for (const n of alone ? ok : ok.slice(0, MAX_ATTRIBUTES - 1))
    out[n] = { DataType: 'String', StringValue: headers[n] as string }
  if (alone) return out
  const rest = Object.fromEntries(names.filter((n) => !(n in out)).map((n) => [n, headers[n]]))
  // JSON escapes control characters and lone surrogates; U+FFFE/U+FFFF it leaves, AWS refuses them
  const packed = JSON.stringify(rest).replace(/[\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`)
  out[Attributes.packed] = { DataType: 'String', StringValue: packed }
  return out
}

/** Bytes as AWS counts them: body + each attribute's name, data type and value. */
export function awsBytes(body: string, attributes: Record<string, StringAttribute>): number {
  let n = Buffer.byteLength(body)
  for (const [name, a] of Object.entries(attributes))
    n += Buffer.byteLength(name) + a.DataType.length + Buffer.byteLength(a.StringValue)
  return n
}

/** One outgoing message in SQS/SNS form; throws MSGKIT_MESSAGE_TOO_LARGE when AWS would refuse its size. */
export function toWire(
  topic: string,
  message: OutgoingMessage,
  options: { fifo: boolean; fanout: boolean; maxBytes: number },
): Wire {
  const { body, encoding } = encodeBody(message.body)
  const headers = { ...compactWireHeaders(message, {}) } // SQS/SNS carry no producer id, key or time
  if (encoding) headers[Attributes.encoding] = encoding
  const delayMs = message.delayMs ?? 0
  if (delayMs > 0 && options.fanout) headers[Attributes.delay] = String(delayMs)
  const attributes = toAttributes(headers)
  const bytes = awsBytes(body, attributes)
  if (bytes > options.maxBytes)
    throw new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `A message for topic ${topic} is ${bytes} bytes as AWS counts it (body${encoding === 'base64' ? ' as base64' : ''} + attribute names, types and values); ${options.fanout ? 'SNS' : 'SQS'} takes at most ${options.maxBytes}. Nothing was sent: store the payload elsewhere (S3) and send a reference.`,
      { details: { topic, bytes, max: options.maxBytes } },
    )
  const wire: Wire = { body, attributes, bytes }
  if (options.fifo) {
    // no key: its own id, so that unkeyed messages are not serialised behind each other
    wire.groupId = awsToken(message.key ?? message.id)
    wire.deduplicationId = awsToken(message.id)
  } else if (delayMs > 0 && !options.fanout) wire.delaySeconds = Math.ceil(delayMs / 1000)
  return wire
}

/** ms until a fan-out delayed message is due (≤ 0: due). */
export function dueInMs(raw: Message, now = Date.now()): number {
  const delay = Number(raw.MessageAttributes?.[Attributes.delay]?.StringValue)
  return delay ? Number(raw.Attributes?.SentTimestamp) + delay - now : 0
}

/** One received message as msgkit sees it; foreign ones (no msgkit-id) get SQS's id and time. */
export function toTransportMessage(raw: Message, topic: string): TransportMessage {
  let headers: Headers = {}
  for (const [name, a] of Object.entries(raw.MessageAttributes ?? {}))
    headers[name] = a.StringValue ?? Buffer.from(a.BinaryValue ?? []).toString('base64')
  try {
    const packed = JSON.parse(headers[Attributes.packed] ?? 'null') as unknown
    if (packed && typeof packed === 'object') headers = { ...headers, ...(packed as Headers) }
  } catch {} // a foreign attribute of that name
  const {
    [Attributes.encoding]: encoding,
    [Attributes.delay]: delay,
    [Attributes.packed]: _,
    ...rest
  } = headers
  const text = raw.Body ?? ''
  const body = Buffer.from(encoding === 'empty' ? '' : text, encoding === 'base64' ? 'base64' : 'utf8')
  const system = raw.Attributes ?? {}
  const sent = Number(system.SentTimestamp)
  let attempt = Math.max(1, Number(system.ApproximateReceiveCount) || 1)
  // a fan-out delayed message received early was hidden until due: that receive is no attempt
  if (delay && Number(system.ApproximateFirstReceiveTimestamp) < sent + Number(delay))
    attempt = Math.max(1, attempt - 1)
  const wire = readWireFields(rest) // msgkit < 0.2 wrote msgkit-timestamp always: read first
  const message: TransportMessage = {
    id: wire.id ?? raw.MessageId ?? '',
    topic,
    headers: rest,
    body,
    timestamp: wire.timestamp ?? (sent || Date.now()),
    attempt,
    redelivered: attempt > 1,
  }
  // a foreign FIFO producer's MessageGroupId is its key; msgkit's messages carry theirs in msgkit-key
  const key = wire.id === undefined ? (wire.key ?? system.MessageGroupId) : wire.key
  if (key !== undefined) message.key = key
  return message
}
