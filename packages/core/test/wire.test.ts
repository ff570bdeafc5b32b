/**
 * The wire format helpers: only what a broker cannot carry and a receiver cannot infer goes into
 * headers; every older format is still read.
 */
import { describe, expect, it } from 'vitest'
import { lastUuidv7Ms } from '../src/ids.js'
import {
  compactWireHeaders,
  contentTypeOf,
  createMessaging,
  getMemoryBroker,
  headerText,
  type OutgoingMessage,
  readWireFields,
  uuidv7,
  uuidv7Time,
  WireHeaders,
} from '../src/index.js'

const message = (over: Partial<OutgoingMessage> = {}): OutgoingMessage => {
  const id = uuidv7()
  return { id, headers: { a: 'b' }, body: new Uint8Array(0), timestamp: lastUuidv7Ms(), ...over }
}

describe('wire format', () => {
  it('a UUID v7 encodes its millisecond; other ids encode none', () => {
    const before = Date.now()
    const id = uuidv7()
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(uuidv7Time(id)).toBe(lastUuidv7Ms())
    expect(uuidv7Time(id)).toBeGreaterThanOrEqual(before)
    expect(uuidv7Time('6f1c1e52-3a4b-4c5d-8e9f-0a1b2c3d4e5f')).toBeUndefined()
    expect(uuidv7Time('not-a-uuid')).toBeUndefined()
    const ids = Array.from({ length: 10_000 }, () => uuidv7())
    expect(new Set(ids).size).toBe(ids.length)
    expect([...ids].sort()).toEqual(ids)
  })

  it('headers carry only what the broker cannot and the receiver cannot infer', () => {
    const m = message({ key: 'k' })
    // a headers-only broker: the id and the key; the timestamp is the id's
    expect(compactWireHeaders(m, {})).toEqual({ a: 'b', [WireHeaders.id]: m.id, [WireHeaders.key]: 'k' })
    // AMQP: id and content type as properties; the key has no property
    expect(compactWireHeaders(m, { id: true, timestamp: 'seconds', contentType: true })).toEqual({
      a: 'b',
      [WireHeaders.key]: 'k',
    })
    // Kafka: key and timestamp natively, the id in a header
    expect(compactWireHeaders(m, { key: true, timestamp: 'ms' })).toEqual({ a: 'b', [WireHeaders.id]: m.id })
    // nothing to add: the message's own headers, not a copy
    const plain = message()
    expect(compactWireHeaders(plain, { id: true, timestamp: 'seconds' })).toBe(plain.headers)
    // a custom id encodes no time: the millisecond goes in a header
    const custom = message({ id: 'order-42', timestamp: 1_700_000_000_123 })
    expect(compactWireHeaders(custom, { id: true, timestamp: 'seconds' })).toEqual({
      a: 'b',
      [WireHeaders.timestamp]: '1700000000123',
    })
  })

  it('content types: JSON unless a header says otherwise; a broker field takes it out of the headers', () => {
    expect(contentTypeOf(message())).toBe('application/json')
    const text = message({ headers: { [WireHeaders.contentType]: 'text/plain; charset=utf-8' } })
    expect(contentTypeOf(text)).toBe('text/plain; charset=utf-8')
    expect(compactWireHeaders(text, { id: true, timestamp: 'seconds', contentType: true })).toEqual({})
    expect(text.headers[WireHeaders.contentType]).toBe('text/plain; charset=utf-8')
  })

  it('reads every format: msgkit headers first, then broker fields, then the id', () => {
    const id = uuidv7()
    const ms = uuidv7Time(id) as number
    // the format before 0.2: everything in headers
    expect(
      readWireFields(
        { [WireHeaders.id]: 'x', [WireHeaders.timestamp]: '1700000000123', [WireHeaders.key]: 'k' },
        { id: 'other', timestampSeconds: 1 },
      ),
    ).toEqual({ id: 'x', key: 'k', timestamp: 1_700_000_000_123 })
    // AMQP now: message-id and seconds; the millisecond from the id when it is in that second
    expect(readWireFields({}, { id, timestampSeconds: Math.floor(ms / 1000) })).toEqual({ id, timestamp: ms })
    // a v7 id from another time (a user's own id) does not override the broker's timestamp
    expect(readWireFields({}, { id, timestampSeconds: 1_700_000_000 })).toEqual({
      id,
      timestamp: 1_700_000_000_000,
    })
    // producers that put milliseconds into the AMQP timestamp
    expect(readWireFields({}, { timestampSeconds: 1_700_000_000_123 }).timestamp).toBe(1_700_000_000_123)
    // Kafka: the record's timestamp
    expect(readWireFields({ [WireHeaders.id]: id }, { timestampMs: 5, key: 'k' })).toEqual({
      id,
      key: 'k',
      timestamp: 5,
    })
    // a headers-only broker with a compact message: the id's millisecond
    expect(readWireFields({ [WireHeaders.id]: id })).toEqual({ id, timestamp: ms })
  })

  it('header values of foreign producers become text', () => {
    expect(headerText('s')).toBe('s')
    expect(headerText(5)).toBe('5')
    expect(headerText(true)).toBe('true')
    expect(headerText(null)).toBe('')
    expect(headerText(Buffer.from('hé'))).toBe('hé')
    expect(headerText(new Uint8Array([0x68, 0x69]))).toBe('hi')
    expect(headerText({ x: [1, 'y'], b: Buffer.from('z'), n: 10n })).toBe('{"x":[1,"y"],"b":"z","n":"10"}')
  })

  it('core sends no content-type header for JSON, and the timestamp is the default id’s millisecond', async () => {
    const name = `wire-${Date.now()}`
    const m = await createMessaging(`memory://${name}`)
    try {
      await m.provision('raw', 'g')
      await m.publish('raw', { a: 1 })
      await m.publish('raw', 'text')
      const stored = getMemoryBroker(name).peek('raw|g', 2)
      expect(stored[0]?.message.headers).toEqual({})
      expect(stored[1]?.message.headers).toEqual({ [WireHeaders.contentType]: 'text/plain; charset=utf-8' })

      const seen: Array<{ id: string; timestamp: number; body: unknown; headers: Record<string, string> }> =
        []
      await m.subscribe('t', { group: 'g' }, (msg) => {
        seen.push({ id: msg.id, timestamp: msg.timestamp, body: msg.body, headers: msg.headers })
      })
      const json = await m.publish('t', { a: 1 })
      const text = await m.publish('t', 'hello')
      const bytes = await m.publish('t', new Uint8Array([1, 2]))
      for (let i = 0; i < 50 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 10))
      const byId = new Map(seen.map((s) => [s.id, s]))
      expect(byId.get(json.id)?.body).toEqual({ a: 1 })
      expect(byId.get(json.id)?.timestamp).toBe(uuidv7Time(json.id))
      expect(byId.get(text.id)?.body).toBe('hello')
      expect([...((byId.get(bytes.id)?.body ?? []) as Uint8Array)]).toEqual([1, 2])
    } finally {
      await m.close()
    }
  })
})
