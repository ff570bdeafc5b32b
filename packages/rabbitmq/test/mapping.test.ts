import { ErrorCodes, uuidv7, uuidv7Time, WireHeaders } from '@msgkit/core'
import type { ConsumeMessage } from 'amqplib'
import { describe, expect, it } from 'vitest'
import {
  AMQPLIB_TABLE_BYTES,
  encodedHeaderBytes,
  MAX_HEADER_BYTES,
  toTransportMessage,
  toWire,
} from '../src/mapping.js'
import { amqpName, bindingKey, createNaming, delayBucket } from '../src/topology.js'

function consumed(
  headers: Record<string, unknown>,
  properties: Record<string, unknown> = {},
  redelivered = false,
): ConsumeMessage {
  return {
    content: Buffer.from('{}'),
    fields: { deliveryTag: 1, redelivered, exchange: 't', routingKey: 't', consumerTag: 'c' },
    properties: { headers, ...properties },
  } as unknown as ConsumeMessage
}

describe('naming', () => {
  it('follows DESIGN §5: exchange <topic>, queue <topic>.<group>, with an optional prefix', () => {
    const n = createNaming('')
    expect(n.exchange('orders.created')).toBe('orders.created')
    expect(n.groupQueue('orders.created', 'mail')).toBe('orders.created.mail')
    expect(createNaming('dev.').groupQueue('a', 'g')).toBe('dev.a.g')
    expect(n.patternExchange).toBe('msgkit:topics')
  })

  it('maps * to * and a trailing > to *.# (one or more segments)', () => {
    expect(bindingKey('orders.*')).toBe('orders.*')
    expect(bindingKey('orders.>')).toBe('orders.*.#')
    expect(bindingKey('*.created.>')).toBe('*.created.*.#')
  })

  it('keeps names within 255 bytes, unique by hash', () => {
    const long = 'x'.repeat(200)
    const a = amqpName(`${long}.${'g'.repeat(100)}`)
    const b = amqpName(`${long}.${'h'.repeat(100)}`)
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(255)
    expect(a).not.toBe(b)
    expect(amqpName('short')).toBe('short')
  })

  it('rounds delays up to two significant digits, never down', () => {
    expect(delayBucket(2000)).toBe(2000)
    expect(delayBucket(2345)).toBe(2400)
    expect(delayBucket(99)).toBe(99)
    expect(delayBucket(0.2)).toBe(1)
    expect(delayBucket(86_400_000)).toBe(87_000_000)
    for (const ms of [1, 150, 999, 1001, 12_345, 3_600_001])
      expect(delayBucket(ms)).toBeGreaterThanOrEqual(ms)
  })
})

describe('outgoing messages', () => {
  const base = {
    id: 'id-1',
    headers: { a: 'b', [WireHeaders.contentType]: 'application/json' },
    body: new Uint8Array([1, 2]),
    timestamp: 1_700_000_000_123,
  }

  it('are persistent, carry id/timestamp/content-type natively; headers only what has no property', () => {
    const p = toWire('t', { ...base, key: 'k' }, 0)
    expect(p.options.mandatory).toBeUndefined()
    expect(p.options).toMatchObject({
      persistent: true,
      messageId: 'id-1',
      timestamp: 1_700_000_000,
      contentType: 'application/json',
    })
    // a custom id encodes no time: its millisecond travels in a header; the key has no property
    expect(p.options.headers).toEqual({
      a: 'b',
      [WireHeaders.key]: 'k',
      [WireHeaders.timestamp]: '1700000000123',
    })
    expect([...p.content]).toEqual([1, 2])
  })

  it('need no header table at all with a default id (a UUID v7 has the millisecond) and JSON', () => {
    const id = uuidv7()
    const timestamp = uuidv7Time(id) as number
    const message = { id, headers: {}, body: new Uint8Array([1]), timestamp, contentType: 'application/json' }
    const p = toWire('t', message, 0)
    expect(p.options.headers).toBeUndefined()
    expect(p.options).toMatchObject({ messageId: id, timestamp: Math.floor(timestamp / 1000) })
    expect(p.options.contentType).toBe('application/json')
    // read back: id from message-id, the exact millisecond from the id, JSON by default
    const back = toTransportMessage(
      consumed(undefined as never, {
        messageId: id,
        timestamp: Math.floor(timestamp / 1000),
        contentType: 'application/json',
      }),
      't',
      false,
    )
    expect(back).toMatchObject({ id, timestamp })
    // other content types still go as the AMQP content-type, never as a header
    const text = toWire(
      't',
      { ...message, headers: { [WireHeaders.contentType]: 'text/plain; charset=utf-8' } },
      0,
    )
    expect(text.options.contentType).toBe('text/plain; charset=utf-8')
    expect(text.options.headers).toBeUndefined()
  })

  it('read messages in the format before 0.2 (msgkit-id, -timestamp, -content-type headers)', () => {
    const m = toTransportMessage(
      consumed(
        {
          [WireHeaders.id]: 'old-1',
          [WireHeaders.timestamp]: '1700000000123',
          [WireHeaders.contentType]: 'application/json',
          [WireHeaders.key]: 'k',
        },
        { messageId: 'old-1', timestamp: 1_700_000_000, contentType: 'application/json' },
      ),
      't',
      false,
    )
    expect(m).toMatchObject({ id: 'old-1', key: 'k', timestamp: 1_700_000_000_123 })
    expect(m.headers[WireHeaders.contentType]).toBe('application/json')
  })

  it('go out mandatory when the send asks about unroutable messages, and keep their delay bucket', () => {
    const returned: string[] = []
    const p = toWire('t', base, 2400, returned)
    expect(p.options.mandatory).toBe(true)
    expect(p.returned).toBe(returned)
    expect(p.bucket).toBe(2400)
  })

  it('reject a header table amqplib cannot encode, and a name over 255 bytes, before the wire', () => {
    const headers: Record<string, string> = {}
    for (let i = 0; i < 20_000; i++) headers[`h${i}`] = ''
    expect(() => toWire('t', { ...base, headers }, 0)).toThrow(
      expect.objectContaining({ code: ErrorCodes.MESSAGE_TOO_LARGE }),
    )
    expect(() => toWire('t', { ...base, headers: { ['n'.repeat(256)]: 'v' } }, 0)).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
    )
  })

  it('count the encoded table as amqplib does: 4 + per header 6 + name + value bytes', () => {
    expect(encodedHeaderBytes({})).toBe(4)
    expect(encodedHeaderBytes({ ab: 'cde', é: '' })).toBe(4 + 6 + 2 + 3 + 6 + 2)
  })

  it("fit maxHeaderBytes (as core counts it) into amqplib's buffer for up to 682 headers", () => {
    // core counts name + value bytes; the encoding adds 6 per header and 4 for the table
    expect(AMQPLIB_TABLE_BYTES - 4 - MAX_HEADER_BYTES).toBeGreaterThanOrEqual(6 * 682)
    const single = { ...base, headers: { big: 'h'.repeat(MAX_HEADER_BYTES - 200) } }
    expect(() => toWire('t', single, 0)).not.toThrow()
  })
})

describe('incoming messages', () => {
  it('keep broker headers out of user headers and turn x-delivery-count into attempt', () => {
    const m = toTransportMessage(
      consumed({
        user: 'u',
        'x-delivery-count': 2,
        'x-death': [{ count: 1, reason: 'expired' }],
        'x-first-death-queue': 'q',
        'x-first-death-reason': 'expired',
        'x-first-death-exchange': '',
        'x-last-death-queue': 'q',
        'x-received-from': [{ uri: 'amqp://x' }],
        'x-request-id': 'kept',
        [WireHeaders.id]: 'mid',
        [WireHeaders.key]: 'k',
        [WireHeaders.timestamp]: '1700000000123',
      }),
      't',
      true,
    )
    expect(Object.keys(m.headers).sort()).toEqual([
      'msgkit-id',
      'msgkit-key',
      'msgkit-timestamp',
      'user',
      'x-request-id',
    ])
    expect(m).toMatchObject({ id: 'mid', key: 'k', timestamp: 1_700_000_000_123, attempt: 3, topic: 't' })
  })

  it('count the first delivery as attempt 1 on quorum queues and leave it to core on classic ones', () => {
    expect(toTransportMessage(consumed({}), 't', true).attempt).toBe(1)
    const classic = toTransportMessage(consumed({}, {}, true), 't', false)
    expect(classic.attempt).toBeUndefined()
    expect(classic.redelivered).toBe(true)
  })

  it('read foreign messages: any header type as a string, AMQP id/timestamp/content-type', () => {
    const m = toTransportMessage(
      consumed(
        { n: 5, f: 1.5, b: true, bytes: Buffer.from('hé'), nested: { x: [1, 'y'] }, none: null },
        { messageId: 'foreign-1', timestamp: 1_700_000_000, contentType: 'text/plain' },
      ),
      't',
      false,
    )
    expect(m.headers).toMatchObject({
      n: '5',
      f: '1.5',
      b: 'true',
      bytes: 'hé',
      nested: '{"x":[1,"y"]}',
      none: '',
    })
    expect(m.id).toBe('foreign-1')
    expect(m.timestamp).toBe(1_700_000_000_000)
    expect(m.headers[WireHeaders.contentType]).toBe('text/plain')
    // a producer that put milliseconds in the AMQP timestamp
    expect(toTransportMessage(consumed({}, { timestamp: 1_700_000_000_123 }), 't', false).timestamp).toBe(
      1_700_000_000_123,
    )
  })
})
