/** An error table's lookup built from groups of names: data, whitespace and line breaks allowed. */
import { describe, expect, it } from 'vitest'
import { namesTable } from '../../src/adapter/index.js'

describe('namesTable', () => {
  it('maps every name of a group to the group, across lines and repeated spaces', () => {
    const table = namesTable<'connection' | 'auth'>({
      connection: `ECONNRESET  EPIPE
        KafkaJSConnectionError`,
      auth: ' SASL_AUTHENTICATION_FAILED ',
    })
    expect(table.get('EPIPE')).toBe('connection')
    expect(table.get('KafkaJSConnectionError')).toBe('connection')
    expect(table.get('SASL_AUTHENTICATION_FAILED')).toBe('auth')
    expect(table.get('')).toBeUndefined()
    expect(table.get('ECONNREFUSED')).toBeUndefined()
    expect(table.size).toBe(4)
  })
})
