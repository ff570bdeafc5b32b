import { ErrorCodes, type OutgoingMessage, uuidv7, uuidv7Time } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { fromFrame, MAX_HEADER_LINE_BYTES, requeueHeaders, toFrame } from '../src/mapping.js'
import { groupQueue, patternQueue, topicDestination, topicOf, toWildcard } from '../src/topology.js'

const limits = { maxMessageBytes: 1024 }
const message = (extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  id: 'id-1',
  headers: { 'x-a': 'b:c' },
  body: new Uint8Array([1, 2]),
  timestamp: 1_700_000_000_000,
  ...extra,
})
const frame = (m: OutgoingMessage) => toFrame(topicDestination('orders'), 'orders', m, limits)

describe('names on ActiveMQ', () => {
  it('topic → virtual topic, group → its consumer queue', () => {
    expect(topicDestination('orders.paid')).toBe('/topic/VirtualTopic.orders.paid')
    expect(groupQueue('orders.paid', 'mail')).toBe('/queue/Consumer.mail.VirtualTopic.orders.paid')
  })

  it('never an empty, wildcard or composite destination', () => {
    for (const bad of ['', 'a,b', 'a.*', 'a.>', 'a b', 'a/b'])
      expect(() => topicDestination(bad), bad).toThrow(
        expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
      )
    expect(() => groupQueue('t', '')).toThrow()
  })

  it("msgkit's trailing > (one or more) becomes *.> (ActiveMQ's > is zero or more)", () => {
    expect(toWildcard('orders.>')).toBe('orders.*.>')
    expect(toWildcard('>')).toBe('*.>')
    expect(toWildcard('orders.*.paid')).toBe('orders.*.paid')
  })

  it('a pattern queue has a consumer name of its own per (group, pattern)', () => {
    const a = patternQueue('orders.*', 'mail')
    expect(a).toMatch(/^\/queue\/Consumer\.mail~[0-9a-f]{8}\.VirtualTopic\.orders\.\*$/)
    expect(patternQueue('orders.>', 'mail')).not.toContain(a.split('.VirtualTopic')[0])
    expect(patternQueue('orders.*', 'mail')).toBe(a)
  })

  it('the topic of a delivered frame: original destination, then our header, then the queue', () => {
    expect(topicOf({ 'original-destination': '/topic/VirtualTopic.a.b', destination: '/queue/x' })).toBe(
      'a.b',
    )
    expect(topicOf({ 'msgkit-topic': 'a.c', destination: '/queue/Consumer.g~1.VirtualTopic.a.*' })).toBe(
      'a.c',
    )
    expect(topicOf({ destination: '/queue/Consumer.g.VirtualTopic.a.d' })).toBe('a.d')
    expect(topicOf({ destination: '/queue/Consumer.g.VirtualTopic.a.*' })).toBeUndefined()
  })
})

describe('message → SEND frame', () => {
  it('persistent, msgkit id / timestamp / key headers, the key as JMSXGroupID, the delay for the scheduler', () => {
    const f = frame(message({ key: 'k', delayMs: 1500.2 }))
    expect(f.headers).toEqual({
      'x-a': 'b:c',
      'msgkit-id': 'id-1',
      'msgkit-timestamp': '1700000000000',
      'msgkit-key': 'k',
      destination: '/topic/VirtualTopic.orders',
      persistent: 'true',
      JMSXGroupID: 'k',
      AMQ_SCHEDULED_DELAY: '1501',
    })
    expect(frame(message()).headers).not.toHaveProperty('AMQ_SCHEDULED_DELAY')
    expect(frame(message({ delayMs: 0 })).headers).not.toHaveProperty('AMQ_SCHEDULED_DELAY')
  })

  it('no msgkit-timestamp when the id is a UUID v7 of that millisecond; read back from the id; older frames with it still read', () => {
    const id = uuidv7()
    const timestamp = uuidv7Time(id) as number
    const f = frame(message({ id, timestamp }))
    expect(f.headers).not.toHaveProperty('msgkit-timestamp')
    const delivered = { ...f.headers, 'message-id': 'ID:broker-1', timestamp: String(timestamp + 5) }
    expect(fromFrame({ headers: delivered, body: Buffer.alloc(0) }, 'orders')).toMatchObject({
      id,
      timestamp,
    })
    // a time the id does not encode travels as a header, and a header wins over the id (msgkit < 0.2)
    expect(frame(message({ id, timestamp: timestamp - 1 })).headers['msgkit-timestamp']).toBe(
      String(timestamp - 1),
    )
    const old = { ...delivered, 'msgkit-timestamp': '1700000000000' }
    expect(fromFrame({ headers: old, body: Buffer.alloc(0) }, 'orders').timestamp).toBe(1_700_000_000_000)
  })

  it('refuses names STOMP/ActiveMQ reserve, and names the broker cannot carry', () => {
    for (const name of [
      'priority',
      'Expires',
      'message-id',
      'persistent',
      'JMSXGroupID',
      'JMSType',
      'AMQ_SCHEDULED_DELAY',
      'reply-to',
      'a:b',
      'a\\b',
      'a\nb',
      '',
    ])
      expect(() => frame(message({ headers: { [name]: 'x' } })), JSON.stringify(name)).toThrow(
        expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
      )
    // reply-to is fine when it is a destination; type and correlation-id are JMS fields users may set
    expect(() =>
      frame(message({ headers: { 'reply-to': '/queue/r', type: 't', 'correlation-id': 'c' } })),
    ).not.toThrow()
  })

  it('a header line over 10,240 bytes once escaped is MSGKIT_MESSAGE_TOO_LARGE', () => {
    const room = MAX_HEADER_LINE_BYTES - 'x:'.length
    expect(() => frame(message({ headers: { x: 'a'.repeat(room) } }))).not.toThrow()
    expect(() => frame(message({ headers: { x: 'a'.repeat(room + 1) } }))).toThrow(
      expect.objectContaining({ code: ErrorCodes.MESSAGE_TOO_LARGE }),
    )
    // ':' and newlines take two bytes on the wire
    expect(() => frame(message({ headers: { x: ':'.repeat(room / 2 + 1) } }))).toThrow(
      expect.objectContaining({ code: ErrorCodes.MESSAGE_TOO_LARGE }),
    )
    expect(() => frame(message({ headers: { x: '한'.repeat(Math.floor(room / 3)) } }))).not.toThrow()
    expect(() => frame(message({ headers: { x: '한'.repeat(Math.floor(room / 3) + 1) } }))).toThrow()
  })

  it('at most 1,000 header lines, counting ours, receipt and content-length', () => {
    const headers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, '']))
    // ours: msgkit-id, msgkit-timestamp, destination, persistent + receipt, content-length = 6
    expect(() => frame(message({ headers: headers(994) }))).not.toThrow()
    expect(() => frame(message({ headers: headers(995) }))).toThrow(
      expect.objectContaining({ code: ErrorCodes.MESSAGE_TOO_LARGE }),
    )
  })

  it('a body over maxMessageBytes is refused before the wire', () => {
    expect(() => frame(message({ body: new Uint8Array(1025) }))).toThrow(
      expect.objectContaining({ code: ErrorCodes.MESSAGE_TOO_LARGE }),
    )
  })
})

describe('MESSAGE frame → message', () => {
  const delivered = {
    'message-id': 'ID:broker-1',
    destination: '/queue/Consumer.g.VirtualTopic.orders',
    'original-destination': '/topic/VirtualTopic.orders',
    subscription: 's',
    ack: 'ID:ack-1',
    expires: '0',
    priority: '4',
    timestamp: '1700000000123',
    persistent: 'true',
    'content-length': '2',
    scheduledJobId: 'j',
    redeliveryDelay: '1000',
    originalExpiration: '0',
    JMSXGroupSeq: '0',
    AMQ_SCHEDULED_DELAY: '5',
    'amq-msg-type': 'bytes',
    'x-a': 'b:c',
  }

  it('a foreign frame: the broker’s id and time, broker headers stripped', () => {
    const m = fromFrame({ headers: delivered, body: Buffer.from([1, 2]) }, 'orders')
    expect(m).toMatchObject({
      id: 'ID:broker-1',
      topic: 'orders',
      timestamp: 1700000000123,
      redelivered: false,
    })
    expect(m.headers).toEqual({ 'x-a': 'b:c' })
    expect(m.key).toBeUndefined()
    expect(m.attempt).toBeUndefined()
    expect([...m.body]).toEqual([1, 2])
  })

  it('a msgkit frame: its own id, key and time; redelivered from the broker flag or our attempt header', () => {
    const headers = {
      ...delivered,
      'msgkit-id': 'id-1',
      'msgkit-key': 'k',
      'msgkit-timestamp': '5',
      redelivered: 'true',
    }
    const m = fromFrame({ headers, body: Buffer.alloc(0) }, 'orders')
    expect(m).toMatchObject({ id: 'id-1', key: 'k', timestamp: 5, redelivered: true })
    const copy = fromFrame(
      { headers: { ...headers, redelivered: 'false', 'msgkit-attempt': '3' }, body: Buffer.alloc(0) },
      'o',
    )
    expect(copy).toMatchObject({ redelivered: true, attempt: 3 })
  })

  it('the requeued copy keeps id, key, time and headers, and counts the attempt', () => {
    const m = fromFrame(
      { headers: { ...delivered, 'msgkit-id': 'id-1', 'msgkit-key': 'k' }, body: Buffer.from('x') },
      'orders',
    )
    expect(requeueHeaders(m)).toEqual({ 'msgkit-attempt': '2', 'msgkit-topic': 'orders' })
    const f = toFrame(groupQueue('orders', 'g'), 'orders', m, limits, requeueHeaders(m))
    expect(f.headers).toMatchObject({
      'msgkit-id': 'id-1',
      'msgkit-timestamp': '1700000000123',
      JMSXGroupID: 'k',
      'msgkit-attempt': '2',
      'x-a': 'b:c',
    })
    const again = fromFrame({ headers: { ...f.headers }, body: Buffer.from('x') }, 'orders')
    expect(again).toMatchObject({ id: 'id-1', key: 'k', redelivered: true, attempt: 2 })
    expect(requeueHeaders(again)['msgkit-attempt']).toBe('3')
  })
})
