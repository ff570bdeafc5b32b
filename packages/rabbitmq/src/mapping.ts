/** msgkit messages ↔ AMQP messages: properties, headers, the broker's own headers, the header limit. */
import {
  compactWireHeaders,
  contentTypeOf,
  ErrorCodes,
  type Headers,
  headerText,
  MsgkitError,
  type OutgoingMessage,
  readWireFields,
  type TransportMessage,
  uuidv7,
  WireHeaders,
} from '@msgkit/core'
import type { Message, Options } from 'amqplib'

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
  /** sendToGroup: straight into this group queue (default exchange), no other group sees it */
  queue?: string
  /** set when the send wants unroutable ids: RabbitMQ's basic.return ids are collected here */
  returned?: string[]
}

/** Size of a header table as amqplib encodes it: 4, then 6 + name + value bytes per header. */
export const encodedHeaderBytes = (headers: Headers): number =>
  Object.entries(headers).reduce((n, [k, v]) => n + 6 + Buffer.byteLength(k) + Buffer.byteLength(v), 4)

/**
 * AMQP properties carry id, timestamp (seconds; the id's UUID v7 has the millisecond) and content
 * type; the header table, only what has no property (user headers, key; the ms of a custom id), and
 * no table at all when that is nothing: amqplib's table encoding is most of its cost per message.
 */
export function toWire(topic: string, message: OutgoingMessage, bucket: number, returned?: string[]): Wire {
  const headers = compactWireHeaders(message, { id: true, timestamp: 'seconds', contentType: true })
  let table = false
  for (const name in headers) {
    table = true
    // UTF-8 takes at most 3 bytes per UTF-16 unit: count bytes only for names that could be too long
    if (name.length > 85 && Buffer.byteLength(name) > 255)
      throw new MsgkitError(
        ErrorCodes.INVALID_ARGUMENT,
        `Header name ${JSON.stringify(`${name.slice(0, 40)}…`)} is longer than AMQP's 255 bytes. Nothing was sent.`,
      )
  }
  if (table) {
    const encoded = encodedHeaderBytes(headers)
    if (encoded > AMQPLIB_TABLE_BYTES)
      throw new MsgkitError(
        ErrorCodes.MESSAGE_TOO_LARGE,
        `Headers of a message for topic ${topic} encode to ${encoded} bytes (6 bytes per header on top of names and values); RabbitMQ through amqplib takes at most ${AMQPLIB_TABLE_BYTES}. Nothing was sent.`,
        { details: { topic, encodedHeaderBytes: encoded, max: AMQPLIB_TABLE_BYTES } },
      )
  }
  // built field by field: this runs for every message published
  const options: Options.Publish = {
    persistent: true,
    messageId: message.id,
    timestamp: Math.floor(message.timestamp / 1000), // AMQP: seconds
    contentType: contentTypeOf(message),
  }
  if (table) options.headers = headers
  // RabbitMQ returns what reached no queue (basic.return, before the confirm)
  if (returned) options.mandatory = true
  const content = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength)
  const wire: Wire = { id: message.id, content, options, bucket }
  if (returned) wire.returned = returned
  return wire
}

/** One delivery as msgkit sees it; `counts`: the queue keeps x-delivery-count (absent = first delivery). */
export function toTransportMessage(raw: Message, topic: string, counts: boolean): TransportMessage {
  const props = raw.properties
  const headers: Headers = {}
  for (const [name, value] of Object.entries((props.headers ?? {}) as Record<string, unknown>))
    if (!BROKER_HEADER.test(name)) headers[name] = headerText(value)
  if (headers[WireHeaders.contentType] === undefined && typeof props.contentType === 'string')
    headers[WireHeaders.contentType] = props.contentType
  // msgkit before 0.2 wrote msgkit-id / -timestamp / -content-type headers too: they are read first
  const native = { id: props.messageId || undefined, timestampSeconds: props.timestamp }
  const wire = readWireFields(headers, native)
  const message: TransportMessage = {
    // a foreign message without message-id gets a fresh id per delivery: idempotency cannot spot its redeliveries
    id: wire.id ?? uuidv7(),
    topic,
    headers,
    body: raw.content,
    timestamp: wire.timestamp ?? Date.now(),
    redelivered: raw.fields.redelivered,
    meta: { routingKey: raw.fields.routingKey, deliveryTag: raw.fields.deliveryTag },
  }
  if (wire.key !== undefined) message.key = wire.key
  const count = Number(props.headers?.['x-delivery-count'])
  if (Number.isInteger(count) && count >= 0) message.attempt = count + 1
  else if (counts) message.attempt = 1
  return message
}
