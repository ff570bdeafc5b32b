/**
 * RabbitMQ-specific behaviour the contract suite does not reach: topology, self-healing after a
 * cut / refused / frozen connection, acks from dead channels, deleted exchanges and queues.
 * A TCP proxy between transport and broker plays the network.
 */
import { randomUUID } from 'node:crypto'
import {
  createMessaging,
  type Delivery,
  definePattern,
  ErrorCodes,
  type OutgoingMessage,
  parseBrokerUrl,
  silentLogger,
  type Transport,
  type TransportEvent,
  uuidv7,
} from '@msgkit/core'
import { startTcpProxy, type TcpProxy } from '@msgkit/testkit'
import amqp, { type ChannelModel } from 'amqplib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { rabbitmqConfigSchema } from '../src/config.js'
import { MAX_HEADER_BYTES } from '../src/mapping.js'
import { createRabbitmqTransport } from '../src/transport.js'
import { publishRawFrames } from './support/raw-publish.js'

const brokerUrl = process.env.MSGKIT_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const broker = parseBrokerUrl(brokerUrl)
const target = { host: broker.hosts[0]?.host ?? '127.0.0.1', port: broker.hosts[0]?.port ?? 5672 }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

function message(text: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: uuidv7(), headers: {}, body: Buffer.from(text), timestamp: Date.now(), ...extra }
}

let proxy: TcpProxy
let admin: ChannelModel
const opened: Transport[] = []

/** A transport that talks to the broker through the proxy, with fast heartbeats and backoff. */
async function open(events: TransportEvent[] = [], options: { patterns?: boolean } = {}): Promise<Transport> {
  const config = rabbitmqConfigSchema.parse({
    ...options,
    hosts: [{ host: '127.0.0.1', port: proxy.port }],
    username: broker.username ?? 'guest',
    password: broker.password ?? 'guest',
    vhost: broker.path || '/',
    heartbeat: 1,
    queueExpiresMs: 600_000,
    reconnect: { initialDelayMs: 50, maxDelayMs: 250 },
  })
  const transport = createRabbitmqTransport(config, {
    logger: silentLogger,
    emit: (e) => events.push(e),
    secrets: [],
    scrub: (text) => text,
  })
  opened.push(transport)
  await transport.connect()
  return transport
}

/** Runs `work` on a throwaway admin channel (a failed passive check closes its channel). */
async function onAdminChannel<T>(work: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const ch = await admin.createChannel()
  ch.on('error', () => {})
  try {
    return await work(ch)
  } finally {
    await ch.close().catch(() => {})
  }
}

beforeAll(async () => {
  proxy = await startTcpProxy(target)
  admin = await amqp.connect(brokerUrl)
  admin.on('error', () => {})
})

afterEach(async () => {
  proxy.thaw()
  await proxy.open().catch(() => {})
  await Promise.all(opened.splice(0).map((t) => t.close()))
})

afterAll(async () => {
  await admin?.close().catch(() => {})
  await proxy?.close()
})

describe('rabbitmq topology', () => {
  it('declares a durable topic exchange per topic and a quorum queue <topic>.<group> bound to it', async () => {
    const transport = await open()
    const topic = `t-${randomUUID()}`
    await transport.provision(topic, 'mail')
    await onAdminChannel((ch) => ch.checkExchange(topic))
    await onAdminChannel((ch) => ch.checkQueue(`${topic}.mail`))
    // same arguments: accepted; a classic declaration of it would be refused (406)
    await onAdminChannel((ch) =>
      ch.assertQueue(`${topic}.mail`, {
        durable: true,
        arguments: { 'x-queue-type': 'quorum', 'x-expires': 600_000 },
      }),
    )
    await expect(
      onAdminChannel((ch) =>
        ch.assertQueue(`${topic}.mail`, { durable: true, arguments: { 'x-queue-type': 'classic' } }),
      ),
    ).rejects.toThrow(/PRECONDITION_FAILED/)
    // published to the exchange by anyone: it lands in the group's queue
    await transport.send(topic, [message('one')], { deadline: Date.now() + 5_000 })
    let count = 0
    for (let i = 0; i < 50 && count === 0; i++) {
      count = await onAdminChannel(async (ch) => (await ch.checkQueue(`${topic}.mail`)).messageCount)
      if (count === 0) await sleep(50)
    }
    expect(count).toBe(1)
  })

  it('delays with a per-delay wait queue that dead-letters back to the topic', async () => {
    const transport = await open()
    const topic = `t-${randomUUID()}`
    const got: Array<{ at: number; body: string }> = []
    await transport.subscribe({ topic, group: 'g', prefetch: 10 }, async (d) => {
      got.push({ at: Date.now(), body: Buffer.from(d.message.body).toString() })
      await d.ack()
    })
    const sent = Date.now()
    await transport.send(topic, [message('later', { delayMs: 1_500 }), message('now')], {
      deadline: Date.now() + 5_000,
    })
    await onAdminChannel((ch) => ch.checkQueue(`msgkit:delay:1500:${topic}`))
    await until(() => got.length === 2, 'both messages')
    expect(got.map((g) => g.body)).toEqual(['now', 'later'])
    expect((got[1]?.at ?? 0) - sent).toBeGreaterThanOrEqual(1_450)
  })

  it('routes a trailing > pattern to one or more segments, never zero', async () => {
    const transport = await open()
    const base = `t-${randomUUID()}`
    const topics: string[] = []
    await transport.subscribe({ pattern: `${base}.>`, group: 'p', prefetch: 10 }, async (d) => {
      topics.push(d.message.topic)
      await d.ack()
    })
    for (const t of [base, `${base}.a`, `${base}.a.b`, `${base}x.a`]) {
      await transport.send(t, [message(t)], { deadline: Date.now() + 5_000 })
    }
    await until(() => topics.length >= 2, 'two pattern deliveries')
    await sleep(500)
    expect(topics.sort()).toEqual([`${base}.a`, `${base}.a.b`])
  })

  it('patterns: false declares topics without the forward to msgkit:topics and refuses pattern subscriptions', async () => {
    const withPatterns = await open()
    const without = await open([], { patterns: false })
    expect(without.capabilities.patterns).toBe(false)
    const base = `t-${randomUUID()}`
    const topics: string[] = []
    await withPatterns.subscribe({ pattern: `${base}.*`, group: 'p', prefetch: 10 }, async (d) => {
      topics.push(d.message.topic)
      await d.ack()
    })
    // declared by the transport without patterns: RabbitMQ routes it to its own queues only
    await without.send(`${base}.off`, [message('off')], { deadline: Date.now() + 5_000 })
    await withPatterns.send(`${base}.on`, [message('on')], { deadline: Date.now() + 5_000 })
    await until(() => topics.length >= 1, 'the pattern delivery')
    await without.send(`${base}.off`, [message('off again')], { deadline: Date.now() + 5_000 })
    await sleep(500)
    expect(topics).toEqual([`${base}.on`])
    // the URL spelling; core refuses a pattern subscription before anything is declared
    const messaging = await createMessaging(
      `${brokerUrl}${brokerUrl.includes('?') ? '&' : '?'}patterns=false`,
      {
        logger: silentLogger,
      },
    )
    try {
      await expect(
        messaging.subscribe(definePattern(`${base}.*`), { group: 'p2' }, () => {}),
      ).rejects.toMatchObject({ code: ErrorCodes.CAPABILITY_UNSUPPORTED })
    } finally {
      await messaging.close()
    }
  })
})

describe('rabbitmq connection recovery', () => {
  it('after a cut: reports it, reconnects, restores the consumer; an ack from the dead channel is a no-op', async () => {
    const events: TransportEvent[] = []
    const transport = await open(events)
    const topic = `t-${randomUUID()}`
    const deliveries: Delivery[] = []
    await transport.subscribe({ topic, group: 'g', prefetch: 5 }, async (d) => {
      deliveries.push(d)
    })
    await transport.send(topic, [message('first')], { deadline: Date.now() + 5_000 })
    const stale = await until(() => deliveries[0], 'first delivery')
    expect(stale.message.attempt).toBe(1)

    events.length = 0
    proxy.cut()
    await until(() => events.some((e) => e.type === 'connected'), 'connected again')
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['disconnected', 'reconnecting', 'connected']),
    )
    // the broker put it back when the channel died; acking the old tag must not hurt the new channel
    await stale.ack()
    await stale.ack()
    const again = await until(() => deliveries[1], 'redelivery')
    expect(again.message.id).toBe(stale.message.id)
    expect(again.message.redelivered).toBe(true)
    expect(again.message.attempt).toBe(2)
    await again.ack()

    await transport.send(topic, [message('second')], { deadline: Date.now() + 5_000 })
    const next = await until(() => deliveries[2], 'a delivery after the reconnect')
    expect(Buffer.from(next.message.body).toString()).toBe('second')
    await next.ack()
    await sleep(300)
    expect(deliveries).toHaveLength(3)
    expect(events.filter((e) => e.type === 'error')).toEqual([])
  })

  it('a publish during an outage waits and is confirmed once the broker is reachable again', async () => {
    const events: TransportEvent[] = []
    const transport = await open(events)
    const topic = `t-${randomUUID()}`
    const got: string[] = []
    await transport.subscribe({ topic, group: 'g', prefetch: 5 }, async (d) => {
      got.push(d.message.id)
      await d.ack()
    })
    await proxy.refuse()
    await until(() => events.some((e) => e.type === 'disconnected'), 'disconnected')
    const m = message('during outage')
    const sending = transport.send(topic, [m], { deadline: Date.now() + 15_000 })
    await sleep(800)
    await proxy.open()
    await sending
    await until(() => got.includes(m.id), 'the message sent during the outage')
  })

  it('a publish whose deadline passes during an outage rejects with MSGKIT_PUBLISH_TIMEOUT', async () => {
    const events: TransportEvent[] = []
    const transport = await open(events)
    await proxy.refuse()
    await until(() => events.some((e) => e.type === 'disconnected'), 'disconnected')
    const started = Date.now()
    await expect(
      transport.send(`t-${randomUUID()}`, [message('x')], { deadline: Date.now() + 700 }),
    ).rejects.toMatchObject({
      code: ErrorCodes.PUBLISH_TIMEOUT,
    })
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('a frozen broker: the confirm never comes, the deadline rejects, the heartbeat notices and we reconnect', async () => {
    const events: TransportEvent[] = []
    const transport = await open(events)
    const topic = `t-${randomUUID()}`
    await transport.provision(topic, 'g')
    events.length = 0
    proxy.freeze()
    await expect(
      transport.send(topic, [message('x')], { deadline: Date.now() + 1_000 }),
    ).rejects.toMatchObject({
      code: ErrorCodes.PUBLISH_TIMEOUT,
    })
    await until(() => events.some((e) => e.type === 'disconnected'), 'heartbeat timeout', 10_000)
    proxy.thaw()
    await until(() => events.some((e) => e.type === 'connected'), 'connected again')
    await transport.send(topic, [message('y')], { deadline: Date.now() + 5_000 })
  })

  it('heals a deleted exchange (publish) and a deleted queue (consumer)', async () => {
    const transport = await open()
    const topic = `t-${randomUUID()}`
    const got: string[] = []
    await transport.subscribe({ topic, group: 'g', prefetch: 5 }, async (d) => {
      got.push(Buffer.from(d.message.body).toString())
      await d.ack()
    })
    await transport.send(topic, [message('before')], { deadline: Date.now() + 5_000 })
    await until(() => got.includes('before'), 'first message')

    // queue deleted: RabbitMQ cancels the consumer; it comes back and declares the queue again
    await onAdminChannel((ch) => ch.deleteQueue(`${topic}.g`))
    await sleep(1_000)
    await transport.send(topic, [message('after queue')], { deadline: Date.now() + 5_000 })
    await until(() => got.includes('after queue'), 'a message after the queue was deleted')

    // exchange deleted: the publish channel dies with 404, the exchange is declared again
    await onAdminChannel((ch) => ch.deleteExchange(topic))
    await transport.send(topic, [message('after exchange')], { deadline: Date.now() + 5_000 })
    await onAdminChannel((ch) => ch.checkExchange(topic))
  })
})

describe('rabbitmq publish batches', () => {
  it('a batch across two topics, one exchange deleted behind our back: all confirmed, none lost or doubled', async () => {
    const transport = await open()
    const [gone, fine] = [`t-${randomUUID()}`, `t-${randomUUID()}`]
    const got: string[] = []
    await transport.subscribe({ topic: fine, group: 'g', prefetch: 50 }, async (d) => {
      got.push(Buffer.from(d.message.body).toString())
      await d.ack()
    })
    // warm the topology cache, then delete one exchange: its next publish closes the channel (404)
    await transport.send(gone, [message('warm')], { deadline: Date.now() + 5_000 })
    await onAdminChannel((ch) => ch.deleteExchange(gone))
    // sent at once, these share the outbox's next batches on one confirm channel
    const sent = Array.from({ length: 20 }, (_, i) => `${i % 2 ? 'fine' : 'gone'}-${i}`)
    await Promise.all(
      sent.map((body) =>
        transport.send(body.startsWith('fine') ? fine : gone, [message(body)], {
          deadline: Date.now() + 10_000,
        }),
      ),
    )
    await until(() => got.length >= 10, "fine's 10 messages")
    await sleep(500)
    expect(got.sort()).toEqual(sent.filter((b) => b.startsWith('fine')).sort())
    // declared again by the retry (a group queue bound to the old exchange lost its binding with it)
    await onAdminChannel((ch) => ch.checkExchange(gone))
  })
})

describe('rabbitmq unroutable publishes (mandatory + basic.return)', () => {
  it('the broker returns an unroutable mandatory message before it acks it', async () => {
    const ch = await admin.createConfirmChannel()
    const exchange = `t-${randomUUID()}`
    const queue = `${exchange}.q`
    try {
      await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: true })
      await ch.assertQueue(queue, { durable: false, arguments: { 'x-expires': 60_000 } })
      await ch.bindQueue(queue, exchange, 'routed')
      const order: string[] = []
      ch.on('return', (m) => order.push(`return ${m.properties.messageId}`))
      await Promise.all(
        ['lost', 'routed'].map(
          (key) =>
            new Promise<void>((resolve) =>
              ch.publish(exchange, key, Buffer.from('x'), { mandatory: true, messageId: key }, () => {
                order.push(`ack ${key}`)
                resolve()
              }),
            ),
        ),
      )
      expect(order.indexOf('return lost')).toBeGreaterThanOrEqual(0)
      expect(order.indexOf('return lost')).toBeLessThan(order.indexOf('ack lost'))
      expect(order).not.toContain('return routed')
    } finally {
      await ch.deleteQueue(queue).catch(() => {})
      await ch.close().catch(() => {})
    }
  })

  it('detectUnroutable: rejects MSGKIT_UNROUTABLE with the ids once all are confirmed; routed sends resolve', async () => {
    const transport = await open()
    const topic = `t-${randomUUID()}`
    const lost = [message('a'), message('b'), message('c')]
    const error = await transport
      .send(topic, lost, { deadline: Date.now() + 5_000, detectUnroutable: true })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toMatchObject({
      code: ErrorCodes.UNROUTABLE,
      details: { topic, ids: lost.map((m) => m.id) },
    })
    // without the option: confirmed and silently dropped, as before
    await transport.send(topic, [message('d')], { deadline: Date.now() + 5_000 })
    await transport.provision(topic, 'g')
    await transport.send(topic, [message('e')], { deadline: Date.now() + 5_000, detectUnroutable: true })
  })
})

describe('rabbitmq limits', () => {
  it('headers up to maxHeaderBytes (msgkit headers counted) arrive intact; one byte more is refused', async () => {
    const messaging = await createMessaging(
      `${brokerUrl}${brokerUrl.includes('?') ? '&' : '?'}queueExpiresMs=600000`,
    )
    try {
      expect(messaging.capabilities.maxHeaderBytes).toBe(MAX_HEADER_BYTES)
      const topic = `t-${randomUUID()}`
      const got: Array<Record<string, string>> = []
      await messaging.subscribe(topic, { group: 'g' }, (m) => {
        got.push(m.headers)
      })
      // what core reserves for its own: msgkit-id (a uuid) and msgkit-timestamp (13 digits), which
      // an adapter may have to fold into headers (RabbitMQ carries both natively); JSON needs no
      // content-type header
      const own = 'msgkit-id'.length + 36 + 'msgkit-timestamp'.length + 13
      const fits = 'h'.repeat(MAX_HEADER_BYTES - own - 'big'.length)
      await messaging.publish(topic, { n: 1 }, { headers: { big: fits } })
      await until(() => got.length === 1, 'the message with the largest headers')
      expect(got[0]?.big).toBe(fits)
      await expect(
        messaging.publish(topic, { n: 2 }, { headers: { big: `${fits}h` } }),
      ).rejects.toMatchObject({
        code: ErrorCodes.MESSAGE_TOO_LARGE,
      })
    } finally {
      await messaging.close()
    }
  })

  it("RabbitMQ takes a foreign content header up to frame_max, past amqplib's 64 KiB", async () => {
    const transport = await open()
    const topic = `t-${randomUUID()}`
    const got: Delivery[] = []
    await transport.subscribe({ topic, group: 'g', prefetch: 5 }, async (d) => {
      got.push(d)
      await d.ack()
    })
    await publishRawFrames(brokerUrl, topic, topic, Buffer.from('{}'), { huge: 'h'.repeat(130_000) })
    await until(() => got.length === 1, 'the foreign message with a 130,000-byte header')
    expect(got[0]?.message.headers.huge?.length).toBe(130_000)
    // over frame_max (131,072): RabbitMQ closes the connection (FRAME_ERROR)
    await expect(
      publishRawFrames(brokerUrl, topic, topic, Buffer.from('{}'), { huge: 'h'.repeat(140_000) }),
    ).rejects.toThrow()
  })
})

describe('rabbitmq errors across several hosts', () => {
  for (const hosts of ['127.0.0.1:5999,127.0.0.1:5672', '127.0.0.1:5672,127.0.0.1:5999']) {
    it(`a refused login wins over a dead port: ${hosts}`, async () => {
      const target = `${broker.hosts[0]?.host ?? '127.0.0.1'}:${broker.hosts[0]?.port ?? 5672}`
      const url = `amqp://guest:WRONG-pw-4711@${hosts.replace('127.0.0.1:5672', target)}`
      const error = await createMessaging(url).then(
        async (m) => {
          await m.close()
          return undefined
        },
        (e: unknown) => e as { code: string; retriable: boolean; message: string },
      )
      expect(error).toMatchObject({ code: ErrorCodes.AUTH_FAILED, retriable: false })
      // what each host said, and never the password
      expect(error?.message).toMatch(/ACCESS_REFUSED/)
      expect(error?.message).toMatch(/127\.0\.0\.1:5999: .*ECONNREFUSED/)
      expect(error?.message).not.toContain('WRONG-pw-4711')
    })
  }
})
