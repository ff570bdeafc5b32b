import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tlsSchema, tlsSocketOptions } from '../../src/adapter/index.js'

describe('the kit TLS block', () => {
  it('is off by default; true means system CAs with verification', () => {
    expect(tlsSocketOptions(tlsSchema.parse(undefined))).toBeUndefined()
    expect(tlsSocketOptions(tlsSchema.parse('true'))).toEqual({ rejectUnauthorized: true })
  })

  it('takes one PEM or a list of them, inline or from a file, and hands node:tls a CA list', () => {
    const dir = mkdtempSync(join(tmpdir(), 'msgkit-tls-'))
    writeFileSync(join(dir, 'ca.pem'), 'CA FROM FILE')
    const listed = tlsSchema.parse({ ca: ['CA ONE', 'CA TWO'], cert: 'CERT', key: ['KEY'] })
    expect(tlsSocketOptions(listed)).toEqual({
      rejectUnauthorized: true,
      ca: ['CA ONE', 'CA TWO'],
      cert: 'CERT',
      key: ['KEY'],
    })
    const fromFile = tlsSocketOptions(
      tlsSchema.parse({ caFile: join(dir, 'ca.pem'), rejectUnauthorized: 'false' }),
    )
    expect(fromFile?.rejectUnauthorized).toBe(false)
    expect(String((fromFile?.ca as Buffer[] | undefined)?.[0])).toBe('CA FROM FILE')
  })

  it('refuses an empty list and unknown options', () => {
    expect(() => tlsSchema.parse({ ca: [] })).toThrow()
    expect(() => tlsSchema.parse({ cafile: 'x' })).toThrow()
  })
})
