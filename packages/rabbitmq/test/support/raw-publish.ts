/**
 * A foreign producer without amqplib's 64 KiB header-table buffer (Java, .NET and Python clients
 * have none): basic.publish written as raw AMQP frames on an amqplib connection. RabbitMQ takes a
 * content header up to frame_max (128 KiB by default), so bigger headers than msgkit can send
 * reach msgkit consumers; these tests need such messages.
 */
import type { Headers } from '@msgkit/core'
import amqp from 'amqplib'

const frame = (type: number, channel: number, ...payload: Buffer[]): Buffer => {
  const head = Buffer.alloc(7)
  head.writeUInt8(type, 0)
  head.writeUInt16BE(channel, 1)
  head.writeUInt32BE(Buffer.concat(payload).length, 3)
  return Buffer.concat([head, ...payload, Buffer.from([0xce])])
}
const short = (text: string) => Buffer.concat([Buffer.from([Buffer.byteLength(text)]), Buffer.from(text)])
const long = (data: Buffer) => {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  return Buffer.concat([length, data])
}

/** method, content header (headers + delivery-mode 2), body frames */
function publishFrames(
  ch: number,
  frameMax: number,
  exchange: string,
  key: string,
  body: Buffer,
  headers: Headers,
) {
  const table = Object.entries(headers).map(([k, v]) =>
    Buffer.concat([short(k), Buffer.from('S'), long(Buffer.from(v))]),
  )
  const properties = Buffer.alloc(14)
  properties.writeUInt16BE(60, 0) // class basic, weight 0
  properties.writeBigUInt64BE(BigInt(body.length), 4)
  properties.writeUInt16BE(0x2000 | 0x1000, 12) // headers, delivery-mode
  const frames = [
    frame(1, ch, Buffer.from([0, 60, 0, 40, 0, 0]), short(exchange), short(key), Buffer.from([0])),
    frame(2, ch, properties, long(Buffer.concat(table)), Buffer.from([2])),
  ]
  for (let at = 0; at < body.length; at += frameMax - 8)
    frames.push(frame(3, ch, body.subarray(at, at + frameMax - 8)))
  return Buffer.concat(frames)
}

/**
 * Publishes to the topic exchange `exchange` (declared as msgkit does) with routing key `key`, and
 * resolves once RabbitMQ has routed it: frames on a channel are handled in order, so the answer to
 * an RPC sent after them comes after the publish. Rejects when RabbitMQ refused it.
 */
export async function publishRawFrames(
  url: string,
  exchange: string,
  key: string,
  body: Uint8Array,
  headers: Headers,
): Promise<void> {
  const model = await amqp.connect(url)
  model.on('error', () => {})
  try {
    const ch = await model.createChannel()
    ch.on('error', () => {})
    await ch.assertExchange(exchange, 'topic', { durable: true })
    const wire = (model as unknown as { connection: { frameMax: number; sendBytes(b: Buffer): void } })
      .connection
    const number = (ch as unknown as { ch: number }).ch
    wire.sendBytes(publishFrames(number, wire.frameMax, exchange, key, Buffer.from(body), headers))
    await ch.checkExchange(exchange)
  } finally {
    await model.close().catch(() => {})
  }
}
