import { ErrorCodes } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { createErrorTable, SessionLost } from '../src/errors.js'

/** Errors shaped as amqplib raises them. */
const channelError = (code: number, text: string) =>
  Object.assign(new Error(`Channel closed by server: ${code} (${text})`), { code, classId: 60, methodId: 40 })
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5999`), { code })
const handshakeRefused = new Error(
  'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."',
)

const table = createErrorTable({
  where: (endpoint = 'h1:5672,h2:5672') => `amqp://app@${endpoint}/`,
  scrub: (text) => text.split('s3cret').join('***'),
})

describe('rabbitmq error table', () => {
  it.each([
    ['a refused login during the handshake', handshakeRefused, 'auth'],
    ['ACCESS_REFUSED on a channel (no permission)', channelError(403, 'ACCESS-REFUSED'), 'fatal'],
    ['NOT_FOUND (an exchange deleted behind our back)', channelError(404, 'NOT-FOUND'), 'transient'],
    ['PRECONDITION_FAILED', channelError(406, 'PRECONDITION-FAILED'), 'fatal'],
    ['CONNECTION_FORCED', Object.assign(new Error('Connection closed: 320'), { code: 320 }), 'connection'],
    ['ECONNREFUSED', socketError('ECONNREFUSED'), 'connection'],
    ['ENOTFOUND', socketError('ENOTFOUND'), 'connection'],
    ["amqplib's connect timeout", new Error('connect ETIMEDOUT'), 'connection'],
    ['a heartbeat timeout', new Error('Heartbeat timeout'), 'connection'],
    [
      'a basic.nack (3.10 nacks a channel that met a dead quorum leader: retried on a new one)',
      new Error('message nacked'),
      'transient',
    ],
    [
      "a header table over amqplib's buffer",
      new RangeError('exceeds the 65536 byte encoding buffer'),
      'fatal',
    ],
    ['the session lost under a request', new SessionLost('channel closed'), 'connection'],
    [
      'an RPC cut short by a closing channel',
      new Error('Channel ended, no reply will be forthcoming'),
      'transient',
    ],
    ['something unknown', new Error('surprise'), 'transient'],
  ])('classifies %s', (_what, error, kind) => {
    expect(table.classify(error)).toBe(kind)
  })

  it('names the host and user of a refused login, never the password', () => {
    const error = table.toError(handshakeRefused, { operation: 'connect', endpoint: 'h2:5672' })
    expect(error.code).toBe(ErrorCodes.AUTH_FAILED)
    expect(error.retriable).toBe(false)
    expect(error.message).toContain('amqp://app@h2:5672/')
  })

  it('says what to check for an unreachable host, and scrubs secrets from broker texts', () => {
    const refused = table.toError(socketError('ECONNREFUSED'), { operation: 'connect', endpoint: 'h1:5999' })
    expect(refused).toMatchObject({ code: ErrorCodes.CONNECTION_FAILED, retriable: true })
    expect(refused.message).toMatch(/is RabbitMQ running/)
    const leaky = table.toError(new Error('auth s3cret failed'), { operation: 'connect', endpoint: 'h1:1' })
    expect(leaky.message).not.toContain('s3cret')
  })

  it('maps publish refusals: too large, nacked, no permission', () => {
    const big = channelError(
      406,
      'PRECONDITION-FAILED) with message "message size 20000000 is larger than configured max size 16777216"',
    )
    expect(table.toError(big, { operation: 'publish', topic: 't' }).code).toBe(ErrorCodes.MESSAGE_TOO_LARGE)
    expect(table.toError(new Error('message nacked'), { operation: 'publish', topic: 't' })).toMatchObject({
      code: ErrorCodes.PUBLISH_REJECTED,
      retriable: true,
    })
    const forbidden = table.toError(channelError(403, 'ACCESS-REFUSED'), { operation: 'publish', topic: 't' })
    expect(forbidden).toMatchObject({ code: ErrorCodes.PUBLISH_REJECTED, retriable: false })
    expect(forbidden.message).toMatch(/permission/)
  })

  it('explains a declaration refused because the queue exists with other settings', () => {
    const error = table.toError(channelError(406, 'PRECONDITION-FAILED'), {
      operation: 'provision',
      topic: 't',
    })
    expect(error).toMatchObject({ code: ErrorCodes.TRANSPORT_ERROR, retriable: false })
    expect(error.message).toMatch(/other settings/)
  })
})
