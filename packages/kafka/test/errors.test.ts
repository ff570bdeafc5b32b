import { ErrorCodes, MsgkitError } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { classifyKafka, createKafkaErrors, rootCause, staleMetadata } from '../src/errors.js'

const named = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, ...extra })
const protocol = (type: string, retriable: boolean) => named('KafkaJSProtocolError', { type, retriable })
const table = createKafkaErrors((text) => text.split('hunter2').join('***'))

describe('the Kafka error table', () => {
  it('unwraps retry, non-retriable and aggregate wrappers', () => {
    const root = named('KafkaJSConnectionError')
    const wrapped = named('KafkaJSNumberOfRetriesExceeded', {
      cause: named('KafkaJSNonRetriableError', { cause: named('KafkaJSAggregateError', { errors: [root] }) }),
    })
    expect(rootCause(wrapped)).toBe(root)
    expect(table.classify(wrapped)).toBe('connection')
  })

  it('classifies by class name and protocol type, not by message text', () => {
    expect(classifyKafka(named('KafkaJSSASLAuthenticationError'))).toBe('auth')
    expect(classifyKafka(protocol('MESSAGE_TOO_LARGE', false))).toBe('too-large')
    expect(classifyKafka(protocol('TOPIC_AUTHORIZATION_FAILED', false))).toBe('rejected')
    expect(classifyKafka(protocol('LEADER_NOT_AVAILABLE', true))).toBe('transient')
    expect(classifyKafka(protocol('SOMETHING_NEW', true))).toBe('transient')
    expect(classifyKafka(protocol('SOMETHING_NEW', false))).toBeUndefined()
    expect(classifyKafka(new Error('connection refused'))).toBeUndefined()
    expect(classifyKafka(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('connection')
    expect(classifyKafka(named('KafkaJSRequestTimeoutError'))).toBe('connection')
  })

  it('tells the kit what to do: reconnect, back off, or give up', () => {
    expect(table.classify(named('KafkaJSConnectionClosedError'))).toBe('connection')
    expect(table.classify(protocol('NOT_LEADER_FOR_PARTITION', true))).toBe('transient')
    expect(table.classify(protocol('SASL_AUTHENTICATION_FAILED', false))).toBe('auth')
    expect(table.classify(protocol('MESSAGE_TOO_LARGE', false))).toBe('fatal')
    expect(table.classify(named('KafkaTopicMissingError'))).toBe('fatal')
    // unknown errors are not treated as retriable
    expect(table.classify(new Error('?'))).toBe('fatal')
    expect(table.classify(new MsgkitError(ErrorCodes.CLOSED, 'closed'))).toBe('fatal')
  })

  it("stale metadata (a deleted topic in a client's metadata, a new topic not spread yet) is retried, never final", () => {
    const unknown = protocol('UNKNOWN_TOPIC_OR_PARTITION', true)
    const exhausted = named('KafkaJSNumberOfRetriesExceeded', { cause: unknown })
    expect(staleMetadata(exhausted)).toBe(true)
    expect(staleMetadata(protocol('LEADER_NOT_AVAILABLE', true))).toBe(false)
    expect(table.classify(exhausted)).toBe('transient')
    // also when a kafkajs path bails out with it as non-retriable
    expect(
      table.classify(named('KafkaJSNonRetriableError', { cause: { ...unknown, retriable: false } })),
    ).toBe('transient')
    expect(table.toError(exhausted, { operation: 'publish', topic: 't' })).toMatchObject({
      code: ErrorCodes.PUBLISH_TIMEOUT,
      retriable: true,
    })
  })

  it('chooses the msgkit code by operation', () => {
    const down = named('KafkaJSConnectionError')
    expect(table.toError(down, { operation: 'connect', endpoint: 'k:9092' })).toMatchObject({
      code: ErrorCodes.CONNECTION_FAILED,
      retriable: true,
    })
    expect(table.toError(down, { operation: 'publish', topic: 't' }).code).toBe(ErrorCodes.PUBLISH_TIMEOUT)
    expect(table.toError(protocol('INVALID_RECORD', false), { operation: 'publish' }).code).toBe(
      ErrorCodes.PUBLISH_REJECTED,
    )
    expect(table.toError(protocol('MESSAGE_TOO_LARGE', false), { operation: 'publish' }).code).toBe(
      ErrorCodes.MESSAGE_TOO_LARGE,
    )
    expect(
      table.toError(protocol('SASL_AUTHENTICATION_FAILED', false), { operation: 'connect' }),
    ).toMatchObject({
      code: ErrorCodes.AUTH_FAILED,
      retriable: false,
    })
    expect(table.toError(new Error('?'), { operation: 'subscribe' })).toMatchObject({
      code: ErrorCodes.TRANSPORT_ERROR,
      retriable: false,
    })
  })

  it('never carries a secret in message, details or cause', () => {
    const error = table.toError(
      named('KafkaJSSASLAuthenticationError', { message: 'bad password hunter2' }),
      {
        operation: 'connect',
      },
    )
    const texts = [
      error.message,
      String(error.stack),
      JSON.stringify(error.details),
      String((error.cause as Error).message),
    ]
    for (const text of texts) expect(text).not.toContain('hunter2')
  })
})
