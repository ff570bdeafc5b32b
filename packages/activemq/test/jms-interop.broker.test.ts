/**
 * JMS interop against the real broker, with ActiveMQ's own JMS client (OpenWire, Debian's jars) run
 * by test/interop/jms/run-jms.sh: (a) a Java consumer reads from a group's queue what msgkit
 * published; (b) Java sends TextMessage and BytesMessage with properties to the virtual topic, and a
 * msgkit subscriber receives them intact. Needs javac (the script compiles once, then caches).
 */
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { type Codec, createMessaging, defineTopic, type Message, type Messaging } from '@msgkit/core'
import { createHandlerSpy } from '@msgkit/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { activemqTransport } from '../src/index.js'

const url = process.env.MSGKIT_ACTIVEMQ_URL ?? 'stomp://msgkit:msgkit@127.0.0.1:61613'
const script = fileURLToPath(new URL('../../../test/interop/jms/run-jms.sh', import.meta.url))

/** Runs run-jms.sh; resolves with its JSON lines, fails with its stderr. */
function jms(args: string[]): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('exit', (code) =>
      code === 0
        ? resolve(
            out
              .split('\n')
              .filter((line) => line.startsWith('{'))
              .map((line) => JSON.parse(line) as Record<string, unknown>),
          )
        : reject(new Error(`run-jms.sh ${args[0]} exited with ${code}: ${err.slice(-2_000)}`)),
    )
  })
}

/** A JMS message's string properties, as the consumer printed them. */
const props = (line: Record<string, unknown> | undefined) =>
  (line?.properties ?? {}) as Record<string, unknown>
const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64')
/** A Node service that takes the Java side's bodies as bytes, whatever they are. */
const rawBytes: Codec = {
  name: 'raw',
  encode: (value) => ({ body: value as Uint8Array, contentType: 'application/octet-stream' }),
  decode: (body) => body,
}

let messaging: Messaging
beforeAll(async () => {
  messaging = await createMessaging({ transport: activemqTransport, url })
  await jms(['compile'])
}, 120_000)
afterAll(() => messaging?.close())

describe('JMS interop (ActiveMQ JMS client over OpenWire)', () => {
  it('(a) a Java consumer on a group queue reads what msgkit published: bodies, properties, key', async () => {
    const topic = `jms-a-${randomUUID().slice(0, 8)}`
    await messaging.provision(topic, 'J')
    const binary = new Uint8Array(randomBytes(1024))
    const sent = [
      await messaging.publish(
        topic,
        { order: 1, text: 'hello 안녕' },
        {
          key: 'customer-7',
          headers: { 'x-seq': '1', 'my.dot': 'a:b\nc' },
        },
      ),
      await messaging.publish(topic, binary, { key: 'customer-7', headers: { 'x-seq': '2' } }),
      await messaging.publish(topic, 'plain text ✓', { headers: { 'x-seq': '3', 'x-unicode': '안녕' } }),
    ]
    const bodies = [
      Buffer.from(JSON.stringify({ order: 1, text: 'hello 안녕' })),
      Buffer.from(binary),
      Buffer.from('plain text ✓'),
    ]
    const lines = await jms([
      'consume',
      '--group',
      'J',
      '--topic',
      topic,
      '--count',
      '3',
      '--timeout-ms',
      '15000',
    ])
    const received = lines.filter((l) => l.event === 'received')
    expect(received).toHaveLength(3)
    for (const [i, line] of received.entries()) {
      expect(line.type, `message ${i + 1}: a BytesMessage (content-length)`).toBe('bytes')
      expect(line.bodyBase64, `message ${i + 1}: body bytes`).toBe(b64(bodies[i] as Buffer))
      expect(props(line)['msgkit-id'], `message ${i + 1}: msgkit id`).toBe(sent[i]?.id)
      expect(props(line)['x-seq']).toBe(String(i + 1))
      expect(line.JMSDeliveryMode).toBe('PERSISTENT')
      expect(line.JMSDestination).toBe(`queue://Consumer.J.VirtualTopic.${topic}`)
    }
    const [first, second, third] = received as Array<Record<string, unknown>>
    expect(first?.JMSXGroupID, 'the key is the JMS group').toBe('customer-7')
    expect(props(first)['msgkit-key']).toBe('customer-7')
    expect(props(first)['my.dot']).toBe('a:b\nc')
    expect(props(second)['msgkit-content-type']).toBe('application/octet-stream')
    expect(second?.JMSXGroupID).toBe('customer-7')
    expect(third?.JMSXGroupID, 'no key, no group').toBeNull()
    expect(props(third)['x-unicode']).toBe('안녕')
  }, 60_000)

  it('(b) Java TextMessage and BytesMessage with properties reach a msgkit subscriber intact', async () => {
    const name = `jms-b-${randomUUID().slice(0, 8)}`
    const json = defineTopic<{ from: string; n: number; text: string }>(name)
    const spy = createHandlerSpy<unknown>()
    await messaging.subscribe(json, { group: 'S' }, spy.handler)
    const bytes = defineTopic<Uint8Array>(`${name}.bytes`, undefined, { codec: rawBytes })
    const raw = createHandlerSpy<Uint8Array>()
    await messaging.subscribe(bytes, { group: 'S' }, raw.handler)

    const text = JSON.stringify({ from: 'java', n: 1, text: '안녕 ✓' })
    await jms([
      'send',
      '--topic',
      name,
      '--text-base64',
      b64(text),
      '--prop',
      'n=int:42',
      '--prop',
      `s=string64:${b64('안녕 a:b')}`,
      '--prop',
      'big=long:9007199254740993',
      '--prop',
      'ok=boolean:true',
      '--prop',
      'x.dot=string:v',
      '--type',
      'OrderCreated',
      '--correlation-id',
      'c-1',
      '--group',
      'K1',
      // a Java producer that speaks msgkit's headers: content type, id and key
      '--text',
      'plain words',
      '--prop',
      'msgkit-content-type=string:text/plain; charset=utf-8',
      '--prop',
      'msgkit-id=string:java-1',
      '--prop',
      'msgkit-key=string:K2',
      '--group',
      'K2',
    ])
    const binary = new Uint8Array([0, 1, 2, 0xfe, 0xff, 0xc3, 0x28])
    await jms([
      'send',
      '--topic',
      `${name}.bytes`,
      '--bytes-base64',
      b64(binary),
      '--prop',
      'kind=string:bytes',
    ])

    const [textMessage] = (await spy.waitForCount(1, { timeoutMs: 15_000 })) as Array<Message<unknown>>
    expect(textMessage?.body).toEqual({ from: 'java', n: 1, text: '안녕 ✓' })
    expect(textMessage?.headers).toEqual({
      n: '42',
      s: '안녕 a:b',
      big: '9007199254740993',
      ok: 'true',
      'x.dot': 'v',
      type: 'OrderCreated',
      'correlation-id': 'c-1',
    })
    expect(textMessage?.topic).toBe(name)
    expect(textMessage?.id, 'the JMS message id').toMatch(/^ID:/)
    expect(textMessage?.key, 'JMSXGroupID is not delivered over STOMP').toBeUndefined()
    const plain = (await spy.waitForCount(2, { timeoutMs: 15_000 }))[1] as Message<unknown>
    expect(plain).toMatchObject({ body: 'plain words', id: 'java-1', key: 'K2', headers: {} })
    const [bytesMessage] = (await raw.waitForCount(1, { timeoutMs: 15_000 })) as Array<Message<Uint8Array>>
    expect(Buffer.from(bytesMessage?.body as Uint8Array).equals(Buffer.from(binary))).toBe(true)
    expect(bytesMessage?.headers).toEqual({ kind: 'bytes' })
  }, 60_000)
})
