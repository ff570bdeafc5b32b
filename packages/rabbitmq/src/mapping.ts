/** msgkit messages ↔ AMQP messages: properties, headers, the broker's own headers. */
import {
  ErrorCodes,
  fromWireHeaders,
  type Headers,
  MsgkitError,
  type OutgoingMessage,
  type TransportMessage,
  toWireHeaders,
  uuidv7,
  WireHeaders,
} from '@msgkit/core'
import type { ConsumeMessage, Options } from 'amqplib'

/**
 * amqplib encodes the header table into a 64 KiB scratch buffer and throws past it (and a
 * content-header frame must fit the negotiated frame_max, 128 KiB by default). Leave room for
 * the other properties.
 */
export const MAX_ENCODED_HEADER_BYTES = 60 * 1024

/** Headers RabbitMQ adds (dead-lettering, quorum delivery count, federation, shovels). */
const BROKER_HEADERS = new Set([
  'x-death',
  'x-delivery-count',
  'x-received-from',
  'x-shovelled',
  'x-shovelled-timestamp',
  'x-original-exchange',
  'x-original-routing-key',
])
const BROKER_HEADER_PREFIXES = ['x-first-death-', 'x-last-death-', 'x-opt-']

function isBrokerHeader(name: string): boolean {
  return BROKER_HEADERS.has(name) || BROKER_HEADER_PREFIXES.some((p) => name.startsWith(p))
}

/** What amqplib needs to publish one message, prepared once so that retries reuse it. */
export interface PreparedMessage {
  id: string
  content: Buffer
  options: Options.Publish
}

/**
 * Size of the header table as encoded on the wire (name, type tag, length, value per entry);
 * throws for a name longer than AMQP's 255 bytes.
 */
function encodedHeaderBytes(headers: Headers): number {
  let n = 4
  for (const [k, v] of Object.entries(headers)) {
    const nameBytes = Buffer.byteLength(k)
    if (nameBytes > 255) {
      throw new MsgkitError(
        ErrorCodes.INVALID_ARGUMENT,
        `Header name ${JSON.stringify(`${k.slice(0, 40)}…`)} is longer than AMQP's 255 bytes. Nothing was sent.`,
      )
    }
    n += 1 + nameBytes + 1 + 4 + Buffer.byteLength(v)
  }
  return n
}

/** Builds AMQP properties: persistent, message-id, timestamp, content-type natively; everything in headers too. */
export function prepareMessage(
  topic: string,
  message: OutgoingMessage,
  maxMessageBytes: number,
): PreparedMessage {
  if (message.body.byteLength > maxMessageBytes) {
    throw new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `Message for topic ${topic} is ${message.body.byteLength} bytes; this RabbitMQ transport takes at most ${maxMessageBytes} (maxMessageBytes). Nothing was sent.`,
      { details: { topic, bytes: message.body.byteLength, max: maxMessageBytes } },
    )
  }
  const headers = toWireHeaders(message)
  const encoded = encodedHeaderBytes(headers)
  if (encoded > MAX_ENCODED_HEADER_BYTES) {
    throw new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `Headers of a message for topic ${topic} encode to ${encoded} bytes; RabbitMQ (amqplib) takes at most ${MAX_ENCODED_HEADER_BYTES}. Nothing was sent.`,
      { details: { topic, encodedHeaderBytes: encoded, max: MAX_ENCODED_HEADER_BYTES } },
    )
  }
  const options: Options.Publish = {
    persistent: true,
    messageId: message.id,
    // AMQP timestamps are whole seconds; msgkit's millisecond one travels in msgkit-timestamp
    timestamp: Math.floor(message.timestamp / 1000),
    headers,
  }
  const contentType = headers[WireHeaders.contentType]
  if (contentType !== undefined) options.contentType = contentType
  const body = message.body
  const content = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return { id: message.id, content, options }
}

/** Header values from foreign producers can be any AMQP field type; user headers are strings. */
function headerString(value: unknown): string {
  if (typeof value === 'string') return value
  if (value === null || value === undefined) return ''
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  if (typeof value === 'object') {
    return JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer') {
        return Buffer.from((v as { data: number[] }).data).toString('utf8')
      }
      return typeof v === 'bigint' ? v.toString() : v
    })
  }
  return String(value)
}

/** AMQP timestamps are seconds by the spec; some producers put milliseconds there. */
function amqpTimestampMs(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return undefined
  return value > 1e11 ? value : value * 1000
}

/**
 * One delivery as msgkit sees it. `countsDeliveries` = the queue keeps `x-delivery-count`
 * (quorum): then its absence means the first delivery.
 */
export function toTransportMessage(
  raw: ConsumeMessage,
  topic: string,
  countsDeliveries: boolean,
): TransportMessage {
  const props = raw.properties
  const headers: Headers = {}
  let deliveryCount: number | undefined
  for (const [name, value] of Object.entries((props.headers ?? {}) as Record<string, unknown>)) {
    if (name === 'x-delivery-count') {
      const n = Number(value)
      if (Number.isInteger(n) && n >= 0) deliveryCount = n
    }
    if (!isBrokerHeader(name)) headers[name] = headerString(value)
  }
  if (headers[WireHeaders.contentType] === undefined && typeof props.contentType === 'string') {
    headers[WireHeaders.contentType] = props.contentType
  }
  const wire = fromWireHeaders(headers)
  const messageId =
    typeof props.messageId === 'string' && props.messageId !== '' ? props.messageId : undefined
  const message: TransportMessage = {
    // a foreign message without message-id gets a fresh id per delivery: idempotency cannot spot its redeliveries
    id: wire.id ?? messageId ?? uuidv7(),
    topic,
    headers,
    body: raw.content,
    timestamp: wire.timestamp ?? amqpTimestampMs(props.timestamp) ?? Date.now(),
    redelivered: raw.fields.redelivered,
  }
  if (wire.key !== undefined) message.key = wire.key
  if (deliveryCount !== undefined) message.attempt = deliveryCount + 1
  else if (countsDeliveries) message.attempt = 1
  return message
}
