import { ErrorCodes, WireHeaders } from '@msgkit/core'
import type { ConsumeMessage } from 'amqplib'
import { describe, expect, it } from 'vitest'
import { prepareMessage, toTransportMessage } from '../src/message.js'
import { amqpName, bindingKey, createNaming, delayBucket } from '../src/naming.js'

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

  it('are persistent, carry id/timestamp/content-type natively and everything in headers', () => {
    const p = prepareMessage('t', { ...base, key: 'k' }, 1024)
    expect(p.options).toMatchObject({
      persistent: true,
      messageId: 'id-1',
      timestamp: 1_700_000_000,
      contentType: 'application/json',
    })
    expect(p.options.headers).toMatchObject({
      a: 'b',
      [WireHeaders.id]: 'id-1',
      [WireHeaders.key]: 'k',
      [WireHeaders.timestamp]: '1700000000123',
    })
    expect([...p.content]).toEqual([1, 2])
  })

  it('reject a body over maxMessageBytes and a header table amqplib cannot encode, before the wire', () => {
    expect(() => prepareMessage('t', base, 1)).toThrow(
      expect.objectContaining({ code: ErrorCodes.MESSAGE_TOO_LARGE }),
    )
    const headers: Record<string, string> = {}
    for (let i = 0; i < 20_000; i++) headers[`h${i}`] = ''
    expect(() => prepareMessage('t', { ...base, headers }, 1024)).toThrow(
      expect.objectContaining({ code: ErrorCodes.MESSAGE_TOO_LARGE }),
    )
    expect(() => prepareMessage('t', { ...base, headers: { ['n'.repeat(256)]: 'v' } }, 1024)).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
    )
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
