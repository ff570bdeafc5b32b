import { describe, expect, it } from 'vitest'
import {
  assertGroupName,
  assertPattern,
  assertTopicName,
  backoffDelay,
  ErrorCodes,
  isNonRetryable,
  jsonCodec,
  MsgkitError,
  NonRetryableError,
  patternToRegExp,
  uuidv7,
} from '../src/index.js'

describe('json codec', () => {
  it('round-trips values, strings and bytes to the same type', () => {
    for (const value of [
      { a: 1, b: ['x'] },
      0,
      null,
      true,
      'plain text 한국어 👋',
      '',
      new Uint8Array([0, 255, 128]),
    ]) {
      const { body, contentType } = jsonCodec.encode(value)
      expect(jsonCodec.decode(body, contentType)).toEqual(value)
    }
  })

  it('decodes foreign bodies (no content type) as JSON and fails clearly otherwise', () => {
    expect(jsonCodec.decode(new TextEncoder().encode('{"x":1}'), undefined)).toEqual({ x: 1 })
    for (const bad of [
      new Uint8Array([]),
      new TextEncoder().encode('not json'),
      new Uint8Array([0xff, 0xfe]),
    ]) {
      expect(() => jsonCodec.decode(bad, undefined)).toThrow(MsgkitError)
      try {
        jsonCodec.decode(bad, undefined)
      } catch (e) {
        expect((e as MsgkitError).code).toBe(ErrorCodes.DECODE_FAILED)
      }
    }
  })

  it('refuses values JSON cannot carry', () => {
    const circular: Record<string, unknown> = {}
    circular.self = circular
    expect(() => jsonCodec.encode(circular)).toThrow(/circular/)
    expect(() => jsonCodec.encode(undefined)).toThrow(MsgkitError)
  })
})

describe('names and patterns', () => {
  it('accepts broker-safe topic names and refuses the rest', () => {
    for (const ok of ['orders', 'orders.created', 't-0f1e.a_b', 'A9'])
      expect(() => assertTopicName(ok)).not.toThrow()
    for (const bad of ['', '.x', 'x.', 'a..b', 'a b', 'a,b', 'a*', 'a>', 'ä', 'x'.repeat(201)]) {
      expect(() => assertTopicName(bad)).toThrow(MsgkitError)
    }
  })

  it('matches * as one segment and a trailing > as one or more', () => {
    const star = patternToRegExp('t-1.*')
    expect(star.test('t-1.a')).toBe(true)
    expect(star.test('t-1.x.y')).toBe(false)
    expect(star.test('t-2.a')).toBe(false)
    expect(star.test('t-1')).toBe(false)
    const tail = patternToRegExp('orders.>')
    expect(tail.test('orders.a')).toBe(true)
    expect(tail.test('orders.a.b')).toBe(true)
    expect(tail.test('orders')).toBe(false)
    expect(() => assertPattern('orders.>.x')).toThrow(MsgkitError)
    expect(() => assertPattern('orders')).toThrow(MsgkitError)
  })
})

describe('backoff', () => {
  it('grows exponentially up to the cap, with jitter inside its band', () => {
    expect(backoffDelay(1, { initialMs: 100, jitter: 0 })).toBe(100)
    expect(backoffDelay(3, { initialMs: 100, jitter: 0 })).toBe(400)
    expect(backoffDelay(20, { initialMs: 100, maxMs: 5000, jitter: 0 })).toBe(5000)
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(1, { initialMs: 1000, jitter: 0.2 })
      expect(d).toBeGreaterThanOrEqual(900)
      expect(d).toBeLessThanOrEqual(1100)
    }
  })
})

describe('errors and ids', () => {
  it('marks non-retryable errors', () => {
    expect(isNonRetryable(new NonRetryableError('x'))).toBe(true)
    expect(isNonRetryable(new Error('x'))).toBe(false)
    expect(isNonRetryable(new MsgkitError(ErrorCodes.PUBLISH_TIMEOUT, 'x', { retriable: true }))).toBe(false)
  })

  it('makes unique, time-ordered UUID v7 ids', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7())
    expect(new Set(ids).size).toBe(ids.length)
    expect([...ids].sort()).toEqual(ids)
    expect(ids[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})

describe('non-retryable errors', () => {
  it('retries other msgkit errors a handler may throw', () => {
    expect(isNonRetryable(new MsgkitError(ErrorCodes.CLOSED, 'closed during shutdown'))).toBe(false)
    expect(isNonRetryable(new MsgkitError(ErrorCodes.NON_RETRYABLE, 'explicit'))).toBe(true)
  })
})

describe('patterns and dead-letter topics', () => {
  it('leaves dead-letter topics out unless the pattern names them', () => {
    expect(patternToRegExp('orders.>').test('orders.created.mail.dlq')).toBe(false)
    expect(patternToRegExp('orders.>').test('orders.created')).toBe(true)
    expect(patternToRegExp('orders.*.*.dlq').test('orders.created.mail.dlq')).toBe(true)
  })
})

describe('group names', () => {
  it('are one segment, so `<topic>.<group>` names stay unambiguous', () => {
    expect(() => assertGroupName('mail-service_2')).not.toThrow()
    for (const bad of ['', 'a.b', 'a b', 'x'.repeat(101)])
      expect(() => assertGroupName(bad)).toThrow(MsgkitError)
  })
})
