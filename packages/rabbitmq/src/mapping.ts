/** msgkit messages ↔ AMQP messages: properties, headers, the broker's own headers, the header limit. */
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
 * What really limits headers: amqplib encodes the table into a 65,536-byte buffer (RabbitMQ takes a
 * content header up to frame_max, 128 KiB). `maxHeaderBytes` counts name + value bytes of every
 * header, msgkit's own included, as core does: 60 KiB leaves the 6 bytes per header of the
 * encoding for up to 682 headers; beyond that `toWire` refuses with the same error code.
 */
export const AMQPLIB_TABLE_BYTES = 65_536
export const MAX_HEADER_BYTES = 60 * 1024

/** Headers RabbitMQ adds (dead-lettering, quorum delivery count, federation, shovels): never passed on. */
const BROKER_HEADER =
  /^x-(death|delivery-count|received-from|shovelled|shovelled-timestamp|original-exchange|original-routing-key)$|^x-(first-death-|last-death-|opt-)/

/** One message as amqplib publishes it, prepared once so that retries reuse it. */
export interface Wire {
  id: string
  content: Buffer
  options: Options.Publish
  /** the delay bucket (ms) whose wait queue takes it; 0 = straight to the topic's exchange */
  bucket: number
  /** set when the send wants unroutable ids: RabbitMQ's basic.return ids are collected here */
  returned?: string[]
  /** confirmed in a flush that failed as a whole: not published again when retried alone */
  confirmed?: boolean
}

/** Size of a header table as amqplib encodes it: 4, then 6 + name + value bytes per header. */
export const encodedHeaderBytes = (headers: Headers): number =>
  Object.entries(headers).reduce((n, [k, v]) => n + 6 + Buffer.byteLength(k) + Buffer.byteLength(v), 4)

/** AMQP properties: persistent, message-id, timestamp, content-type natively; everything in headers too. */
export function toWire(topic: string, message: OutgoingMessage, bucket: number, returned?: string[]): Wire {
  const headers = toWireHeaders(message)
  const long = Object.keys(headers).find((name) => Buffer.byteLength(name) > 255)
  if (long !== undefined)
    throw new MsgkitError(
      ErrorCodes.INVALID_ARGUMENT,
      `Header name ${JSON.stringify(`${long.slice(0, 40)}…`)} is longer than AMQP's 255 bytes. Nothing was sent.`,
    )
  const encoded = encodedHeaderBytes(headers)
  if (encoded > AMQPLIB_TABLE_BYTES)
    throw new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `Headers of a message for topic ${topic} encode to ${encoded} bytes (6 bytes per header on top of names and values); RabbitMQ through amqplib takes at most ${AMQPLIB_TABLE_BYTES}. Nothing was sent.`,
      { details: { topic, encodedHeaderBytes: encoded, max: AMQPLIB_TABLE_BYTES } },
    )
  const contentType = headers[WireHeaders.contentType]
  const options: Options.Publish = {
    persistent: true,
    messageId: message.id,
    timestamp: Math.floor(message.timestamp / 1000), // AMQP: seconds; msgkit-timestamp has the ms
    headers,
    ...(contentType === undefined ? {} : { contentType }),
    // RabbitMQ returns what reached no queue (basic.return, before the confirm)
    ...(returned ? { mandatory: true } : {}),
  }
  const { body } = message
  const content = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return { id: message.id, content, options, bucket, ...(returned ? { returned } : {}) }
}

/** Header values of foreign producers can be any AMQP type: text as is, bytes as UTF-8, tables as JSON. */
function headerString(value: unknown): string {
  if (typeof value === 'string') return value
  if (value === null || value === undefined) return ''
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  if (typeof value !== 'object') return String(value)
  return JSON.stringify(value, (_k, v: unknown) => {
    if ((v as { type?: unknown } | null)?.type === 'Buffer')
      return Buffer.from((v as { data: number[] }).data).toString()
    return typeof v === 'bigint' ? v.toString() : v
  })
}

/** One delivery as msgkit sees it; `counts`: the queue keeps x-delivery-count (absent = first delivery). */
export function toTransportMessage(raw: ConsumeMessage, topic: string, counts: boolean): TransportMessage {
  const props = raw.properties
  const headers: Headers = {}
  for (const [name, value] of Object.entries((props.headers ?? {}) as Record<string, unknown>))
    if (!BROKER_HEADER.test(name)) headers[name] = headerString(value)
  if (headers[WireHeaders.contentType] === undefined && typeof props.contentType === 'string')
    headers[WireHeaders.contentType] = props.contentType
  const wire = fromWireHeaders(headers)
  // AMQP timestamps are seconds by the spec; some producers put milliseconds there
  const seconds = typeof props.timestamp === 'number' && props.timestamp > 0 ? props.timestamp : undefined
  const message: TransportMessage = {
    // a foreign message without message-id gets a fresh id per delivery: idempotency cannot spot its redeliveries
    id: wire.id ?? (props.messageId || uuidv7()),
    topic,
    headers,
    body: raw.content,
    timestamp: wire.timestamp ?? (seconds && (seconds > 1e11 ? seconds : seconds * 1000)) ?? Date.now(),
    redelivered: raw.fields.redelivered,
    meta: { routingKey: raw.fields.routingKey, deliveryTag: raw.fields.deliveryTag },
  }
  if (wire.key !== undefined) message.key = wire.key
  const count = Number(props.headers?.['x-delivery-count'])
  if (Number.isInteger(count) && count >= 0) message.attempt = count + 1
  else if (counts) message.attempt = 1
  return message
}
