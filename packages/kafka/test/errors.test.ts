import { ErrorCodes } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { classify, isTransient, rootCause, toMsgkitError } from '../src/errors.js'

const named = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, ...extra })
const protocol = (type: string, retriable: boolean) => named('KafkaJSProtocolError', { type, retriable })

describe('kafkajs error mapping', () => {
  it('unwraps retry and non-retriable wrappers', () => {
    const root = named('KafkaJSConnectionError')
    const wrapped = named('KafkaJSNumberOfRetriesExceeded', {
      cause: named('KafkaJSNonRetriableError', { cause: root }),
    })
    expect(rootCause(wrapped)).toBe(root)
    expect(classify(wrapped)).toBe('connection')
  })

  it('classifies by class name and protocol type, not by message text', () => {
    expect(classify(named('KafkaJSSASLAuthenticationError'))).toBe('auth')
    expect(classify(protocol('MESSAGE_TOO_LARGE', false))).toBe('too-large')
    expect(classify(protocol('TOPIC_AUTHORIZATION_FAILED', false))).toBe('rejected')
    expect(classify(protocol('LEADER_NOT_AVAILABLE', true))).toBe('transient')
    expect(classify(protocol('SOMETHING_NEW', true))).toBe('transient')
    expect(classify(protocol('SOMETHING_NEW', false))).toBeUndefined()
    expect(classify(new Error('connection refused'))).toBeUndefined()
    expect(isTransient(named('KafkaJSRequestTimeoutError'))).toBe(true)
  })

  it('chooses the msgkit code by operation', () => {
    const down = named('KafkaJSConnectionError')
    expect(toMsgkitError(down, 'connect', 'c').code).toBe(ErrorCodes.CONNECTION_FAILED)
    expect(toMsgkitError(down, 'publish', 'p').code).toBe(ErrorCodes.PUBLISH_TIMEOUT)
    expect(toMsgkitError(protocol('INVALID_RECORD', false), 'publish', 'p').code).toBe(
      ErrorCodes.PUBLISH_REJECTED,
    )
    expect(toMsgkitError(protocol('SASL_AUTHENTICATION_FAILED', false), 'connect', 'c').code).toBe(
      ErrorCodes.AUTH_FAILED,
    )
    expect(toMsgkitError(new Error('?'), 'consume', 'x')).toMatchObject({
      code: ErrorCodes.TRANSPORT_ERROR,
      retriable: false,
    })
  })

  it('never carries a secret in message, details or cause', () => {
    const error = toMsgkitError(
      named('KafkaJSSASLAuthenticationError', { message: 'bad password hunter2' }),
      'connect',
      'ctx hunter2',
      ['hunter2'],
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
