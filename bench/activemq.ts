/**
 * ActiveMQ: raw stompit, raw stompit with msgkit's wire format, and msgkit, on the same broker and
 * the same destinations (a virtual topic and its group's queue), in one run. Every side publishes
 * persistent messages with a RECEIPT per SEND and TCP no-delay, and consumes `client-individual`
 * with one ACK per message after the handler, on a connection that only consumes.
 */
import { randomUUID } from 'node:crypto'
import { activemqTransport } from '@msgkit/activemq'
import { createMessaging, type Messaging, type MessagingOptions, parseBrokerUrl } from '@msgkit/core'
import stompit from 'stompit'
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
  timed,
  type Variant,
  within,
} from './harness.js'

const IN_FLIGHT = 256
const CONSUME_CONCURRENCY = 16
/** msgkit's default prefetch for concurrency 16 (8 × concurrency): the raw consumer gets the same */
const PREFETCH = 128
const LATENCY_RATE = 500
const GROUP = 'g'
const CELL_TIMEOUT_MS = 5 * 60_000

const url = (): string => process.env.BENCH_STOMP_URL ?? 'stomp://msgkit:msgkit@127.0.0.1:61613'
const where = (): string => url().replace(/\/\/[^@/]*@/, '//')
const open = (options?: MessagingOptions): Promise<Messaging> =>
  createMessaging({ transport: activemqTransport, url: url() }, options)
const topicOf = (topic: string) => `/topic/VirtualTopic.${topic}`
const queueOf = (topic: string) => `/queue/Consumer.${GROUP}.VirtualTopic.${topic}`
/** what the broker adds to a delivered frame (not part of msgkit's wire format) */
const BROKER_HEADERS = new Set(
  'message-id destination subscription ack expires priority timestamp persistent redelivered content-length original-destination'.split(
    ' ',
  ),
)

// ---- raw stompit ---------------------------------------------------------------------------------

interface Raw {
  client: stompit.Client
  /** SEND with a receipt; resolves on the RECEIPT */
  send(headers: Record<string, string>, body: Buffer): Promise<void>
  close(): Promise<void>
}

/** One raw connection: no-delay on the socket (stompit only sets it with heart-beats). */
async function connect(): Promise<Raw> {
  const u = parseBrokerUrl(url())
  const client = await new Promise<stompit.Client>((resolve, reject) => {
    const c = stompit.connect(
      {
        host: u.hosts[0]?.host ?? '127.0.0.1',
        port: u.hosts[0]?.port ?? 61613,
        connectHeaders: { host: 'localhost', login: u.username ?? '', passcode: u.password ?? '' },
      },
      (error) => (error ? reject(new Error(error.message)) : resolve(c)),
    )
    c.on('socket-connect', () =>
      (c.getTransportSocket() as { setNoDelay?(on: boolean): void }).setNoDelay?.(true),
    )
  })
  // stompit adds an 'error' listener per SEND in flight (removed on its receipt)
  client.setMaxListeners(IN_FLIGHT + 16)
  client.on('error', (error) => console.error('stompit:', error.message))
  return {
    client,
    send: (headers, body) =>
      new Promise((resolve, reject) => {
        const frame = client.send(
          { ...headers, 'content-length': String(body.byteLength) },
          { onReceipt: () => resolve(), onError: reject },
        )
        frame.end(body)
      }),
    close: () => new Promise<void>((resolve) => client.disconnect(() => resolve())),
  }
}

/** msgkit's headers with a fresh id and time (what the raw-wire side sends per message). */
function wireHeaders(template: Record<string, string>): Record<string, string> {
  return { ...template, 'msgkit-id': randomUUID(), 'msgkit-timestamp': String(Date.now()) }
}

/** Consumes `queue` on `raw`'s connection, ack per message after `handle` (body read and parsed). */
function rawSubscribe(raw: Raw, queue: string, handle: (body: unknown) => void): void {
  const headers = { destination: queue, ack: 'client-individual', 'activemq.prefetchSize': String(PREFETCH) }
  raw.client.subscribe(headers, (error, message) => {
    if (error) return
    message.readString('utf8', (readError, text) => {
      if (readError || text === undefined) return
      handle(JSON.parse(text))
      raw.client.ack(message)
    })
  })
}

// ---- cells (child processes) -------------------------------------------------------------------

const rawPublish =
  (wire: boolean): Cell =>
  async (args) => {
    const { topic, template } = args as CellArgs & { topic: string; template: Record<string, string> }
    const body = jsonBody(args.bytes)
    const raw = await connect()
    const base = { destination: topicOf(topic), persistent: 'true' }
    const one = () =>
      raw.send(wire ? { ...wireHeaders(template), ...base } : base, Buffer.from(JSON.stringify(body)))
    await pool(args.warmup, IN_FLIGHT, one)
    const ms = await timed(() => pool(args.messages, IN_FLIGHT, one))
    await raw.close()
    return { messages: args.messages, ms }
  }

const msgkitPublish =
  (batched: boolean): Cell =>
  async (args) => {
    const { topic } = args as CellArgs & { topic: string }
    const body = jsonBody(args.bytes)
    const m = await open()
    const run = (n: number) =>
      batched
        ? publishInBatches(m, topic, body, n, IN_FLIGHT)
        : pool(n, IN_FLIGHT, () => m.publish(topic, body))
    await run(args.warmup)
    const ms = await timed(() => run(args.messages))
    await m.close()
    return { messages: args.messages, ms }
  }

const rawConsume: Cell = async (args) => {
  const { topic } = args as CellArgs & { topic: string }
  const raw = await connect()
  const clock = consumeClock(args.warmup, args.messages)
  clock.start()
  rawSubscribe(raw, queueOf(topic), () => clock.hit())
  await within(clock.done, CELL_TIMEOUT_MS, `raw stompit consuming ${topic}`)
  const measured = clock.measured()
  await raw.close()
  return measured
}

const msgkitConsume: Cell = async (args) => {
  const { topic } = args as CellArgs & { topic: string }
  const m = await open()
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

/** Publish→handler latency at a fixed rate; publisher and consumer in this process, on two connections. */
const latency =
  (side: 'raw' | 'msgkit'): Cell =>
  (args) => {
    const { topic } = args as CellArgs & { topic: string }
    const base = jsonBody(args.bytes)
    return latencyRun(args, LATENCY_RATE, CELL_TIMEOUT_MS, async (record) => {
      if (side === 'msgkit') {
        const options = { group: GROUP, concurrency: CONSUME_CONCURRENCY }
        return msgkitLatencySide(await open(), topic, options, base, record)
      }
      const publisher = await connect()
      const consumer = await connect()
      rawSubscribe(consumer, queueOf(topic), (body) => record((body as { sentAt: number }).sentAt))
      const headers = { destination: topicOf(topic), persistent: 'true' }
      return {
        send: () => {
          publisher
            .send(headers, Buffer.from(JSON.stringify(stampedBody(base))))
            .catch((error) => console.error('publish failed:', error))
        },
        close: () => Promise.all([publisher.close(), consumer.close()]),
      }
    })
  }

// ---- the plan (parent) -------------------------------------------------------------------------

const v = (id: string, role: Variant['role'], label: string): Variant => ({ id, role, label })

async function plan(settings: Settings) {
  const n = (full: number): number => (settings.smoke ? 300 : (settings.messages ?? full))
  const warmup = settings.smoke ? 50 : 1_000
  const run = `msgkit-bench.${Date.now().toString(36)}`
  let raw: Raw
  try {
    raw = await connect()
  } catch (error) {
    throw new BrokerUnreachableError(
      `ActiveMQ is not reachable at ${where()} (${(error as Error).message}).\n` +
        '    Start it:  scripts/brokers/activemq.sh start\n' +
        '    Another broker:  BENCH_STOMP_URL=stomp://user:pass@host:61613 pnpm bench activemq',
    )
  }
  const messaging = await open()
  const body = jsonBody(settings.bytes)

  // msgkit's wire format for this body, read off the broker rather than assumed
  const templateTopic = `${run}.template`
  await messaging.provision(templateTopic, GROUP)
  await messaging.publish(templateTopic, body)
  const reader = await connect()
  const template = await within(
    new Promise<Record<string, string>>((resolve) => {
      reader.client.subscribe({ destination: queueOf(templateTopic), ack: 'auto' }, (error, message) => {
        if (error) return
        const headers: Record<string, string> = {}
        for (const [k, value] of Object.entries((message as unknown as { headers: object }).headers))
          if (!BROKER_HEADERS.has(k)) headers[k] = String(value)
        message.readString('utf8', () => resolve(headers))
      })
    }),
    10_000,
    'reading back the message msgkit published (template)',
  ).finally(() => reader.close())
  progress(`activemq: msgkit's wire format: headers ${Object.keys(template).join(', ')}`)

  /** `count` messages in raw form into the group's queue (through the virtual topic), confirmed */
  const fillRaw = async (topic: string, count: number, headers: () => Record<string, string>) => {
    const content = Buffer.from(JSON.stringify(body))
    const base = { destination: topicOf(topic), persistent: 'true' }
    await pool(count, IN_FLIGHT, () => raw.send({ ...headers(), ...base }, content))
  }

  const publish: Scenario = {
    id: 'publish',
    title: `publish, persistent, a RECEIPT per SEND, ${IN_FLIGHT} in flight, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(5_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', `raw stompit: SEND with receipt, ${IN_FLIGHT} in flight, no-delay`),
      v('raw-wire', 'raw-wire', "raw stompit, msgkit's wire format (same headers)"),
      v('msgkit', 'msgkit', `msgkit publish(), ${IN_FLIGHT} concurrent`),
      v('msgkit-batch', 'extra', `msgkit publishBatch() of ${IN_FLIGHT}, one at a time`),
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
      { label: 'msgkit publishBatch() / raw', a: 'msgkit-batch', b: 'raw' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.publish.${variant}`
      await messaging.provision(topic, GROUP)
      return { topic, template }
    },
  }

  const consume: Scenario = {
    id: 'consume',
    title: `consume a backlog, ack after the handler, ${settings.bytes}-byte JSON`,
    kind: 'throughput',
    messages: n(5_000),
    warmup,
    bytes: settings.bytes,
    variants: [
      v('raw', 'raw', `raw stompit: prefetch ${PREFETCH}, JSON.parse, one ACK per message`),
      v('raw-wire', 'raw-wire', "raw stompit (one ACK per message) on messages in msgkit's wire format"),
      v(
        'msgkit',
        'msgkit',
        `msgkit subscribe(), concurrency ${CONSUME_CONCURRENCY}, default prefetch (${PREFETCH})`,
      ),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'msgkit / raw', a: 'msgkit', b: 'raw' },
      { label: "msgkit / raw on msgkit's wire format (cost of our code)", a: 'msgkit', b: 'raw-wire' },
      { label: "raw on msgkit's wire format / raw (cost of the wire format)", a: 'raw-wire', b: 'raw' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.consume.${variant}`
      const count = warmup + consume.messages
      progress(`activemq ${round}: a backlog of ${count} for ${variant}`)
      await messaging.provision(topic, GROUP)
      if (variant === 'raw') await fillRaw(topic, count, () => ({}))
      else if (variant === 'raw-wire') await fillRaw(topic, count, () => wireHeaders(template))
      else await publishInBatches(messaging, topic, body, count, 500)
      return { topic }
    },
  }

  const latencyScenario: Scenario = {
    id: 'latency',
    title: `publish→handler latency at ${LATENCY_RATE} msg/s (receipted, persistent), ${settings.bytes}-byte JSON`,
    kind: 'latency',
    messages: settings.smoke ? 300 : (settings.messages ?? 2_000),
    warmup: settings.smoke ? 50 : 500,
    bytes: settings.bytes,
    variants: [
      v(
        'raw',
        'raw',
        `raw stompit: receipted SEND + a consumer on its own connection (prefetch ${PREFETCH}), paced`,
      ),
      v('msgkit', 'msgkit', `msgkit publish() + subscribe (concurrency ${CONSUME_CONCURRENCY}), paced`),
    ],
    primary: { msgkit: 'msgkit', raw: 'raw' },
    comparisons: [
      { label: 'p99 latency: msgkit / raw', a: 'msgkit', b: 'raw', of: 'p99Ms' },
      { label: 'peak RSS: msgkit / raw', a: 'msgkit', b: 'raw', of: 'rssMb' },
    ],
    async prepare(variant, round) {
      const topic = `${run}.${round}.latency.${variant}`
      await messaging.provision(topic, GROUP)
      return { topic }
    },
  }

  return {
    name: 'activemq',
    title: `ActiveMQ (stompit 1.0.0, STOMP 1.2) at ${where()}`,
    details: [
      `persistent messages, a RECEIPT per SEND, TCP no-delay and client-individual acks on every side; consumers on connections of their own; every cell connects before its clock starts and handles ${warmup.toLocaleString('en-US')} messages first`,
      `msgkit's wire format, as read off the broker: headers ${Object.keys(template).join(', ')}`,
      'consume backlogs are filled before each consume cell through the virtual topic, in that side\'s own format; "start → first" is from the subscribe call to the first message',
      `the bench's queues (Consumer.${GROUP}.VirtualTopic.${run}.*) stay on the broker, empty: STOMP cannot delete a queue`,
    ],
    scenarios: [publish, consume, latencyScenario],
    async cleanup() {
      await messaging.close().catch(() => {})
      await raw.close().catch(() => {})
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
    'consume/raw': rawConsume,
    'consume/raw-wire': rawConsume,
    'consume/msgkit': msgkitConsume,
    'latency/raw': latency('raw'),
    'latency/msgkit': latency('msgkit'),
  },
}
