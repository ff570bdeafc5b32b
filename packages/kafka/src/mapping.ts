/** msgkit messages ↔ Kafka records: native key and timestamp, the msgkit id in a header. */
import { type Headers, type OutgoingMessage, type TransportMessage, WireHeaders } from '@msgkit/core'
import type { IHeaders, KafkaMessage, Message } from 'kafkajs'

/** Bytes of the record-batch header (magic v2). */
export const RECORD_BATCH_HEADER_BYTES = 61

/** Upper bound of a record's bytes inside a record batch, without the batch header. */
export function recordBytes(
  key: Buffer | null,
  value: Buffer,
  headers: Readonly<Record<string, string>>,
): number {
  // varints at their widest: length 5, attributes 1, timestamp delta 10, offset delta 5, key length 5,
  // value length 5, header count 5; per header two length varints of 5
  let n = 36 + (key?.byteLength ?? 0) + value.byteLength
  for (const name in headers) n += 10 + Buffer.byteLength(name) + Buffer.byteLength(headers[name] as string)
  return n
}

/** A record ready for kafkajs plus its size bound. */
export interface EncodedRecord {
  message: Message
  bytes: number
}

/** The wire form of an outgoing msgkit message. */
export function encodeRecord(message: OutgoingMessage): EncodedRecord {
  const headers: Record<string, string> = { ...message.headers, [WireHeaders.id]: message.id }
  const key = message.key === undefined ? null : Buffer.from(message.key, 'utf8')
  const value = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength)
  return {
    message: { key, value, headers, timestamp: String(message.timestamp) },
    bytes: recordBytes(key, value, headers),
  }
}

function headerText(value: IHeaders[string]): string | undefined {
  if (value === undefined || value === null) return undefined
  // a foreign producer may repeat a header: the last one wins (Java's Headers.lastHeader)
  const last = Array.isArray(value) ? value[value.length - 1] : value
  if (last === undefined || last === null) return ''
  return typeof last === 'string' ? last : last.toString('utf8')
}

/** A consumed record as core expects it. Works for records from any producer. */
export function decodeRecord(topic: string, partition: number, record: KafkaMessage): TransportMessage {
  const headers: Headers = {}
  for (const [name, value] of Object.entries(record.headers ?? {})) {
    const text = headerText(value)
    if (text !== undefined) headers[name] = text
  }
  const value = record.value
  const message: TransportMessage = {
    id: headers[WireHeaders.id] || `${topic}-${partition}-${record.offset}`,
    topic,
    headers,
    body: value ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(0),
    timestamp: Number(record.timestamp),
    redelivered: false,
  }
  if (record.key !== null && record.key !== undefined) message.key = record.key.toString('utf8')
  return message
}
