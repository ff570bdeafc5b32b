import { describe, expect, it } from 'vitest'
import {
  createMessaging,
  ErrorCodes,
  MsgkitError,
  parseBrokerUrl,
  redactUrl,
  transportRegistry,
} from '../src/index.js'

async function failure(p: Promise<unknown>): Promise<MsgkitError> {
  try {
    await p
  } catch (error) {
    expect(error).toBeInstanceOf(MsgkitError)
    return error as MsgkitError
  }
  throw new Error('expected a rejection')
}

describe('broker URL parsing', () => {
  it('splits a multi-host URL with credentials, path and options', () => {
    const u = parseBrokerUrl('kafka://alice:s%3Acret@h1:9092,h2:9093/x%20y?clientId=orders&ssl')
    expect(u.scheme).toBe('kafka')
    expect(u.username).toBe('alice')
    expect(u.password).toBe('s:cret')
    expect(u.hosts).toEqual([
      { host: 'h1', port: 9092 },
      { host: 'h2', port: 9093 },
    ])
    expect(u.path).toBe('x y')
    expect(u.params).toEqual({ clientId: 'orders', ssl: 'true' })
    expect(u.redacted).toBe('kafka://alice:***@h1:9092,h2:9093/x%20y?clientId=orders&ssl')
  })

  it('accepts IPv6 hosts and hostless URLs', () => {
    expect(parseBrokerUrl('amqp://[::1]:5672').hosts).toEqual([{ host: '[::1]', port: 5672 }])
    expect(parseBrokerUrl('memory://').hosts).toEqual([])
  })

  it.each([
    ['no scheme', 'localhost:9092'],
    ['bad port', 'kafka://h1:99999'],
    ['port not a number', 'amqp://host:abc'],
    ['bad percent-encoding', 'amqp://u:%zz@host'],
    ['empty host in a list', 'kafka://h1:9092,,h2:9092'],
  ])('rejects a malformed URL (%s) with MSGKIT_URL_INVALID', (_name, url) => {
    let error: unknown
    try {
      parseBrokerUrl(url)
    } catch (e) {
      error = e
    }
    expect((error as MsgkitError).code).toBe(ErrorCodes.URL_INVALID)
  })

  it('never shows the password of a malformed URL', () => {
    try {
      parseBrokerUrl('amqp://guest:hunter2-secret@host:bad')
      throw new Error('no throw')
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2-secret')
      expect((e as Error).message).toContain('***')
    }
  })

  it('redacts passwords inside any text', () => {
    expect(redactUrl('failed to reach amqps://bob:pa55@mq.example:5671/vh')).toBe(
      'failed to reach amqps://bob:***@mq.example:5671/vh',
    )
  })
})

describe('createMessaging config', () => {
  it('rejects an unknown scheme, naming the ones it knows', async () => {
    const e = await failure(createMessaging('nats://localhost:4222'))
    expect(e.code).toBe(ErrorCodes.TRANSPORT_UNKNOWN)
    expect(e.message).toContain('kafka://')
  })

  it('rejects an unknown transport name', async () => {
    const e = await failure(createMessaging({ transport: 'zeromq' }))
    expect(e.code).toBe(ErrorCodes.TRANSPORT_UNKNOWN)
  })

  it('names the package to install when an adapter is missing', async () => {
    // every adapter is in this workspace: import a package that really is not installed in its place
    // (scripts/check-packages.mjs proves the same with npm-installed tarballs and no @msgkit/kafka)
    const e = await failure(
      createMessaging('sqs://eu-west-1?endpoint=http://127.0.0.1:9324', {
        loadModule: (specifier) => import(`${specifier}-not-installed`),
      }),
    )
    expect(e.code).toBe(ErrorCodes.TRANSPORT_MISSING)
    expect(e.message).toContain('@msgkit/sqs')
    expect(e.message).toMatch(/pnpm add @msgkit\/sqs/)
  })

  it('reports a missing adapter through an injected loader too, without the password', async () => {
    const loader = async (specifier: string): Promise<unknown> => {
      const error = new Error(`Cannot find package '${specifier}' imported from x`) as Error & {
        code: string
      }
      error.code = 'ERR_MODULE_NOT_FOUND'
      throw error
    }
    const e = await failure(createMessaging('amqp://guest:very-secret-pw@localhost', { loadModule: loader }))
    expect(e.code).toBe(ErrorCodes.TRANSPORT_MISSING)
    expect(e.message).toContain('@msgkit/rabbitmq')
    expect(e.message).not.toContain('very-secret-pw')
  })

  it('lists every invalid field in one error, with paths', async () => {
    const e = await failure(
      createMessaging({
        transport: 'memory',
        maxMessageBytes: -1,
        reconnectDelayMs: 'soon',
        bogus: 1,
        publish: { timeoutMs: 0 },
      }),
    )
    expect(e.code).toBe(ErrorCodes.CONFIG_INVALID)
    expect(e.message).toContain('maxMessageBytes')
    expect(e.message).toContain('reconnectDelayMs')
    expect(e.message).toContain('bogus')
    expect(e.message).toContain('publish.timeoutMs')
    expect(e.details?.problems).toHaveLength(4)
  })

  it('rejects invalid option values given in the URL, and keeps the password out', async () => {
    const e = await failure(createMessaging('memory://u:pw-in-url-42@b1?maxMessageBytes=lots'))
    expect(e.code).toBe(ErrorCodes.CONFIG_INVALID)
    expect(e.message).toContain('maxMessageBytes')
    expect(e.message).not.toContain('pw-in-url-42')
  })

  it('keeps a secret config value out of the error when the value itself is wrong', async () => {
    const e = await failure(createMessaging({ transport: 'memory', password: 12345678 as unknown as string }))
    expect(e.code).toBe(ErrorCodes.CONFIG_INVALID)
    expect(e.message).not.toContain('12345678')
  })

  it('rejects a config that is neither URL nor object', async () => {
    const e = await failure(createMessaging(42 as unknown as string))
    expect(e.code).toBe(ErrorCodes.CONFIG_INVALID)
  })

  it('rejects a logger that is not pino-shaped', async () => {
    const e = await failure(createMessaging('memory://', { logger: { info() {} } as never }))
    expect(e.code).toBe(ErrorCodes.CONFIG_INVALID)
    expect(e.message).toContain('logger')
  })

  it('accepts a URL and an object form for the memory transport', async () => {
    const a = await createMessaging('memory://cfg-test?maxMessageBytes=1024')
    expect(a.capabilities.maxMessageBytes).toBe(1024)
    await a.close()
    const b = await createMessaging({ transport: 'memory', broker: 'cfg-test' })
    expect(b.transport.name).toBe('memory')
    await b.close()
  })

  it('maps every registered scheme to a transport', () => {
    const schemes = Object.values(transportRegistry).flatMap((e) => e.schemes)
    expect(schemes).toEqual(expect.arrayContaining(['memory', 'kafka', 'amqp', 'amqps', 'stomp', 'sqs']))
  })
})
