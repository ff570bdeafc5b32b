import { parseBrokerUrl } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { clientOptions, endpointLabel, secretFields, sqsConfigSchema, sqsFromUrl } from '../src/config.js'
import sqsTransport, { sqsCapabilities } from '../src/index.js'

const fromUrl = (url: string) => sqsConfigSchema.parse(sqsFromUrl(parseBrokerUrl(url)))

describe('sqs config', () => {
  it('is the default export, selected by sqs://, with its secrets named', () => {
    expect(sqsTransport.name).toBe('sqs')
    expect(sqsTransport.schemes).toEqual(['sqs'])
    expect(secretFields).toEqual(['credentials.secretAccessKey', 'credentials.sessionToken'])
  })

  it('has defaults that need nothing but the SDK default chain', () => {
    expect(sqsConfigSchema.parse({})).toEqual({
      prefix: '',
      fifo: false,
      fanout: true,
      visibilityTimeoutSeconds: 30,
      waitTimeSeconds: 10,
      maxReceives: 4,
      maxReceiveCount: 100,
      requestTimeoutMs: 10_000,
      provisionTimeoutMs: 30_000,
      routableCacheMs: 30_000,
    })
  })

  it('maps region, endpoint, credentials and query options from a URL', () => {
    const config = fromUrl(
      'sqs://AKID:s%40cret@eu-west-1?endpoint=http://127.0.0.1:4566&fifo=true&fanout=false&prefix=staging-&visibilityTimeoutSeconds=5&credentials.sessionToken=tok',
    )
    expect(config).toMatchObject({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4566',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 's@cret', sessionToken: 'tok' },
      fifo: true,
      fanout: false,
      prefix: 'staging-',
      visibilityTimeoutSeconds: 5,
    })
    expect(fromUrl('sqs://us-east-1').credentials).toBeUndefined()
  })

  it('refuses what AWS would refuse, every field at once', () => {
    const result = sqsConfigSchema.safeParse({
      region: 'EU WEST',
      endpoint: 'ftp://x',
      prefix: 'a.b',
      waitTimeSeconds: 21,
      visibilityTimeoutSeconds: 0,
      unknown: 1,
    })
    expect(result.success).toBe(false)
    const paths = result.error?.issues.map((i) => i.path.join('.') || i.message)
    expect(paths).toEqual(
      expect.arrayContaining(['region', 'endpoint', 'prefix', 'waitTimeSeconds', 'visibilityTimeoutSeconds']),
    )
  })

  it('gives the SDK few retries and a request timeout that throws', () => {
    const options = clientOptions(fromUrl('sqs://us-east-1?endpoint=http://localhost:4566'))
    expect(options).toMatchObject({
      region: 'us-east-1',
      endpoint: 'http://localhost:4566',
      maxAttempts: 2,
      requestHandler: { requestTimeout: 10_000, throwOnRequestTimeout: true },
    })
    expect(endpointLabel(fromUrl('sqs://us-east-1?endpoint=http://localhost:4566'))).toBe('localhost:4566')
    expect(endpointLabel(fromUrl('sqs://eu-west-1'))).toBe('sqs.eu-west-1.amazonaws.com')
  })

  it('declares capabilities per configuration', () => {
    const standard = sqsCapabilities(sqsConfigSchema.parse({}))
    expect(standard).toMatchObject({
      fanout: true,
      orderedKeys: false,
      delay: { maxMs: 900_000 },
      patterns: false,
      deliveryCount: 'exact',
      unroutable: true,
      maxMessageBytes: 184_320,
      maxHeaderBytes: 12_288,
    })
    const fifo = sqsCapabilities(sqsConfigSchema.parse({ fifo: true, fanout: false }))
    expect(fifo).toMatchObject({ fanout: false, orderedKeys: 'group', delay: false, unroutable: false })
    expect(fifo.maxMessageBytes).toBe(774_144)
  })
})
