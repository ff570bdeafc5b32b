/**
 * SQS: the raw AWS SDK (one SendMessage per message, and hand-batched SendMessageBatch of 10) and
 * msgkit on the same server and the same standard queue, SQS only (fan-out off: no SNS in between),
 * in one run; msgkit with SNS fan-out as an extra line. On moto (scripts/brokers/sqs.sh) this
 * measures moto (~10 ms of server CPU per request, one Python process): read the ratios, not the
 * rates. Every side publishes a JSON body and waits for the answer; every consumer deletes after
 * its handler.
 */

import { randomUUID } from 'node:crypto'
import {
  DeleteTopicCommand,
  ListTopicsCommand,
  type ListTopicsCommandOutput,
  SNSClient,
} from '@aws-sdk/client-sns'
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs'
import { createMessaging, type Messaging, parseBrokerUrl } from '@msgkit/core'
import { createNaming, sqsConfigSchema, sqsFromUrl, sqsTransport } from '@msgkit/sqs'
import {
  type BenchModule,
  BrokerUnreachableError,
  type Cell,
  type CellArgs,
  consumeClock,
  jsonBody,
  pool,
  progress,
  publishInBatches,
  type Scenario,
  type Settings,
  timedCpu,
  type Variant,
  within,
} from './harness.js'
import { mqtMessage } from './mqt.js'
import { MQT_SQS_GUARANTEES, MqtSqsConsumer, MqtSqsPublisher } from './mqt-sqs.js'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

/** publishes awaited at once, by every side (the raw batch side: 10 per call, so IN_FLIGHT / 10 calls) */
const IN_FLIGHT = 80
const RAW_RECEIVERS = 4
const CONSUME_CONCURRENCY = 16
const GROUP = 'g'
const CELL_TIMEOUT_MS = 10 * 60_000

/** the server; moto takes any credentials */
const url = (): string =>
  process.env.BENCH_SQS_URL ?? 'sqs://test:test@us-east-1?endpoint=http://127.0.0.1:4566'
const config = (extra = '') =>
  sqsConfigSchema.parse(sqsFromUrl(parseBrokerUrl(`${url()}${url().includes('?') ? '&' : '?'}${extra}`)))
/** msgkit's config: the definition is passed, so the bench needs no registry entry for @msgkit/sqs */
const msgkit = (prefix: string, fanout: boolean) => ({
  transport: sqsTransport,
  url: `${url()}${url().includes('?') ? '&' : '?'}fanout=${fanout}&prefix=${prefix}&waitTimeSeconds=1&visibilityTimeoutSeconds=30`,
})
const sdk = () => {
  const c = config()
  return {
    region: c.region ?? 'us-east-1',
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    ...(c.credentials ? { credentials: c.credentials } : {}),
  }
}
const sqsClient = (): SQSClient => new SQSClient(sdk())

// ---- cells (child processes) -------------------------------------------------------------------

const rawPublish =
  (batched: boolean): Cell =>
  async (args) => {
    const { queueUrl } = args as CellArgs & { queueUrl: string }
    const MessageBody = JSON.stringify(jsonBody(args.bytes))
    const sqs = sqsClient()
    const QueueUrl = queueUrl
    const one = () => sqs.send(new SendMessageCommand({ QueueUrl, MessageBody }))
    const ten = async () => {
      const Entries = Array.from({ length: 10 }, (_, i) => ({ Id: `m${i}`, MessageBody }))
      const answer = await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }))
      if (answer.Failed?.length) throw new Error(`SendMessageBatch: ${answer.Failed.length} failed`)
    }
    const run = (n: number) =>
      batched ? pool(Math.ceil(n / 10), IN_FLIGHT / 10, ten) : pool(n, IN_FLIGHT, one)
    await run(args.warmup)
    const { ms, cpuMs } = await timedCpu(() => run(args.messages))
    sqs.destroy()
    return { messages: args.messages, ms, cpuMs }
  }

const msgkitPublish =
  (mode: 'single' | 'batch', fanout: boolean): Cell =>
  async (args) => {
    const { topic, prefix } = args as CellArgs & { topic: string; prefix: string }
    const body = jsonBody(args.bytes)
    const m = await createMessaging(msgkit(prefix, fanout))
    const run = (n: number) =>
      mode === 'batch'
        ? publishInBatches(m, topic, body, n, IN_FLIGHT)
        : pool(n, IN_FLIGHT, () => m.publish(topic, body))
    await run(args.warmup)
    const { ms, cpuMs } = await timedCpu(() => run(args.messages))
    await m.close()
    return { messages: args.messages, ms, cpuMs }
  }

const mqtPublish: Cell = async (args) => {
  const { queueUrl } = args as CellArgs & { queueUrl: string }
  const payload = jsonBody(args.bytes)
  const sqs = sqsClient()
  const publisher = new MqtSqsPublisher(sqs, queueUrl)
  await publisher.init()
  const run = (n: number) => pool(n, IN_FLIGHT, () => publisher.publish(mqtMessage(randomUUID(), payload)))
  await run(args.warmup)
  const { ms, cpuMs } = await timedCpu(() => run(args.messages))
  await publisher.close()
  sqs.destroy()
  return { messages: args.messages, ms, cpuMs }
}

const mqtConsume: Cell = async (args) => {
  const { queueUrl } = args as CellArgs & { queueUrl: string }
  const sqs = sqsClient()
  const clock = consumeClock(args.warmup, args.messages)
  const consumer = new MqtSqsConsumer(sqs, queueUrl, () => clock.hit())
  clock.start()
  await consumer.start()
  await within(clock.done, CELL_TIMEOUT_MS, 'message-queue-toolkit consuming')
  const measured = clock.measured()
  await consumer.close()
  sqs.destroy()
  return measured
}

/** Raw receivers: ReceiveMessage (10, long poll 1 s), JSON.parse, DeleteMessageBatch, each in a loop. */
const rawConsume: Cell = async (args) => {
  const { queueUrl } = args as CellArgs & { queueUrl: string }
  const sqs = sqsClient()
  const clock = consumeClock(args.warmup, args.messages)
  let running = true
  const receiver = async () => {
    while (running) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      )
      for (const m of Messages) JSON.parse(m.Body ?? '')
      if (Messages.length > 0) {
        const Entries = Messages.map((m, i) => ({ Id: `e${i}`, ReceiptHandle: m.ReceiptHandle }))
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries }))
      }
      for (const _ of Messages) clock.hit()
    }
  }
  clock.start()
  const receivers = Array.from({ length: RAW_RECEIVERS }, receiver)
  await within(clock.done, CELL_TIMEOUT_MS, 'raw SDK consuming')
  const measured = clock.measured()
  running = false
  await Promise.allSettled(receivers)
  sqs.destroy()
  return measured
}

const msgkitConsume: Cell = async (args) => {
  const { topic, prefix } = args as CellArgs & { topic: string; prefix: string }
  const m = await createMessaging(msgkit(prefix, false))
  const clock = consumeClock(args.warmup, args.messages)
  clock.start()
  await m.subscribe(topic, { group: GROUP, concurrency: CONSUME_CONCURRENCY }, () => {
    clock.hit()
  })
  await within(clock.done, CELL_TIMEOUT_MS, `msgkit consuming ${topic}`)
  const measured = clock.measured()
  await m.close()
  return measured
}

// ---- the plan (parent) -------------------------------------------------------------------------

const v = (id: string, role: Variant['role'], label: string, note?: string): Variant => ({
  id,
  role,
  label,
  ...(note ? { note } : {}),
})

async function plan(settings: Settings) {
  const n = (full: number): number => (settings.smoke ? 200 : (settings.messages ?? full))
  // as the runner counts it (a smoke run warms up with 50)
  const warmup = settings.smoke ? 50 : 200
  const run = `bench${Date.now().toString(36)}-`
  const sqs = sqsClient()
  const sns = new SNSClient(sdk())
  const where = config().endpoint ?? `region ${config().region}`
  try {
    await sqs.send(new ListQueuesCommand({ MaxResults: 1 }))
  } catch (error) {
    sqs.destroy()
    sns.destroy()
    throw new BrokerUnreachableError(
      `SQS is not reachable at ${where} (${(error as Error).message}).\n` +
        '    Start it:  scripts/brokers/sqs.sh start   (or: pnpm brokers:start sqs)\n' +
        '    Another server:  BENCH_SQS_URL=sqs://key:secret@region?endpoint=http://host:port pnpm bench sqs',
    )
  }
  /** the queue msgkit uses for `topic` with fan-out off (so that raw and msgkit share one queue kind) */
  const queueOf = async (prefix: string, topic: string): Promise<string> => {
    const QueueName = createNaming({ prefix, fifo: false, fanout: false }).topic(topic)
    return (await sqs.send(new CreateQueueCommand({ QueueName }))).QueueUrl as string
  }
  const messaging: Messaging = await createMessaging(msgkit(run, false))
  const body = jsonBody(settings.bytes)
  /** msgkit's wire format, as read off the queue: the attributes of one message it published */
  const wireAttributes = async (): Promise<string[]> => {
    const topic = 'wire-format'
    await messaging.provision(topic, GROUP)
    await messaging.publish(topic, body)
    const QueueUrl = await queueOf(run, topic)
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 5 }),
    )
    return Object.keys(Messages[0]?.MessageAttributes ?? {}).sort()
  }
  const attributes = await wireAttributes()

  const publish: Scenario = {
    id: 'publish',
    title: `publish to one standard queue, ${IN_FLIGHT} awaited at once, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(2_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', `raw SDK: one SendMessage per message, ${IN_FLIGHT} in flight`),
      v('raw-batch', 'extra', `raw SDK: SendMessageBatch of 10 by hand, ${IN_FLIGHT / 10} calls in flight`),
      v(
        'msgkit',
        'msgkit',
        `msgkit publish(), ${IN_FLIGHT} concurrent (the outbox batches them, 10 per call)`,
      ),
      v('msgkit-batch', 'extra', `msgkit publishBatch() of ${IN_FLIGHT}, one at a time`),
      v('mqt', 'peer', `message-queue-toolkit publish(), ${IN_FLIGHT} concurrent`, MQT_SQS_GUARANTEES),
      v(
        'msgkit-sns',
        'extra',
        `msgkit publish() with SNS fan-out (PublishBatch → 1 raw-delivery queue), ${IN_FLIGHT} concurrent`,
      ),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'msgkit publish() / raw SendMessage per message', a: 'msgkit', b: 'raw' },
      { label: 'msgkit publish() / raw SendMessageBatch by hand', a: 'msgkit', b: 'raw-batch' },
      { label: 'msgkit publishBatch() / raw SendMessageBatch by hand', a: 'msgkit-batch', b: 'raw-batch' },
      { label: 'msgkit via SNS / msgkit straight to SQS', a: 'msgkit-sns', b: 'msgkit' },
      { label: 'msgkit publish() / message-queue-toolkit publish()', a: 'msgkit', b: 'mqt' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
    ],
    async prepare(variant, round) {
      const topic = `${round}-publish-${variant}`
      if (variant.startsWith('raw') || variant === 'mqt') return { queueUrl: await queueOf(run, topic) }
      if (variant === 'msgkit-sns') {
        const sns = await createMessaging(msgkit(run, true))
        await sns.provision(topic, GROUP)
        await sns.close()
      } else await messaging.provision(topic, GROUP)
      return { topic, prefix: run }
    },
  }

  const consume: Scenario = {
    id: 'consume',
    title: `consume a backlog from one standard queue, delete after the handler, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(2_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v(
        'raw',
        'raw',
        `raw SDK: ${RAW_RECEIVERS} loops of ReceiveMessage (10, wait 1 s), JSON.parse, DeleteMessageBatch`,
      ),
      v(
        'msgkit',
        'msgkit',
        `msgkit subscribe(), concurrency ${CONSUME_CONCURRENCY} (default prefetch, up to 4 receives at once)`,
      ),
      v('mqt', 'peer', 'message-queue-toolkit consumer, 4 instances × 10 per receive', MQT_SQS_GUARANTEES),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'msgkit / raw', a: 'msgkit', b: 'raw' },
      { label: 'msgkit / message-queue-toolkit', a: 'msgkit', b: 'mqt' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
    ],
    async prepare(variant, round) {
      const topic = `${round}-consume-${variant}`
      const count = warmup + consume.messages
      progress(`sqs ${round}: a backlog of ${count} for ${variant}`)
      if (variant === 'raw' || variant === 'mqt') {
        const QueueUrl = await queueOf(run, topic)
        // each side's own format: the toolkit validates its message type on receipt
        const bodyOf = () => JSON.stringify(variant === 'mqt' ? mqtMessage(randomUUID(), body) : body)
        await pool(Math.ceil(count / 10), 8, (i) =>
          sqs.send(
            new SendMessageBatchCommand({
              QueueUrl,
              Entries: Array.from({ length: Math.min(10, count - i * 10) }, (_, j) => ({
                Id: `m${j}`,
                MessageBody: bodyOf(),
              })),
            }),
          ),
        )
        return { queueUrl: QueueUrl }
      }
      await messaging.provision(topic, GROUP)
      await publishInBatches(messaging, topic, body, count, 100)
      return { topic, prefix: run }
    },
  }

  return {
    name: 'sqs',
    title: `SQS (@aws-sdk/client-sqs 3.1175.0) at ${where}: standard queues, fan-out off unless said; message-queue-toolkit 24.2.1 (core 25.4.0) as a peer`,
    details: [
      'on moto this measures moto (Python, ~10 ms of server CPU per request): compare the ratios, not the rates; on AWS, the request count is the cost (docs/brokers/sqs.md)',
      `every cell connects before its clock starts and handles ${warmup} messages first; raw and msgkit use the same queue kind (msgkit's queue for the topic, fan-out off)`,
      `msgkit's wire format, as read off the queue: message attributes ${attributes.join(', ') || 'none'}; the raw side sends the body only`,
    ],
    scenarios: [publish, consume],
    async cleanup() {
      await messaging.close().catch(() => {})
      try {
        let NextToken: string | undefined
        do {
          const page = await sqs.send(
            new ListQueuesCommand({ QueueNamePrefix: run, MaxResults: 1000, NextToken }),
          )
          for (const QueueUrl of page.QueueUrls ?? []) await sqs.send(new DeleteQueueCommand({ QueueUrl }))
          NextToken = page.NextToken
        } while (NextToken)
        do {
          const page: ListTopicsCommandOutput = await sns.send(new ListTopicsCommand({ NextToken }))
          for (const t of page.Topics ?? [])
            if (t.TopicArn?.split(':').pop()?.startsWith(run))
              await sns.send(new DeleteTopicCommand({ TopicArn: t.TopicArn }))
          NextToken = page.NextToken
        } while (NextToken)
      } catch (error) {
        progress(`sqs: cleanup failed (${(error as Error).message}); leftovers are named ${run}*`)
      } finally {
        sqs.destroy()
        sns.destroy()
      }
    },
  }
}

export const bench: BenchModule = {
  plan,
  cells: {
    'publish/raw': rawPublish(false),
    'publish/raw-batch': rawPublish(true),
    'publish/msgkit': msgkitPublish('single', false),
    'publish/msgkit-batch': msgkitPublish('batch', false),
    'publish/msgkit-sns': msgkitPublish('single', true),
    'consume/raw': rawConsume,
    'consume/msgkit': msgkitConsume,
    'publish/mqt': mqtPublish,
    'consume/mqt': mqtConsume,
  },
}
