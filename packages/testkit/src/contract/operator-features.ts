/**
 * OP: the optional operator features of a transport (spi.ts: capabilities `temporaryGroups`,
 * `replay`, `sendToGroup`, `browse`) that the msgkit CLI's `tail` and `dlq` commands stand on.
 * Each case runs what the capability promises where it is on, and asserts the loud
 * MSGKIT_CAPABILITY_UNSUPPORTED where it is off: an off flag is never a silent skip.
 */
import { randomUUID } from 'node:crypto'
import {
  deadLetterQueue,
  ErrorCodes,
  isMsgkitError,
  type Message,
  type Messaging,
  type MessagingOptions,
  type OutgoingMessage,
  type TransportMessage,
} from '@msgkit/core'
import { afterAll, describe, expect, it } from 'vitest'
import { uniqueTopic } from '../helpers/unique-topic.js'
import { waitFor } from '../helpers/wait-for.js'

export interface OperatorCasesOptions {
  /** shown in the test names */
  name: string
  /** a connected Messaging on the transport under test */
  createMessaging(options?: MessagingOptions): Promise<Messaging>
  /** how long "nothing more arrives" is watched (default 1000 ms) */
  quietMs?: number
  /** how long a wait for a message may take (default 20 s) */
  waitMs?: number
}

const text = new TextEncoder()
const read = new TextDecoder()
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function rejection(work: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await work
  } catch (error) {
    expect(isMsgkitError(error), `a MsgkitError, got ${String(error)}`).toBe(true)
    return error as { code: string; message: string }
  }
  throw new Error('expected a rejection')
}

/** Registers the OP cases in the calling test file. */
export function runOperatorCases(options: OperatorCasesOptions): void {
  const quietMs = options.quietMs ?? 1_000
  const waitMs = options.waitMs ?? 20_000
  const open: Messaging[] = []
  const connect = async (): Promise<Messaging> => {
    const m = await options.createMessaging()
    open.push(m)
    return m
  }
  afterAll(async () => {
    await Promise.allSettled(open.map((m) => m.close({ timeoutMs: 5_000 })))
  })
  const collect = async (m: Messaging, topic: string, group: string, extra: object = {}) => {
    const got: Array<Message<unknown>> = []
    const sub = await m.subscribe(topic, { group, retry: false, deadLetter: false, ...extra }, (msg) => {
      got.push(msg)
    })
    return { got, sub }
  }

  describe(`operator features (${options.name})`, () => {
    it('OP-1 a temporary group gets what is published while it lives, steals nothing, and is gone after close', async () => {
      const m = await connect()
      const topic = uniqueTopic()
      if (!m.capabilities.temporaryGroups) {
        const error = await rejection(
          m.subscribe(topic, { group: `tmp-${randomUUID().slice(0, 8)}`, temporary: true }, () => {}),
        )
        expect(error.code).toBe(ErrorCodes.CAPABILITY_UNSUPPORTED)
        return
      }
      await m.provision(topic, 'service')
      const group = `tmp-${randomUUID().slice(0, 8)}`
      const temp = await collect(m, topic, group, { temporary: true })
      for (const n of [1, 2, 3]) await m.publish(topic, { n })
      await waitFor(() => temp.got.length >= 3, { timeoutMs: waitMs, message: 'the temporary group got 3' })
      await temp.sub.close()
      await m.publish(topic, { n: 4 })
      // the service's own group still has all four: the temporary group took none of its messages
      const service = await collect(m, topic, 'service')
      await waitFor(() => service.got.length >= 4, { timeoutMs: waitMs, message: 'the service got 4' })
      expect(service.got.map((g) => (g.body as { n: number }).n)).toEqual([1, 2, 3, 4])
      // the same name again is a new, empty group: n=4 (published after close) was kept for nobody
      const again = await collect(m, topic, group, { temporary: true })
      await m.publish(topic, { n: 5 })
      await waitFor(() => again.got.length >= 1, { timeoutMs: waitMs, message: 'the new temporary group' })
      await sleep(quietMs)
      expect(again.got.map((g) => (g.body as { n: number }).n)).toEqual([5])
      await again.sub.close()
      await service.sub.close()
    })

    it('OP-2 fromStart: a new group starts at the oldest kept message, where the broker keeps a log', async () => {
      const m = await connect()
      const topic = uniqueTopic()
      const group = `replay-${randomUUID().slice(0, 8)}`
      if (!m.capabilities.replay) {
        const error = await rejection(m.subscribe(topic, { group, fromStart: true }, () => {}))
        expect(error.code).toBe(ErrorCodes.CAPABILITY_UNSUPPORTED)
        return
      }
      await m.provision(topic, 'keeper')
      for (const n of [1, 2, 3]) await m.publish(topic, { n })
      const late = await collect(m, topic, group, { fromStart: true })
      await waitFor(() => late.got.length >= 3, { timeoutMs: waitMs, message: 'the late group got 3' })
      expect(late.got.map((g) => (g.body as { n: number }).n)).toEqual([1, 2, 3])
      await late.sub.close()
    })

    it('OP-3 sendToGroup: only that group gets the message, id/key/headers/body kept; an unknown group is refused', async () => {
      const m = await connect()
      const transport = m.transport
      const topic = uniqueTopic()
      if (!m.capabilities.sendToGroup || !transport.sendToGroup) {
        expect(m.capabilities.sendToGroup ?? false, 'the flag and the member go together').toBe(
          Boolean(transport.sendToGroup),
        )
        const error = await rejection(deadLetterQueue(m, topic, 'a').redrive())
        expect(error.code).toBe(ErrorCodes.CAPABILITY_UNSUPPORTED)
        return
      }
      await m.provision(topic, 'a')
      await m.provision(topic, 'b')
      const a = await collect(m, topic, 'a')
      const b = await collect(m, topic, 'b')
      const message: OutgoingMessage = {
        id: randomUUID(),
        key: 'k-1',
        headers: { 'x-trace': 'é 한글', 'msgkit-content-type': 'text/plain; charset=utf-8' },
        body: text.encode('only for a'),
        timestamp: Date.now() - 60_000,
      }
      await transport.sendToGroup(topic, 'a', [message], { deadline: Date.now() + waitMs })
      await waitFor(() => a.got.length >= 1, { timeoutMs: waitMs, message: 'group a got it' })
      await sleep(quietMs)
      expect(b.got, 'group b must not get a message sent to group a').toEqual([])
      const got = a.got[0] as Message<unknown>
      expect(got.id).toBe(message.id)
      expect(got.key).toBe('k-1')
      expect(got.body).toBe('only for a')
      expect(got.headers).toEqual({ 'x-trace': 'é 한글' })
      expect(got.timestamp).toBe(message.timestamp)
      expect(got.attempt).toBe(1)
      const refused = await rejection(
        transport.sendToGroup(
          topic,
          `never-${randomUUID().slice(0, 8)}`,
          [{ ...message, id: randomUUID() }],
          {
            deadline: Date.now() + waitMs,
          },
        ),
      )
      expect(refused.code).toBe(ErrorCodes.UNROUTABLE)
      await a.sub.close()
      await b.sub.close()
    })

    it('OP-4 browse reads waiting messages in order and leaves them, in order, for the group', async () => {
      const m = await connect()
      const transport = m.transport
      const topic = uniqueTopic()
      const group = 'g'
      if (!m.capabilities.browse || !transport.browse) {
        expect(Boolean(m.capabilities.browse), 'the flag and the member go together').toBe(
          Boolean(transport.browse),
        )
        const error = await rejection(deadLetterQueue(m, topic, group).browse())
        expect(error.code).toBe(ErrorCodes.CAPABILITY_UNSUPPORTED)
        return
      }
      const browse = async (g: string, limit: number): Promise<TransportMessage[]> => {
        const seen: TransportMessage[] = []
        await transport.browse?.({ topic, group: g, limit }, (msg) => seen.push(msg))
        return seen
      }
      expect(
        await browse(`absent-${randomUUID().slice(0, 8)}`, 10),
        'a group without storage reads as empty',
      ).toEqual([])
      await m.provision(topic, group)
      const ids: string[] = []
      for (const n of [1, 2, 3, 4, 5]) ids.push((await m.publish(topic, `m${n}`, { key: `k${n}` })).id)
      const first = await browse(group, 3)
      expect(first.map((x) => x.id)).toEqual(ids.slice(0, 3))
      expect(read.decode(first[0]?.body)).toBe('m1')
      expect(first[0]?.key).toBe('k1')
      const all = await browse(group, 100)
      expect(
        all.map((x) => x.id),
        'a second browse sees the same messages, in the same order',
      ).toEqual(ids)
      // room for the deliveries a `redelivers` browse counts (two browses: up to attempt 3)
      const sub = await collect(m, topic, group, { retry: { attempts: 10 } })
      await waitFor(() => sub.got.length >= 5, { timeoutMs: waitMs, message: 'the group got all 5' })
      await sleep(quietMs)
      expect(
        sub.got.map((g) => g.id),
        'each once, in order',
      ).toEqual(ids)
      for (const g of sub.got) {
        if (m.capabilities.browse === 'exact')
          expect(g.redelivered, 'an exact browse changes nothing').toBe(false)
        else expect(g.redelivered, 'a browse that redelivers says so').toBe(true)
      }
      await sub.sub.close()
    })

    it('OP-5 dead letters: read, redrive some to their group only (same id, fresh attempts), purge the rest', async () => {
      const m = await connect()
      const topic = uniqueTopic()
      const group = 'worker'
      const dlq = deadLetterQueue(m, topic, group)
      if (!m.capabilities.sendToGroup || !m.capabilities.browse) {
        const error = await rejection(
          m.capabilities.browse ? dlq.redrive({ idleMs: quietMs }) : dlq.browse({ limit: 1 }),
        )
        expect(error.code).toBe(ErrorCodes.CAPABILITY_UNSUPPORTED)
        return
      }
      await m.provision(topic, group)
      await m.provision(topic, 'bystander')
      let failing = true
      const handled: Array<Message<unknown>> = []
      const worker = await m.subscribe(
        topic,
        { group, retry: { attempts: 2, backoff: { initialMs: 10 } } },
        (msg) => {
          if (failing) throw new Error(`mail server down for ${(msg.body as { to: string }).to}`)
          handled.push(msg)
        },
      )
      const sent: string[] = []
      for (const to of ['a@x', 'b@x', 'c@x'])
        sent.push((await m.publish(topic, { to }, { key: to, headers: { tenant: 't1' } })).id)
      let letters = await waitFor(
        async () => {
          const l = await dlq.browse({ limit: 10 })
          return l.length >= 3 ? l : undefined
        },
        { timeoutMs: waitMs, message: '3 dead letters', intervalMs: 250 },
      )
      expect(letters.map((l) => l.id)).toEqual(sent)
      expect(letters[0]?.deadLetter).toMatchObject({ reason: 'handler-failed', attempts: 2, topic, group })
      expect(letters[0]?.headers).toEqual({ tenant: 't1' })
      const bystander = await collect(m, topic, 'bystander')
      await waitFor(() => bystander.got.length >= 3, {
        timeoutMs: waitMs,
        message: 'bystander got the originals',
      })
      failing = false
      const dry = await dlq.redrive({ dryRun: true, limit: 2 })
      expect(dry).toMatchObject({ moved: 2, dryRun: true })
      expect((await dlq.browse()).length, 'a dry run changes nothing').toBe(3)
      const report = await dlq.redrive({
        filter: (l) => l.key !== 'b@x',
        idleMs: quietMs,
      })
      expect(report).toMatchObject({ moved: 2, skipped: 1, stopped: 'drained' })
      await waitFor(() => handled.length >= 2, {
        timeoutMs: waitMs,
        message: 'the worker handled the redriven 2',
      })
      await sleep(quietMs)
      expect(handled.map((h) => h.id)).toEqual([sent[0], sent[2]])
      expect(handled[0]?.attempt, 'a redriven message starts with its full retry budget').toBe(1)
      expect(handled[0]?.headers).toEqual({ tenant: 't1' })
      expect(handled[0]?.body).toEqual({ to: 'a@x' })
      expect(bystander.got.length, 'redrive reaches the failed group only').toBe(3)
      letters = await dlq.browse()
      expect(letters.map((l) => l.id)).toEqual([sent[1]])
      const purged = await dlq.purge({ idleMs: quietMs })
      expect(purged).toMatchObject({ removed: 1, stopped: 'drained' })
      expect(await dlq.browse()).toEqual([])
      await worker.close()
      await bystander.sub.close()
    })
  })
}
