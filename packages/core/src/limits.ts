/**
 * The size limits of a transport, checked the same way on the publish path and on the dead-letter
 * path: the body against `maxMessageBytes`, and the headers as they will travel (user headers,
 * msgkit's own, the id / key / timestamp an adapter may fold into headers) against `maxHeaderBytes`.
 */
import { ErrorCodes, MsgkitError } from './errors.js'
import type { Capabilities, OutgoingMessage } from './spi.js'
import { headerBytes, headerBytesBound, WireHeaders } from './wire.js'

// msgkit-id + msgkit-timestamp names and a 13-digit timestamp
const WIRE_ID_OVERHEAD = WireHeaders.id.length + WireHeaders.timestamp.length + 13

/** Header bytes of a message as core counts them against `maxHeaderBytes`. */
export function wireHeaderBytes(message: OutgoingMessage): number {
  return (
    headerBytes(message.headers) +
    WIRE_ID_OVERHEAD +
    Buffer.byteLength(message.id) +
    (message.key === undefined ? 0 : WireHeaders.key.length + Buffer.byteLength(message.key))
  )
}

/** The MSGKIT_MESSAGE_TOO_LARGE error for `message`, or undefined when it fits. */
export function tooLarge(
  caps: Capabilities,
  transport: string,
  topic: string,
  message: OutgoingMessage,
): MsgkitError | undefined {
  const bytes = message.body.byteLength
  if (bytes > caps.maxMessageBytes) {
    return new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `Message for topic ${topic} is ${bytes} bytes; the ${transport} transport takes at most ${caps.maxMessageBytes}. Nothing was sent: store the payload elsewhere and send a reference.`,
      { details: { topic, bytes, max: caps.maxMessageBytes } },
    )
  }
  // the exact count encodes every header: only needed when the cheap upper bound does not fit
  const bound =
    headerBytesBound(message.headers) +
    WIRE_ID_OVERHEAD +
    3 * (message.id.length + (message.key === undefined ? 0 : WireHeaders.key.length + message.key.length))
  if (bound <= caps.maxHeaderBytes) return undefined
  const hb = wireHeaderBytes(message)
  if (hb > caps.maxHeaderBytes) {
    return new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `Headers of a message for topic ${topic} take ${hb} bytes; the ${transport} transport takes at most ${caps.maxHeaderBytes}. Nothing was sent.`,
      { details: { topic, headerBytes: hb, max: caps.maxHeaderBytes } },
    )
  }
  return undefined
}
