/**
 * The session of an HTTP broker: fresh clients and one probe; up when the probe answers or is
 * refused by a service that checked the signature (fatal), down otherwise (clients destroyed).
 */
import { describe, expect, it } from 'vitest'
import { type ErrorTable, finalErrorCode, httpSessionDriver } from '../../src/adapter/index.js'
import { ErrorCodes, MsgkitError } from '../../src/index.js'

const errors: ErrorTable = {
  classify: (error) =>
    (error as Error).message === 'ECONNREFUSED'
      ? 'connection'
      : (error as Error).message === 'SignatureDoesNotMatch'
        ? 'auth'
        : 'fatal',
  toError: (error) => new MsgkitError(ErrorCodes.TRANSPORT_ERROR, String(error)),
}

describe('httpSessionDriver', () => {
  it('opens on an answer or a refusal of the request, not on a network or credential failure', async () => {
    const destroyed: number[] = []
    let answer: Error | undefined
    let made = 0
    const driver = httpSessionDriver({
      endpoint: '127.0.0.1:4566',
      errors,
      create: () => ({ id: ++made }),
      probe: async () => {
        if (answer) throw answer
        return { ok: true }
      },
      destroy: (session) => void destroyed.push(session.id),
    })
    expect(driver.endpoints).toEqual(['127.0.0.1:4566'])
    expect(await driver.open(0)).toEqual({ id: 1 })
    answer = new Error('AccessDenied')
    expect(await driver.open(0)).toEqual({ id: 2 })
    answer = new Error('ECONNREFUSED')
    await expect(driver.open(0)).rejects.toBe(answer)
    answer = new Error('SignatureDoesNotMatch')
    await expect(driver.open(0)).rejects.toBe(answer)
    expect(destroyed).toEqual([3, 4])
    await driver.close({ id: 1 })
    expect(destroyed).toEqual([3, 4, 1])
  })
})

describe('finalErrorCode', () => {
  it('is the same on every broker', () => {
    expect(finalErrorCode('auth', 'publish')).toBe(ErrorCodes.AUTH_FAILED)
    expect(finalErrorCode('connection', 'connect')).toBe(ErrorCodes.CONNECTION_FAILED)
    expect(finalErrorCode('fatal', 'reconnect')).toBe(ErrorCodes.CONNECTION_FAILED)
    expect(finalErrorCode('fatal', 'publish')).toBe(ErrorCodes.PUBLISH_REJECTED)
    expect(finalErrorCode('connection', 'publish')).toBe(ErrorCodes.PUBLISH_TIMEOUT)
    expect(finalErrorCode('transient', 'publish')).toBe(ErrorCodes.PUBLISH_TIMEOUT)
    expect(finalErrorCode('transient', 'provision')).toBe(ErrorCodes.TRANSPORT_ERROR)
  })
})
