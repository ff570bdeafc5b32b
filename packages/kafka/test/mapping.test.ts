import { WireHeaders } from '@msgkit/core'
import type { KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { decodeRecord, encodeRecord, recordBytes } from '../src/mapping.js'

const record = (overrides: Partial<KafkaMessage>): KafkaMessage =>
  ({
    key: null,
    value: Buffer.from('{}'),
    timestamp: '1700000000000',
    attributes: 0,
    offset: '42',
    headers: {},
    ...overrides,
  }) as KafkaMessage

describe('mapping', () => {
  it('puts key and timestamp on the record and the id in a header', () => {
    const { message, bytes } = encodeRecord({
      id: 'id-1',
      key: '키',
      headers: { a: 'b' },
      body: new Uint8Array([1, 2, 3]),
      timestamp: 1_700_000_000_123,
    })
    expect(message.key).toEqual(Buffer.from('키'))
    expect(message.timestamp).toBe('1700000000123')
    expect(message.headers).toEqual({ a: 'b', [WireHeaders.id]: 'id-1' })
    expect([...(message.value as Buffer)]).toEqual([1, 2, 3])
    expect(bytes).toBeGreaterThanOrEqual(3 + 3 + 1 + Buffer.byteLength('키') + WireHeaders.id.length + 4)
  })

  it('encodes a missing key as null', () => {
    expect(
      encodeRecord({ id: 'x', headers: {}, body: new Uint8Array(0), timestamp: 1 }).message.key,
    ).toBeNull()
  })

  it('round-trips through decode', () => {
    const { message } = encodeRecord({
      id: 'id-2',
      key: 'k',
      headers: { h: 'v' },
      body: new Uint8Array([9]),
      timestamp: 5,
    })
    const decoded = decodeRecord(
      't',
      3,
      record({
        key: message.key as Buffer,
        value: message.value as Buffer,
        timestamp: '5',
        headers: Object.fromEntries(
          Object.entries(message.headers ?? {}).map(([k, v]) => [k, Buffer.from(v as string)]),
        ),
      }),
    )
    expect(decoded).toMatchObject({ id: 'id-2', topic: 't', key: 'k', timestamp: 5, redelivered: false })
    expect(decoded.headers).toEqual({ h: 'v', [WireHeaders.id]: 'id-2' })
    expect([...decoded.body]).toEqual([9])
  })

  it('accepts foreign records: null key and value, repeated and empty headers, no msgkit id', () => {
    const decoded = decodeRecord(
      'orders',
      1,
      record({
        key: null,
        value: null,
        offset: '7',
        headers: {
          multi: [Buffer.from('first'), Buffer.from('last')],
          empty: Buffer.alloc(0),
          text: 'plain',
        },
      }),
    )
    expect(decoded.id).toBe('orders-1-7')
    expect(decoded.key).toBeUndefined()
    expect(decoded.body.byteLength).toBe(0)
    expect(decoded.headers).toEqual({ multi: 'last', empty: '', text: 'plain' })
  })

  it('bounds the record size from above', () => {
    const key = Buffer.from('k')
    const value = Buffer.alloc(100)
    expect(recordBytes(key, value, { a: 'bc' })).toBe(36 + 1 + 100 + 10 + 3)
  })
})
