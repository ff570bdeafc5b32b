/**
 * Raw-SDK probe: what an SQS/SNS-compatible server (moto, started by scripts/brokers/sqs.sh) does
 * with the real AWS SDK v3 clients, before any adapter code exists. Each check prints what it saw:
 * ✓ = as AWS documents it (or just a measurement), ✗ = the server differs from what AWS documents
 * ("≠AWS", expected on moto: see docs/brokers/sqs.md) or the check threw. Ends with raw throughput.
 * Exits non-zero only when the server cannot be reached or a setup step fails.
 *
 *   pnpm --filter @msgkit/sqs probe                       # all checks + throughput
 *   pnpm --filter @msgkit/sqs probe -- --only fifo,sns    # some sections
 *   pnpm --filter @msgkit/sqs probe -- --restart          # also restart the server mid-stream
 *
 * Environment: SQS_ENDPOINT (default http://127.0.0.1:4566), PROBE_N messages per throughput run
 * (default 2000), PROBE_JSON=file to write the results as JSON. Everything it creates is named
 * `probe-<run>-…` and deleted at the end.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  PublishBatchCommand,
  PublishCommand,
  SNSClient,
  type MessageAttributeValue as SnsAttr,
  SubscribeCommand,
} from '@aws-sdk/client-sns'
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  type Message,
  type MessageAttributeValue,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

const endpoint = process.env.SQS_ENDPOINT ?? 'http://127.0.0.1:4566'
const N = Number(process.env.PROBE_N ?? 2000)
const args = process.argv.slice(2).filter((a) => a !== '--')
const onlyArg = args.indexOf('--only')
const only = onlyArg >= 0 ? new Set((args[onlyArg + 1] ?? '').split(',')) : undefined
const withRestart = args.includes('--restart')
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

const clientConfig = {
  region: 'us-east-1',
  endpoint,
  credentials: { accessKeyId: 'probe', secretAccessKey: 'probe' }, // moto checks no signature
}
const sqs = new SQSClient(clientConfig)
const sns = new SNSClient(clientConfig)
const run = `probe-${Date.now().toString(36)}`

// ------------------------------------------------------------------------------------------------
// harness

interface Fact {
  section: string
  name: string
  ok: boolean
  detail: string
}
const facts: Fact[] = []
const created = { queues: [] as string[], topics: [] as string[] }
let section = ''

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const t = (): number => performance.now()
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

function errText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { Code?: string }).Code
    return `${e.name}${code && code !== e.name ? `/${code}` : ''}: ${e.message.slice(0, 160)}`
  }
  return String(e)
}

/** A check: returns what it saw (ok) or throws (failed); ok=false detail also allowed. */
async function check(name: string, fn: () => Promise<string | [boolean, string]>): Promise<void> {
  let fact: Fact
  try {
    const r = await fn()
    fact = Array.isArray(r)
      ? { section, name, ok: r[0], detail: r[1] }
      : { section, name, ok: true, detail: r }
  } catch (e) {
    fact = { section, name, ok: false, detail: `threw ${errText(e)}` }
  }
  facts.push(fact)
  console.log(`  ${fact.ok ? '✓' : '✗'} ${name}: ${fact.detail}`)
}

/** Runs fn, returns "accepted" or the error it threw. */
async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
    return 'accepted'
  } catch (e) {
    return `rejected (${errText(e)})`
  }
}

/** Compares an outcome with what AWS documents: ok when the server does the same. */
function aws(seen: string, expected: 'accepted' | 'rejected'): [boolean, string] {
  const same = seen.startsWith(expected)
  return [same, `${seen}${same ? '' : ` ≠AWS (AWS: ${expected})`}`]
}

function begin(name: string, title: string): boolean {
  if (only && !only.has(name)) return false
  section = name
  console.log(`\n== ${title} ==`)
  return true
}

async function queue(suffix: string, attributes: Record<string, string> = {}): Promise<string> {
  const r = await sqs.send(new CreateQueueCommand({ QueueName: `${run}-${suffix}`, Attributes: attributes }))
  const url = r.QueueUrl!
  created.queues.push(url)
  return url
}

async function arnOf(url: string): Promise<string> {
  const r = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))
  return r.Attributes!.QueueArn!
}

async function receive(
  url: string,
  opts: { max?: number; wait?: number; visibility?: number } = {},
): Promise<Message[]> {
  const r = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: opts.max ?? 10,
      WaitTimeSeconds: opts.wait ?? 0,
      ...(opts.visibility !== undefined ? { VisibilityTimeout: opts.visibility } : {}),
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
    }),
  )
  return r.Messages ?? []
}

/** Receives (and deletes) until `count` messages arrived or `timeoutMs` passed. */
async function collect(url: string, count: number, timeoutMs = 10_000, del = true): Promise<Message[]> {
  const got: Message[] = []
  const deadline = Date.now() + timeoutMs
  while (got.length < count && Date.now() < deadline) {
    const batch = await receive(url, { wait: 1 })
    got.push(...batch)
    if (del && batch.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: batch.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })),
        }),
      )
    }
  }
  return got
}

/** Receives and deletes whatever is visible (PurgeQueue is allowed once per 60 s, on moto too). */
async function clear(url: string): Promise<number> {
  let n = 0
  for (;;) {
    const batch = await receive(url)
    if (batch.length === 0) return n
    n += batch.length
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: batch.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })),
      }),
    )
  }
}

async function depth(url: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const r = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  )
  const a = r.Attributes ?? {}
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? -1),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? -1),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? -1),
  }
}

const str = (v: string): MessageAttributeValue => ({ DataType: 'String', StringValue: v })
const kib = (n: number): string => 'x'.repeat(n * 1024)

// ------------------------------------------------------------------------------------------------
// checks

async function basics(): Promise<void> {
  if (!begin('basics', 'Endpoint, queue URLs, names, errors')) return
  let url = ''
  await check('queue URL returned by CreateQueue', async () => {
    url = await queue('basic')
    return url
  })
  await check('GetQueueUrl', async () => {
    const r = await sqs.send(new GetQueueUrlCommand({ QueueName: `${run}-basic` }))
    return r.QueueUrl === url ? 'same URL' : `different: ${r.QueueUrl}`
  })
  await check('a queue URL with an AWS host, sent through the explicit endpoint', async () => {
    const foreign = url.replace(/^https?:\/\/[^/]+/, 'https://sqs.us-east-1.amazonaws.com')
    await sqs.send(new SendMessageCommand({ QueueUrl: foreign, MessageBody: 'via foreign url' }))
    const got = await collect(url, 1, 3000)
    return got.length === 1
      ? `works: the SDK sends to the configured endpoint, moto takes the queue from the URL path (${foreign})`
      : 'sent, but not found in the queue'
  })
  await check('unknown queue', async () => {
    return outcome(() =>
      sqs.send(
        new SendMessageCommand({ QueueUrl: `${endpoint}/123456789012/${run}-nope`, MessageBody: 'x' }),
      ),
    )
  })
  await check('GetQueueUrl of an unknown queue', async () =>
    outcome(() => sqs.send(new GetQueueUrlCommand({ QueueName: `${run}-nope` }))),
  )
  await check('queue name of 80 chars / 81 chars', async () => {
    const base = `${run}-n`
    const n80 = base + 'a'.repeat(80 - base.length)
    const a = await outcome(async () => {
      const r = await sqs.send(new CreateQueueCommand({ QueueName: n80 }))
      created.queues.push(r.QueueUrl!)
    })
    const b = await outcome(() => sqs.send(new CreateQueueCommand({ QueueName: `${n80}a` })))
    return `80: ${a}; 81: ${b}`
  })
  await check('queue name with a dot (orders.created)', async () =>
    outcome(() => sqs.send(new CreateQueueCommand({ QueueName: `${run}-orders.created` }))),
  )
  await check('FIFO attribute on a name without .fifo', async () =>
    outcome(() =>
      sqs.send(new CreateQueueCommand({ QueueName: `${run}-nofifo`, Attributes: { FifoQueue: 'true' } })),
    ),
  )
  await check('CreateQueue again with different attributes', async () =>
    outcome(() =>
      sqs.send(new CreateQueueCommand({ QueueName: `${run}-basic`, Attributes: { VisibilityTimeout: '7' } })),
    ),
  )
  await check('PurgeQueue twice within 60 s', async () => {
    const a = await outcome(() => sqs.send(new PurgeQueueCommand({ QueueUrl: url })))
    const b = await outcome(() => sqs.send(new PurgeQueueCommand({ QueueUrl: url })))
    return `first: ${a}; second: ${b}`
  })
  await check('default queue attributes', async () => {
    const r = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))
    const a = r.Attributes ?? {}
    return `VisibilityTimeout=${a.VisibilityTimeout} MaximumMessageSize=${a.MaximumMessageSize} MessageRetentionPeriod=${a.MessageRetentionPeriod} ReceiveMessageWaitTimeSeconds=${a.ReceiveMessageWaitTimeSeconds} DelaySeconds=${a.DelaySeconds}`
  })
}

async function visibility(): Promise<void> {
  if (!begin('visibility', 'Visibility timeout, receive count, ChangeMessageVisibility')) return
  const url = await queue('vis')
  await check('message hidden for VisibilityTimeout=2, then back', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'v1' }))
    const [m] = await receive(url, { visibility: 2 })
    if (!m) return [false, 'not received']
    const t0 = t()
    const again = await receive(url)
    let back: Message | undefined
    while (!back && t() - t0 < 6000) [back] = await receive(url, { wait: 1, visibility: 30 })
    const count = back?.Attributes?.ApproximateReceiveCount
    if (back) await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: back.ReceiptHandle! }))
    return [
      again.length === 0 && !!back,
      `immediately: ${again.length} visible; back after ${secs(t() - t0)}; ApproximateReceiveCount then ${count}; new receipt handle: ${back?.ReceiptHandle !== m.ReceiptHandle}`,
    ]
  })
  await check('system attributes on a received message', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'attrs' }))
    const [m] = await receive(url, { wait: 1 })
    if (!m) return [false, 'not received']
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }))
    return JSON.stringify(m.Attributes)
  })
  await check('ChangeMessageVisibility 0 makes it visible at once', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'cmv0' }))
    const [m] = await receive(url, { visibility: 60, wait: 1 })
    if (!m) return [false, 'not received']
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: m.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    )
    const [again] = await receive(url)
    if (again)
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again.ReceiptHandle! }))
    return [
      !!again,
      again
        ? `visible again at once, receive count ${again.Attributes?.ApproximateReceiveCount}`
        : 'not visible',
    ]
  })
  await check('heartbeat: extending 2 s → 6 s keeps it hidden past 2 s', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'hb' }))
    const [m] = await receive(url, { visibility: 2, wait: 1 })
    if (!m) return [false, 'not received']
    await sleep(1000)
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: m.ReceiptHandle!,
        VisibilityTimeout: 6,
      }),
    )
    await sleep(2500)
    const early = await receive(url)
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }))
    return [
      early.length === 0,
      `after 3.5 s: ${early.length} visible (the new timeout counts from the change call)`,
    ]
  })
  await check('ChangeMessageVisibility with a deleted message’s handle', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'gone' }))
    const [m] = await receive(url, { wait: 1 })
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m!.ReceiptHandle! }))
    return outcome(() =>
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: m!.ReceiptHandle!,
          VisibilityTimeout: 0,
        }),
      ),
    )
  })
  await check('ChangeMessageVisibility with a garbage handle', async () =>
    outcome(() =>
      sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: 'garbage', VisibilityTimeout: 0 }),
      ),
    ),
  )
  await check('ChangeMessageVisibility after the timeout expired (message not re-received)', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'late' }))
    const [m] = await receive(url, { visibility: 1, wait: 1 })
    await sleep(1500)
    const r = await outcome(() =>
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: m!.ReceiptHandle!,
          VisibilityTimeout: 30,
        }),
      ),
    )
    const after = await receive(url)
    for (const x of after)
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: x.ReceiptHandle! }))
    return `${r}; then ${after.length} visible (AWS documents MessageNotInflight for a message that is not in flight)`
  })
  await check('ChangeMessageVisibility above 12 h (43201 s)', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'max' }))
    const [m] = await receive(url, { wait: 1 })
    const r = await outcome(() =>
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: m!.ReceiptHandle!,
          VisibilityTimeout: 43201,
        }),
      ),
    )
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m!.ReceiptHandle! }))
    return r
  })
  await check('ChangeMessageVisibilityBatch, one good and one garbage handle', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'cmvb' }))
    const [m] = await receive(url, { wait: 1, visibility: 60 })
    const r = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'good', ReceiptHandle: m!.ReceiptHandle!, VisibilityTimeout: 0 },
          { Id: 'bad', ReceiptHandle: 'garbage', VisibilityTimeout: 0 },
        ],
      }),
    )
    const got = await collect(url, 1, 2000)
    return `Successful=${JSON.stringify(r.Successful?.map((s) => s.Id))} Failed=${JSON.stringify(r.Failed)}; good one visible again: ${got.length === 1}`
  })
  await check('DeleteMessageBatch: one good, one garbage, one deleted twice', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'db' }))
    const [m] = await receive(url, { wait: 1 })
    const r = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'good', ReceiptHandle: m!.ReceiptHandle! },
          { Id: 'bad', ReceiptHandle: 'garbage' },
        ],
      }),
    )
    const twice = await outcome(() =>
      sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m!.ReceiptHandle! })),
    )
    return `HTTP 200, Successful=${JSON.stringify(r.Successful?.map((s) => s.Id))} Failed=${JSON.stringify(r.Failed)}; DeleteMessage again with the same handle: ${twice}`
  })
  await check('DeleteMessage with an old handle after the message was received again', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'old' }))
    const [m1] = await receive(url, { wait: 1, visibility: 1 })
    await sleep(1200)
    const [m2] = await receive(url, { wait: 2, visibility: 30 })
    const r = await outcome(() =>
      sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m1!.ReceiptHandle! })),
    )
    const left = await depth(url)
    if (left.inFlight > 0 && m2) {
      await outcome(() =>
        sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m2.ReceiptHandle! })),
      )
    }
    return `${r}; message still there afterwards: ${left.inFlight + left.visible > 0} (AWS: an old handle may delete it or fail)`
  })
}

async function delays(): Promise<void> {
  if (!begin('delay', 'DelaySeconds and long polling')) return
  const url = await queue('delay')
  await check('DelaySeconds=2 on one message (long poll measures the arrival)', async () => {
    const t0 = t()
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'd2', DelaySeconds: 2 }))
    const d = await depth(url)
    const got = await collect(url, 1, 8000)
    return [
      got.length === 1,
      `arrived after ${secs(t() - t0)}; while waiting ApproximateNumberOfMessagesDelayed=${d.delayed}`,
    ]
  })
  await check('DelaySeconds 900 / 901', async () => {
    const a = await outcome(() =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'd900', DelaySeconds: 900 })),
    )
    const b = await outcome(() =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'd901', DelaySeconds: 901 })),
    )
    await clear(url)
    return `900: ${a}; 901: ${b}`
  })
  await check('queue-level DelaySeconds=1, message without its own delay', async () => {
    const q = await queue('qdelay', { DelaySeconds: '1' })
    const t0 = t()
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'qd' }))
    const got = await collect(q, 1, 5000)
    return [got.length === 1, `arrived after ${secs(t() - t0)}`]
  })
  await check('long poll on an empty queue, WaitTimeSeconds=2', async () => {
    const t0 = t()
    const got = await receive(url, { wait: 2 })
    return [got.length === 0, `returned empty after ${secs(t() - t0)}`]
  })
  await check('long poll WaitTimeSeconds=5, message sent after 1 s', async () => {
    const t0 = t()
    const p = receive(url, { wait: 5 })
    await sleep(1000)
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'wake' }))
    const got = await p
    for (const m of got)
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }))
    return [got.length === 1, `returned ${got.length} message(s) after ${secs(t() - t0)} (woken by the send)`]
  })
  await check('WaitTimeSeconds=21', async () => outcome(() => receive(url, { wait: 21 })))
  await check('MaxNumberOfMessages=11', async () =>
    outcome(() => sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 11 }))),
  )
  await check('receive of 10 from a queue holding 10 (one short poll)', async () => {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `e${i}`, MessageBody: `m${i}` })),
      }),
    )
    const got = await receive(url)
    await clear(url)
    return `${got.length} in one ReceiveMessage (AWS short polls sample servers and may return fewer)`
  })
}

async function batches(): Promise<void> {
  if (!begin('batch', 'SendMessageBatch')) return
  const url = await queue('batch')
  await check('10 entries', async () => {
    const r = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `e${i}`, MessageBody: `m${i}` })),
      }),
    )
    const got = await collect(url, 10)
    return `Successful ${r.Successful?.length}, Failed ${r.Failed?.length ?? 0}; received ${got.length}`
  })
  await check('11 entries', async () =>
    outcome(() =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: `m${i}` })),
        }),
      ),
    ),
  )
  await check('duplicate entry ids', async () =>
    outcome(() =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: 'a', MessageBody: '1' },
            { Id: 'a', MessageBody: '2' },
          ],
        }),
      ),
    ),
  )
  await check('partial failure: good + DelaySeconds 901', async () => {
    const r = await outcome(async () => {
      const out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: 'good', MessageBody: 'ok' },
            { Id: 'late', MessageBody: 'too late', DelaySeconds: 901 },
          ],
        }),
      )
      throw new Error(
        `Successful=${JSON.stringify(out.Successful?.map((s) => s.Id))} Failed=${JSON.stringify(out.Failed)}`,
      )
    })
    const got = await collect(url, 1, 2000)
    return `${r.replace(/^rejected \(Error: /, 'HTTP 200: ').replace(/\)$/, '')}; good one delivered: ${got.length === 1}`
  })
  await check(
    'partial failure: good + invalid character U+0000 in the body (AWS: that entry fails)',
    async () => {
      const r = await outcome(async () => {
        const out = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: [
              { Id: 'good', MessageBody: 'ok' },
              { Id: 'nul', MessageBody: 'a\u0000b' },
            ],
          }),
        )
        throw new Error(
          `Successful=${JSON.stringify(out.Successful?.map((s) => s.Id))} Failed=${JSON.stringify(out.Failed)}`,
        )
      })
      await clear(url)
      const seen = r.replace(/^rejected \(Error: /, 'HTTP 200: ').replace(/\)$/, '')
      return [!seen.includes('Failed=[]'), `${seen}${seen.includes('Failed=[]') ? ' ≠AWS' : ''}`]
    },
  )
  await check('batch total over 1 MiB (10 × 110 KiB)', async () =>
    outcome(() =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `e${i}`, MessageBody: kib(110) })),
        }),
      ),
    ).finally(() => clear(url)),
  )
  await check('batch total over 256 KiB but under 1 MiB (10 × 30 KiB)', async () =>
    outcome(() =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `e${i}`, MessageBody: kib(30) })),
        }),
      ),
    ).finally(() => clear(url)),
  )
}

async function attributes(): Promise<void> {
  if (!begin('attributes', 'Message attributes, binary, Unicode')) return
  const url = await queue('attrs')
  const send = (attrs: Record<string, MessageAttributeValue>, body = 'a') =>
    sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: attrs }))
  const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, str(`v${i}`)]))
  await check('10 attributes', async () => outcome(() => send(many(10))))
  await check('11 attributes (AWS allows 10)', async () =>
    aws(await outcome(() => send(many(11))), 'rejected'),
  )
  await check('50 attributes', async () => aws(await outcome(() => send(many(50))), 'rejected'))
  await clear(url)
  await check('name starting with AWS. (reserved)', async () =>
    aws(await outcome(() => send({ 'AWS.x': str('1') })), 'rejected'),
  )
  await check('name "x-msgkit.id" (dash and dot)', async () =>
    outcome(() => send({ 'x-msgkit.id': str('1') })),
  )
  await check('name of 256 / 257 chars', async () => {
    const a = await outcome(() => send({ ['n'.repeat(256)]: str('1') }))
    const b = await outcome(() => send({ ['n'.repeat(257)]: str('1') }))
    const [same, detail] = aws(b, 'rejected')
    return [same, `256: ${a}; 257: ${detail}`]
  })
  await check('empty string value (AWS: name, type and value must not be empty)', async () => {
    await clear(url)
    const sent = await outcome(() => send({ e: str('') }, 'empty value'))
    const [m] = await collect(url, 1, 2000)
    const [same, detail] = aws(sent, 'rejected')
    return [
      same,
      `${detail}${m ? `; received back with value ${JSON.stringify(m.MessageAttributes?.e?.StringValue)}` : ''}`,
    ]
  })
  await clear(url)
  await check('invalid names ("a b", "😀key"): the send fails, and then?', async () => {
    const bad = await queue('attrs-bad')
    const a = await outcome(() =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: bad,
          MessageBody: 'space',
          MessageAttributes: { 'a b': str('1') },
        }),
      ),
    )
    const b = await outcome(() =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: bad,
          MessageBody: 'emoji',
          MessageAttributes: { '😀key': str('1') },
        }),
      ),
    )
    const d = await depth(bad)
    const r = await outcome(() => receive(bad))
    return [
      d.visible === 0,
      `"a b": ${a}; "😀key": ${b}; yet the queue then holds ${d.visible} message(s) and ReceiveMessage is ${r} ≠AWS (moto stores first, validates the name while computing the MD5 of the reply: a poisoned queue)`,
    ]
  })
  await check(
    'round trip: emoji/Korean body and values, Number, Binary (all 256 byte values), String.json',
    async () => {
      const body = 'héllo 😀 한국어 𝄞 \t\n\r end'
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      await send(
        {
          text: str('값 😀 𝄞'),
          num: { DataType: 'Number', StringValue: '-12.5e3' },
          bin: { DataType: 'Binary', BinaryValue: bytes },
          json: { DataType: 'String.json', StringValue: '{"a":1}' },
        },
        body,
      )
      const [m] = await collect(url, 1)
      if (!m) return [false, 'not received']
      const a = m.MessageAttributes ?? {}
      const binOk = Buffer.from(a.bin?.BinaryValue ?? []).equals(Buffer.from(bytes))
      const ok =
        m.Body === body &&
        a.text?.StringValue === '값 😀 𝄞' &&
        a.num?.DataType === 'Number' &&
        a.num.StringValue === '-12.5e3' &&
        binOk &&
        a.json?.DataType === 'String.json'
      return [
        ok,
        `body equal ${m.Body === body}; text ${JSON.stringify(a.text?.StringValue)}; num ${a.num?.DataType}=${a.num?.StringValue}; binary equal ${binOk}; custom type ${a.json?.DataType}; SDK MD5 checks passed`,
      ]
    },
  )
  await check('invalid characters in the body (U+0000, U+FFFE, U+0008)', async () => {
    const r = []
    for (const [n, c] of [
      ['U+0000', '\u0000'],
      ['U+FFFE', '\uFFFE'],
      ['U+0008', '\b'],
    ] as const)
      r.push(
        `${n}: ${await outcome(() => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `a${c}b` })))}`,
      )
    await clear(url)
    const all = r.every((x) => x.includes('rejected'))
    return [all, `${r.join('; ')}${all ? '' : ' ≠AWS (AWS rejects them: InvalidMessageContents)'}`]
  })
  await check('lone surrogate (U+D800) in the body', async () => {
    const r = await outcome(() =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'a\uD800b' })),
    )
    const got = await collect(url, 1, 1500)
    return `${r}${got[0] ? `; received ${JSON.stringify(got[0].Body)}` : ''} (moto answers HTTP 500 with an HTML page; the SDK retries it 3 times)`
  })
  await check('empty body', async () =>
    aws(
      await outcome(() => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '' }))),
      'rejected',
    ),
  )
}

async function sizes(): Promise<void> {
  if (!begin('size', 'Message size limits')) return
  const url = await queue('size')
  const sendBody = (body: string, attrs?: Record<string, MessageAttributeValue>) =>
    outcome(() =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: attrs })),
    )
  await check('body 262,145 bytes (256 KiB + 1)', async () => sendBody('x'.repeat(262_145)))
  await check('body 1,048,576 bytes (1 MiB)', async () => sendBody('x'.repeat(1_048_576)))
  await check('body 1,048,577 bytes', async () => sendBody('x'.repeat(1_048_577)))
  await check('body of 600,000 × "é" (600,000 chars, 1,200,000 UTF-8 bytes)', async () =>
    aws(await sendBody('é'.repeat(600_000)), 'rejected'),
  )
  await check('body 1,040,000 bytes + a 10,000-byte attribute (sum > 1 MiB)', async () =>
    aws(await sendBody('x'.repeat(1_040_000), { big: str('y'.repeat(10_000)) }), 'rejected'),
  )
  await check('received 1 MiB body intact', async () => {
    await clear(url)
    const body = randomBytes(786_432).toString('base64') // 1,048,576 chars
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }))
    const [m] = await collect(url, 1)
    return [m?.Body === body, `equal: ${m?.Body === body} (${body.length} bytes)`]
  })
  await check('queue with MaximumMessageSize=1024: 1025-byte body', async () => {
    const small = await queue('small', { MaximumMessageSize: '1024' })
    return outcome(() => sqs.send(new SendMessageCommand({ QueueUrl: small, MessageBody: 'x'.repeat(1025) })))
  })
  await clear(url)
}

async function fifo(): Promise<void> {
  if (!begin('fifo', 'FIFO queues')) return
  const url = await queue('f.fifo', { FifoQueue: 'true' })
  await check('send without MessageGroupId', async () =>
    outcome(() =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageDeduplicationId: 'd' })),
    ),
  )
  await check('send without dedup id (ContentBasedDeduplication off)', async () =>
    outcome(() => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g' }))),
  )
  await check('per-message DelaySeconds on FIFO', async () =>
    outcome(() =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'x',
          MessageGroupId: 'g',
          MessageDeduplicationId: 'delay',
          DelaySeconds: 1,
        }),
      ),
    ),
  )
  await clear(url)
  await check('order per MessageGroupId: 3 groups × 20, interleaved, batches of 10', async () => {
    const entries = Array.from({ length: 60 }, (_, i) => ({ g: `g${i % 3}`, seq: Math.floor(i / 3) }))
    for (let i = 0; i < entries.length; i += 10) {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: entries.slice(i, i + 10).map((e, j) => ({
            Id: `e${j}`,
            MessageBody: `${e.g}:${e.seq}`,
            MessageGroupId: e.g,
            MessageDeduplicationId: `${run}-${e.g}-${e.seq}`,
          })),
        }),
      )
    }
    const got = await collect(url, 60, 15_000)
    const last: Record<string, number> = {}
    let inOrder = true
    for (const m of got) {
      const [g, s] = m.Body!.split(':') as [string, string]
      if ((last[g] ?? -1) >= Number(s)) inOrder = false
      last[g] = Number(s)
    }
    const seq = got.map((m) => m.Attributes?.SequenceNumber).filter(Boolean).length
    return [
      inOrder && got.length === 60,
      `received ${got.length}/60, per-group order kept: ${inOrder}, SequenceNumber on ${seq}`,
    ]
  })
  await check('dedup: same MessageDeduplicationId twice', async () => {
    const a = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: 'first',
        MessageGroupId: 'g',
        MessageDeduplicationId: 'same',
      }),
    )
    const b = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: 'second',
        MessageGroupId: 'g',
        MessageDeduplicationId: 'same',
      }),
    )
    const got = await collect(url, 2, 2500)
    return [
      got.length === 1,
      `second send answered 200 (MessageId equal to the first: ${a.MessageId === b.MessageId}); received ${got.length}: ${got.map((m) => m.Body).join(',')}`,
    ]
  })
  await check(
    'dedup id reused after the first copy was deleted (AWS: still deduplicated for 5 min)',
    async () => {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'third',
          MessageGroupId: 'g',
          MessageDeduplicationId: 'same',
        }),
      )
      const got = await collect(url, 1, 2500)
      return [
        got.length === 0,
        `received ${got.length}${got.length ? ' ≠AWS (moto only deduplicates against messages still in the queue)' : ''}`,
      ]
    },
  )
  await check('a group is locked while one of its messages is in flight', async () => {
    for (let i = 0; i < 3; i++)
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: `A${i}`,
          MessageGroupId: 'A',
          MessageDeduplicationId: `${run}-A${i}`,
        }),
      )
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: 'B0',
        MessageGroupId: 'B',
        MessageDeduplicationId: `${run}-B0`,
      }),
    )
    const first = await receive(url, { max: 1, visibility: 30 })
    const second = await receive(url, { max: 10, visibility: 30 })
    const bodies = second.map((m) => m.Body)
    for (const m of [...first, ...second])
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }))
    await clear(url)
    return [
      !bodies.some((b) => b?.startsWith('A')),
      `first receive (max 1): ${first.map((m) => m.Body)}; second receive while it is in flight: [${bodies.join(',')}]`,
    ]
  })
  await check('ContentBasedDeduplication queue: same body twice', async () => {
    const q = await queue('cbd.fifo', { FifoQueue: 'true', ContentBasedDeduplication: 'true' })
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'same body', MessageGroupId: 'g' }))
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'same body', MessageGroupId: 'g' }))
    const got = await collect(q, 2, 2500)
    return [got.length === 1, `received ${got.length}`]
  })
  await check('MessageGroupId of 128 / 129 chars', async () => {
    const a = await outcome(() =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'x',
          MessageGroupId: 'g'.repeat(128),
          MessageDeduplicationId: 'l1',
        }),
      ),
    )
    const b = await outcome(() =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'x',
          MessageGroupId: 'g'.repeat(129),
          MessageDeduplicationId: 'l2',
        }),
      ),
    )
    await clear(url)
    const [same, detail] = aws(b, 'rejected')
    return [same, `128: ${a}; 129: ${detail}`]
  })
  await check('MessageGroupId with a space / emoji', async () => {
    const a = await outcome(() =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'x',
          MessageGroupId: 'a b',
          MessageDeduplicationId: 's1',
        }),
      ),
    )
    const b = await outcome(() =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'x',
          MessageGroupId: 'a😀',
          MessageDeduplicationId: 's2',
        }),
      ),
    )
    await clear(url)
    const same = a.startsWith('rejected') && b.startsWith('rejected')
    return [
      same,
      `space: ${a}; emoji: ${b}${same ? '' : ' ≠AWS (AWS allows alphanumerics and punctuation only)'}`,
    ]
  })
}

async function redrive(): Promise<void> {
  if (!begin('redrive', 'Redrive policy (maxReceiveCount → DLQ)')) return
  const dlq = await queue('rd-dlq')
  const src = await queue('rd', {
    VisibilityTimeout: '1',
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await arnOf(dlq), maxReceiveCount: 2 }),
  })
  await check('maxReceiveCount=2: received twice, then moved to the DLQ', async () => {
    await sqs.send(
      new SendMessageCommand({ QueueUrl: src, MessageBody: 'poison', MessageAttributes: { h: str('v') } }),
    )
    const counts: string[] = []
    for (let i = 0; i < 4; i++) {
      const [m] = await receive(src, { wait: 2 })
      counts.push(m ? `#${m.Attributes?.ApproximateReceiveCount}` : '-')
      await sleep(1100)
    }
    const [d] = await collect(dlq, 1, 3000)
    return [
      !!d,
      `receives on the source: ${counts.join(' ')}; in DLQ: ${d ? `body ${d.Body}, attribute kept ${d.MessageAttributes?.h?.StringValue === 'v'}, ApproximateReceiveCount ${d.Attributes?.ApproximateReceiveCount}, same MessageId as sent: n/a` : 'nothing'}`,
    ]
  })
  await check('ListDeadLetterSourceQueues', async () => {
    const r = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }))
    return `${r.queueUrls?.length ?? 0} source queue(s)`
  })
  await check('RedrivePolicy pointing at a queue that does not exist', async () =>
    outcome(async () => {
      const r = await sqs.send(
        new CreateQueueCommand({
          QueueName: `${run}-rd-bad`,
          Attributes: {
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: 'arn:aws:sqs:us-east-1:123456789012:nope',
              maxReceiveCount: 2,
            }),
          },
        }),
      )
      created.queues.push(r.QueueUrl!)
    }),
  )
  await check('FIFO source with a standard DLQ', async () =>
    outcome(async () => {
      const r = await sqs.send(
        new CreateQueueCommand({
          QueueName: `${run}-rdf.fifo`,
          Attributes: {
            FifoQueue: 'true',
            RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await arnOf(dlq), maxReceiveCount: 2 }),
          },
        }),
      )
      created.queues.push(r.QueueUrl!)
    }),
  )
}

async function topicWithQueues(
  name: string,
  subs: { suffix: string; raw: boolean; attrs?: Record<string, string> }[],
  fifoTopic = false,
): Promise<{ topicArn: string; urls: string[] }> {
  const topic = await sns.send(
    new CreateTopicCommand({ Name: `${run}-${name}`, Attributes: fifoTopic ? { FifoTopic: 'true' } : {} }),
  )
  const topicArn = topic.TopicArn!
  created.topics.push(topicArn)
  const urls: string[] = []
  for (const s of subs) {
    const url = await queue(s.suffix, s.suffix.endsWith('.fifo') ? { FifoQueue: 'true' } : {})
    urls.push(url)
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: 'sqs',
        Endpoint: await arnOf(url),
        Attributes: { RawMessageDelivery: String(s.raw), ...(s.attrs ?? {}) },
        ReturnSubscriptionArn: true,
      }),
    )
  }
  return { topicArn, urls }
}

async function snsChecks(): Promise<void> {
  if (!begin('sns', 'SNS → SQS fan-out')) return
  const { topicArn, urls } = await topicWithQueues('fan', [
    { suffix: 'fan-a', raw: true },
    { suffix: 'fan-b', raw: true },
    { suffix: 'fan-env', raw: false },
  ])
  const [qa, qb, qenv] = urls as [string, string, string]
  const bytes = Uint8Array.from([0, 1, 2, 254, 255, 0xf0, 0x9f])
  const snsAttrs: Record<string, SnsAttr> = {
    text: { DataType: 'String', StringValue: '값 😀 𝄞' },
    num: { DataType: 'Number', StringValue: '42' },
    json: { DataType: 'String.Array', StringValue: '["a","b"]' },
  }
  const body = '{"hello":"wörld 😀 한국어"}'
  await check('Publish → two raw queues + one envelope queue', async () => {
    const t0 = t()
    const r = await sns.send(
      new PublishCommand({ TopicArn: topicArn, Message: body, MessageAttributes: snsAttrs }),
    )
    const pubMs = t() - t0
    const [a] = await collect(qa, 1)
    const [b] = await collect(qb, 1)
    const [env] = await collect(qenv, 1)
    const attrsA = a?.MessageAttributes ?? {}
    const attrsOk =
      attrsA.text?.StringValue === '값 😀 𝄞' &&
      attrsA.num?.StringValue === '42' &&
      attrsA.json?.DataType === 'String.Array'
    const parsed = env ? (JSON.parse(env.Body!) as Record<string, unknown>) : {}
    const names = Object.entries(attrsA)
      .map(([k, v]) => `${k}:${v.DataType}`)
      .join(',')
    return [
      a?.Body === body && b?.Body === body && attrsOk,
      `publish took ${pubMs.toFixed(1)} ms (moto delivers inside the Publish call); raw bodies equal: ${a?.Body === body}/${b?.Body === body}; raw attributes ${names} (values equal: ${attrsOk}); envelope keys: ${Object.keys(parsed).join(',')}; envelope MessageId = Publish MessageId: ${parsed.MessageId === r.MessageId}; raw SQS MessageId = Publish MessageId: ${a?.MessageId === r.MessageId}`,
    ]
  })
  await check('envelope message attributes format (non-raw queue only: a topic of its own)', async () => {
    const e = await topicWithQueues('env', [{ suffix: 'env', raw: false }])
    await sns.send(
      new PublishCommand({
        TopicArn: e.topicArn,
        Message: 'e',
        MessageAttributes: { ...snsAttrs, bin: { DataType: 'Binary', BinaryValue: bytes } },
      }),
    )
    const [env] = await collect(e.urls[0]!, 1)
    const parsed = JSON.parse(env?.Body ?? '{}') as { MessageAttributes?: unknown }
    return JSON.stringify(parsed.MessageAttributes)
  })
  await check('Binary attribute through raw delivery (own topic and queue)', async () => {
    const f = await topicWithQueues('bin', [{ suffix: 'bin', raw: true }])
    const pub = await outcome(() =>
      sns.send(
        new PublishCommand({
          TopicArn: f.topicArn,
          Message: 'bin',
          MessageAttributes: { bin: { DataType: 'Binary', BinaryValue: bytes } },
        }),
      ),
    )
    const once = new SQSClient({ ...clientConfig, maxAttempts: 1 })
    const r = await outcome(() =>
      once.send(
        new ReceiveMessageCommand({
          QueueUrl: f.urls[0]!,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['All'],
        }),
      ),
    )
    once.destroy()
    return [
      !r.startsWith('rejected'),
      `Publish ${pub}; ReceiveMessage ${r.slice(0, 140)} ≠AWS (moto keeps the base64 text as the binary value and fails hashing it: HTTP 500, and the message turns invisible for the queue's visibility timeout each time)`,
    ]
  })
  await check('Publish with 11 attributes to raw subscriptions (AWS: discarded for raw SQS)', async () => {
    const attrs = Object.fromEntries(
      Array.from({ length: 11 }, (_, i) => [
        `h${i}`,
        { DataType: 'String', StringValue: `v${i}` } as SnsAttr,
      ]),
    )
    const r = await outcome(() =>
      sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'eleven', MessageAttributes: attrs })),
    )
    const a = await collect(qa, 1, 2000)
    const env = await collect(qenv, 1, 2000)
    await collect(qb, 1, 500)
    return [
      a.length === 0,
      `${r}; raw queue got ${a.length} (${Object.keys(a[0]?.MessageAttributes ?? {}).length} attributes), envelope queue got ${env.length}${a.length ? ' ≠AWS (AWS discards it for raw SQS subscriptions)' : ''}`,
    ]
  })
  await check('Publish body 262,145 bytes (SNS default max 256 KiB)', async () =>
    outcome(() => sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'x'.repeat(262_145) }))),
  )
  await check('Publish body 262,144 bytes + a 100-byte attribute (AWS counts attributes too)', async () => {
    const r = await outcome(() =>
      sns.send(
        new PublishCommand({
          TopicArn: topicArn,
          Message: 'x'.repeat(262_144),
          MessageAttributes: { a: { DataType: 'String', StringValue: 'y'.repeat(100) } },
        }),
      ),
    )
    for (const q of urls) await clear(q)
    return aws(r, 'rejected')
  })
  await check('Publish of 150,000 × "é" (150,000 chars, 300,000 bytes > 256 KiB)', async () => {
    const r = await outcome(() =>
      sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'é'.repeat(150_000) })),
    )
    for (const q of urls) await clear(q)
    return aws(r, 'rejected')
  })
  await check('Publish of an empty message', async () => {
    const r = await outcome(() => sns.send(new PublishCommand({ TopicArn: topicArn, Message: '' })))
    for (const q of urls) await clear(q)
    return aws(r, 'rejected')
  })
  await check('PublishBatch of 10 → each raw queue gets 10', async () => {
    const r = await sns.send(
      new PublishBatchCommand({
        TopicArn: topicArn,
        PublishBatchRequestEntries: Array.from({ length: 10 }, (_, i) => ({
          Id: `p${i}`,
          Message: `batch ${i} 😀`,
          MessageAttributes: { i: { DataType: 'Number', StringValue: String(i) } },
        })),
      }),
    )
    const a = await collect(qa, 10)
    const b = await collect(qb, 10)
    await collect(qenv, 10)
    return [
      a.length === 10 && b.length === 10,
      `Successful ${r.Successful?.length}, Failed ${r.Failed?.length ?? 0}; received ${a.length} + ${b.length}`,
    ]
  })
  await check('PublishBatch of 11', async () =>
    outcome(() =>
      sns.send(
        new PublishBatchCommand({
          TopicArn: topicArn,
          PublishBatchRequestEntries: Array.from({ length: 11 }, (_, i) => ({ Id: `p${i}`, Message: 'm' })),
        }),
      ),
    ),
  )
  await check('PublishBatch: good + one of 262,145 bytes', async () => {
    const r = await outcome(async () => {
      const out = await sns.send(
        new PublishBatchCommand({
          TopicArn: topicArn,
          PublishBatchRequestEntries: [
            { Id: 'good', Message: 'ok' },
            { Id: 'big', Message: 'x'.repeat(262_145) },
          ],
        }),
      )
      throw new Error(
        `Successful=${JSON.stringify(out.Successful?.map((s) => s.Id))} Failed=${JSON.stringify(out.Failed)}`,
      )
    })
    for (const q of urls) await clear(q)
    return r.replace(/^rejected \(Error: /, 'HTTP 200: ').replace(/\)$/, '')
  })
  await check('PublishBatch total over 256 KiB (10 × 30 KiB; AWS: the sum counts)', async () => {
    const r = await outcome(() =>
      sns.send(
        new PublishBatchCommand({
          TopicArn: topicArn,
          PublishBatchRequestEntries: Array.from({ length: 10 }, (_, i) => ({
            Id: `p${i}`,
            Message: kib(30),
          })),
        }),
      ),
    )
    for (const q of urls) await clear(q)
    return aws(r, 'rejected')
  })
  await check('FilterPolicy on message attributes (only type=order)', async () => {
    const f = await topicWithQueues('filt', [
      { suffix: 'filt-all', raw: true },
      { suffix: 'filt-orders', raw: true, attrs: { FilterPolicy: JSON.stringify({ type: ['order'] }) } },
    ])
    const [all, orders] = f.urls as [string, string]
    for (const type of ['order', 'refund', 'order'])
      await sns.send(
        new PublishCommand({
          TopicArn: f.topicArn,
          Message: type,
          MessageAttributes: { type: { DataType: 'String', StringValue: type } },
        }),
      )
    await sns.send(new PublishCommand({ TopicArn: f.topicArn, Message: 'no attributes' }))
    const a = await collect(all, 4, 3000)
    const o = await collect(orders, 2, 3000)
    await sleep(300)
    const extra = await collect(orders, 1, 1000)
    return [
      a.length === 4 && o.length + extra.length === 2,
      `unfiltered queue ${a.length}/4, filtered ${o.length + extra.length}/2`,
    ]
  })
  await check('FilterPolicyScope=MessageBody', async () => {
    const f = await topicWithQueues('filtb', [
      {
        suffix: 'filtb',
        raw: true,
        attrs: { FilterPolicyScope: 'MessageBody', FilterPolicy: JSON.stringify({ kind: ['a'] }) },
      },
    ])
    const [q] = f.urls as [string]
    await sns.send(new PublishCommand({ TopicArn: f.topicArn, Message: JSON.stringify({ kind: 'a' }) }))
    await sns.send(new PublishCommand({ TopicArn: f.topicArn, Message: JSON.stringify({ kind: 'b' }) }))
    const got = await collect(q, 2, 2500)
    return [got.length === 1, `received ${got.length}/1`]
  })
  await check(
    'FIFO topic → FIFO queue: order per group, dedup, MessageGroupId on the SQS message',
    async () => {
      const f = await topicWithQueues('ff.fifo', [{ suffix: 'ff.fifo', raw: true }], true)
      const [q] = f.urls as [string]
      for (let i = 0; i < 20; i++)
        await sns.send(
          new PublishCommand({
            TopicArn: f.topicArn,
            Message: `g${i % 2}:${Math.floor(i / 2)}`,
            MessageGroupId: `g${i % 2}`,
            MessageDeduplicationId: `${run}-ff-${i}`,
          }),
        )
      await sns.send(
        new PublishCommand({
          TopicArn: f.topicArn,
          Message: 'dup',
          MessageGroupId: 'g0',
          MessageDeduplicationId: `${run}-ff-0`,
        }),
      )
      const got = await collect(q, 21, 6000)
      const last: Record<string, number> = {}
      let inOrder = true
      for (const m of got) {
        const [g, s] = m.Body!.split(':') as [string, string]
        if ((last[g] ?? -1) >= Number(s)) inOrder = false
        last[g] = Number(s)
      }
      return [
        inOrder && got.length === 20,
        `received ${got.length}/20 (duplicate dropped: ${!got.some((m) => m.Body === 'dup')}), order kept ${inOrder}, MessageGroupId ${got[0]?.Attributes?.MessageGroupId}, MessageDeduplicationId on SQS message ${got[0]?.Attributes?.MessageDeduplicationId ?? 'absent'}`,
      ]
    },
  )
  await check('FIFO topic → standard queue subscription', async () =>
    outcome(async () => {
      const topic = await sns.send(
        new CreateTopicCommand({ Name: `${run}-ffs.fifo`, Attributes: { FifoTopic: 'true' } }),
      )
      created.topics.push(topic.TopicArn!)
      const q = await queue('ffs-std')
      await sns.send(
        new SubscribeCommand({ TopicArn: topic.TopicArn!, Protocol: 'sqs', Endpoint: await arnOf(q) }),
      )
    }),
  )
  await check('subscribe a queue with no queue policy allowing SNS', async () => [
    false,
    'moto delivers regardless: every check above ran without a queue policy ≠AWS (AWS drops the deliveries: provision must set the queue policy)',
  ])
  await check('topic name with a dot', async () =>
    outcome(() => sns.send(new CreateTopicCommand({ Name: `${run}-orders.created` }))),
  )
}

// ------------------------------------------------------------------------------------------------
// restart (RS-1 on the raw SDK): publishes keep going while scripts/brokers/sqs.sh restarts

async function restart(): Promise<void> {
  if (!withRestart) return
  if (!begin('restart', 'Server restart mid-stream (scripts/brokers/sqs.sh restart)')) return
  const url = await queue('rs')
  const held = await queue('rs-held')
  await sqs.send(new SendMessageCommand({ QueueUrl: held, MessageBody: 'in flight over the restart' }))
  const [inFlight] = await receive(held, { wait: 1, visibility: 20 })
  const errors: Record<string, number> = {}
  const confirmed = new Set<string>()
  let stop = false
  let sent = 0
  let firstError = ''
  const producer = Promise.all(
    Array.from({ length: 4 }, async () => {
      while (!stop) {
        const body = `m${sent++}`
        try {
          await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }))
          confirmed.add(body)
        } catch (e) {
          const code = (e as { code?: string }).code
          const k = `${errText(e).split(':')[0]}${code ? ` ${code}` : ''}`
          errors[k] = (errors[k] ?? 0) + 1
          if (!firstError)
            firstError = `${errText(e)} (attempts ${(e as { $metadata?: { attempts?: number } }).$metadata?.attempts})`
          await sleep(100)
        }
      }
    }),
  )
  await sleep(1000)
  const t0 = t()
  // async: the producer keeps sending (and failing) while the server is down
  const { stdout: out } = await promisify(execFile)(
    'bash',
    [join(repoRoot, 'scripts/brokers/sqs.sh'), 'restart'],
    {
      encoding: 'utf8',
    },
  )
  const restartMs = t() - t0
  await sleep(1000)
  stop = true
  await producer
  await check('publishes across the restart (4 concurrent producers, SendMessage)', async () => {
    const got = await collect(url, confirmed.size, 20_000)
    const bodies = new Set(got.map((m) => m.Body))
    const lost = [...confirmed].filter((b) => !bodies.has(b))
    return [
      lost.length === 0,
      `restart took ${secs(restartMs)} (${out.match(/ready after [^(]*/)?.[0]?.trim()}); ${sent} sends, ${confirmed.size} confirmed, ${lost.length} confirmed-but-lost, ${got.length - confirmed.size} extra; errors the SDK surfaced after its own retries: ${JSON.stringify(errors)}${firstError ? `, e.g. ${firstError}` : ''}; each failed send was retried by the probe after 100 ms`,
    ]
  })
  await check('an in-flight message keeps its handle and receive count over the restart', async () => {
    const d = await depth(held)
    const r = await outcome(() =>
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: held,
          ReceiptHandle: inFlight!.ReceiptHandle!,
          VisibilityTimeout: 0,
        }),
      ),
    )
    const [again] = await receive(held, { wait: 1 })
    return [
      d.inFlight === 1 && !!again,
      `after restart: ${d.inFlight} in flight, ${d.visible} visible; ChangeMessageVisibility with the pre-restart handle: ${r}; received again with ApproximateReceiveCount ${again?.Attributes?.ApproximateReceiveCount}`,
    ]
  })
}

// ------------------------------------------------------------------------------------------------
// throughput

function serverRss(): string {
  try {
    const pid = readFileSync(join(repoRoot, '.brokers/sqs/server.pid'), 'utf8').trim()
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb ? `${Math.round(Number(kb) / 1024)} MB` : '?'
  } catch {
    return '? (no pid file)'
  }
}

async function pool(
  workers: number,
  total: number,
  step: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < total) {
        const i = next
        next += step
        await fn(i)
      }
    }),
  )
}

async function drainTimed(url: string, total: number, receivers: number): Promise<number> {
  let got = 0
  const t0 = t()
  await Promise.all(
    Array.from({ length: receivers }, async () => {
      while (got < total && t() - t0 < 120_000) {
        const batch = await receive(url, { wait: 1 })
        if (batch.length === 0) continue
        got += batch.length
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: url,
            Entries: batch.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })),
          }),
        )
      }
    }),
  )
  if (got < total) throw new Error(`only ${got}/${total} received within 120 s`)
  return t() - t0
}

async function throughput(): Promise<void> {
  if (!begin('throughput', `Raw throughput, ${N} × 1 KiB (server rss before: ${serverRss()})`)) return
  const body = 'x'.repeat(1024)
  const rate = (n: number, ms: number): string => `${Math.round((n * 1000) / ms)} msg/s (${secs(ms)})`
  const url = await queue('tp')
  await check('SendMessage, one per message, 8 concurrent', async () => {
    const t0 = t()
    await pool(8, N, 1, async () => {
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }))
    })
    return rate(N, t() - t0)
  })
  await check('receive (WaitTimeSeconds 1, max 10) + DeleteMessageBatch, 1 receiver', async () =>
    rate(N, await drainTimed(url, N, 1)),
  )
  await check('SendMessageBatch of 10, 8 concurrent', async () => {
    const t0 = t()
    await pool(8, N, 10, async () => {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: Array.from({ length: 10 }, (_, j) => ({ Id: `e${j}`, MessageBody: body })),
        }),
      )
    })
    return rate(N, t() - t0)
  })
  await check('SendMessageBatch of 10, 1 at a time', async () => {
    const q = await queue('tp1')
    const n = Math.min(N, 1000)
    const t0 = t()
    await pool(1, n, 10, async () => {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: q,
          Entries: Array.from({ length: 10 }, (_, j) => ({ Id: `e${j}`, MessageBody: body })),
        }),
      )
    })
    return rate(n, t() - t0)
  })
  await check('receive + DeleteMessageBatch, 4 receivers', async () => rate(N, await drainTimed(url, N, 4)))

  const f = await topicWithQueues('tp', [{ suffix: 'tp-sns', raw: true }])
  const [q] = f.urls as [string]
  await check('SNS Publish one per message, 8 concurrent → 1 raw queue', async () => {
    const t0 = t()
    await pool(8, N, 1, async () => {
      await sns.send(new PublishCommand({ TopicArn: f.topicArn, Message: body }))
    })
    const pub = t() - t0
    const d = await depth(q)
    await drainTimed(q, N, 4)
    return `publish ${rate(N, pub)}; all ${d.visible} already in the queue when the last Publish returned`
  })
  await check('SNS PublishBatch of 10, 8 concurrent → 1 raw queue', async () => {
    const t0 = t()
    await pool(8, N, 10, async () => {
      await sns.send(
        new PublishBatchCommand({
          TopicArn: f.topicArn,
          PublishBatchRequestEntries: Array.from({ length: 10 }, (_, j) => ({ Id: `p${j}`, Message: body })),
        }),
      )
    })
    const pub = t() - t0
    await drainTimed(q, N, 4)
    return `publish ${rate(N, pub)}; delivered ${rate(N, t() - t0)} end to end`
  })
  const g = await topicWithQueues('tp3', [
    { suffix: 'tp3-a', raw: true },
    { suffix: 'tp3-b', raw: true },
    { suffix: 'tp3-c', raw: true },
  ])
  await check('SNS PublishBatch of 10, 8 concurrent → 3 raw queues (fan-out cost)', async () => {
    const t0 = t()
    await pool(8, N, 10, async () => {
      await sns.send(
        new PublishBatchCommand({
          TopicArn: g.topicArn,
          PublishBatchRequestEntries: Array.from({ length: 10 }, (_, j) => ({ Id: `p${j}`, Message: body })),
        }),
      )
    })
    const pub = t() - t0
    for (const u of g.urls) await clear(u)
    return `publish ${rate(N, pub)} (${N * 3} deliveries)`
  })
  await check('server rss after the throughput runs', async () => serverRss())
}

// ------------------------------------------------------------------------------------------------

async function cleanup(): Promise<void> {
  for (const url of created.queues) await sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {})
  for (const arn of created.topics) await sns.send(new DeleteTopicCommand({ TopicArn: arn })).catch(() => {})
}

async function main(): Promise<void> {
  console.log(
    `probe ${run} against ${endpoint} (@aws-sdk/client-sqs, @aws-sdk/client-sns, Node ${process.version})`,
  )
  try {
    await basics()
    await visibility()
    await delays()
    await batches()
    await attributes()
    await sizes()
    await fifo()
    await redrive()
    await snsChecks()
    await restart()
    await throughput()
  } finally {
    await cleanup()
  }
  const failed = facts.filter((f) => !f.ok)
  console.log(`\n${facts.length - failed.length} passed, ${failed.length} failed`)
  for (const f of failed) console.log(`  ✗ [${f.section}] ${f.name}: ${f.detail}`)
  if (process.env.PROBE_JSON) writeFileSync(process.env.PROBE_JSON, JSON.stringify(facts, null, 2))
  sqs.destroy()
  sns.destroy()
}

main().catch((e) => {
  console.error(`probe failed: ${errText(e)}`)
  console.error(`is the server running? bash scripts/brokers/sqs.sh status (endpoint ${endpoint})`)
  process.exit(1)
})
