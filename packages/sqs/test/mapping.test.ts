import { randomBytes } from 'node:crypto'
import type { Message } from '@aws-sdk/client-sqs'
import { type OutgoingMessage, uuidv7, uuidv7Time, WireHeaders } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import {
  Attributes,
  awsBytes,
  MAX_HEADER_BYTES,
  maxBodyBytes,
  SNS_MAX_BYTES,
  SQS_MAX_BYTES,
  toAttributes,
  toTransportMessage,
  toWire,
  type Wire,
} from '../src/mapping.js'
import { createNaming } from '../src/topology.js'

const standard = { fifo: false, fanout: true, maxBytes: SNS_MAX_BYTES }
const message = (over: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  id: '01a23700-0000-7000-8000-000000000001',
  headers: { [WireHeaders.contentType]: 'application/json' },
  body: new TextEncoder().encode('{"a":1}'),
  timestamp: 1_700_000_000_000,
  ...over,
})

/** What SQS hands a consumer for a wire message (attributes unchanged, as SNS raw delivery keeps them). */
const received = (wire: Wire, system: Record<string, string> = {}): Message => ({
  MessageId: 'sqs-id',
  Body: wire.body,
  Attributes: { ApproximateReceiveCount: '1', SentTimestamp: '1700000000500', ...system },
  MessageAttributes: wire.attributes,
})

describe('sqs mapping', () => {
  it('sends text as text and everything else as base64, invisibly to the user', () => {
    const text = toWire('t', message(), standard)
    expect(text.body).toBe('{"a":1}')
    expect(text.attributes[Attributes.encoding]).toBeUndefined()
    for (const body of [
      new Uint8Array(randomBytes(300)),
      new Uint8Array([0x61, 0x00, 0x62]), // valid UTF-8, but U+0000 is no XML character
      new Uint8Array([0xef, 0xbf, 0xbe]), // U+FFFE
      new Uint8Array(0),
      new Uint8Array([0xef, 0xbb, 0xbf, 0x41]), // a BOM is kept
    ]) {
      const wire = toWire('t', message({ body }), standard)
      expect(wire.body.length, 'AWS refuses empty bodies').toBeGreaterThan(0)
      const back = toTransportMessage(received(wire), 't')
      expect(Buffer.from(back.body).equals(Buffer.from(body))).toBe(true)
    }
    expect(
      toWire('t', message({ body: new Uint8Array([0xff]) }), standard).attributes[Attributes.encoding]
        ?.StringValue,
    ).toBe('base64')
  })

  it('round-trips id, key, timestamp, headers; attempt from ApproximateReceiveCount', () => {
    const wire = toWire(
      't',
      message({ key: '키-🔑', headers: { 'x-a': 'b', [WireHeaders.contentType]: 'text/plain' } }),
      standard,
    )
    const back = toTransportMessage(received(wire, { ApproximateReceiveCount: '3' }), 'orders')
    expect(back).toMatchObject({
      id: '01a23700-0000-7000-8000-000000000001',
      topic: 'orders',
      key: '키-🔑',
      timestamp: 1_700_000_000_000,
      attempt: 3,
      redelivered: true,
    })
    expect(back.headers['x-a']).toBe('b')
    expect(
      Object.keys(back.headers).filter((h) => /^(Approximate|Sent|msgkit-(body|headers|delay))/.test(h)),
    ).toEqual([])
  })

  it('no msgkit-timestamp attribute when the id is a UUID v7 of that millisecond (one attribute fewer); older messages with it still read', () => {
    const id = uuidv7()
    const timestamp = uuidv7Time(id) as number
    const wire = toWire('t', message({ id, timestamp }), standard)
    expect(wire.attributes).not.toHaveProperty(WireHeaders.timestamp)
    expect(toTransportMessage(received(wire), 't')).toMatchObject({ id, timestamp })
    const old = toWire('t', message({ id, timestamp: 1_700_000_000_000 }), standard)
    expect(old.attributes[WireHeaders.timestamp]?.StringValue).toBe('1700000000000')
    expect(toTransportMessage(received(old), 't').timestamp).toBe(1_700_000_000_000)
  })

  it('keeps at most 10 attributes: the rest, invalid names and empty values go into one packed attribute', () => {
    const many: Record<string, string> = {}
    for (let i = 0; i < 12; i++) many[`h${i}`] = `v${i}`
    Object.assign(many, {
      'has space': 'x',
      'AWS.reserved': 'y',
      empty: '',
      'nul\u0000': 'z',
      lone: '\ud800',
      bad: '\uffff',
    })
    const wire = toWire('t', message({ headers: many }), standard)
    expect(Object.keys(wire.attributes)).toHaveLength(10)
    expect(wire.attributes[WireHeaders.id]).toBeDefined()
    const packed = wire.attributes[Attributes.packed]?.StringValue as string
    expect(
      /[\p{Cc}\p{Cs}\uffff]/u.test(packed.replace(/[\t\n\r]/g, '')),
      'packed value holds only characters AWS takes',
    ).toBe(false)
    const back = toTransportMessage(received(wire), 't')
    for (const [k, v] of Object.entries(many)) expect(back.headers[k], k).toBe(v)
    // exactly 10 valid ones: no packing
    expect(Object.keys(toAttributes({ a: '1', b: '2' }))).toEqual(['a', 'b'])
  })

  it('counts size as AWS does and refuses what AWS would refuse, before the wire', () => {
    const wire = toWire('t', message({ headers: { 'x-é': 'ü' } }), standard)
    expect(wire.bytes).toBe(awsBytes(wire.body, wire.attributes))
    expect(awsBytes('é', { ab: { DataType: 'String', StringValue: 'ü' } })).toBe(2 + 2 + 6 + 2)
    // the declared limits fit together: a base64 body at the maximum plus full headers
    for (const limit of [SNS_MAX_BYTES, SQS_MAX_BYTES]) {
      const body = new Uint8Array(randomBytes(maxBodyBytes(limit)))
      const headers = { big: 'h'.repeat(MAX_HEADER_BYTES - 200) }
      const fits = toWire('t', message({ body, headers }), { ...standard, maxBytes: limit })
      expect(fits.bytes).toBeLessThanOrEqual(limit)
    }
    const huge = message({ body: new Uint8Array(SNS_MAX_BYTES) })
    expect(() => toWire('t', huge, standard)).toThrow(/MessageTooLarge|takes at most 262144/)
  })

  it('FIFO: key → MessageGroupId, id → deduplication id, AWS-safe; no key → the id (no serialisation)', () => {
    const fifo = { fifo: true, fanout: false, maxBytes: SQS_MAX_BYTES }
    expect(toWire('t', message({ key: 'user-42' }), fifo)).toMatchObject({
      groupId: 'user-42',
      deduplicationId: '01a23700-0000-7000-8000-000000000001',
    })
    expect(toWire('t', message(), fifo).groupId).toBe('01a23700-0000-7000-8000-000000000001')
    const odd = toWire('t', message({ key: '키 🔑', id: 'x'.repeat(200) }), fifo)
    expect(odd.groupId).toMatch(/^h-[0-9a-f]{64}$/)
    expect(odd.deduplicationId).toMatch(/^h-[0-9a-f]{64}$/)
    expect(toWire('t', message({ delayMs: 2500 }), fifo).delaySeconds).toBeUndefined()
  })

  it('delays: DelaySeconds without SNS, an attribute with it; the early receive is no attempt', () => {
    expect(toWire('t', message({ delayMs: 2500 }), { ...standard, fanout: false }).delaySeconds).toBe(3)
    const delayed = toWire('t', message({ delayMs: 2000 }), standard)
    expect(delayed.attributes[Attributes.delay]?.StringValue).toBe('2000')
    const raw = received(delayed, {
      ApproximateReceiveCount: '2',
      SentTimestamp: '1000',
      ApproximateFirstReceiveTimestamp: '1010',
    })
    expect(toTransportMessage(raw, 't').attempt).toBe(1)
    expect(toTransportMessage(raw, 't').headers[Attributes.delay]).toBeUndefined()
  })

  it('takes foreign messages: any body, String/Number/Binary attributes, its group as key', () => {
    const foreign: Message = {
      MessageId: 'm-1',
      Body: 'plain text',
      Attributes: { ApproximateReceiveCount: '1', SentTimestamp: '1700000000000', MessageGroupId: 'g-1' },
      MessageAttributes: {
        s: { DataType: 'String', StringValue: 'v' },
        n: { DataType: 'Number', StringValue: '-12.5e3' },
        b: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 255]) },
        [Attributes.packed]: { DataType: 'String', StringValue: 'not json' },
      },
    }
    expect(toTransportMessage(foreign, 't')).toMatchObject({
      id: 'm-1',
      key: 'g-1',
      timestamp: 1_700_000_000_000,
      attempt: 1,
      redelivered: false,
      headers: { s: 'v', n: '-12.5e3', b: 'AQL/' },
    })
    expect(new TextDecoder().decode(toTransportMessage(foreign, 't').body)).toBe('plain text')
  })

  it('names: dots → underscores, prefix, .fifo, cut with a hash past AWS limits', () => {
    const fanout = createNaming({ prefix: 'p-', fifo: false, fanout: true })
    expect(fanout.topic('orders.created')).toBe('p-orders_created')
    expect(fanout.queue('orders.created', 'mail')).toBe('p-orders_created-mail')
    const fifo = createNaming({ prefix: '', fifo: true, fanout: false })
    expect(fifo.topic('orders')).toBe('orders.fifo')
    expect(fifo.queue('orders', 'mail')).toBe('orders.fifo')
    const long = fanout.queue(`t-${'x'.repeat(100)}`, 'g')
    expect(long).toHaveLength(80)
    expect(long).toMatch(/^p-t-x+-[0-9a-f]{8}$/)
    expect(fanout.queue(`t-${'x'.repeat(100)}`, 'h')).not.toBe(long)
    expect(createNaming({ prefix: '', fifo: true, fanout: true }).queue('a'.repeat(100), 'g')).toMatch(
      /^a+-[0-9a-f]{8}\.fifo$/,
    )
  })
})
