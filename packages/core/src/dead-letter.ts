/**
 * Dead-lettering: the envelope (reason, error, attempts, source topic and group, time) around the
 * original message, sent to `<topic>.<group>.dlq`. A message always leaves its source: when its
 * dead letter cannot be published as it is (too large with the envelope, or refused), a reduced copy
 * goes instead (envelope, original size and sha256, as much of the body and headers as fits,
 * marked as truncated); only when that fails too is it dropped, loudly (a `dropped` event, an
 * error log line). Only a broker that is unreachable until the deadline sends it back to retry.
 */
import { createHash } from 'node:crypto'
import type { DeadLetterInfo } from './api.js'
import { ContentTypes } from './codec.js'
import { ErrorCodes, isMsgkitError } from './errors.js'
import { tooLarge, wireHeaderBytes } from './limits.js'
import { DEAD_LETTER_GROUP } from './names.js'
import type { Headers, OutgoingMessage, Transport, TransportMessage } from './spi.js'
import { isReservedHeader, WireHeaders } from './wire.js'

/** A reduced dead letter carries at most this much of the original body. */
const REDUCED_BODY_MAX = 1024 * 1024
/** …and at most this much of any one original header value. */
const REDUCED_HEADER_VALUE_MAX = 4096

/** Reads the dead-letter envelope out of msgkit headers, if present. */
export function readDeadLetter(headers: Headers): DeadLetterInfo | undefined {
  const reason = headers[WireHeaders.deadLetterReason]
  if (reason === undefined) return undefined
  const info: DeadLetterInfo = {
    reason,
    errorName: headers[WireHeaders.deadLetterErrorName] ?? '',
    errorMessage: headers[WireHeaders.deadLetterErrorMessage] ?? '',
    attempts: Number(headers[WireHeaders.deadLetterAttempts] ?? 0),
    topic: headers[WireHeaders.deadLetterTopic] ?? '',
    group: headers[WireHeaders.deadLetterGroup] ?? '',
    time: Number(headers[WireHeaders.deadLetterTime] ?? 0),
  }
  const truncated = headers[WireHeaders.deadLetterTruncated]
  if (truncated !== undefined) {
    info.truncated = {
      parts: truncated.split(',').filter(Boolean),
      originalBytes: Number(headers[WireHeaders.deadLetterOriginalBytes] ?? 0),
      originalSha256: headers[WireHeaders.deadLetterOriginalSha256] ?? '',
      because: headers[WireHeaders.deadLetterReducedBecause] ?? '',
    }
  }
  return info
}

/** Header values must stay short and single-line on every broker. */
export function headerSafe(text: string, max = 1024): string {
  const flat = text.replace(/[\r\n]+/g, ' ')
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** The longest prefix of `text` that is at most `bytes` UTF-8 bytes (never splits a character). */
function utf8Prefix(text: string, bytes: number): string {
  if (Buffer.byteLength(text) <= bytes) return text
  const buf = Buffer.from(text).subarray(0, Math.max(0, bytes))
  // drop a trailing partial character
  return buf.toString('utf8').replace(/\uFFFD$/, '')
}

export type DeadLetterOutcome =
  /** the full dead letter was published */
  | 'sent'
  /** a reduced dead letter was published */
  | 'reduced'
  /** not even a reduced one could be published: the message is gone (reported) */
  | 'dropped'
  /** the broker was unreachable or the publish timed out: give the message back, it will be retried */
  | 'retry'

export interface DeadLetterRequest {
  message: TransportMessage
  topic: string
  group: string
  reason: string
  error: unknown
  attempts: number
}

export interface DeadLetterer {
  provision(topic: string): Promise<void>
  send(request: DeadLetterRequest): Promise<{ outcome: DeadLetterOutcome; error?: unknown }>
}

/** A send error that a later try may overcome (the broker away), as opposed to a refusal of this message. */
function worthRetrying(error: unknown): boolean {
  if (!isMsgkitError(error)) return true
  if (error.code === ErrorCodes.MESSAGE_TOO_LARGE || error.code === ErrorCodes.INVALID_ARGUMENT) return false
  if (error.code === ErrorCodes.CLOSED) return true
  return error.retriable
}

/** The full envelope: the original headers, key and body plus msgkit's dead-letter headers. */
function envelope(request: DeadLetterRequest): OutgoingMessage {
  const m = request.message
  const err = request.error instanceof Error ? request.error : new Error(String(request.error))
  const headers: Headers = { ...m.headers }
  headers[WireHeaders.deadLetterReason] = request.reason
  headers[WireHeaders.deadLetterErrorName] = headerSafe(err.name || 'Error', 200)
  headers[WireHeaders.deadLetterErrorMessage] = headerSafe(err.message)
  headers[WireHeaders.deadLetterAttempts] = String(request.attempts)
  headers[WireHeaders.deadLetterTopic] = m.topic
  headers[WireHeaders.deadLetterGroup] = request.group
  headers[WireHeaders.deadLetterTime] = String(Date.now())
  if (request.reason === 'decode-failed') {
    // readers of the dead-letter topic get the undecodable body as raw bytes instead of failing again
    const original = headers[WireHeaders.contentType]
    if (original !== undefined) headers[WireHeaders.deadLetterContentType] = original
    headers[WireHeaders.contentType] = ContentTypes.bytes
  }
  const out: OutgoingMessage = { id: m.id, headers, body: m.body, timestamp: m.timestamp }
  if (m.key !== undefined) out.key = m.key
  return out
}

/** The reduced dead letter: envelope and markers first, then what fits of the headers and body. */
export function reduceDeadLetter(
  full: OutgoingMessage,
  limits: { maxMessageBytes: number; maxHeaderBytes: number },
  because: string,
): OutgoingMessage {
  const original = full.body
  const headers: Headers = {}
  const userHeaders: Array<[string, string]> = []
  for (const name in full.headers) {
    const value = full.headers[name] as string
    if (isReservedHeader(name)) headers[name] = value
    else userHeaders.push([name, value])
  }
  const parts: string[] = []
  const bodyMax = Math.min(limits.maxMessageBytes, REDUCED_BODY_MAX)
  if (original.byteLength > bodyMax) parts.push('body')
  const contentType = headers[WireHeaders.contentType]
  if (contentType !== undefined && contentType !== ContentTypes.bytes)
    headers[WireHeaders.deadLetterContentType] = contentType
  headers[WireHeaders.contentType] = ContentTypes.bytes
  headers[WireHeaders.deadLetterOriginalBytes] = String(original.byteLength)
  headers[WireHeaders.deadLetterOriginalSha256] = createHash('sha256').update(original).digest('hex')
  headers[WireHeaders.deadLetterReducedBecause] = headerSafe(because, 300)
  headers[WireHeaders.deadLetterTruncated] = 'body,headers' // longest value while budgeting
  const reduced: OutgoingMessage = {
    id: full.id,
    headers,
    body: original.subarray(0, bodyMax),
    timestamp: full.timestamp,
  }
  if (full.key !== undefined && Buffer.byteLength(full.key) <= REDUCED_HEADER_VALUE_MAX)
    reduced.key = full.key
  let budget = limits.maxHeaderBytes - wireHeaderBytes(reduced)
  let cut = false
  for (const [name, value] of userHeaders) {
    const nameBytes = Buffer.byteLength(name)
    const valueBytes = Buffer.byteLength(value)
    if (nameBytes + valueBytes <= budget && valueBytes <= REDUCED_HEADER_VALUE_MAX) {
      headers[name] = value
      budget -= nameBytes + valueBytes
      continue
    }
    cut = true
    const room = Math.min(budget - nameBytes, REDUCED_HEADER_VALUE_MAX)
    if (room > 0) {
      const kept = utf8Prefix(value, room)
      headers[name] = kept
      budget -= nameBytes + Buffer.byteLength(kept)
    }
  }
  if (full.key !== undefined && reduced.key === undefined) cut = true
  if (cut) parts.push('headers')
  headers[WireHeaders.deadLetterTruncated] = parts.length > 0 ? parts.join(',') : 'none'
  return reduced
}

/** Creates the dead-letter sender of one subscription. */
export function createDeadLetterer(deps: {
  transport: Transport
  /** the dead-letter topic of a source topic */
  topicFor(source: string): string
  deadline(): number
}): DeadLetterer {
  const { transport } = deps
  const provisioned = new Set<string>()
  const provision = async (topic: string): Promise<void> => {
    if (provisioned.has(topic)) return
    await transport.provision(topic, DEAD_LETTER_GROUP)
    provisioned.add(topic)
  }
  const publish = async (topic: string, message: OutgoingMessage): Promise<unknown> => {
    const refused = tooLarge(transport.capabilities, transport.name, topic, message)
    if (refused) return refused
    try {
      await transport.send(topic, [message], { deadline: deps.deadline() })
      return undefined
    } catch (error) {
      return error ?? new Error('send failed')
    }
  }
  return {
    provision,
    async send(request) {
      const dlTopic = deps.topicFor(request.message.topic)
      try {
        await provision(dlTopic)
      } catch (error) {
        return { outcome: 'retry', error }
      }
      const full = envelope(request)
      const first = await publish(dlTopic, full)
      if (first === undefined) return { outcome: 'sent' }
      if (worthRetrying(first)) return { outcome: 'retry', error: first }
      const because = first instanceof Error ? first.message : String(first)
      const reduced = reduceDeadLetter(full, transport.capabilities, because)
      const second = await publish(dlTopic, reduced)
      if (second === undefined) return { outcome: 'reduced', error: first }
      if (worthRetrying(second)) return { outcome: 'retry', error: second }
      return { outcome: 'dropped', error: second }
    },
  }
}
