/**
 * Kafka: raw kafkajs, raw kafkajs with msgkit's wire format, and msgkit on the same broker, in one
 * run. Every producer is idempotent with acks=-1 and maxInFlightRequests=1, raw and msgkit alike.
 * Topics have 3 partitions and are created before the clock starts; there are no keys.
 */
import { randomUUID } from 'node:crypto'
import { createMessaging, type Messaging, sleep } from '@msgkit/core'
import { type Admin, Kafka, type KafkaMessage, logLevel, Partitioners, type Producer } from 'kafkajs'
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

const PARTITIONS = 3
const BATCH = 500
/** msgkit publish() callers: as many as a raw batch holds, so the outbox can form batches that large */
const CONCURRENCY = BATCH
const SEND_CONCURRENCY = 256
const CONSUME_CONCURRENCY = 16
const LATENCY_RATE = 1_000
const CELL_TIMEOUT_MS = 5 * 60_000

const brokers = (): string[] => (process.env.BENCH_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
const msgkitUrl = (): string =>
  `kafka://${brokers().join(',')}?clientId=msgkit-bench&partitions=${PARTITIONS}`
const client = (id: string): Kafka =>
  new Kafka({
    clientId: id,
    brokers: brokers(),
    connectionTimeout: 3_000,
    retry: { retries: 2, initialRetryTime: 200 },
    logLevel: logLevel.NOTHING,
  })
const openProducer = async (kafka: Kafka): Promise<Producer> => {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  return producer
}
/** Kafka group names: msgkit allows no dots in a group */
const groupName = (...parts: string[]): string => parts.join('-').replace(/[^A-Za-z0-9_-]/g, '-')

/** msgkit's record headers for one message, captured off the broker (see plan()). */
interface WireTemplate {
  headers: Record<string, string>
  id: string
  timestamp: string
}

function wireRecord(t: WireTemplate, value: Buffer) {
  const id = randomUUID()
  const now = String(Date.now())
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(t.headers)) headers[k] = v === t.id ? id : v === t.timestamp ? now : v
  return { value, headers, timestamp: now }
}

// ---- cells ---------------------------------------------------------------------------------------

const rawPublish =
  (mode: 'batch' | 'send' | 'wire'): Cell =>
  async (args) => {
    const { topic, template } = args as CellArgs & { topic: string; template: WireTemplate }
    const body = jsonBody(args.bytes)
    const kafka = client('msgkit-bench-raw')
    const producer = await openProducer(kafka)
    const value = () => Buffer.from(JSON.stringify(body))
    const run = async (count: number) => {
      if (mode === 'send')
        return pool(count, SEND_CONCURRENCY, () =>
          producer.send({ topic, acks: -1, messages: [{ value: value() }] }),
        )
      for (let i = 0; i < count; i += BATCH) {
        const n = Math.min(BATCH, count - i)
        await producer.sendBatch({
          acks: -1,
          topicMessages: [
            {
              topic,
              messages: Array.from({ length: n }, () =>
                mode === 'wire' ? wireRecord(template, value()) : { value: value() },
              ),
            },
          ],
        })
      }
    }
    await run(args.warmup)
    const { ms, cpuMs } = await timedCpu(() => run(args.messages))
    await producer.disconnect()
    return { messages: args.messages, ms, cpuMs }
  }

const msgkitPublish =
  (batched: boolean): Cell =>
  async (args) => {
    const { topic } = args as CellArgs & { topic: string }
    const body = jsonBody(args.bytes)
    const m = await createMessaging(msgkitUrl())
    const run = (n: number) =>
      batched
        ? publishInBatches(m, topic, body, n, BATCH)
        : pool(n, CONCURRENCY, () => m.publish(topic, body))
    await run(args.warmup)
    const { ms, cpuMs } = await timedCpu(() => run(args.messages))
    await m.close()
    return { messages: args.messages, ms, cpuMs }
  }

const rawConsume: Cell = async (args) => {
  const { topic, group } = args as CellArgs & { topic: string; group: string }
  const consumer = client('msgkit-bench-raw').consumer({ groupId: group, allowAutoTopicCreation: false })
  const clock = consumeClock(args.warmup, args.messages)
  clock.start()
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ message }) => {
      JSON.parse(message.value!.toString('utf8'))
      clock.hit()
    },
  })
  await within(clock.done, CELL_TIMEOUT_MS, `raw kafkajs consuming ${topic}`)
  const measured = clock.measured()
  await consumer.disconnect().catch(() => {})
  return measured
}

const msgkitConsume: Cell = async (args) => {
  const { topic, group } = args as CellArgs & { topic: string; group: string }
  const m = await createMessaging(msgkitUrl())
  const clock = consumeClock(args.warmup, args.messages)
  clock.start()
  await m.subscribe(topic, { group, concurrency: CONSUME_CONCURRENCY }, () => {
    clock.hit()
  })
  await within(clock.done, CELL_TIMEOUT_MS, `msgkit consuming ${topic}`)
  const measured = clock.measured()
  await m.close()
  return measured
}

const latency =
  (side: 'raw' | 'msgkit'): Cell =>
  (args) => {
    const { topic, group } = args as CellArgs & { topic: string; group: string }
    const base = jsonBody(args.bytes)
    return latencyRun(args, LATENCY_RATE, CELL_TIMEOUT_MS, async (record) => {
      if (side === 'msgkit') {
        const m = await createMessaging(msgkitUrl())
        return msgkitLatencySide(m, topic, { group, concurrency: CONSUME_CONCURRENCY }, base, record)
      }
      const failed = (error: unknown) => console.error('publish failed:', error)
      const kafka = client('msgkit-bench-raw')
      const producer = await openProducer(kafka)
      const consumer = kafka.consumer({ groupId: group, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 })
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      let joined!: () => void
      const ready = new Promise<void>((r) => {
        joined = r
      })
      consumer.on(consumer.events.GROUP_JOIN, () => joined())
      await consumer.run({
        eachMessage: async ({ message }) => {
          record((JSON.parse(message.value!.toString('utf8')) as { sentAt: number }).sentAt)
        },
      })
      await ready
      // hand-batched: what was published while a batch was on the wire goes in the next one (one
      // send() per message cannot keep up with 1,000 msg/s on an idempotent producer here)
      let queued: Array<{ value: Buffer }> = []
      let sending = false
      const flush = (): void => {
        if (sending || queued.length === 0) return
        sending = true
        const messages = queued
        queued = []
        producer
          .sendBatch({ acks: -1, topicMessages: [{ topic, messages }] })
          .catch(failed)
          .finally(() => {
            sending = false
            flush()
          })
      }
      return {
        send: () => {
          queued.push({ value: Buffer.from(JSON.stringify(stampedBody(base))) })
          flush()
        },
        close: async () => {
          await consumer.disconnect().catch(() => {})
          await producer.disconnect().catch(() => {})
        },
      }
    })
  }

// ---- the plan --------------------------------------------------------------------------------------

const v = (id: string, role: Variant['role'], label: string, note?: string): Variant => ({
  id,
  role,
  label,
  ...(note ? { note } : {}),
})

async function plan(settings: Settings) {
  const n = (full: number): number => (settings.smoke ? 300 : (settings.messages ?? full))
  const warmup = settings.smoke ? 50 : 2_000
  const id = Date.now().toString(36)
  const run = `msgkit-bench.${id}`
  const groups = new Set<string>()
  const kafka = client('msgkit-bench-admin')
  const admin: Admin = kafka.admin()
  try {
    await admin.connect()
  } catch (error) {
    await admin.disconnect().catch(() => {})
    throw new BrokerUnreachableError(
      `Kafka is not reachable at ${brokers().join(',')} (${(error as Error).message}).\n` +
        '    Start it:  scripts/brokers/kafka.sh start   (or: pnpm brokers:start kafka)\n' +
        '    Another broker:  BENCH_KAFKA_BROKERS=host:9092 pnpm bench kafka',
    )
  }
  const messaging: Messaging = await createMessaging(msgkitUrl())
  const body = jsonBody(settings.bytes)
  const createTopics = async (topics: string[]): Promise<void> => {
    // KRaft answers metadata for a topic it just created with UNKNOWN_TOPIC_OR_PARTITION for a moment
    // (more so on a busy machine), and kafkajs's waitForLeaders only waits out LEADER_NOT_AVAILABLE:
    // ask again for up to 30 s (creating an existing topic again is a no-op)
    const until = Date.now() + 30_000
    for (;;) {
      try {
        await admin.createTopics({
          topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
          waitForLeaders: true,
        })
        return
      } catch (error) {
        if (!(error as { retriable?: boolean }).retriable || Date.now() > until) throw error
        progress(`kafka: creating ${topics.join(', ')}: ${(error as Error).message}; trying again`)
        await sleep(500)
      }
    }
  }
  const deleteTopics = async (prefix: string): Promise<void> => {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix))
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {})
  }

  // msgkit's wire format, read off the broker
  const templateTopic = `${run}.template`
  await createTopics([templateTopic])
  await messaging.publish(templateTopic, body)
  const templateGroup = groupName('msgkit-bench', id, 'template')
  groups.add(templateGroup)
  const reader = kafka.consumer({ groupId: templateGroup, allowAutoTopicCreation: false })
  await reader.connect()
  await reader.subscribe({ topics: [templateTopic], fromBeginning: true })
  const record = await within(
    new Promise<KafkaMessage>((resolve) => {
      void reader.run({ eachMessage: async ({ message }) => resolve(message) })
    }),
    60_000,
    'reading back the message msgkit published (template)',
  )
  await reader.disconnect()
  const headers: Record<string, string> = {}
  for (const [k, value] of Object.entries(record.headers ?? {}))
    if (value !== undefined) headers[k] = Buffer.isBuffer(value) ? value.toString('utf8') : String(value)
  const template: WireTemplate = {
    headers,
    id: headers['msgkit-id'] ?? '',
    timestamp: headers['msgkit-timestamp'] ?? record.timestamp,
  }
  progress(
    `kafka: msgkit's wire format: headers ${Object.keys(headers).join(', ') || 'none'}; key ${record.key ? 'set' : 'none'}`,
  )

  const publish: Scenario = {
    id: 'publish',
    title: `publish, acks=-1, idempotent, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(20_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', `raw kafkajs sendBatch() of ${BATCH}, one at a time (its docs' way to send many)`),
      v('raw-wire', 'raw-wire', `raw kafkajs sendBatch() of ${BATCH}, msgkit's wire format (headers)`),
      v('raw-send', 'extra', `raw kafkajs send() of one message, ${SEND_CONCURRENCY} concurrent`),
      v('msgkit', 'msgkit', `msgkit publish(), ${CONCURRENCY} concurrent`),
      v('msgkit-batch', 'extra', `msgkit publishBatch() of ${BATCH}, one at a time`),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: `msgkit publish() / raw sendBatch(${BATCH})`, a: 'msgkit', b: 'raw' },
      {
        label: "msgkit publish() / raw with msgkit's wire format (cost of our code)",
        a: 'msgkit',
        b: 'raw-wire',
      },
      { label: "raw with msgkit's wire format / raw (cost of the wire format)", a: 'raw-wire', b: 'raw' },
      { label: 'msgkit publish() / raw send() ×1 (target ≥ 1.0)', a: 'msgkit', b: 'raw-send' },
      { label: `msgkit publishBatch(${BATCH}) / raw sendBatch(${BATCH})`, a: 'msgkit-batch', b: 'raw' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
      { label: 'CPU per message (client process): raw / msgkit', a: 'raw', b: 'msgkit', of: 'cpuUsPerMsg' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.publish.${variant}`
      await createTopics([topic])
      return { topic, template }
    },
    done: (variant, round) => deleteTopics(`${run}.${round}.publish.${variant}`),
  }

  const consume: Scenario = {
    id: 'consume',
    title: `consume a backlog in a new group, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(20_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', 'raw kafkajs eachMessage, JSON.parse, autoCommit'),
      v('raw-wire', 'raw-wire', "raw kafkajs eachMessage on records in msgkit's wire format"),
      v('msgkit', 'msgkit', `msgkit subscribe(), concurrency ${CONSUME_CONCURRENCY}, default prefetch`),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'msgkit / raw', a: 'msgkit', b: 'raw' },
      { label: "msgkit / raw on msgkit's wire format (cost of our code)", a: 'msgkit', b: 'raw-wire' },
      { label: "raw on msgkit's wire format / raw (cost of the wire format)", a: 'raw-wire', b: 'raw' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
      { label: 'CPU per message (client process): raw / msgkit', a: 'raw', b: 'msgkit', of: 'cpuUsPerMsg' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.consume.${variant}`
      const group = groupName('msgkit-bench', id, round, variant)
      groups.add(group)
      // the group's dead-letter topic is created here, so topic creation is not timed
      await createTopics([topic, `${topic}.${group}.dlq`])
      const count = warmup + consume.messages
      progress(`kafka ${round}: a backlog of ${count} for ${variant}`)
      // a msgkit group starts at the end of the topic: provision it before the backlog, from a fresh
      // instance (the long-lived one was seen refusing a topic created seconds before, for its whole
      // deadline: UNKNOWN_TOPIC_OR_PARTITION, while the previous round's topics were being deleted)
      if (variant === 'msgkit') {
        const fresh = await createMessaging(msgkitUrl())
        await fresh.provision(topic, group).finally(() => fresh.close())
      }
      // every backlog is written by a fresh raw producer, plain or in msgkit's wire format
      const producer = await openProducer(kafka)
      const value = () => Buffer.from(JSON.stringify(body))
      for (let i = 0; i < count; i += BATCH)
        await producer.sendBatch({
          acks: -1,
          topicMessages: [
            {
              topic,
              messages: Array.from({ length: Math.min(BATCH, count - i) }, () =>
                variant === 'raw' ? { value: value() } : wireRecord(template, value()),
              ),
            },
          ],
        })
      await producer.disconnect()
      return { topic, group }
    },
    done: (variant, round) => deleteTopics(`${run}.${round}.consume.${variant}`),
  }

  const latencyScenario: Scenario = {
    id: 'latency',
    title: `publish→handler latency at ${LATENCY_RATE.toLocaleString('en-US')} msg/s (acks=-1), ${settings.bytes}-byte JSON`,
    kind: 'latency',
    messages: settings.smoke ? 300 : (settings.messages ?? 5_000),
    warmup: settings.smoke ? 50 : 1_000,
    bytes: settings.bytes,
    variants: [
      v(
        'raw',
        'raw',
        'raw kafkajs: sendBatch() of what is pending, one batch in flight + eachMessage consumer, paced',
      ),
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
      const group = groupName('msgkit-bench', id, round, 'latency', variant)
      groups.add(group)
      await createTopics([topic, `${topic}.${group}.dlq`])
      return { topic, group }
    },
    done: (variant, round) => deleteTopics(`${run}.${round}.latency.${variant}`),
  }

  return {
    name: 'kafka',
    title: `Kafka (kafkajs 2.2.4) at ${brokers().join(',')}`,
    details: [
      `topics with ${PARTITIONS} partitions, created before timing; idempotent producers with acks=-1 and maxInFlightRequests=1 on both sides; every cell connects before its clock starts and handles ${warmup.toLocaleString('en-US')} messages first`,
      `msgkit's wire format, as read off the broker: headers ${Object.keys(headers).join(', ') || 'none'}`,
      'consume: a new group per cell reads a backlog written before the cell; "start → first" is from the consume/subscribe call to the first message (group join included); msgkit groups are provisioned before their backlog (a msgkit group starts at the end of the topic)',
    ],
    scenarios: [publish, consume, latencyScenario],
    async cleanup() {
      await messaging.close().catch(() => {})
      try {
        await deleteTopics(run)
        const existing = new Set((await admin.listGroups()).groups.map((g) => g.groupId))
        const ours = [...groups].filter((g) => existing.has(g))
        if (ours.length > 0) await admin.deleteGroups(ours).catch(() => {})
      } catch (error) {
        progress(`kafka: cleanup failed (${(error as Error).message}); leftovers are named ${run}.*`)
      } finally {
        await admin.disconnect().catch(() => {})
      }
    },
  }
}

export const bench: BenchModule = {
  plan,
  cells: {
    'publish/raw': rawPublish('batch'),
    'publish/raw-wire': rawPublish('wire'),
    'publish/raw-send': rawPublish('send'),
    'publish/msgkit': msgkitPublish(false),
    'publish/msgkit-batch': msgkitPublish(true),
    'consume/raw': rawConsume,
    'consume/raw-wire': rawConsume,
    'consume/msgkit': msgkitConsume,
    'latency/raw': latency('raw'),
    'latency/msgkit': latency('msgkit'),
  },
}
