import { parseBrokerUrl } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { activemqConfigFromUrl, activemqConfigSchema, endpointsOf, stompOptions } from '../src/config.js'
import { activemqTransport } from '../src/index.js'

const fromUrl = (url: string) => activemqConfigSchema.parse(activemqConfigFromUrl(parseBrokerUrl(url)))

describe('ActiveMQ config', () => {
  it('defaults: localhost:61613, heart-beat 10 s, prefetch cap 500, 16 MiB bodies, delay up to 7 days', () => {
    const config = activemqConfigSchema.parse({})
    expect(endpointsOf(config)).toEqual([{ host: 'localhost', port: 61613 }])
    expect(config).toMatchObject({
      heartbeatMs: 10_000,
      connectTimeoutMs: 5_000,
      prefetchCap: 500,
      maxMessageBytes: 16 * 1024 * 1024,
      maxDelayMs: 604_800_000,
      tls: false,
    })
  })

  it('maps stomp:// URLs: failover hosts, login/passcode, vhost, options', () => {
    const config = fromUrl('stomp://app:pa%3Ass@mq1:61613,mq2/broker-a?prefetchCap=200&heartbeatMs=0')
    expect(endpointsOf(config)).toEqual([
      { host: 'mq1', port: 61613 },
      { host: 'mq2', port: 61613 },
    ])
    expect(config).toMatchObject({
      login: 'app',
      passcode: 'pa:ss',
      vhost: 'broker-a',
      prefetchCap: 200,
      heartbeatMs: 0,
    })
    expect(stompOptions(config, 1)).toMatchObject({
      host: 'mq2',
      port: 61613,
      login: 'app',
      vhost: 'broker-a',
    })
  })

  it('stomp+ssl:// turns TLS on (port 61614 by default); TLS options nest', () => {
    const config = fromUrl('stomp+ssl://mq1?tls.rejectUnauthorized=false&tls.servername=mq.example')
    expect(endpointsOf(config)).toEqual([{ host: 'mq1', port: 61614 }])
    expect(stompOptions(config, 0).tls).toEqual({ rejectUnauthorized: false, servername: 'mq.example' })
    expect(stompOptions(fromUrl('stomp+ssl://mq1'), 0).tls).toEqual({ rejectUnauthorized: true })
    expect(stompOptions(fromUrl('stomp://mq1'), 0).tls).toBeUndefined()
  })

  it('the CONNECT host header defaults to the host; no credentials means none are sent', () => {
    const options = stompOptions(fromUrl('stomp://10.1.2.3:61613'), 0)
    expect(options.vhost).toBe('10.1.2.3')
    expect(options.login).toBeUndefined()
    expect(options.passcode).toBeUndefined()
  })

  it('refuses unknown options and out-of-range values, each named', () => {
    const result = activemqConfigSchema.safeParse({
      prefetch: 10,
      prefetchCap: 0,
      maxMessageBytes: 200 * 1024 * 1024,
    })
    expect(result.success).toBe(false)
    const paths = result.error?.issues.map((i) => i.path.join('.') || i.message)
    expect(paths).toEqual(expect.arrayContaining(['prefetchCap', 'maxMessageBytes']))
    expect(JSON.stringify(result.error?.issues)).toContain('prefetch')
  })

  it('declares its secrets and schemes for core', () => {
    expect(activemqTransport.schemes).toEqual(['stomp', 'stomp+ssl'])
    expect(activemqTransport.secretFields).toEqual(['passcode', 'tls.key', 'tls.passphrase'])
  })
})
