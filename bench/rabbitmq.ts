/**
 * RabbitMQ: raw amqplib, raw amqplib with msgkit's wire format, msgkit, and message-queue-toolkit,
 * on the same broker and the same queue type (quorum, the adapter's default), in one run.
 * Publishing is persistent with publisher confirms on every side but message-queue-toolkit's
 * (which has none; its line says so). Consuming acks after the handler on every side.
 */
import { randomUUID } from 'node:crypto'
import { createMessaging, type Messaging } from '@msgkit/core'
import { rabbitmqConfigSchema } from '@msgkit/rabbitmq'
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib'
import {
  type BenchModule,
  BrokerUnreachableError,
  type Cell,
  type CellArgs,
  consumeClock,
  jsonBody,
  latencyRun,
  msgkitLatencySide,
  pool,
  progress,
  publishInBatches,
  type Scenario,
  type Settings,
  stampedBody,
  timedCpu,
  type Variant,
  within,
} from './harness.js'
import { MQT_GUARANTEES, MqtConsumer, MqtPublisher, mqtConnection, mqtMessage } from './mqt.js'

const IN_FLIGHT = 256
const CONSUME_CONCURRENCY = 16
const RAW_PREFETCH = 1000
const LATENCY_RATE = 1_000
const GROUP = 'g'
const CELL_TIMEOUT_MS = 5 * 60_000

const url = (): string => process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const where = (): string => url().replace(/\/\/[^@/]*@/, '//')
const queueType = (): 'quorum' | 'classic' =>
  (process.env.BENCH_QUEUE_TYPE ?? rabbitmqConfigSchema.parse({}).queueType) as 'quorum' | 'classic'
/** msgkit's URL: the broker's, with the queue type when one is asked for and `params` (`patterns=false`) */
const msgkitUrl = (...params: string[]): string => {
  const all = [...(process.env.BENCH_QUEUE_TYPE ? [`queueType=${queueType()}`] : []), ...params]
  return all.length === 0 ? url() : `${url()}${url().includes('?') ? '&' : '?'}${all.join('&')}`
}

const connect = async (): Promise<ChannelModel> => {
  const c = await amqp.connect(url(), { noDelay: true, timeout: 3_000 })
  c.on('error', () => {})
  return c
}

/** What msgkit puts on the wire for one message, captured off the broker (see plan()). */
interface WireTemplate {
  options: Options.Publish
  id: string
  timestampMs: number
}

/** Publish options in msgkit's wire format for a fresh id and time (the raw-wire side builds them per message). */
function wireOptions(t: WireTemplate): Options.Publish {
  const id = randomUUID()
  const now = Date.now()
  const headers: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(t.options.headers ?? {}))
    headers[k] = v === t.id ? id : v === String(t.timestampMs) ? String(now) : v
  const options: Options.Publish = { ...t.options, messageId: id, timestamp: Math.floor(now / 1000) }
  if (t.options.headers) options.headers = headers
  return options
}

const rawOptions: Options.Publish = { persistent: true, contentType: 'application/json' }

// ---- cells (child processes) -------------------------------------------------------------------

const confirmed = (
  ch: ConfirmChannel,
  exchange: string,
  key: string,
  content: Buffer,
  options: Options.Publish,
) =>
  new Promise<void>((resolve, reject) => {
    ch.publish(exchange, key, content, options, (error: unknown) => (error ? reject(error) : resolve()))
  })

const rawPublish =
  (wire: boolean): Cell =>
  async (args) => {
    const { topic, template } = args as CellArgs & { topic: string; template: WireTemplate }
    const body = jsonBody(args.bytes)
    const c = await connect()
    const ch = await c.createConfirmChannel()
    const one = () =>
      confirmed(
        ch,
        topic,
        topic,
        Buffer.from(JSON.stringify(body)),
        wire ? wireOptions(template) : rawOptions,
      )
    await pool(args.warmup, IN_FLIGHT, one)
    const { ms, cpuMs } = await timedCpu(() => pool(args.messages, IN_FLIGHT, one))
    await c.close()
    return { messages: args.messages, ms, cpuMs }
  }

const msgkitPublish =
  (batched: boolean, params: string[] = [], unroutable?: 'ignore'): Cell =>
  async (args) => {
    const { topic } = args as CellArgs & { topic: string }
    const body = jsonBody(args.bytes)
    const m = await createMessaging(msgkitUrl(...params), unroutable ? { publish: { unroutable } } : {})
    const run = (n: number) =>
      batched
        ? publishInBatches(m, topic, body, n, IN_FLIGHT)
        : pool(n, IN_FLIGHT, () => m.publish(topic, body))
    await run(args.warmup)
    const { ms, cpuMs } = await timedCpu(() => run(args.messages))
    await m.close()
    return { messages: args.messages, ms, cpuMs }
  }

const mqtPublish: Cell = async (args) => {
  const { queue } = args as CellArgs & { queue: string }
  const body = jsonBody(args.bytes)
  const manager = mqtConnection(url())
  await manager.init()
  const publisher = new MqtPublisher(manager, queue)
  await publisher.init()
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) publisher.publish(mqtMessage(randomUUID(), body))
    // no confirms: the end is when the broker has read every publish (a round trip on that channel)
    await publisher.flushed()
  }
  await run(args.warmup)
  const { ms, cpuMs } = await timedCpu(() => run(args.messages))
  await manager.close()
  return { messages: args.messages, ms, cpuMs }
}

/** amqplib consumer, prefetch 1000: `multiple` = ack(msg, true) once per I/O turn, else one ack per message. */
const rawConsume =
  (multiple: boolean): Cell =>
  async (args) => {
    const { queue } = args as CellArgs & { queue: string }
    const c = await connect()
    const ch = await c.createChannel()
    await ch.prefetch(RAW_PREFETCH)
    const clock = consumeClock(args.warmup, args.messages)
    let last: ConsumeMessage | undefined
    let scheduled = false
    const flush = () => {
      scheduled = false
      if (last) ch.ack(last, true)
      last = undefined
    }
    clock.start()
    await ch.consume(queue, (msg) => {
      if (!msg) return
      JSON.parse(msg.content.toString('utf8'))
      if (multiple) {
        last = msg
        if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      } else ch.ack(msg)
      clock.hit()
    })
    await within(clock.done, CELL_TIMEOUT_MS, `raw amqplib consuming ${queue}`)
    const measured = clock.measured()
    flush()
    last = undefined
    await c.close()
    return measured
  }

const msgkitConsume =
  (prefetch?: number): Cell =>
  async (args) => {
    const { topic } = args as CellArgs & { topic: string }
    const m = await createMessaging(msgkitUrl())
    const clock = consumeClock(args.warmup, args.messages)
    clock.start()
    await m.subscribe(
      topic,
      { group: GROUP, concurrency: CONSUME_CONCURRENCY, ...(prefetch ? { prefetch } : {}) },
      () => {
        clock.hit()
      },
    )
    await within(clock.done, CELL_TIMEOUT_MS, `msgkit consuming ${topic}`)
    const measured = clock.measured()
    await m.close()
    return measured
  }

const mqtConsume: Cell = async (args) => {
  const { queue } = args as CellArgs & { queue: string }
  const manager = mqtConnection(url())
  await manager.init()
  const clock = consumeClock(args.warmup, args.messages)
  const consumer = new MqtConsumer(manager, queue, () => clock.hit())
  clock.start()
  await consumer.start()
  await within(clock.done, CELL_TIMEOUT_MS, `message-queue-toolkit consuming ${queue}`)
  const measured = clock.measured()
  // its last ack happens after the handler returned: let it go out before the channel closes
  await new Promise((r) => setTimeout(r, 100))
  await manager.close()
  return measured
}

/** Publish→handler latency at a fixed rate, publisher and consumer in this process. */
const latency =
  (side: 'raw' | 'msgkit'): Cell =>
  (args) => {
    const { topic, queue } = args as CellArgs & { topic: string; queue: string }
    const base = jsonBody(args.bytes)
    return latencyRun(args, LATENCY_RATE, CELL_TIMEOUT_MS, async (record) => {
      if (side === 'msgkit') {
        const m = await createMessaging(msgkitUrl())
        return msgkitLatencySide(m, topic, { group: GROUP, concurrency: CONSUME_CONCURRENCY }, base, record)
      }
      const c = await connect()
      const pub = await c.createConfirmChannel()
      const sub = await c.createChannel()
      await sub.prefetch(RAW_PREFETCH)
      await sub.consume(queue, (msg) => {
        if (!msg) return
        const body = JSON.parse(msg.content.toString('utf8')) as { sentAt: number }
        sub.ack(msg)
        record(body.sentAt)
      })
      return {
        send: () => {
          const body = Buffer.from(JSON.stringify(stampedBody(base)))
          confirmed(pub, topic, topic, body, rawOptions).catch((error) =>
            console.error('publish failed:', error),
          )
        },
        close: () => c.close(),
      }
    })
  }

// ---- the plan (parent) -------------------------------------------------------------------------

const v = (id: string, role: Variant['role'], label: string, note?: string): Variant => ({
  id,
  role,
  label,
  ...(note ? { note } : {}),
})

async function plan(settings: Settings) {
  const n = (full: number): number => (settings.smoke ? 300 : (settings.messages ?? full))
  const warmup = settings.smoke ? 50 : 2_000
  const type = queueType()
  const run = `msgkit-bench.${Date.now().toString(36)}`
  const exchanges = new Set<string>()
  const queues = new Set<string>()
  let connection: ChannelModel
  try {
    connection = await connect()
  } catch (error) {
    throw new BrokerUnreachableError(
      `RabbitMQ is not reachable at ${where()} (${(error as Error).message}).\n` +
        '    Start it:  scripts/brokers/rabbitmq.sh start   (or: pnpm brokers:start rabbitmq)\n' +
        '    Another broker:  BENCH_AMQP_URL=amqp://user:pass@host:5672 pnpm bench rabbitmq',
    )
  }
  const confirm = await connection.createConfirmChannel()
  const messaging: Messaging = await createMessaging(msgkitUrl())
  const body = jsonBody(settings.bytes)

  const declareQueue = async (queue: string): Promise<void> => {
    queues.add(queue)
    const ch = await connection.createChannel()
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': type } })
    await ch.close()
  }
  /**
   * msgkit's topology (topic exchange, group queue bound with '#'), declared by the raw client: without
   * the forward to msgkit:topics, as msgkit declares it with `patterns: false`
   */
  const declareTopic = async (topic: string): Promise<string> => {
    exchanges.add(topic)
    const queue = `${topic}.${GROUP}`
    await declareQueue(queue)
    const ch = await connection.createChannel()
    await ch.assertExchange(topic, 'topic', { durable: true })
    await ch.bindQueue(queue, topic, '#')
    await ch.close()
    return queue
  }
  /** what msgkit's subscribe declares for (topic, group), so it can be deleted */
  const trackMsgkit = (topic: string): string => {
    exchanges.add(topic)
    exchanges.add(`${topic}.${GROUP}.dlq`)
    queues.add(`${topic}.${GROUP}`)
    queues.add(`${topic}.${GROUP}.dlq.dlq`)
    return `${topic}.${GROUP}`
  }
  const remove = async (prefix: string): Promise<void> => {
    for (const [kind, set] of [
      ['queue', queues],
      ['exchange', exchanges],
    ] as const) {
      for (const name of [...set].filter((x) => x.startsWith(prefix))) {
        const ch = await connection.createChannel()
        ch.on('error', () => {})
        try {
          if (kind === 'queue') await ch.deleteQueue(name)
          else await ch.deleteExchange(name)
        } catch {
          // never declared (a cell that failed early) or already gone
        }
        set.delete(name)
        await ch.close().catch(() => {})
      }
    }
  }
  /** `count` messages in raw form straight into a queue (confirmed) */
  const fillRaw = async (queue: string, count: number, content: (i: number) => Buffer): Promise<void> => {
    for (let i = 0; i < count; i += IN_FLIGHT) {
      for (let j = i; j < Math.min(count, i + IN_FLIGHT); j++)
        confirm.sendToQueue(queue, content(j), rawOptions)
      await confirm.waitForConfirms()
    }
  }

  // msgkit's wire format for this body, read off the broker rather than assumed
  const templateTopic = `${run}.template`
  await messaging.provision(templateTopic, GROUP)
  trackMsgkit(templateTopic)
  await messaging.publish(templateTopic, body)
  const got = await (async () => {
    const ch = await connection.createChannel()
    for (let i = 0; i < 50; i++) {
      const msg = await ch.get(`${templateTopic}.${GROUP}`, { noAck: true })
      if (msg) {
        await ch.close()
        return msg
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error('could not read back the message msgkit published (template)')
  })()
  const p = got.properties
  // what the broker added on the way (quorum queues' x-delivery-count) is not msgkit's
  const headers = Object.fromEntries(Object.entries(p.headers ?? {}).filter(([k]) => !k.startsWith('x-')))
  const template: WireTemplate = {
    id: String(p.messageId),
    timestampMs: Number(p.headers?.['msgkit-timestamp'] ?? Number(p.timestamp) * 1000),
    options: {
      persistent: p.deliveryMode === 2,
      // msgkit's default `unroutable: 'warn'` publishes mandatory (basic.return)
      mandatory: true,
      ...(p.contentType ? { contentType: p.contentType } : {}),
      ...(p.messageId ? { messageId: p.messageId } : {}),
      ...(p.timestamp ? { timestamp: p.timestamp } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    },
  }
  await remove(templateTopic)
  progress(
    `rabbitmq: msgkit's wire format: properties ${Object.keys(template.options)
      .filter((k) => k !== 'headers')
      .join(', ')}; headers ${Object.keys(template.options.headers ?? {}).join(', ') || 'none'}`,
  )

  const publish: Scenario = {
    id: 'publish',
    title: `publish, persistent, ${IN_FLIGHT} unconfirmed in flight, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(20_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', `raw amqplib: publish with a confirm callback, ${IN_FLIGHT} in flight`),
      v('raw-wire', 'raw-wire', "raw amqplib, msgkit's wire format (same properties and headers, mandatory)"),
      v('msgkit', 'msgkit', `msgkit publish(), ${IN_FLIGHT} concurrent`),
      v(
        'msgkit-nopatterns',
        'extra',
        `msgkit publish(), ${IN_FLIGHT} concurrent, \`patterns: false\` (no forward to msgkit:topics)`,
      ),
      v(
        'msgkit-lean',
        'extra',
        `msgkit publish(), ${IN_FLIGHT} concurrent, \`patterns: false\` and \`unroutable: 'ignore'\` (not mandatory)`,
      ),
      v('msgkit-batch', 'extra', `msgkit publishBatch() of ${IN_FLIGHT}, one at a time`),
      v('mqt', 'peer', 'message-queue-toolkit publish() (no confirms)', MQT_GUARANTEES),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'msgkit publish() / raw', a: 'msgkit', b: 'raw' },
      {
        label: "msgkit publish() / raw with msgkit's wire format (cost of our code)",
        a: 'msgkit',
        b: 'raw-wire',
      },
      { label: "raw with msgkit's wire format / raw (cost of the wire format)", a: 'raw-wire', b: 'raw' },
      { label: 'msgkit publish() with `patterns: false` / raw', a: 'msgkit-nopatterns', b: 'raw' },
      {
        label: 'msgkit publish() / msgkit with `patterns: false` (cost of the forward to msgkit:topics)',
        a: 'msgkit',
        b: 'msgkit-nopatterns',
      },
      {
        label:
          "msgkit publish() with `patterns: false` and `unroutable: 'ignore'` / raw (the same broker work)",
        a: 'msgkit-lean',
        b: 'raw',
      },
      { label: 'msgkit publishBatch() / raw', a: 'msgkit-batch', b: 'raw' },
      { label: 'msgkit publish() (confirmed) / message-queue-toolkit (unconfirmed)', a: 'msgkit', b: 'mqt' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
      { label: 'CPU per message (client process): raw / msgkit', a: 'raw', b: 'msgkit', of: 'cpuUsPerMsg' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.publish.${variant}`
      if (variant === 'mqt') {
        await declareQueue(topic)
        return { queue: topic }
      }
      // raw sides and msgkit with `patterns: false` publish to a topic exchange without the forward
      if (variant.startsWith('raw') || variant === 'msgkit-nopatterns' || variant === 'msgkit-lean')
        await declareTopic(topic)
      else {
        trackMsgkit(topic)
        await messaging.provision(topic, GROUP)
      }
      return { topic, template }
    },
    done: (variant, round) => remove(`${run}.${round}.publish.${variant}`),
  }

  const consume: Scenario = {
    id: 'consume',
    title: `consume a backlog, ack after the handler, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(20_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', `raw amqplib: prefetch ${RAW_PREFETCH}, JSON.parse, one ack per message`),
      v(
        'raw-multi',
        'extra',
        `raw amqplib: prefetch ${RAW_PREFETCH}, JSON.parse, ack(msg, allUpTo) once per I/O turn`,
      ),
      v('raw-wire', 'raw-wire', "raw amqplib (one ack per message) on messages in msgkit's wire format"),
      v(
        'msgkit',
        'msgkit',
        `msgkit subscribe(), concurrency ${CONSUME_CONCURRENCY}, default prefetch (1,000)`,
      ),
      v(
        'msgkit-128',
        'extra',
        `msgkit subscribe(), concurrency ${CONSUME_CONCURRENCY}, prefetch 128 (the default before)`,
      ),
      v('mqt', 'peer', 'message-queue-toolkit consumer (no prefetch limit)', MQT_GUARANTEES),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'msgkit / raw (one ack per message)', a: 'msgkit', b: 'raw' },
      { label: 'msgkit / raw (acks coalesced with allUpTo)', a: 'msgkit', b: 'raw-multi' },
      { label: "msgkit / raw on msgkit's wire format (cost of our code)", a: 'msgkit', b: 'raw-wire' },
      { label: "raw on msgkit's wire format / raw (cost of the wire format)", a: 'raw-wire', b: 'raw' },
      { label: 'msgkit / message-queue-toolkit', a: 'msgkit', b: 'mqt' },
      { label: 'msgkit prefetch 1,000 / prefetch 128', a: 'msgkit', b: 'msgkit-128' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
      { label: 'CPU per message (client process): raw / msgkit', a: 'raw', b: 'msgkit', of: 'cpuUsPerMsg' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.consume.${variant}`
      const count = warmup + consume.messages
      progress(`rabbitmq ${round}: a backlog of ${count} for ${variant}`)
      if (variant === 'mqt') {
        await declareQueue(topic)
        await fillRaw(topic, count, (i) => Buffer.from(JSON.stringify(mqtMessage(String(i), body))))
        return { queue: topic }
      }
      if (variant === 'raw' || variant === 'raw-multi') {
        await declareQueue(topic)
        await fillRaw(topic, count, () => Buffer.from(JSON.stringify(body)))
        return { queue: topic }
      }
      const queue = trackMsgkit(topic)
      await messaging.provision(topic, GROUP)
      await publishInBatches(messaging, topic, body, count, 500)
      return { topic, queue }
    },
    done: (variant, round) => remove(`${run}.${round}.consume.${variant}`),
  }

  const latencyScenario: Scenario = {
    id: 'latency',
    title: `publish→handler latency at ${LATENCY_RATE.toLocaleString('en-US')} msg/s (confirmed, persistent), ${settings.bytes}-byte JSON`,
    kind: 'latency',
    messages: settings.smoke ? 300 : (settings.messages ?? 5_000),
    warmup: settings.smoke ? 50 : 1_000,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', 'raw amqplib: confirm callback publish + consumer (prefetch 1000), paced'),
      v('msgkit', 'msgkit', `msgkit publish() + subscribe (concurrency ${CONSUME_CONCURRENCY}), paced`),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'p99 latency: msgkit / raw', a: 'msgkit', b: 'raw', of: 'p99Ms' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
      { label: 'CPU per message (client process): raw / msgkit', a: 'raw', b: 'msgkit', of: 'cpuUsPerMsg' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.latency.${variant}`
      if (variant === 'raw') return { topic, queue: await declareTopic(topic) }
      trackMsgkit(topic)
      return { topic }
    },
    done: (variant, round) => remove(`${run}.${round}.latency.${variant}`),
  }

  return {
    name: 'rabbitmq',
    title: `RabbitMQ (amqplib 2.3.1) at ${where()}, ${type} queues; message-queue-toolkit 23.1.0 (core 25.4.0) as a peer`,
    details: [
      `${type} queues (the adapter's default) on every side; persistent messages; every cell connects before its clock starts and handles ${warmup.toLocaleString('en-US')} messages first`,
      `msgkit's wire format, as read off the broker: properties ${Object.keys(template.options)
        .filter((k) => k !== 'headers')
        .join(', ')}; headers ${Object.keys(template.options.headers ?? {}).join(', ') || 'none'}`,
      'consume backlogs are filled before each consume cell, in that side\'s own format; "start → first" is from the consume/subscribe call (msgkit: declarations included) to the first message',
      `message-queue-toolkit: ${MQT_GUARANTEES}`,
    ],
    scenarios: [publish, consume, latencyScenario],
    async cleanup() {
      await messaging.close().catch(() => {})
      try {
        await remove(run)
      } catch (error) {
        progress(`rabbitmq: cleanup failed (${(error as Error).message}); leftovers are named ${run}.*`)
      } finally {
        await connection.close().catch(() => {})
      }
    },
  }
}

export const bench: BenchModule = {
  plan,
  cells: {
    'publish/raw': rawPublish(false),
    'publish/raw-wire': rawPublish(true),
    'publish/msgkit': msgkitPublish(false),
    'publish/msgkit-batch': msgkitPublish(true),
    'publish/msgkit-nopatterns': msgkitPublish(false, ['patterns=false']),
    'publish/msgkit-lean': msgkitPublish(false, ['patterns=false'], 'ignore'),
    'publish/mqt': mqtPublish,
    'consume/raw': rawConsume(false),
    'consume/raw-multi': rawConsume(true),
    'consume/raw-wire': async (args) => rawConsume(false)({ ...args, queue: args.queue }),
    'consume/msgkit': msgkitConsume(),
    'consume/msgkit-128': msgkitConsume(128),
    'consume/mqt': mqtConsume,
    'latency/raw': latency('raw'),
    'latency/msgkit': latency('msgkit'),
  },
}
