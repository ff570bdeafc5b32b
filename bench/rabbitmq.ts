/**
 * RabbitMQ: raw amqplib vs msgkit on the same broker, same 1 KiB JSON bodies, same number of
 * unconfirmed messages in flight, in one run. Every queue is of the type msgkit declares by default
 * (quorum), so both sides pay the same broker cost per message.
 */
import { createMessaging, type Messaging } from '@msgkit/core'
import { rabbitmqConfigSchema } from '@msgkit/rabbitmq'
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib'
import {
  type BenchDefinition,
  BrokerUnreachableError,
  type ConsumeTiming,
  counter,
  envInt,
  jsonBody,
  msgkitPublishers,
  perSecond,
  pool,
  progress,
  type RoundValues,
  timing,
  within,
} from './harness.js'

const IN_FLIGHT = 256
const BATCH = 500
const CONSUME_CONCURRENCY = 16
const RAW_PREFETCH = 1000
/** core's default prefetch for a subscription: concurrency × 2, at least 8 */
const DEFAULT_PREFETCH = Math.max(8, CONSUME_CONCURRENCY * 2)
const ROUND_TIMEOUT_MS = 180_000
/** the group every publish variant's queue belongs to (msgkit names it `<topic>.<group>`) */
const GROUP = 'g'

/** The RabbitMQ bench, ready to run (connects first; throws BrokerUnreachableError when it cannot). */
export async function rabbitmqBench(): Promise<BenchDefinition> {
  const url = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
  const where = url.replace(/\/\/[^@/]*@/, '//')
  const messages = envInt('BENCH_MESSAGES', 20_000)
  const rounds = envInt('BENCH_ROUNDS', 5)
  const bodyBytes = envInt('BENCH_BODY_BYTES', 1024)
  const body = jsonBody(bodyBytes)
  // the adapter's default, unless BENCH_QUEUE_TYPE asks for the other one (then for msgkit too)
  const queueType = (process.env.BENCH_QUEUE_TYPE ?? rabbitmqConfigSchema.parse({}).queueType) as
    | 'quorum'
    | 'classic'
  const msgkitUrl = process.env.BENCH_QUEUE_TYPE
    ? `${url}${url.includes('?') ? '&' : '?'}queueType=${queueType}`
    : url
  const run = `msgkit-bench.${Date.now().toString(36)}`
  const exchanges = new Set<string>()
  const queues = new Set<string>()

  let connection: ChannelModel
  try {
    // msgkit turns Nagle off on its socket; the raw client does too, so the socket is not the difference
    connection = await amqp.connect(url, { noDelay: true, timeout: 3_000 })
  } catch (error) {
    throw new BrokerUnreachableError(
      `RabbitMQ is not reachable at ${where} (${(error as Error).message}).\n` +
        '    Start it:  scripts/brokers/rabbitmq.sh start   (or: pnpm brokers:start rabbitmq, docker compose up -d rabbitmq)\n' +
        '    Another broker:  BENCH_AMQP_URL=amqp://user:pass@host:5672 pnpm bench rabbitmq',
    )
  }
  connection.on('error', () => {
    // reported through the operation that failed
  })
  const confirm: ConfirmChannel = await connection.createConfirmChannel()
  let messaging: Messaging | undefined

  /** Everything msgkit declares for (topic, group), so cleanup can delete it. */
  const track = (topic: string, group: string, subscribed: boolean): string => {
    exchanges.add(topic)
    queues.add(`${topic}.${group}`)
    if (subscribed) {
      // the group's dead-letter topic and its `dlq` group queue, provisioned by subscribe
      exchanges.add(`${topic}.${group}.dlq`)
      queues.add(`${topic}.${group}.dlq.dlq`)
    }
    return `${topic}.${group}`
  }

  /** The topology msgkit uses (topic exchange, queue bound with '#'), declared by the raw client. */
  const declareRaw = async (topic: string): Promise<void> => {
    track(topic, GROUP, false)
    const ch = await connection.createChannel()
    await ch.assertExchange(topic, 'topic', { durable: true })
    await ch.assertQueue(`${topic}.${GROUP}`, { durable: true, arguments: { 'x-queue-type': queueType } })
    await ch.bindQueue(`${topic}.${GROUP}`, topic, '#')
    await ch.close()
  }

  const remove = async (names: { queues: string[]; exchanges: string[] }): Promise<number> => {
    let n = 0
    for (const [kind, list] of [
      ['queue', names.queues],
      ['exchange', names.exchanges],
    ] as const) {
      for (const name of list) {
        // one channel per deletion: a refusal closes only that channel
        const ch = await connection.createChannel()
        ch.on('error', () => {})
        try {
          if (kind === 'queue') await ch.deleteQueue(name)
          else await ch.deleteExchange(name)
          n++
          if (kind === 'queue') queues.delete(name)
          else exchanges.delete(name)
        } catch {
          // already gone
        }
        await ch.close().catch(() => {})
      }
    }
    return n
  }

  const encode = (): Buffer => Buffer.from(JSON.stringify(body))
  const rawOptions = { persistent: true, contentType: 'application/json' }

  // ---- publish variants: each returns elapsed ms for `count` messages into `topic` -----------

  const publishers: Record<string, (topic: string, count: number) => Promise<number>> = {
    'raw-window': async (topic, count) => {
      const start = performance.now()
      for (let i = 0; i < count; i += IN_FLIGHT) {
        const n = Math.min(IN_FLIGHT, count - i)
        for (let j = 0; j < n; j++) {
          if (!confirm.publish(topic, topic, encode(), rawOptions))
            await new Promise((resolve) => confirm.once('drain', resolve))
        }
        await confirm.waitForConfirms()
      }
      return performance.now() - start
    },
    'raw-callback': async (topic, count) => {
      const start = performance.now()
      await pool(
        count,
        IN_FLIGHT,
        () =>
          new Promise<void>((resolve, reject) => {
            confirm.publish(topic, topic, encode(), rawOptions, (error: unknown) =>
              error ? reject(error) : resolve(),
            )
          }),
      )
      return performance.now() - start
    },
    ...msgkitPublishers(() => messaging!, body, IN_FLIGHT, IN_FLIGHT),
  }
  const publishOrder = Object.keys(publishers)

  // ---- consume variants: timed from the consume/subscribe call to the last message ------------

  const consumeRaw = async (queue: string, count: number): Promise<ConsumeTiming> => {
    const ch = await connection.createChannel()
    await ch.prefetch(RAW_PREFETCH)
    const seen = counter(count)
    const start = performance.now()
    try {
      await ch.consume(
        queue,
        (msg) => {
          if (!msg) return
          JSON.parse(msg.content.toString('utf8'))
          ch.ack(msg)
          seen.hit()
        },
        { noAck: false },
      )
      await within(seen.done, ROUND_TIMEOUT_MS, `raw amqplib consuming ${count} messages`)
      return timing(start, seen)
    } finally {
      await ch.close().catch(() => {})
    }
  }

  const consumeMsgkit = async (
    topic: string,
    group: string,
    count: number,
    prefetch?: number,
  ): Promise<ConsumeTiming> => {
    // a consuming service's own instance; connecting it is not part of the timing
    const m = await createMessaging(msgkitUrl)
    const seen = counter(count)
    try {
      const start = performance.now()
      await m.subscribe(
        topic,
        { group, concurrency: CONSUME_CONCURRENCY, ...(prefetch ? { prefetch } : {}) },
        () => {
          seen.hit()
        },
      )
      await within(seen.done, ROUND_TIMEOUT_MS, `msgkit consuming ${count} messages`)
      return timing(start, seen)
    } finally {
      await m.close()
    }
  }

  const round = async (index: number, count: number, label: string): Promise<RoundValues> => {
    const prefix = `${run}.${label}`
    const out: RoundValues = {}
    const order = publishOrder.map((_, i) => publishOrder[(i + index) % publishOrder.length]!)
    for (const variant of order) {
      const topic = `${prefix}.${variant}`
      // exchange and queue exist before the clock starts, declared by the side that publishes
      if (variant.startsWith('raw')) await declareRaw(topic)
      else {
        track(topic, GROUP, false)
        await messaging!.provision(topic, GROUP)
      }
      progress(`rabbitmq ${label}: publishing ${count} with ${variant}`)
      const ms = await within(publishers[variant]!(topic, count), ROUND_TIMEOUT_MS, `rabbitmq ${variant}`)
      out[variant] = perSecond(count, ms)
      // keep the broker small: the next variant starts from the same state
      await remove({ queues: [`${topic}.${GROUP}`], exchanges: [topic] })
    }

    // one backlog, fanned out to one queue per consumer (all declared by msgkit: same type and args)
    const topic = `${prefix}.backlog`
    const consumers: Array<[string, () => Promise<ConsumeTiming>]> = [
      ['raw-consume', () => consumeRaw(track(topic, 'raw', false), count)],
      [
        'msgkit-consume',
        () => {
          track(topic, 'msgkit', true)
          return consumeMsgkit(topic, 'msgkit', count)
        },
      ],
      [
        'msgkit-consume-1000',
        () => {
          track(topic, 'msgkit-1000', true)
          return consumeMsgkit(topic, 'msgkit-1000', count, RAW_PREFETCH)
        },
      ],
    ]
    for (const group of ['raw', 'msgkit', 'msgkit-1000']) {
      track(topic, group, false)
      await messaging!.provision(topic, group)
    }
    progress(`rabbitmq ${label}: filling a backlog of ${count} (×3 queues)`)
    for (let i = 0; i < count; i += BATCH)
      await messaging!.publishBatch(
        topic,
        Array.from({ length: Math.min(BATCH, count - i) }, () => ({ body })),
      )
    const consumeOrder = consumers.map((_, i) => consumers[(i + index) % consumers.length]!)
    for (const [name, consume] of consumeOrder) {
      progress(`rabbitmq ${label}: consuming ${count} with ${name}`)
      const t = await consume()
      out[name] = perSecond(count, t.total)
      out[`${name}-flow`] = perSecond(count - 1, t.flow)
      out[`${name}-first-ms`] = t.toFirst
    }
    await remove({
      queues: [...queues].filter((q) => q.startsWith(`${prefix}.`)),
      exchanges: [...exchanges].filter((e) => e.startsWith(`${prefix}.`)),
    })
    return out
  }

  return {
    name: 'rabbitmq',
    title: `RabbitMQ (amqplib 2.3.1) at ${where}, ${queueType} queues`,
    details: [
      `${messages} messages per variant per round, ${bodyBytes}-byte JSON bodies, persistent, publisher confirms; ${queueType} queues (the adapter's default) for raw and msgkit alike`,
      `publish: ${IN_FLIGHT} unconfirmed messages in flight; each variant publishes into a topic exchange with one bound ${queueType} queue, declared before timing`,
      `consume: one backlog of ${messages} fanned out to one queue per consumer; raw = amqplib prefetch ${RAW_PREFETCH}, manual ack, JSON.parse; msgkit = subscribe, concurrency ${CONSUME_CONCURRENCY}`,
      '"incl. start" = from the consume/subscribe call (msgkit: declarations, dead-letter provisioning, channel, basic.consume) to the last message; "first→last" leaves that out',
    ],
    metrics: [
      { id: 'raw-window', side: 'raw', label: `raw publish ×${IN_FLIGHT} then waitForConfirms()` },
      { id: 'raw-callback', side: 'raw', label: `raw publish with confirm callback, ${IN_FLIGHT} in flight` },
      { id: 'msgkit-publish', side: 'msgkit', label: `msgkit publish(), ${IN_FLIGHT} concurrent` },
      { id: 'msgkit-batch', side: 'msgkit', label: `msgkit publishBatch() of ${IN_FLIGHT}, sequential` },
      { id: 'raw-consume', side: 'raw', label: `raw consume, prefetch ${RAW_PREFETCH}, incl. start` },
      {
        id: 'msgkit-consume',
        side: 'msgkit',
        label: `msgkit subscribe, default prefetch (${DEFAULT_PREFETCH}), incl. start`,
      },
      {
        id: 'msgkit-consume-1000',
        side: 'msgkit',
        label: `msgkit subscribe, prefetch ${RAW_PREFETCH}, incl. start`,
      },
      { id: 'raw-consume-flow', side: 'raw', label: `raw consume, prefetch ${RAW_PREFETCH}, first→last` },
      {
        id: 'msgkit-consume-flow',
        side: 'msgkit',
        label: `msgkit subscribe, default prefetch (${DEFAULT_PREFETCH}), first→last`,
      },
      {
        id: 'msgkit-consume-1000-flow',
        side: 'msgkit',
        label: `msgkit subscribe, prefetch ${RAW_PREFETCH}, first→last`,
      },
      { id: 'raw-consume-first-ms', side: 'raw', unit: 'ms', label: 'raw: consume call → first message' },
      {
        id: 'msgkit-consume-first-ms',
        side: 'msgkit',
        unit: 'ms',
        label: 'msgkit: subscribe → first message',
      },
    ],
    ratios: [
      {
        label: 'publish: msgkit publish() / raw waitForConfirms window',
        msgkit: 'msgkit-publish',
        raw: 'raw-window',
      },
      {
        label: 'publish: msgkit publish() / raw confirm callback',
        msgkit: 'msgkit-publish',
        raw: 'raw-callback',
      },
      {
        label: `publish: msgkit publishBatch(${IN_FLIGHT}) / raw window`,
        msgkit: 'msgkit-batch',
        raw: 'raw-window',
      },
      {
        label: 'consume incl. start: msgkit default prefetch / raw',
        msgkit: 'msgkit-consume',
        raw: 'raw-consume',
      },
      {
        label: `consume incl. start: msgkit prefetch ${RAW_PREFETCH} / raw`,
        msgkit: 'msgkit-consume-1000',
        raw: 'raw-consume',
      },
      {
        label: 'consume first→last: msgkit default prefetch / raw',
        msgkit: 'msgkit-consume-flow',
        raw: 'raw-consume-flow',
      },
      {
        label: `consume first→last: msgkit prefetch ${RAW_PREFETCH} / raw`,
        msgkit: 'msgkit-consume-1000-flow',
        raw: 'raw-consume-flow',
      },
    ],
    rounds,
    async warmup() {
      messaging = await createMessaging(msgkitUrl)
      await round(0, Math.min(messages, 2_000), 'warmup')
    },
    round: (index) => round(index, messages, `r${index + 1}`),
    async cleanup() {
      await messaging?.close().catch(() => {})
      try {
        const n = await remove({ queues: [...queues], exchanges: [...exchanges] })
        if (n > 0) progress(`rabbitmq: deleted ${n} leftover queues/exchanges (${run}.*)`)
      } catch (error) {
        progress(`rabbitmq: cleanup failed (${(error as Error).message}); leftovers are named ${run}.*`)
      } finally {
        await confirm.close().catch(() => {})
        await connection.close().catch(() => {})
      }
    },
  }
}
