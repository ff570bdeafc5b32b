/**
 * What is particular to SQS, on the real server (scripts/brokers/sqs.sh): a consumer that dies
 * without a word (its messages come back after the visibility timeout), the heartbeat, DelaySeconds
 * without SNS, per-entry batch outcomes, the loud refusals (a second group without fan-out, FIFO vs
 * standard, two msgkit names on one AWS name), foreign messages with Number and Binary attributes.
 */
import { randomUUID } from 'node:crypto'
import { DeleteQueueCommand, GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { createMessaging, type Delivery, ErrorCodes, isMsgkitError, type Messaging } from '@msgkit/core'
import { startTcpProxy, waitFor } from '@msgkit/testkit'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { sqsTransport } from '../src/index.js'
import { createNaming } from '../src/topology.js'
import { configOf, deleteResources, runPrefix, serverOf, urlWith } from './broker-helpers.js'

const prefix = runPrefix('sq')
const base = `prefix=${prefix}&waitTimeSeconds=1`
const opened: Messaging[] = []
const open = async (query: string, endpoint?: { host: string; port: number }): Promise<Messaging> => {
  const messaging = await createMessaging({
    transport: sqsTransport,
    url: urlWith(`${base}&${query}`, endpoint),
  })
  opened.push(messaging)
  return messaging
}
const topic = (): string => `t-${randomUUID()}`
const encode = (text: string): Uint8Array => new TextEncoder().encode(text)
const outgoing = (body: string, delayMs?: number) => ({
  id: randomUUID(),
  headers: {},
  body: encode(body),
  timestamp: Date.now(),
  ...(delayMs ? { delayMs } : {}),
})

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((m) => m.close({ timeoutMs: 1_000 })))
})
afterAll(() => deleteResources(urlWith(base), prefix), 120_000)

describe('sqs on a real server', () => {
  it('a consumer that dies holding messages: they come back after the visibility timeout, attempt 2', async () => {
    const name = topic()
    const proxy = await startTcpProxy(serverOf())
    try {
      const dying = await open('visibilityTimeoutSeconds=3', { host: '127.0.0.1', port: proxy.port })
      const held: string[] = []
      await dying.subscribe(name, { group: 'g', concurrency: 3 }, (m, context) => {
        held.push(m.id)
        return new Promise((resolve) => context.signal.addEventListener('abort', resolve))
      })
      const sent = [] as string[]
      for (let i = 0; i < 3; i++) sent.push((await dying.publish(name, { i })).id)
      await waitFor(() => held.length === 3, { timeoutMs: 20_000, message: '3 in flight' })
      // the process is gone: no ack, no give-back, no heartbeat ever reaches the server again
      await proxy.refuse()
      const diedAt = performance.now()
      const survivor = await open('visibilityTimeoutSeconds=3')
      const got: Array<{ id: string; attempt: number; at: number }> = []
      await survivor.subscribe(name, { group: 'g' }, (m) => {
        got.push({ id: m.id, attempt: m.attempt, at: performance.now() - diedAt })
      })
      await waitFor(() => got.length >= 3, { timeoutMs: 30_000, message: 'the 3 redelivered' })
      expect(got.map((g) => g.id).sort()).toEqual([...sent].sort())
      expect(got.map((g) => g.attempt)).toEqual([2, 2, 2])
      // the last heartbeat may have extended them by up to one visibility timeout: 0–3 s after the death, plus 3 s
      for (const g of got) expect(g.at).toBeGreaterThan(1_000)
      console.log(
        `[sqs] crash: redelivered ${got.map((g) => Math.round(g.at)).join(', ')} ms after the consumer died`,
      )
    } finally {
      await proxy.close()
    }
  }, 90_000)

  it('a handler slower than the visibility timeout is not redelivered underneath itself (heartbeat)', async () => {
    const name = topic()
    const calls: string[] = []
    for (let member = 0; member < 2; member++) {
      const m = await open('visibilityTimeoutSeconds=2')
      await m.subscribe(name, { group: 'g' }, async (message) => {
        calls.push(message.id)
        await new Promise((r) => setTimeout(r, 6_000))
      })
    }
    const producer = await open('visibilityTimeoutSeconds=2')
    const { id } = await producer.publish(name, 'slow')
    await waitFor(() => calls.length >= 1, { timeoutMs: 20_000, message: 'handled' })
    await new Promise((r) => setTimeout(r, 8_000))
    expect(calls, 'one call in 8 s with a 2 s visibility timeout and two members').toEqual([id])
  }, 60_000)

  it('fan-out off: delayMs as DelaySeconds (rounded up), a first delivery', async () => {
    const name = topic()
    const m = await open('fanout=false')
    const arrivals: Array<{ body: unknown; at: number; attempt: number }> = []
    const start = performance.now()
    await m.subscribe(name, { group: 'g' }, (message) => {
      arrivals.push({ body: message.body, at: performance.now() - start, attempt: message.attempt })
    })
    await m.publish(name, 'late', { delayMs: 1_500 })
    await m.publish(name, 'now')
    await waitFor(() => arrivals.length === 2, { timeoutMs: 20_000, message: 'both' })
    expect(arrivals.map((a) => a.body)).toEqual(['now', 'late'])
    expect(arrivals[1]?.at).toBeGreaterThanOrEqual(1_900)
    expect(arrivals[1]?.attempt).toBe(1)
  }, 60_000)

  it('a batch answers per entry: a refused entry rejects its own send, its neighbours are confirmed', async () => {
    const name = topic()
    const { transport } = await open('fanout=false')
    const deadline = { deadline: Date.now() + 20_000 }
    // both sends go out in one SendMessageBatch (the same I/O turn); SQS refuses DelaySeconds 901
    const [good, bad] = await Promise.allSettled([
      transport.send(name, [outgoing('good')], deadline),
      transport.send(name, [outgoing('too late', 900_500)], deadline),
    ])
    expect(good.status).toBe('fulfilled')
    expect(bad.status).toBe('rejected')
    const reason = (bad as PromiseRejectedResult).reason
    expect(isMsgkitError(reason) && reason.code, String(reason)).toBe(ErrorCodes.PUBLISH_REJECTED)
  }, 60_000)

  it('fan-out off: a second group on a topic fails loudly, also from another process', async () => {
    const name = topic()
    const first = await open('fanout=false')
    await first.subscribe(name, { group: 'a' }, () => {})
    const second = await open('fanout=false')
    const outcome = await second
      .subscribe(name, { group: 'b' }, () => {})
      .then(
        () => 'subscribed',
        (e: unknown) => (isMsgkitError(e) ? e.code : String(e)),
      )
    expect(outcome).toBe(ErrorCodes.CAPABILITY_UNSUPPORTED)
  }, 60_000)

  it('FIFO or standard is checked at first use: the other kind of the same topic is refused', async () => {
    const name = topic()
    const standard = await open('fifo=false')
    await standard.provision(name, 'g')
    const fifo = await open('fifo=true')
    const outcome = await fifo.publish(name, 'x').then(
      () => 'published',
      (e: unknown) => (isMsgkitError(e) ? e.code : String(e)),
    )
    expect(outcome).toBe(ErrorCodes.CONFIG_INVALID)
  }, 60_000)

  it('two msgkit names that map onto one AWS name are refused, not merged', async () => {
    const id = randomUUID()
    const m = await open('fifo=false')
    await m.provision(`t.${id}`, 'g')
    const outcome = await m.provision(`t_${id}`, 'g').then(
      () => 'provisioned',
      (e: unknown) => (isMsgkitError(e) ? e.code : String(e)),
    )
    expect(outcome).toBe(ErrorCodes.INVALID_ARGUMENT)
  }, 60_000)

  for (const fanout of [true, false])
    it(`heals a group queue deleted under a live subscriber (fanout=${fanout}): the next publish and the next poll declare it again`, async () => {
      const name = topic()
      const m = await open(`fanout=${fanout}`)
      const got: string[] = []
      await m.subscribe(name, { group: 'g' }, (message) => void got.push(String(message.body)))
      await m.publish(name, 'before')
      await waitFor(() => got.includes('before'), { timeoutMs: 20_000, message: 'the first message' })
      const config = configOf(urlWith(`${base}&fanout=${fanout}`))
      const sqs = new SQSClient({ region: 'us-east-1', endpoint: config.endpoint ?? '' })
      try {
        const { QueueUrl } = await sqs.send(
          new GetQueueUrlCommand({ QueueName: createNaming(config).queue(name, 'g') }),
        )
        await sqs.send(new DeleteQueueCommand({ QueueUrl }))
      } finally {
        sqs.destroy()
      }
      // the subscriber's polls fail (QueueDoesNotExist) until the queue is back
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      const after = await m.publish(name, 'after the delete', { timeoutMs: 20_000 })
      await waitFor(() => got.includes('after the delete'), {
        timeoutMs: 30_000,
        message: `${after.id} after the delete`,
      })
      // each message once
      expect([...got].sort()).toEqual(['after the delete', 'before'])
    }, 90_000)

  it('a foreign message with Number and Binary attributes, sent straight to the group queue', async () => {
    const name = topic()
    const m = await open('fanout=false')
    const deliveries: Delivery[] = []
    await m.transport.provision(name, 'g')
    const sub = await m.transport.subscribe({ topic: name, group: 'g', prefetch: 10 }, async (d) => {
      deliveries.push(d)
    })
    const config = configOf(urlWith(`${base}&fanout=false`))
    const sqs = new SQSClient({ region: 'us-east-1', endpoint: config.endpoint ?? '' })
    const QueueName = createNaming(config).queue(name, 'g')
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName }))
    await sqs.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: '{"from":"elsewhere"}',
        MessageAttributes: {
          n: { DataType: 'Number', StringValue: '42' },
          b: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 255]) },
        },
      }),
    )
    sqs.destroy()
    await waitFor(() => deliveries.length === 1, { timeoutMs: 20_000, message: 'the foreign message' })
    const message = deliveries[0]?.message
    expect(new TextDecoder().decode(message?.body)).toBe('{"from":"elsewhere"}')
    expect(message?.headers).toEqual({ n: '42', b: 'AAH/' })
    expect(message?.attempt).toBe(1)
    await deliveries[0]?.ack()
    await sub.close()
  }, 60_000)
})
