import { parseBrokerUrl } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { connectOptions, rabbitmqConfigSchema, rabbitmqFromUrl } from '../src/config.js'
import rabbitmqTransport from '../src/index.js'

const fromUrl = (url: string) => rabbitmqConfigSchema.parse(rabbitmqFromUrl(parseBrokerUrl(url)))

describe('rabbitmq config', () => {
  it('is the default export and selected by amqp:// and amqps://', () => {
    expect(rabbitmqTransport.name).toBe('rabbitmq')
    expect(rabbitmqTransport.schemes).toEqual(['amqp', 'amqps'])
    expect(rabbitmqTransport.secretFields).toContain('password')
  })

  it('has sane defaults', () => {
    const config = rabbitmqConfigSchema.parse({})
    expect(config).toMatchObject({
      hosts: [{ host: 'localhost' }],
      username: 'guest',
      password: 'guest',
      vhost: '/',
      tls: false,
      heartbeat: 10,
      queueType: 'quorum',
      singleActiveConsumer: false,
      patterns: true,
      prefix: '',
      maxMessageBytes: 16 * 1024 * 1024,
      maxDelayMs: 86_400_000,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
    })
  })

  it('maps a full URL: credentials, hosts, vhost, standard and msgkit query options', () => {
    const config = fromUrl(
      'amqp://app:s%40cret@rabbit-1:5673,rabbit-2/orders?heartbeat=5&connection_timeout=2000&queueType=classic&prefix=staging.&reconnect.maxDelayMs=500&singleActiveConsumer=true&patterns=false',
    )
    expect(config).toMatchObject({
      hosts: [{ host: 'rabbit-1', port: 5673 }, { host: 'rabbit-2' }],
      username: 'app',
      password: 's@cret',
      vhost: 'orders',
      heartbeat: 5,
      connectTimeoutMs: 2000,
      queueType: 'classic',
      prefix: 'staging.',
      singleActiveConsumer: true,
      patterns: false,
      tls: false,
    })
    expect(config.reconnect.maxDelayMs).toBe(500)
  })

  it('treats a missing or empty path as the default vhost and %2f as "/"', () => {
    expect(fromUrl('amqp://localhost').vhost).toBe('/')
    expect(fromUrl('amqp://localhost/').vhost).toBe('/')
    expect(fromUrl('amqp://localhost/%2f').vhost).toBe('/')
    expect(fromUrl('amqp://localhost/%2fprod').vhost).toBe('/prod')
  })

  it('turns TLS on for amqps://, with the RabbitMQ URI spellings of its options', () => {
    expect(fromUrl('amqps://broker').tls).toBe(true)
    const config = fromUrl(
      'amqps://broker?cacertfile=/etc/ca.pem&verify=verify_none&server_name_indication=rabbit.internal',
    )
    expect(config.tls).toEqual({
      caFile: '/etc/ca.pem',
      rejectUnauthorized: false,
      servername: 'rabbit.internal',
    })
  })

  it('rejects unknown options and bad values, naming each', () => {
    const result = rabbitmqConfigSchema.safeParse(
      rabbitmqFromUrl(parseBrokerUrl('amqp://h?heartbeet=5&queueType=stream&maxMessageBytes=999999999999')),
    )
    expect(result.success).toBe(false)
    const paths = result.error?.issues.map((i) => i.path.join('.'))
    expect(paths).toEqual(expect.arrayContaining(['queueType', 'maxMessageBytes']))
    expect(
      result.error?.issues.some((i) => i.message.includes('heartbeet') || i.path.includes('heartbeet')),
    ).toBe(true)
  })

  it('refuses a prefix RabbitMQ reserves', () => {
    expect(rabbitmqConfigSchema.safeParse({ prefix: 'amq.x' }).success).toBe(false)
  })

  it('builds amqplib connect options per host: default ports, TLS material, no password in the labels', () => {
    const plain = connectOptions(fromUrl('amqp://app:s3cret@rabbit-1:5673,rabbit-2/orders?frame_max=65536'))
    expect(plain.endpoints).toEqual(['rabbit-1:5673', 'rabbit-2:5672'])
    expect(plain.connect(1)).toMatchObject({
      protocol: 'amqp',
      hostname: 'rabbit-2',
      port: 5672,
      username: 'app',
      password: 's3cret',
      vhost: 'orders',
      frameMax: 65536,
    })
    const tls = connectOptions(
      rabbitmqConfigSchema.parse({ tls: { ca: 'CA', key: 'KEY', passphrase: 'pw', servername: 'r' } }),
    )
    expect(tls.endpoints).toEqual(['localhost:5671'])
    expect(tls.connect(0).protocol).toBe('amqps')
    expect(tls.socket).toMatchObject({ ca: ['CA'], key: 'KEY', passphrase: 'pw', servername: 'r' })
    expect(rabbitmqTransport.secretFields).toEqual(
      expect.arrayContaining(['password', 'tls.passphrase', 'tls.key']),
    )
  })
})
