/** Kafka-specific behaviour against a real broker, beyond the contract suite. */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  createMessaging,
  definePattern,
  ErrorCodes,
  type Messaging,
  type MessagingOptions,
} from '@msgkit/core'
import { createHandlerSpy, startTcpProxy, waitFor } from '@msgkit/testkit'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import kafkaTransport from '../src/index.js'
import { createKafkaProbe } from '../src/testing.js'
import { brokersOf, deleteTopicsCreatedSince, testClient, topicsNow } from './broker-helpers.js'

const url = process.env.MSGKIT_KAFKA_URL ?? 'kafka://127.0.0.1:9092'
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
const kafkaScript = (command: string) =>
  promisify(execFile)('scripts/brokers/kafka.sh', [command], { cwd: repoRoot, timeout: 180_000 })

const probe = createKafkaProbe({ brokers: brokersOf(url) })
const topicsBefore = await topicsNow(url)
const opened: Messaging[] = []

/** A Messaging on the broker under test; `params` are added to the URL (e.g. partitions=1). */
async function open(params = '', options: MessagingOptions = {}): Promise<Messaging> {
  const full = params ? `${url}${url.includes('?') ? '&' : '?'}${params}` : url
  const messaging = await createMessaging({ transport: kafkaTransport, url: full }, options)
  opened.push(messaging)
  return messaging
}
const topic = () => `k-${randomUUID()}`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((m) => m.close({ timeoutMs: 2_000 })))
})
afterAll(async () => {
  await probe.close()
  await deleteTopicsCreatedSince(url, topicsBefore)
})

describe('kafka transport on a real broker', () => {
  it('consumes records of a foreign producer: null key, repeated headers, no msgkit id', async () => {
    const messaging = await open()
    const name = topic()
    const spy = createHandlerSpy()
    await messaging.subscribe(name, { group: 'foreign' }, spy.handler)
    const raw = testClient(url, 'foreign').producer()
    await raw.connect()
    try {
      await raw.send({
        topic: name,
        messages: [
          {
            key: null,
            value: Buffer.from('{"hello":"world"}'),
            headers: {
              multi: [Buffer.from('one'), Buffer.from('two')],
              plain: 'text',
              bin: Buffer.from([0xe2, 0x82, 0xac]),
            },
          },
        ],
      })
    } finally {
      await raw.disconnect()
    }
    const message = await spy.waitForMessage(() => true, { timeoutMs: 15_000 })
    expect(message.body).toEqual({ hello: 'world' })
    expect(message.key).toBeUndefined()
    expect(message.id).toMatch(new RegExp(`^${name}-\\d+-\\d+$`))
    expect(message.headers).toEqual({ multi: 'two', plain: 'text', bin: '€' })
    expect(message.redelivered).toBe(false)
  }, 60_000)

  it('a poison message does not block its partition; it is dead-lettered and committed past', async () => {
    // one partition: the poison message and everything after it share it
    const messaging = await open('partitions=1')
    const name = topic()
    const group = 'poison'
    const dead = createHandlerSpy()
    await messaging.subscribe(`${name}.${group}.dlq`, { group: 'dlq' }, dead.handler)
    const handled: Array<{ key: string; at: number }> = []
    await messaging.subscribe(
      name,
      { group, concurrency: 4, retry: { attempts: 4, backoff: { initialMs: 400, maxMs: 400, jitter: 0 } } },
      (message) => {
        if (message.key === 'poison') throw new Error('poison')
        handled.push({ key: message.key ?? '?', at: Date.now() })
      },
    )
    const poison = await messaging.publish(name, { poison: true }, { key: 'poison' })
    const others = await Promise.all(
      Array.from({ length: 20 }, (_, i) => messaging.publish(name, { i }, { key: `ok-${i % 5}` })),
    )
    await waitFor(() => handled.length === others.length, {
      timeoutMs: 15_000,
      message: 'all others handled',
    })
    const letter = await dead.waitForMessage((m) => m.id === poison.id, { timeoutMs: 15_000 })
    const deadAt = Date.now()
    // the others did not wait for the poison message's retries (~1.2 s)
    expect(Math.max(...handled.map((h) => h.at))).toBeLessThan(deadAt)
    expect(letter.deadLetter).toMatchObject({ reason: 'handler-failed', attempts: 4 })
    await waitFor(async () => (await probe.pendingCount(name, group)) === 0, {
      timeoutMs: 15_000,
      message: 'the group committed past the poison message',
    })
  }, 60_000)

  it('per-key order with concurrency 4 across two members while the group rebalances twice', async () => {
    const name = topic()
    const group = 'order'
    const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`)
    const perKey = 60
    const log: Array<{ key: string; seq: number; member: string }> = []
    const running = new Set<string>()
    const overlaps: string[] = []
    const handlerFor =
      (member: string) =>
      async (message: { key?: string; body: unknown }): Promise<void> => {
        const key = message.key ?? '?'
        const seq = (message.body as { seq: number }).seq
        if (running.has(`${member}:${key}`)) overlaps.push(`${member}:${key}#${seq}`)
        running.add(`${member}:${key}`)
        await sleep(1 + Math.random() * 4)
        log.push({ key, seq, member })
        running.delete(`${member}:${key}`)
      }
    const a = await open('partitions=4')
    const subA = await a.subscribe(name, { group, concurrency: 4 }, handlerFor('a'))
    const producer = await open()
    let b: Messaging | undefined
    for (let seq = 0; seq < perKey; seq++) {
      if (seq === perKey / 3) {
        b = await open()
        await b.subscribe(name, { group, concurrency: 4 }, handlerFor('b'))
      }
      if (seq === (2 * perKey) / 3) await subA.close()
      await Promise.all(keys.map((key) => producer.publish(name, { seq }, { key })))
      await sleep(15)
    }
    await waitFor(
      () => keys.every((key) => new Set(log.filter((l) => l.key === key).map((l) => l.seq)).size === perKey),
      {
        timeoutMs: 30_000,
        message: 'every key fully handled',
      },
    )
    await sleep(500)
    let duplicates = 0
    for (const key of keys) {
      const seen = new Set<number>()
      const firsts: number[] = []
      for (const entry of log.filter((l) => l.key === key)) {
        if (seen.has(entry.seq)) {
          duplicates++
          continue
        }
        seen.add(entry.seq)
        firsts.push(entry.seq)
      }
      expect(firsts, `${key}: first handlings in publish order, no gaps`).toEqual(
        Array.from({ length: perKey }, (_, i) => i),
      )
    }
    expect(overlaps, 'same key handled twice at once inside one member').toEqual([])
    expect(new Set(log.map((l) => l.member))).toEqual(new Set(['a', 'b']))
    console.log(`[kafka] rebalance order test: ${log.length} handlings, ${duplicates} duplicates`)
    expect(duplicates, 'redeliveries caused by the two rebalances').toBeLessThanOrEqual(keys.length * 4)
    expect(b).toBeDefined()
  }, 90_000)

  it('a pattern subscription picks up topics created after it started, from their first message', async () => {
    const messaging = await open('patternRefreshInterval=500')
    const base = topic()
    const spy = createHandlerSpy()
    await messaging.subscribe(definePattern(`${base}.*`), { group: 'late' }, spy.handler)
    const first = await messaging.publish(`${base}.created-later`, 'first')
    const second = await messaging.publish(`${base}.created-later`, 'second')
    await messaging.publish(`${base}.deeper.nested`, 'not matched')
    // no key: the two may sit on different partitions, so no order between them
    await spy.waitForCount(2, { timeoutMs: 20_000 })
    await sleep(500)
    expect(new Set(spy.messages.map((m) => m.id))).toEqual(new Set([first.id, second.id]))
    expect(spy.messages.length).toBe(2)
  }, 60_000)

  it("the limits are one truth: a max body with headers at maxHeaderBytes (msgkit's own counted) fits the broker; one byte more is refused before the wire", async () => {
    const messaging = await open()
    const { maxMessageBytes, maxHeaderBytes } = messaging.capabilities
    // docs/brokers/kafka.md states these numbers for the default messageMaxBytes
    expect({ maxMessageBytes, maxHeaderBytes }).toEqual({
      maxMessageBytes: 1_024_012,
      maxHeaderBytes: 16_384,
    })
    const key = 'k'.repeat(1_024)
    const headers = (n: number) => ({ a: 'x'.repeat(512), big: 'v'.repeat(n) })
    // the longest header value core lets through with this key and a binary body (same msgkit headers
    // as below); its refusal comes before the wire
    const probeTopic = topic()
    const accepted = (n: number) =>
      messaging.publish(probeTopic, new Uint8Array(1), { key, headers: headers(n) }).then(
        () => true,
        (error: { code?: string }) => {
          if (error.code !== ErrorCodes.MESSAGE_TOO_LARGE) throw error
          return false
        },
      )
    let lo = 0
    let hi = maxHeaderBytes
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2)
      if (await accepted(mid)) lo = mid
      else hi = mid - 1
    }
    const name = topic()
    const spy = createHandlerSpy()
    await messaging.subscribe(name, { group: 'big' }, spy.handler)
    const body = new Uint8Array(maxMessageBytes).fill(0x5a)
    const receipt = await messaging.publish(name, body, { key, headers: headers(lo), timeoutMs: 30_000 })
    const message = await spy.waitForMessage((m) => m.id === receipt.id, { timeoutMs: 30_000 })
    expect((message.body as Uint8Array).byteLength).toBe(maxMessageBytes)
    expect(message.headers.big?.length).toBe(lo)
    expect(message.key).toBe(key)
    const over = await messaging
      .publish(name, body, { key, headers: headers(lo + 1) })
      .catch((e: unknown) => e)
    expect(over).toMatchObject({ code: ErrorCodes.MESSAGE_TOO_LARGE })
    await sleep(1_000)
    expect(spy.messages.length, 'nothing but the accepted one reached the broker').toBe(1)
    console.log(
      `[kafka] largest accepted: ${maxMessageBytes}-byte body, 1 KiB key, header value of ${lo} chars`,
    )
  }, 60_000)

  it('one outage, one set of events: a cut with a producer and a consumer active gives one disconnected and one connected', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 19092 }, 19093)
    try {
      const messaging = await createMessaging({ transport: kafkaTransport, url: 'kafka://127.0.0.1:19093' })
      opened.push(messaging)
      const events: string[] = []
      for (const event of ['connected', 'disconnected', 'reconnecting'] as const)
        messaging.on(event, () => events.push(event))
      const name = topic()
      const spy = createHandlerSpy()
      await messaging.subscribe(name, { group: 'outage-events' }, spy.handler)
      await messaging.publish(name, 'before')
      await spy.waitForCount(1, { timeoutMs: 15_000 })
      await proxy.refuse()
      const during = messaging.publish(name, 'during', { timeoutMs: 30_000 })
      await sleep(4_000)
      await proxy.open()
      await during
      await spy.waitForCount(2, { timeoutMs: 30_000 })
      await sleep(3_000)
      console.log(`[kafka] events of one cut: ${events.join(' ')}`)
      expect(events.filter((e) => e === 'disconnected')).toHaveLength(1)
      expect(events.filter((e) => e === 'connected')).toHaveLength(1)
      expect(events.at(-1)).toBe('connected')
    } finally {
      await proxy.close()
    }
  }, 90_000)

  it('a member that crashed while cut off is replaced, and its old id is removed from the group instead of lingering for its session timeout', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 19092 }, 19093)
    const admin = testClient(url, 'msgkit-test-group').admin()
    try {
      await admin.connect()
      // a session timeout longer than this test: only the removal can clear the crashed member in time
      const slow = 'sessionTimeout=60000&rebalanceTimeout=60000'
      const messaging = await createMessaging({
        transport: kafkaTransport,
        url: `kafka://127.0.0.1:19093?${slow}`,
      })
      opened.push(messaging)
      const name = topic()
      const group = `crash-${randomUUID()}`
      const spy = createHandlerSpy()
      await messaging.subscribe(name, { group }, spy.handler)
      const members = async () =>
        (await admin.describeGroups([group])).groups[0]?.members.map((m) => m.memberId) ?? []
      const before = await members()
      expect(before).toHaveLength(1)
      // kafkajs gives up after its retries and the member crashes; its own LeaveGroup cannot get through
      await proxy.refuse()
      await sleep(8_000)
      expect(await members(), 'the crashed member is still in the group while cut off').toEqual(before)
      await proxy.open()
      const restoredAt = Date.now()
      const after = await waitFor(
        async () => {
          const now = await members()
          return now.length === 1 && now[0] !== before[0] ? now : undefined
        },
        { timeoutMs: 40_000, intervalMs: 200, message: 'the replacement member alone in the group' },
      )
      const joinedMs = Date.now() - restoredAt
      const sent = await messaging.publish(name, 'after the crash')
      await spy.waitForMessage((m) => m.id === sent.id, { timeoutMs: 30_000 })
      console.log(
        `[kafka] crashed member ${before[0]} replaced by ${after[0]} ${joinedMs} ms after the restore`,
      )
    } finally {
      await admin.disconnect().catch(() => {})
      await proxy.close()
    }
  }, 120_000)

  it('a long-lived instance publishes to and provisions a topic created by another client after a topic it used was deleted (stale metadata)', async () => {
    const messaging = await open()
    const [gone, fresh] = [topic(), topic()]
    // the instance's kafkajs clients now ask for `gone` in every metadata refresh
    await messaging.provision(gone, 'stale')
    await messaging.publish(gone, 'before the delete')
    const admin = testClient(url, 'msgkit-test-other').admin()
    await admin.connect()
    try {
      await admin.deleteTopics({ topics: [gone], timeout: 30_000 })
      await admin.createTopics({ topics: [{ topic: fresh, numPartitions: 3 }], waitForLeaders: false })
    } finally {
      await admin.disconnect()
    }
    const started = Date.now()
    // Kafka answers UNKNOWN_TOPIC_OR_PARTITION (for `gone`, or for `fresh` until its metadata spread)
    await messaging.publish(fresh, 'first', { timeoutMs: 15_000 })
    const published = Date.now() - started
    await messaging.provision(fresh, 'stale')
    const sent = await messaging.publish(fresh, 'second', { timeoutMs: 15_000 })
    const spy = createHandlerSpy()
    await messaging.subscribe(fresh, { group: 'stale' }, spy.handler)
    await spy.waitForMessage((m) => m.id === sent.id, { timeoutMs: 30_000 })
    console.log(`[kafka] first publish after a topic was deleted: ${published} ms`)
    console.log(`[kafka] publish + provision after a topic was deleted: ${Date.now() - started} ms`)
  }, 90_000)

  it('heals a deleted topic: publishing creates it again; a subscription comes back by itself and gets every later message', async () => {
    const messaging = await open()
    const errors: string[] = []
    messaging.on('error', (event) => errors.push(String(event.error)))
    const admin = testClient(url, 'msgkit-test-other').admin()
    await admin.connect()
    try {
      // publishing only: the topic is known to the instance (created once), then deleted
      const published = topic()
      await messaging.publish(published, 'before')
      await admin.deleteTopics({ topics: [published], timeout: 30_000 })
      let started = Date.now()
      await messaging.publish(published, 'after the delete', { timeoutMs: 20_000 })
      console.log(`[kafka] deleted topic: publish after ${Date.now() - started} ms`)
      expect((await admin.fetchTopicOffsets(published)).reduce((n, p) => n + Number(p.high), 0)).toBe(1)

      // a live subscription: its member fails, the replacement creates the topic again
      const name = topic()
      const spy = createHandlerSpy()
      await messaging.subscribe(name, { group: 'heal' }, spy.handler)
      await messaging.publish(name, 'before')
      await spy.waitForMessage((m) => m.body === 'before', { timeoutMs: 20_000 })
      await admin.deleteTopics({ topics: [name], timeout: 30_000 })
      const listed = async () => (await admin.listTopics()).includes(name)
      await waitFor(async () => !(await listed()), { timeoutMs: 30_000, intervalMs: 100 })
      await waitFor(listed, { timeoutMs: 30_000, intervalMs: 200 })
      console.log(`[kafka] deleted topic: the subscription created it again; error events: ${errors.length}`)
      started = Date.now()
      const later = await Promise.all(['one', 'two', 'three'].map((body) => messaging.publish(name, body)))
      for (const m of later) await spy.waitForMessage((x) => x.id === m.id, { timeoutMs: 30_000 })
      console.log(`[kafka] deleted topic: delivered after ${Date.now() - started} ms`)
      // each message once: nothing from before the delete handed over again, nothing after it doubled
      expect(spy.messages.map((m) => m.body).sort()).toEqual(['before', 'one', 'three', 'two'])
    } finally {
      await admin.disconnect()
    }
  }, 120_000)

  it('publishes during an outage wait for their deadline, then reject; afterwards publishing resumes', async () => {
    const messaging = await open()
    const name = topic()
    const spy = createHandlerSpy()
    await messaging.subscribe(name, { group: 'outage' }, spy.handler)
    const events: string[] = []
    for (const event of ['connected', 'disconnected', 'reconnecting'] as const)
      messaging.on(event, () => events.push(event))
    await messaging.publish(name, 'before')
    await kafkaScript('stop')
    try {
      const started = Date.now()
      const outcome = await messaging.publish(name, 'during', { timeoutMs: 3_000 }).then(
        () => 'resolved',
        (error: { code?: string }) => error.code,
      )
      const took = Date.now() - started
      console.log(`[kafka] publish during outage: ${outcome} after ${took} ms`)
      expect(outcome).toBe(ErrorCodes.PUBLISH_TIMEOUT)
      expect(took).toBeGreaterThanOrEqual(2_900)
      expect(took).toBeLessThan(6_000)
    } finally {
      await kafkaScript('start')
    }
    const backAt = Date.now()
    const after = await messaging.publish(name, 'after', { timeoutMs: 30_000 })
    console.log(`[kafka] first publish after the broker came back: ${Date.now() - backAt} ms`)
    await spy.waitForMessage((m) => m.id === after.id, { timeoutMs: 60_000 })
    console.log(`[kafka] consumer received it ${Date.now() - backAt} ms after the broker came back`)
    await waitFor(() => events.includes('connected'), { timeoutMs: 15_000, message: 'a connected event' })
    expect(events.indexOf('disconnected')).toBeGreaterThanOrEqual(0)
    expect(events.lastIndexOf('connected')).toBeGreaterThan(events.indexOf('disconnected'))
  }, 180_000)
})
