import { NotFoundException, SNSServiceException } from '@aws-sdk/client-sns'
import { QueueDoesNotExist, SQSServiceException } from '@aws-sdk/client-sqs'
import { ErrorCodes, MsgkitError } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { classifySqs, createSqsErrors, entryError, isNotFound } from '../src/errors.js'

const meta = { httpStatusCode: 400 }
/** A service error as the SDK builds it from an answer (name = the AWS error code). */
const sqsError = (name: string, status = 400, fault: 'client' | 'server' = 'client') =>
  new SQSServiceException({
    name,
    $fault: fault,
    $metadata: { httpStatusCode: status },
    message: `${name} said no`,
  })
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:4566`), { code })
const table = createSqsErrors({ where: '127.0.0.1:4566', scrub: (t) => t.split('hunter2').join('***') })

describe('the SQS error table', () => {
  it('takes network failures for a lost session', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EPIPE', 'ETIMEDOUT'])
      expect(classifySqs(socketError(code)), code).toBe('connection')
    // the SDK's requestTimeout with throwOnRequestTimeout
    expect(
      classifySqs(Object.assign(new Error('exceeded'), { name: 'TimeoutError', code: 'ETIMEDOUT' })),
    ).toBe('connection')
  })

  it('retries throttling, 5xx and deleted queues; refuses bad requests', () => {
    expect(classifySqs(sqsError('ThrottlingException'))).toBe('transient')
    expect(classifySqs(sqsError('SomethingNew', 503, 'server'))).toBe('transient')
    expect(classifySqs(new QueueDoesNotExist({ message: 'gone', $metadata: meta }))).toBe('transient')
    expect(classifySqs(new NotFoundException({ message: 'gone', $metadata: meta }))).toBe('transient')
    expect(isNotFound(new QueueDoesNotExist({ message: 'gone', $metadata: meta }))).toBe(true)
    expect(isNotFound(sqsError('ThrottlingException'))).toBe(false)
    expect(classifySqs(sqsError('InvalidParameterValue'))).toBe('fatal')
    expect(classifySqs(sqsError('AccessDenied', 403))).toBe('fatal')
    expect(classifySqs(new Error('who knows'))).toBe('fatal')
  })

  it('knows refused credentials, from either service', () => {
    expect(classifySqs(sqsError('InvalidClientTokenId', 403))).toBe('auth')
    expect(classifySqs(sqsError('SignatureDoesNotMatch', 403))).toBe('auth')
    const sns = new SNSServiceException({ name: 'AuthorizationError', $fault: 'client', $metadata: meta })
    expect(classifySqs(sns)).toBe('fatal')
    expect(
      classifySqs(
        Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }),
      ),
    ).toBe('auth')
  })

  it('classifies per-entry batch failures by their code and sender fault', () => {
    expect(classifySqs(entryError({ Code: 'InvalidParameterValue', SenderFault: true }))).toBe('fatal')
    expect(classifySqs(entryError({ Code: 'ThrottlingException', SenderFault: false }))).toBe('transient')
    expect(classifySqs(entryError({ Code: 'InternalError', SenderFault: false }))).toBe('transient')
    expect(classifySqs(entryError({ Code: 'Whatever', SenderFault: false }))).toBe('transient')
  })

  it('makes typed, secret-free errors', () => {
    const auth = table.toError(sqsError('InvalidClientTokenId', 403), { operation: 'connect' })
    expect(auth).toMatchObject({ code: ErrorCodes.AUTH_FAILED, retriable: false })
    const down = table.toError(socketError('ECONNREFUSED'), { operation: 'connect', endpoint: '127.0.0.1:1' })
    expect(down).toMatchObject({ code: ErrorCodes.CONNECTION_FAILED, retriable: true })
    expect(down.message).toContain('127.0.0.1:1')
    const refused = table.toError(entryError({ Code: 'InvalidMessageContents', Message: 'x hunter2' }), {
      operation: 'publish',
      topic: 'orders',
    })
    expect(refused).toMatchObject({ code: ErrorCodes.PUBLISH_REJECTED, retriable: false })
    expect(refused.message).not.toContain('hunter2')
    expect(
      table.toError(sqsError('BatchRequestTooLong'), { operation: 'publish', topic: 'orders' }).code,
    ).toBe(ErrorCodes.MESSAGE_TOO_LARGE)
    const own = new MsgkitError(ErrorCodes.CLOSED, 'closed')
    expect(table.toError(own, { operation: 'publish' })).toBe(own)
  })
})
