import { parseBrokerUrl } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { kafkaConfigFromUrl, kafkaConfigSchema } from '../src/config.js'
import kafkaTransport from '../src/index.js'
import { kafkaCapabilities } from '../src/transport.js'

const fromUrl = (url: string) => kafkaConfigSchema.safeParse(kafkaConfigFromUrl(parseBrokerUrl(url)))

describe('Kafka config', () => {
  it('defaults everything but the brokers', () => {
    const result = kafkaConfigSchema.safeParse({ brokers: ['localhost:9092'] })
    expect(result.success).toBe(true)
    expect(result.data).toMatchObject({
      clientId: 'msgkit',
      autoCreateTopics: true,
      partitions: 3,
      replicationFactor: -1,
      compression: 'none',
      idempotent: true,
      messageMaxBytes: 1_048_588,
    })
  })

  it('maps a URL with several hosts, default port and typed options', () => {
    const result = fromUrl(
      'kafka://k1:9093,k2?clientId=orders&partitions=6&autoCreateTopics=false&compression=gzip&sessionTimeout=6000&linger=5',
    )
    expect(result.success).toBe(true)
    expect(result.data).toMatchObject({
      brokers: ['k1:9093', 'k2:9092'],
      clientId: 'orders',
      partitions: 6,
      autoCreateTopics: false,
      compression: 'gzip',
      sessionTimeout: 6000,
      linger: 5,
    })
    expect(result.data?.sasl).toBeUndefined()
  })

  it('maps user:password@ to SASL (plain by default, mechanism from ?sasl=) and nested TLS options', () => {
    const plain = fromUrl('kafka://alice:s%40cret@k1:9092?ssl=true')
    expect(plain.data).toMatchObject({
      sasl: { mechanism: 'plain', username: 'alice', password: 's@cret' },
      ssl: true,
    })
    const scram = fromUrl(
      'kafka://bob:pw@k1:9092?sasl=SCRAM-SHA-512&ssl.rejectUnauthorized=false&ssl.servername=kafka.local',
    )
    expect(scram.data).toMatchObject({
      sasl: { mechanism: 'scram-sha-512', username: 'bob', password: 'pw' },
      ssl: { rejectUnauthorized: false, servername: 'kafka.local' },
    })
  })

  it('reports every bad field', () => {
    const result = kafkaConfigSchema.safeParse({
      brokers: ['no-port'],
      partitions: 0,
      compression: 'zstd',
      sasl: { mechanism: 'oauth', username: 'x', password: 'y' },
      bogus: 1,
    })
    expect(result.success).toBe(false)
    const paths = result.error?.issues.map((i) => i.path.join('.')) ?? []
    expect(paths).toEqual(
      expect.arrayContaining(['brokers.0', 'partitions', 'compression', 'sasl.mechanism']),
    )
    expect(result.error?.issues.some((i) => i.code === 'unrecognized_keys')).toBe(true)
  })

  it('needs a broker, and a heartbeat below the session timeout', () => {
    expect(fromUrl('kafka://?clientId=x').success).toBe(false)
    const hb = fromUrl('kafka://k:1?sessionTimeout=6000&heartbeatInterval=6000')
    expect(hb.error?.issues.map((i) => i.path.join('.'))).toContain('heartbeatInterval')
  })

  it('names the secret fields', () => {
    expect(kafkaTransport.secretFields).toEqual(['sasl.password', 'ssl.key', 'ssl.passphrase'])
    expect(kafkaTransport.schemes).toEqual(['kafka'])
  })

  it('declares a body limit that leaves room for headers, key and record overhead', () => {
    const config = kafkaConfigSchema.parse({ brokers: ['k:9092'] })
    const caps = kafkaCapabilities(config)
    expect(caps.maxMessageBytes + caps.maxHeaderBytes).toBeLessThan(config.messageMaxBytes - 4096)
    expect(caps).toMatchObject({
      delay: false,
      patterns: true,
      orderedKeys: 'group',
      deliveryCount: 'none',
      unroutable: false,
      persistence: true,
      fanout: true,
    })
  })
})
