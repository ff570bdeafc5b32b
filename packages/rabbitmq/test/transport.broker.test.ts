/**
 * RabbitMQ-specific behaviour the contract suite does not reach: topology, self-healing after a
 * cut / refused / frozen connection, acks from dead channels, deleted exchanges and queues.
 * A TCP proxy between transport and broker plays the network.
 */
import { randomUUID } from 'node:crypto'
import {
  type Delivery,
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
import { createRabbitmqTransport } from '../src/transport.js'

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
async function open(events: TransportEvent[] = []): Promise<Transport> {
  const config = rabbitmqConfigSchema.parse({
    hosts: [{ host: '127.0.0.1', port: proxy.port }],
    username: broker.username ?? 'guest',
    password: broker.password ?? 'guest',
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
