/**
 * Kafka: raw kafkajs vs msgkit on the same broker, same 1 KiB JSON bodies, same concurrency, in
 * one run. Each round publishes with every variant (order rotated per round) into fresh topics
 * created beforehand, then consumes one backlog with a raw kafkajs consumer and with msgkit.
 */
import { createMessaging, type Messaging } from '@msgkit/core'
import { type Admin, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs'
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

const PARTITIONS = 3
const CONCURRENCY = 256
const BATCH = 500
const CONSUME_CONCURRENCY = 16
const ROUND_TIMEOUT_MS = 180_000

/** The Kafka bench, ready to run (connects first; throws BrokerUnreachableError when it cannot). */
export async function kafkaBench(): Promise<BenchDefinition> {
  const brokers = (process.env.BENCH_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
  const messages = envInt('BENCH_MESSAGES', 20_000)
  const rounds = envInt('BENCH_ROUNDS', 5)
  const bodyBytes = envInt('BENCH_BODY_BYTES', 1024)
  const body = jsonBody(bodyBytes)
  const run = `msgkit-bench.${Date.now().toString(36)}`
  const groups = new Set<string>()

  const kafka = new Kafka({
    clientId: 'msgkit-bench-raw',
    brokers,
    connectionTimeout: 2_000,
    retry: { retries: 1, initialRetryTime: 200 },
    logLevel: logLevel.NOTHING,
  })
  const admin: Admin = kafka.admin()
  try {
    await admin.connect()
  } catch (error) {
    await admin.disconnect().catch(() => {})
    throw new BrokerUnreachableError(
      `Kafka is not reachable at ${brokers.join(',')} (${(error as Error).message}).\n` +
        '    Start it:  scripts/brokers/kafka.sh start   (or: pnpm brokers:start kafka, docker compose up -d kafka)\n' +
        '    Another broker:  BENCH_KAFKA_BROKERS=host:9092 pnpm bench kafka',
    )
  }

  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  let messaging: Messaging | undefined
  const url = `kafka://${brokers.join(',')}?clientId=msgkit-bench&partitions=${PARTITIONS}`

  const createTopics = async (topics: string[]): Promise<void> => {
    await admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
      waitForLeaders: true,
    })
  }

  const encode = (): Buffer => Buffer.from(JSON.stringify(body))

  // ---- publish variants: each returns elapsed ms for `count` messages into `topic` -----------

  const publishers: Record<string, (topic: string, count: number) => Promise<number>> = {
    'raw-send': async (topic, count) => {
      const start = performance.now()
      await pool(count, CONCURRENCY, () =>
        producer.send({ topic, acks: -1, messages: [{ value: encode() }] }),
      )
      return performance.now() - start
    },
    'raw-batch': async (topic, count) => {
      const start = performance.now()
      for (let i = 0; i < count; i += BATCH) {
        const n = Math.min(BATCH, count - i)
        await producer.sendBatch({
          acks: -1,
          topicMessages: [{ topic, messages: Array.from({ length: n }, () => ({ value: encode() })) }],
        })
      }
      return performance.now() - start
    },
    ...msgkitPublishers(() => messaging!, body, CONCURRENCY, BATCH),
  }
  const publishOrder = Object.keys(publishers)

  // ---- consume variants: timed from the call that starts consuming to the last message -------

  const consumeRaw = async (topic: string, group: string, count: number): Promise<ConsumeTiming> => {
    groups.add(group)
    const consumer = kafka.consumer({ groupId: group, allowAutoTopicCreation: false })
    const seen = counter(count)
    const start = performance.now()
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        autoCommit: true,
        eachMessage: async ({ message }) => {
          JSON.parse(message.value!.toString('utf8'))
          seen.hit()
        },
      })
      await within(seen.done, ROUND_TIMEOUT_MS, `raw kafkajs consuming ${count} messages`)
      return timing(start, seen)
    } finally {
      await consumer.disconnect().catch(() => {})
    }
  }

  const consumeMsgkit = async (topic: string, group: string, count: number): Promise<ConsumeTiming> => {
    groups.add(group)
    // a consuming service's own instance; connecting it is not part of the timing
    const m = await createMessaging(url)
    const seen = counter(count)
    try {
      const start = performance.now()
      await m.subscribe(topic, { group, concurrency: CONSUME_CONCURRENCY }, () => {
        seen.hit()
      })
      await within(seen.done, ROUND_TIMEOUT_MS, `msgkit consuming ${count} messages`)
      return timing(start, seen)
    } finally {
      await m.close()
    }
  }

  const round = async (index: number, count: number, label: string): Promise<RoundValues> => {
    const prefix = `${run}.${label}`
    const out: RoundValues = {}
    // fresh topics, created before anything is timed
    const order = publishOrder.map((_, i) => publishOrder[(i + index) % publishOrder.length]!)
    const consumeTopic = `${prefix}.backlog`
    const rawGroup = `${prefix}.raw`
    const msgkitGroup = `${prefix}.msgkit`
    await createTopics([
      ...order.map((v) => `${prefix}.${v}`),
      consumeTopic,
      // msgkit's subscribe provisions the group's dead-letter topic; create it here so that topic
      // creation is not timed (checking that it exists still is)
      `${consumeTopic}.${msgkitGroup}.dlq`,
    ])
    for (const variant of order) {
      progress(`kafka ${label}: publishing ${count} with ${variant}`)
      const ms = await within(
        publishers[variant]!(`${prefix}.${variant}`, count),
        ROUND_TIMEOUT_MS,
        `kafka ${variant}`,
      )
      out[variant] = perSecond(count, ms)
    }

    // the backlog: msgkit must provision its group first (a group starts at the end of the topic);
    // the raw group reads from the beginning. Both read the same records.
    await messaging!.provision(consumeTopic, msgkitGroup)
    progress(`kafka ${label}: filling a backlog of ${count}`)
    for (let i = 0; i < count; i += BATCH)
      await messaging!.publishBatch(
        consumeTopic,
        Array.from({ length: Math.min(BATCH, count - i) }, () => ({ body })),
      )
    const consumers: Array<[string, () => Promise<ConsumeTiming>]> = [
      ['raw-consume', () => consumeRaw(consumeTopic, rawGroup, count)],
      ['msgkit-consume', () => consumeMsgkit(consumeTopic, msgkitGroup, count)],
    ]
    if (index % 2 === 1) consumers.reverse()
    for (const [name, consume] of consumers) {
      progress(`kafka ${label}: consuming ${count} with ${name}`)
      const t = await consume()
      out[name] = perSecond(count, t.total)
      out[`${name}-flow`] = perSecond(count - 1, t.flow)
      out[`${name}-first-ms`] = t.toFirst
    }
    return out
  }

  return {
    name: 'kafka',
    title: `Kafka (kafkajs 2.2.4) at ${brokers.join(',')}`,
    details: [
      `${messages} messages per variant per round, ${bodyBytes}-byte JSON bodies, topics with ${PARTITIONS} partitions (created before timing), no keys`,
      `producers: idempotent, acks=-1, maxInFlightRequests=1 (raw and msgkit alike); publish concurrency ${CONCURRENCY}, batches of ${BATCH}`,
      `consume: one backlog of ${messages} per round read by a raw kafkajs consumer (eachMessage, autoCommit, JSON.parse) and by msgkit (concurrency ${CONSUME_CONCURRENCY}, default prefetch); each in a new group`,
      '"incl. join" = from the consume/subscribe call (connect, group join, first fetch included) to the last message; "first→last" leaves the join out',
    ],
    metrics: [
      { id: 'raw-send', side: 'raw', label: `raw producer.send() ×1 msg, ${CONCURRENCY} concurrent` },
      { id: 'raw-batch', side: 'raw', label: `raw producer.sendBatch() of ${BATCH}, sequential` },
      { id: 'msgkit-publish', side: 'msgkit', label: `msgkit publish(), ${CONCURRENCY} concurrent` },
      { id: 'msgkit-batch', side: 'msgkit', label: `msgkit publishBatch() of ${BATCH}, sequential` },
      { id: 'raw-consume', side: 'raw', label: 'raw eachMessage+autoCommit, incl. join' },
      {
        id: 'msgkit-consume',
        side: 'msgkit',
        label: `msgkit subscribe (conc. ${CONSUME_CONCURRENCY}), incl. join`,
      },
      { id: 'raw-consume-flow', side: 'raw', label: 'raw eachMessage+autoCommit, first→last' },
      {
        id: 'msgkit-consume-flow',
        side: 'msgkit',
        label: `msgkit subscribe (conc. ${CONSUME_CONCURRENCY}), first→last`,
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
      { label: 'publish: msgkit publish() / raw send() ×1', msgkit: 'msgkit-publish', raw: 'raw-send' },
      { label: 'publish: msgkit publish() / raw sendBatch(500)', msgkit: 'msgkit-publish', raw: 'raw-batch' },
      {
        label: 'publish: msgkit publishBatch(500) / raw sendBatch(500)',
        msgkit: 'msgkit-batch',
        raw: 'raw-batch',
      },
      { label: 'consume incl. join: msgkit / raw', msgkit: 'msgkit-consume', raw: 'raw-consume' },
      { label: 'consume first→last: msgkit / raw', msgkit: 'msgkit-consume-flow', raw: 'raw-consume-flow' },
    ],
    rounds,
    async warmup() {
      await producer.connect()
      messaging = await createMessaging(url)
      await round(0, Math.min(messages, 2_000), 'warmup')
    },
    round: (index) => round(index, messages, `r${index + 1}`),
    async cleanup() {
      await messaging?.close().catch(() => {})
      await producer.disconnect().catch(() => {})
      try {
        const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${run}.`))
        if (topics.length > 0) await admin.deleteTopics({ topics })
        const existing = new Set((await admin.listGroups()).groups.map((g) => g.groupId))
        const ours = [...groups].filter((g) => existing.has(g))
        if (ours.length > 0) await admin.deleteGroups(ours)
        progress(`kafka: deleted ${topics.length} topics and ${ours.length} groups (${run}.*)`)
      } catch (error) {
        progress(`kafka: cleanup failed (${(error as Error).message}); leftovers are named ${run}.*`)
      } finally {
        await admin.disconnect().catch(() => {})
      }
    },
  }
}
