/**
 * msgkit's own headers on the wire. Adapters that cannot carry id / key / timestamp natively
 * put them in these headers with `toWireHeaders` and read them back with `fromWireHeaders`;
 * core strips every `msgkit-*` header before a handler sees the message.
 */
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
  return name.toLowerCase().startsWith(RESERVED_HEADER_PREFIX)
}

/** All headers of an outgoing message, with id / key / timestamp folded in as msgkit-* headers. */
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

/** Byte size of headers as core counts it against `maxHeaderBytes`. */
export function headerBytes(headers: Headers): number {
  let n = 0
  for (const [k, v] of Object.entries(headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v)
  return n
}
