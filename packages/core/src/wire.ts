/**
 * msgkit's own headers on the wire. Adapters put what their broker cannot carry natively, and the
 * receiver cannot infer, into these headers with `compactWireHeaders` and read it back with
 * `readWireFields` (which also reads every older format: `toWireHeaders` wrote id and timestamp
 * always). Core strips every `msgkit-*` header before a handler sees the message.
 */
import { uuidv7Time } from './ids.js'
import type { Headers, OutgoingMessage } from './spi.js'

export const RESERVED_HEADER_PREFIX = 'msgkit-'

export const WireHeaders = {
  id: 'msgkit-id',
  key: 'msgkit-key',
  timestamp: 'msgkit-timestamp',
  contentType: 'msgkit-content-type',
  /** in-process retries already made by a consumer that re-published (reserved) */
  attempt: 'msgkit-attempt',
  deadLetterReason: 'msgkit-dl-reason',
  deadLetterErrorName: 'msgkit-dl-error-name',
  deadLetterErrorMessage: 'msgkit-dl-error-message',
  deadLetterAttempts: 'msgkit-dl-attempts',
  deadLetterTopic: 'msgkit-dl-topic',
  deadLetterGroup: 'msgkit-dl-group',
  deadLetterTime: 'msgkit-dl-time',
  /** the content type a dead letter had before it was marked as raw bytes (decode failures) */
  deadLetterContentType: 'msgkit-dl-original-content-type',
  /** set on a dead letter reduced to fit the broker: what was cut (`body`, `headers`, `body,headers`) */
  deadLetterTruncated: 'msgkit-dl-truncated',
  /** the original body's size in bytes and sha256 (hex), on a reduced dead letter */
  deadLetterOriginalBytes: 'msgkit-dl-original-bytes',
  deadLetterOriginalSha256: 'msgkit-dl-original-sha256',
  /** why the full dead letter could not be published */
  deadLetterReducedBecause: 'msgkit-dl-reduced-because',
} as const

/** True for header names msgkit owns. */
export function isReservedHeader(name: string): boolean {
  // every delivery asks for every header: decide on the first letter before lower-casing anything
  const c = name.charCodeAt(0)
  return (c === 109 || c === 77) && name.slice(0, 7).toLowerCase() === RESERVED_HEADER_PREFIX
}

/**
 * All headers of an outgoing message, with id / key / timestamp always folded in as msgkit-*
 * headers (the format before `compactWireHeaders`; still read by `readWireFields`).
 */
export function toWireHeaders(message: OutgoingMessage): Headers {
  const headers: Headers = { ...message.headers, [WireHeaders.id]: message.id }
  headers[WireHeaders.timestamp] = String(message.timestamp)
  if (message.key !== undefined) headers[WireHeaders.key] = message.key
  return headers
}

/** Reads id / key / timestamp back out of wire headers (undefined when a foreign producer sent it). */
export function fromWireHeaders(headers: Headers): { id?: string; key?: string; timestamp?: number } {
  const out: { id?: string; key?: string; timestamp?: number } = {}
  const id = headers[WireHeaders.id]
  if (id) out.id = id
  const key = headers[WireHeaders.key]
  if (key !== undefined) out.key = key
  const ts = Number(headers[WireHeaders.timestamp])
  if (Number.isFinite(ts) && headers[WireHeaders.timestamp] !== undefined) out.timestamp = ts
  return out
}

/** What a broker carries natively for a message's id, timestamp and key. */
export interface NativeFields {
  /** a message-id field that reaches the consumer unchanged (AMQP `message-id`) */
  id?: boolean
  /** the producer's timestamp: exactly in milliseconds (Kafka's record timestamp) or in whole seconds (AMQP `timestamp`) */
  timestamp?: 'ms' | 'seconds'
  /** a key field (Kafka's record key) */
  key?: boolean
  /** a content-type field (AMQP `content-type`): set it to `contentTypeOf(message)` */
  contentType?: boolean
}

/** A message's content type: `application/json` unless its codec said otherwise. */
export function contentTypeOf(message: OutgoingMessage): string {
  return message.headers[WireHeaders.contentType] ?? message.contentType ?? 'application/json'
}

/**
 * The headers to put on the wire: the message's own, plus msgkit's for what the broker cannot
 * carry natively and the receiver cannot infer. `msgkit-timestamp` is left out when the id is a
 * UUID v7 that encodes the message's exact millisecond (msgkit's default ids do): `readWireFields`
 * reads it back from the id. May return `message.headers` itself: do not mutate the result.
 */
export function compactWireHeaders(message: OutgoingMessage, native: NativeFields): Headers {
  const id = !native.id
  const key = message.key !== undefined && !native.key
  const timestamp = native.timestamp !== 'ms' && uuidv7Time(message.id) !== message.timestamp
  const type = native.contentType && message.headers[WireHeaders.contentType] !== undefined
  if (!id && !key && !timestamp && !type) return message.headers
  const headers: Headers = { ...message.headers }
  if (type) delete headers[WireHeaders.contentType]
  if (id) headers[WireHeaders.id] = message.id
  if (timestamp) headers[WireHeaders.timestamp] = String(message.timestamp)
  if (key) headers[WireHeaders.key] = message.key as string
  return headers
}

/**
 * A received message's id, key and timestamp: msgkit's headers first (older msgkit versions wrote
 * id and timestamp always; foreign producers may set them), then the broker's own fields, then
 * the millisecond a UUID v7 id encodes (checked against a broker timestamp in seconds, if any).
 */
export function readWireFields(
  headers: Headers,
  native: { id?: string; key?: string; timestampMs?: number; timestampSeconds?: number } = {},
): { id?: string; key?: string; timestamp?: number } {
  const out: { id?: string; key?: string; timestamp?: number } = {}
  const id = headers[WireHeaders.id] || native.id
  if (id) out.id = id
  const key = headers[WireHeaders.key] ?? native.key
  if (key !== undefined) out.key = key
  const header = headers[WireHeaders.timestamp]
  const ts = header === undefined ? Number.NaN : Number(header)
  if (Number.isFinite(ts)) out.timestamp = ts
  else if (native.timestampMs !== undefined) out.timestamp = native.timestampMs
  else {
    const seconds = native.timestampSeconds
    const fromId = id ? uuidv7Time(id) : undefined
    if (fromId !== undefined && (seconds === undefined || Math.floor(fromId / 1000) === seconds))
      out.timestamp = fromId
    // AMQP timestamps are seconds by the spec; some producers put milliseconds there
    else if (seconds !== undefined && seconds > 0) out.timestamp = seconds > 1e11 ? seconds : seconds * 1000
  }
  return out
}

/**
 * A header value of any producer as text: strings as they are, bytes as UTF-8, other scalars with
 * `String`, structures (AMQP tables and arrays) as JSON, with bytes inside as text and bigints as
 * decimals. Headers are `Record<string, string>` in msgkit whatever the broker carried.
 */
export function headerText(value: unknown): string {
  if (typeof value === 'string') return value
  if (value === null || value === undefined) return ''
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString()
  if (typeof value !== 'object') return String(value)
  return JSON.stringify(value, (_k, v: unknown) => {
    if ((v as { type?: unknown } | null)?.type === 'Buffer')
      return Buffer.from((v as { data: number[] }).data).toString()
    return typeof v === 'bigint' ? v.toString() : v
  })
}

/** Byte size of headers as core counts it against `maxHeaderBytes`. */
export function headerBytes(headers: Headers): number {
  let n = 0
  for (const k in headers) n += Buffer.byteLength(k) + Buffer.byteLength(headers[k] as string)
  return n
}

/**
 * An upper bound of `headerBytes` that costs no encoding: a UTF-16 code unit is at most 3 UTF-8
 * bytes. When the bound fits a limit, the exact size does too.
 */
export function headerBytesBound(headers: Headers): number {
  let n = 0
  for (const k in headers) n += k.length + (headers[k] as string).length
  return 3 * n
}
