import { ErrorCodes, MsgkitError } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { StompError } from '../src/driver.js'
import { createErrorTable } from '../src/errors.js'

const table = createErrorTable((text) => text.split('s3cret').join('***'))

describe('the ActiveMQ error table', () => {
  it('tells the kit what to do with each driver failure', () => {
    expect(table.classify(new StompError('unreachable', 'connect ECONNREFUSED', 'ECONNREFUSED'))).toBe(
      'connection',
    )
    expect(table.classify(new StompError('timeout', 'no CONNECTED frame'))).toBe('connection')
    expect(table.classify(new StompError('lost', 'the connection was closed'))).toBe('connection')
    expect(table.classify(new StompError('refused', 'User name [x] or password is invalid.'))).toBe('auth')
    expect(table.classify(new StompError('error-frame', 'The maximum data length was exceeded'))).toBe(
      'fatal',
    )
    // unknown errors are not retried
    expect(table.classify(new TypeError('bug'))).toBe('fatal')
    expect(table.classify(new MsgkitError(ErrorCodes.CONNECTION_FAILED, 'x', { retriable: true }))).toBe(
      'transient',
    )
  })

  it('a refused CONNECT is MSGKIT_AUTH_FAILED, not retriable, with the broker’s text and no secret', () => {
    const error = table.toError(
      new StompError('refused', 'User name [msgkit] or password s3cret is invalid.'),
      {
        operation: 'connect',
        endpoint: 'mq1:61613',
      },
    )
    expect(error.code).toBe(ErrorCodes.AUTH_FAILED)
    expect(error.retriable).toBe(false)
    expect(error.message).toContain('mq1:61613')
    expect(error.message).not.toContain('s3cret')
  })

  it('a failed connect says what to check, and is retriable', () => {
    const error = table.toError(new StompError('unreachable', 'connect ECONNREFUSED 10.0.0.1:61613'), {
      operation: 'connect',
      endpoint: '10.0.0.1:61613',
    })
    expect(error.code).toBe(ErrorCodes.CONNECTION_FAILED)
    expect(error.retriable).toBe(true)
    expect(error.message).toMatch(/STOMP connector/)
  })

  it('ActiveMQ’s limit messages (exact texts) become MSGKIT_MESSAGE_TOO_LARGE with a hint; others a refusal', () => {
    for (const text of [
      'The maximum data length was exceeded',
      'The maximum header length was exceeded',
      'The maximum number of headers was exceeded',
      'java.lang.OutOfMemoryError: Java heap space',
    ]) {
      const error = table.toError(new StompError('error-frame', text), {
        operation: 'publish',
        topic: 'orders',
      })
      expect(error.code, text).toBe(ErrorCodes.MESSAGE_TOO_LARGE)
      expect(error.retriable).toBe(false)
    }
    const refused = table.toError(
      new StompError('error-frame', 'User msgkit is not authorized to write to: topic://x'),
      {
        operation: 'publish',
        topic: 'x',
      },
    )
    expect(refused.code).toBe(ErrorCodes.PUBLISH_REJECTED)
    expect(refused.message).toContain('not authorized')
    const other = table.toError(new StompError('error-frame', 'nope'), { operation: 'subscribe', topic: 'x' })
    expect(other.code).toBe(ErrorCodes.TRANSPORT_ERROR)
  })

  it('an ERROR frame while connecting (a SUBSCRIBE refused) is final, not a retriable connect failure', () => {
    const error = table.toError(
      new StompError('error-frame', 'User x is not authorized to read from: queue://q'),
      {
        operation: 'connect',
        endpoint: 'mq1:61613',
      },
    )
    expect(error.code).toBe(ErrorCodes.TRANSPORT_ERROR)
    expect(error.retriable).toBe(false)
  })

  it('a lost connection outside connect is a retriable transport error; MsgkitErrors pass through', () => {
    const lost = table.toError(new StompError('lost', 'the connection was closed'), {
      operation: 'provision',
    })
    expect(lost.code).toBe(ErrorCodes.TRANSPORT_ERROR)
    expect(lost.retriable).toBe(true)
    const own = new MsgkitError(ErrorCodes.CLOSED, 'closed')
    expect(table.toError(own, { operation: 'publish' })).toBe(own)
  })
})
