/** Body codecs. The default JSON codec passes bytes and strings through untouched. */
import { ErrorCodes, MsgkitError } from './errors.js'

export interface Codec {
  readonly name: string
  /**
   * value → bytes plus the content type recorded in the `msgkit-content-type` header (left out for
   * `application/json`). New bytes must not be changed afterwards: transports may keep them.
   */
  encode(value: unknown): { body: Uint8Array; contentType: string }
  /** bytes → value; `contentType` is `application/json` when the message carries none */
  decode(body: Uint8Array, contentType: string | undefined): unknown
}

export const ContentTypes = {
  json: 'application/json',
  text: 'text/plain; charset=utf-8',
  bytes: 'application/octet-stream',
} as const

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * JSON for values; Uint8Array / Buffer bodies travel as raw bytes and strings as UTF-8 text,
 * each decoded back to the same type. Bodies without a content type (foreign producers) are
 * read as JSON.
 */
export const jsonCodec: Codec = {
  name: 'json',
  encode(value) {
    if (value instanceof Uint8Array) return { body: value, contentType: ContentTypes.bytes }
    if (typeof value === 'string') return { body: Buffer.from(value, 'utf8'), contentType: ContentTypes.text }
    let text: string | undefined
    try {
      text = JSON.stringify(value)
    } catch (cause) {
      throw new MsgkitError(
        ErrorCodes.ENCODE_FAILED,
        'Message body cannot be encoded as JSON (circular or BigInt?).',
        { cause },
      )
    }
    if (text === undefined) {
      throw new MsgkitError(
        ErrorCodes.ENCODE_FAILED,
        `Message body of type ${typeof value} cannot be encoded as JSON.`,
      )
    }
    // a Buffer from Node's pool: no ArrayBuffer of its own per small message (TextEncoder makes one)
    return { body: Buffer.from(text, 'utf8'), contentType: ContentTypes.json }
  },
  decode(body, contentType) {
    // msgkit's own content types as they are (every delivery passes here); others normalised
    const type =
      contentType === ContentTypes.json || contentType === ContentTypes.bytes
        ? contentType
        : contentType === ContentTypes.text
          ? 'text/plain'
          : contentType?.split(';')[0]?.trim().toLowerCase()
    if (type === 'application/octet-stream') return body
    let text: string
    try {
      text = utf8.decode(body)
    } catch (cause) {
      throw new MsgkitError(ErrorCodes.DECODE_FAILED, 'Message body is not valid UTF-8.', { cause })
    }
    if (type === 'text/plain') return text
    if (text.length === 0)
      throw new MsgkitError(ErrorCodes.DECODE_FAILED, 'Message body is empty; expected JSON.')
    try {
      return JSON.parse(text) as unknown
    } catch (cause) {
      throw new MsgkitError(
        ErrorCodes.DECODE_FAILED,
        `Message body is not valid JSON: ${(cause as Error).message}`,
        { cause },
      )
    }
  },
}
