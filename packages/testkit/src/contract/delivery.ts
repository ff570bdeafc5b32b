/** DG: nothing lost, retries, crashes, dead letters, decode failures, idempotency, broken hooks. */
import { createHash, randomUUID } from 'node:crypto'
import {
  createMemoryIdempotencyStore,
  defineTopic,
  ErrorCodes,
  type Headers,
  isMsgkitError,
  type Logger,
  type Message,
  NonRetryableError,
  type Schema,
} from '@msgkit/core'
import { expect } from 'vitest'
import { createHandlerSpy } from '../helpers/handler-spy.js'
import { waitFor } from '../helpers/wait-for.js'
import {
  CASE_MS,
  countDuplicates,
  deadLetterSpy,
  describeError,
  expectBytes,
  expectExactly,
  expectGroupDrained,
  expectUserHeaders,
  inParallel,
  LONG_WAIT_MS,
  persistenceOn,
  QUIET_MS,
  randomPayload,
  report,
  type SuiteKit,
  sameContent,
  sleep,
  utf8,
  WAIT_MS,
  waitForIds,
  watchProcessErrors,
} from './support.js'

interface Order {
  n: number
  ok: true
}

/** A hand-written schema (anything with zod's safeParse fits), so the kit needs no zod at run time. */
const orderSchema: Schema<Order> = {
  safeParse(value) {
    const candidate = value as Partial<Order> | null
    if (
      typeof candidate === 'object' &&
      candidate !== null &&
      typeof candidate.n === 'number' &&
      candidate.ok === true
    ) {
      return { success: true, data: candidate as Order }
    }
    return { success: false, error: { issues: [{ message: 'expected { n: number, ok: true }', path: [] }] } }
  },
}

const fastRetry = (attempts: number) => ({ attempts, backoff: { initialMs: 50, maxMs: 200, jitter: 0 } })

export function deliveryCases(kit: SuiteKit): void {
  kit.describe('delivery', () => {
    kit.it(
      'DG-1 1000 messages, 50 publishing concurrently: received = sent, no duplicate (steady state)',
      async (t) => {
        const topic = kit.topic()
        const consumer = await kit.open()
        const received: string[] = []
        await consumer.subscribe(topic, { group: kit.group('dg1'), concurrency: 8 }, (message) => {
          received.push(message.id)
        })
        const producer = await kit.open()
        const sent = await inParallel(1000, 50, async (i) => (await producer.publish(topic, { i })).id)
        expect(new Set(sent).size, 'publish receipts carry distinct ids').toBe(1000)
        await waitForIds(() => received, sent, 'all 1000 received', LONG_WAIT_MS)
        await sleep(QUIET_MS)
        const { duplicates } = countDuplicates(received)
        await report(t, `${duplicates} duplicate deliveries of 1000`)
        // no restart, no rebalance, no failure: a duplicate here is a transport bug, not at-least-once
        expectExactly(received, sent, 'DG-1')
      },
      120_000,
    )

    kit.it(
      'DG-2 8 topics × 50, publish and subscribe concurrently: every topic’s set matches',
      async () => {
        const messaging = await kit.open()
        const topics = await Promise.all(
          Array.from({ length: 8 }, async (_, index) => {
            const topic = kit.topic()
            const received: string[] = []
            await messaging.subscribe(topic, { group: kit.group(`dg2-${index}`) }, (message) => {
              received.push(message.id)
            })
            const sent = await inParallel(
              50,
              5,
              async (i) => (await messaging.publish(topic, { index, i })).id,
            )
            return { index, received, sent }
          }),
        )
        for (const { index, received, sent } of topics) {
          await waitForIds(() => received, sent, `topic ${index}: all 50 received`, LONG_WAIT_MS)
        }
        await sleep(QUIET_MS)
        for (const { index, received, sent } of topics) {
          expectExactly(received, sent, `topic ${index}`)
        }
      },
      90_000,
    )

    kit.it(
      'DG-3 handlers that throw are retried: same id/key/headers, attempt counts 2 and 5, others not blocked, all acked',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('dg3')
        // key → handler failures before success
        const plan = new Map<string, number>([['stubborn', 4]])
        for (let i = 0; i < 3; i++) plan.set(`once-${i}`, 1)
        for (let i = 0; i < 6; i++) plan.set(`ok-${i}`, 0)
        const deliveries = new Map<string, Message<unknown>[]>()
        const doneAt = new Map<string, number>()
        const subscription = await messaging.subscribe(
          topic,
          {
            group,
            concurrency: 4,
            retry: { attempts: 5, backoff: { initialMs: 100, maxMs: 1_000, multiplier: 2, jitter: 0 } },
          },
          (message) => {
            const key = message.key ?? '?'
            deliveries.set(key, [...(deliveries.get(key) ?? []), message])
            if (message.attempt <= (plan.get(key) ?? 0))
              throw new Error(`DG-3: ${key} fails attempt ${message.attempt}`)
            doneAt.set(key, performance.now())
          },
        )
        const sent = new Map<string, { id: string; headers: Headers }>()
        // the stubborn one first, so anything queued behind it would be visibly blocked
        for (const key of plan.keys()) {
          const headers = { 'x-case': 'dg3', 'x-key': key }
          const receipt = await messaging.publish(topic, { key }, { key, headers })
          sent.set(key, { id: receipt.id, headers })
        }
        await waitFor(() => doneAt.size === plan.size, {
          timeoutMs: WAIT_MS,
          message: `all ${plan.size} handled (done: ${[...doneAt.keys()].join(', ')})`,
        })
        await sleep(QUIET_MS)

        for (const [key, failures] of plan) {
          const calls = deliveries.get(key) ?? []
          expect(
            calls.map((m) => m.attempt),
            `${key}: attempts`,
          ).toEqual(Array.from({ length: failures + 1 }, (_, i) => i + 1))
          for (const call of calls) {
            expect(call.id, `${key}: id on every delivery`).toBe(sent.get(key)?.id)
            expect(call.key).toBe(key)
            expect(call.body).toEqual({ key })
            expectUserHeaders(call, sent.get(key)!.headers, `${key} attempt ${call.attempt}`)
          }
        }
        const stubbornDone = doneAt.get('stubborn')!
        const blocked = [...doneAt]
          .filter(([key, at]) => key !== 'stubborn' && at > stubbornDone)
          .map(([key]) => key)
        expect(blocked, 'messages that had to wait for the stubborn one').toEqual([])

        await subscription.close()
        await expectGroupDrained(kit, t, topic, group)
      },
      CASE_MS,
    )

    kit.it(
      'DG-4 consumer dies with 3 unacked messages; a new member of the group gets the 3, marked as redelivered [persistence]',
      async (t) => {
        const topic = kit.topic()
        const group = kit.group('dg4')
        // one store for both instances, as a service's shared store (Redis, SQL) would be: where the
        // broker keeps no delivery count, core's count in it marks the redelivery
        const store = createMemoryIdempotencyStore()
        const dying = await kit.open({ idempotencyStore: store })
        if (!(await persistenceOn(t, dying, topic, group))) return
        const held: string[] = []
        await dying.subscribe(topic, { group, concurrency: 3 }, (message, context) => {
          held.push(message.id)
          // never finishes on its own; released only when the test's cleanup aborts it
          return new Promise((resolve) => context.signal.addEventListener('abort', resolve))
        })
        const headers = { 'x-case': 'dg4' }
        const sent: string[] = []
        for (let i = 0; i < 3; i++) sent.push((await dying.publish(topic, { i }, { headers })).id)
        await waitFor(() => held.length === 3, { timeoutMs: WAIT_MS, message: '3 messages in flight' })
        // a crash: the connection goes away without a single ack
        await dying.transport.close()

        const survivor = await kit.open({ idempotencyStore: store })
        const spy = createHandlerSpy()
        await survivor.subscribe(topic, { group }, spy.handler)
        await waitForIds(
          () => spy.messages.map((m) => m.id),
          sent,
          'the 3 unacked messages redelivered',
          LONG_WAIT_MS,
        )
        await sleep(QUIET_MS)
        expectExactly(
          spy.messages.map((m) => m.id),
          sent,
          'DG-4 redeliveries',
        )
        const facts = spy.messages.map((m) => `${m.attempt}/${m.redelivered}`).join(', ')
        await report(
          t,
          `redelivered as attempt/redelivered: ${facts} (broker count: ${survivor.capabilities.deliveryCount})`,
        )
        for (const message of spy.messages) {
          expectUserHeaders(message, headers, 'DG-4 redelivery')
          expect(
            message.redelivered || message.attempt >= 2,
            `DG-4: a redelivery shows as redelivered or attempt >= 2 (${facts})`,
          ).toBe(true)
          if (survivor.capabilities.deliveryCount === 'flag')
            expect(message.redelivered, 'DG-4: a flag-counting broker flags it').toBe(true)
          if (survivor.capabilities.deliveryCount !== 'flag')
            expect(message.attempt, 'DG-4: the delivery count (broker or core) says 2').toBe(2)
        }
      },
      90_000,
    )

    kit.it(
      'DG-5 always-throwing handler with attempts 3: 3 calls, 1 dead letter with the facts, source drained [deadLetter]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('dg5')
        const dead = await deadLetterSpy(t, messaging, topic, group)
        if (!dead) return
        const marker = randomUUID()
        const attempts: number[] = []
        const subscription = await messaging.subscribe(
          topic,
          { group, deadLetter: true, retry: fastRetry(3) },
          (message) => {
            attempts.push(message.attempt)
            throw new TypeError(`DG-5 always fails ${marker}`)
          },
        )
        const body = randomPayload(1024)
        const headers = { 'x-case': 'dg5' }
        const before = Date.now()
        const receipt = await messaging.publish(topic, body, { headers, key: 'dg5-key' })
        const letter = await dead.waitForMessage((m) => m.id === receipt.id, { timeoutMs: WAIT_MS })
        const after = Date.now()
        await sleep(QUIET_MS)

        expect(attempts, 'handler calls').toEqual([1, 2, 3])
        expect(dead.messages.length, 'dead letters').toBe(1)
        expectBytes(letter.body, body, 'DG-5 dead letter')
        expectUserHeaders(letter, headers, 'DG-5 dead letter')
        expect(letter.key).toBe('dg5-key')
        expect(letter.deadLetter).toMatchObject({
          reason: 'handler-failed',
          errorName: 'TypeError',
          attempts: 3,
          topic,
          group,
        })
        expect(letter.deadLetter?.errorMessage).toContain(marker)
        expect(letter.deadLetter?.time).toBeGreaterThanOrEqual(before)
        expect(letter.deadLetter?.time).toBeLessThanOrEqual(after)

        await subscription.close()
        await expectGroupDrained(kit, t, topic, group)
      },
      CASE_MS,
    )

    kit.it(
      'DG-6 handler throws NonRetryableError: 1 call, 1 dead letter [deadLetter]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('dg6')
        const dead = await deadLetterSpy(t, messaging, topic, group)
        if (!dead) return
        const attempts: number[] = []
        const subscription = await messaging.subscribe(
          topic,
          { group, deadLetter: true, retry: fastRetry(5) },
          (message) => {
            attempts.push(message.attempt)
            throw new NonRetryableError('DG-6: do not retry')
          },
        )
        const receipt = await messaging.publish(topic, 'dg-6')
        const letter = await dead.waitForMessage((m) => m.id === receipt.id, { timeoutMs: WAIT_MS })
        await sleep(QUIET_MS)
        expect(attempts, 'handler calls').toEqual([1])
        expect(dead.messages.length, 'dead letters').toBe(1)
        expect(letter.body).toBe('dg-6')
        expect(letter.deadLetter).toMatchObject({
          reason: 'non-retryable',
          errorName: 'NonRetryableError',
          errorMessage: 'DG-6: do not retry',
          attempts: 1,
          topic,
          group,
        })
        await subscription.close()
        await expectGroupDrained(kit, t, topic, group)
      },
      CASE_MS,
    )

    kit.it(
      'DG-7 retry backoff 500 ms: the 2nd attempt starts ≥ 450 ms after the 1st',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const startedAt: number[] = []
        await messaging.subscribe(
          topic,
          {
            group: kit.group('dg7'),
            retry: { attempts: 2, backoff: { initialMs: 500, maxMs: 500, multiplier: 1, jitter: 0 } },
          },
          (message) => {
            startedAt.push(performance.now())
            if (message.attempt === 1) throw new Error('DG-7: fail once')
          },
        )
        await messaging.publish(topic, 'dg-7')
        await waitFor(() => startedAt.length >= 2, { timeoutMs: WAIT_MS, message: 'a second attempt' })
        const gap = startedAt[1]! - startedAt[0]!
        await report(t, `retry after ${Math.round(gap)} ms`)
        expect(gap, 'ms between attempt 1 and 2').toBeGreaterThanOrEqual(450)
      },
      CASE_MS,
    )

    kit.it(
      'DG-8 raw non-JSON, schema-invalid and empty payloads are dead-lettered with the reason; the valid one is handled [deadLetter]',
      async (t) => {
        const messaging = await kit.open()
        const name = kit.topic()
        const topic = defineTopic(name, orderSchema)
        const group = kit.group('dg8')
        const dead = await deadLetterSpy(t, messaging, topic, group)
        if (!dead) return
        const handled = createHandlerSpy<Order>()
        await messaging.subscribe(topic, { group, deadLetter: true, retry: fastRetry(3) }, handled.handler)

        const bad = [
          { what: 'non-JSON', bytes: utf8.encode('not json {'), reason: 'decode-failed' },
          { what: 'schema-invalid', bytes: utf8.encode('{"n":"one","ok":true}'), reason: 'schema-invalid' },
          { what: 'empty', bytes: new Uint8Array(0), reason: 'decode-failed' },
        ]
        for (const { bytes } of bad) await kit.options.probe.publishRaw(name, bytes)
        const valid = { n: 7, ok: true }
        await kit.options.probe.publishRaw(name, utf8.encode(JSON.stringify(valid)), {
          headers: { 'x-case': 'dg8' },
        })

        const good = await handled.waitForMessage((m) => m.body?.n === 7, { timeoutMs: WAIT_MS })
        await dead.waitForCount(bad.length, { timeoutMs: WAIT_MS })
        await sleep(QUIET_MS)
        expect(
          handled.messages.map((m) => m.body),
          'the handler sees only the valid payload',
        ).toEqual([valid])
        expectUserHeaders(good, { 'x-case': 'dg8' }, 'DG-8 valid raw message')
        expect(dead.messages.length, 'exactly one dead letter per bad payload').toBe(bad.length)
        for (const { what, bytes, reason } of bad) {
          const letters = dead.messages.filter((m) => sameContent(m.body, bytes))
          expect(letters.length, `${what}: dead letters with its original body`).toBe(1)
          expect(letters[0]?.deadLetter, `${what}: dead-letter facts`).toMatchObject({
            reason,
            topic: name,
            group,
          })
        }
      },
      CASE_MS,
    )

    kit.it(
      'DG-9 effectively-once: the same message delivered twice runs the handler once',
      async () => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const runs = new Map<string, number>()
        await messaging.subscribe(
          topic,
          { group: kit.group('dg9'), idempotency: true, retry: fastRetry(3) },
          (message: Message<{ failOnce?: boolean }>) => {
            runs.set(message.id, (runs.get(message.id) ?? 0) + 1)
            if (message.body.failOnce && message.attempt === 1) throw new Error('DG-9: fail once')
          },
        )
        const id = randomUUID()
        await messaging.publish(topic, { twice: true }, { id })
        await messaging.publish(topic, { twice: true }, { id })
        // a failed run is not "handled": its retry must still run
        const flaky = randomUUID()
        await messaging.publish(topic, { failOnce: true }, { id: flaky })
        const control = await messaging.publish(topic, { control: true })
        await waitFor(() => runs.has(control.id) && runs.get(flaky) === 2, {
          timeoutMs: WAIT_MS,
          message: 'control handled and flaky retried',
        })
        await sleep(QUIET_MS)
        expect(runs.get(id), 'runs of the duplicated id').toBe(1)
        expect(runs.get(flaky), 'runs of the message that failed once').toBe(2)
        expect(runs.get(control.id)).toBe(1)
      },
      CASE_MS,
    )

    kit.it(
      'DG-10 a throwing logger and throwing event listeners: the consumer survives and still retries',
      async (t) => {
        let loggerCalls = 0
        const broken = (): void => {
          loggerCalls++
          throw new Error('DG-10: logger is broken')
        }
        const logger: Logger = { debug: broken, info: broken, warn: broken, error: broken }
        await watchProcessErrors(async (processErrors) => {
          const messaging = await kit.open({ logger })
          let retryEvents = 0
          messaging.on('retry', () => {
            retryEvents++
            throw new Error('DG-10: retry listener is broken')
          })
          messaging.on('error', () => {
            throw new Error('DG-10: error listener is broken')
          })
          const topic = kit.topic()
          const spy = createHandlerSpy((message) => {
            if (message.body === 'first' && message.attempt === 1) throw new Error('DG-10: fail once')
          })
          await messaging.subscribe(topic, { group: kit.group('dg10'), retry: fastRetry(3) }, spy.handler)
          const first = await messaging.publish(topic, 'first')
          await waitFor(() => spy.messages.filter((m) => m.id === first.id).length >= 2, {
            timeoutMs: WAIT_MS,
            message: 'the failed message retried',
          })
          const second = await messaging.publish(topic, 'second')
          await spy.waitForMessage((m) => m.id === second.id, { timeoutMs: WAIT_MS })
          await sleep(QUIET_MS)
          expect(
            spy.messages.map((m) => [m.body, m.attempt]),
            'deliveries',
          ).toEqual([
            ['first', 1],
            ['first', 2],
            ['second', 1],
          ])
          expect(retryEvents, 'the throwing retry listener was called').toBeGreaterThanOrEqual(1)
          expect(processErrors.map(describeError), 'uncaught errors').toEqual([])
          await report(t, `logger called ${loggerCalls} times, retry listener ${retryEvents} times`)
        })
      },
      CASE_MS,
    )

    kit.it(
      'DG-11 a raw message the broker accepts but whose dead letter does not fit: dead-lettered once in reduced form, never looped, the group moves on [deadLetter]',
      async (t) => {
        const oversize = kit.options.probe.rawOversize
        if (!oversize || (oversize.bodyBytes === undefined && oversize.headerValueBytes === undefined))
          throw new Error(
            "DG-11 needs probe.rawOversize: a body and/or header size the broker takes that is over msgkit's limits",
          )
        const messaging = await kit.open()
        const variants: Array<{ what: string; body: Uint8Array; headers: Headers; bytes: number }> = []
        if (oversize.bodyBytes !== undefined) {
          // valid JSON, so it reaches the handler, which refuses it
          const pad = 'x'.repeat(Math.max(0, oversize.bodyBytes - 12))
          const body = utf8.encode(JSON.stringify({ pad }))
          variants.push({
            what: `a ${body.byteLength}-byte body`,
            body,
            headers: { 'x-case': 'dg11' },
            bytes: body.byteLength,
          })
        }
        if (oversize.headerValueBytes !== undefined) {
          const body = utf8.encode(JSON.stringify({ small: true }))
          variants.push({
            what: `a ${oversize.headerValueBytes}-byte header value`,
            body,
            headers: { 'x-case': 'dg11', huge: 'h'.repeat(oversize.headerValueBytes) },
            bytes: body.byteLength,
          })
        }
        for (const variant of variants) {
          const topic = kit.topic()
          const group = kit.group('dg11')
          const dead = await deadLetterSpy(t, messaging, topic, group)
          if (!dead) return
          let refusals = 0
          const handled: unknown[] = []
          const subscription = await messaging.subscribe(
            topic,
            { group, deadLetter: true, retry: fastRetry(3) },
            (message: Message<{ pad?: string; small?: boolean; after?: boolean }>) => {
              if (message.body.after) {
                handled.push(message.body)
                return
              }
              refusals++
              throw new NonRetryableError('DG-11: refuse the oversized message')
            },
          )
          await kit.options.probe.publishRaw(topic, variant.body, { headers: variant.headers })
          await kit.options.probe.publishRaw(topic, utf8.encode(JSON.stringify({ after: true })))
          const letter = await dead.waitForMessage(() => true, { timeoutMs: LONG_WAIT_MS })
          await waitFor(() => handled.length === 1, {
            timeoutMs: WAIT_MS,
            message: 'the message after it handled',
          })
          await sleep(QUIET_MS * 2)
          expect(refusals, `${variant.what}: handler calls (no redelivery loop)`).toBe(1)
          expect(dead.messages.length, `${variant.what}: dead letters`).toBe(1)
          const info = letter.deadLetter
          expect(info?.reason, `${variant.what}: reason`).toBe('non-retryable')
          expect(info?.truncated, `${variant.what}: marked as reduced`).toBeDefined()
          expect(info?.truncated?.originalBytes, `${variant.what}: original size`).toBe(variant.bytes)
          expect(info?.truncated?.originalSha256, `${variant.what}: original digest`).toBe(
            createHash('sha256').update(variant.body).digest('hex'),
          )
          await report(
            t,
            `${variant.what}: reduced dead letter (${info?.truncated?.parts.join(', ')} cut; because: ${info?.truncated?.because})`,
          )
          await subscription.close()
          await expectGroupDrained(kit, t, topic, group)
        }
      },
      120_000,
    )

    kit.it(
      'DG-12 a message whose handler kills the consumer each time: dead-lettered after the configured deliveries [persistence, deadLetter]',
      async (t) => {
        const topic = kit.topic()
        const group = kit.group('dg12')
        // one store for every instance: the service's shared store (where the broker keeps no count, core counts in it)
        const store = createMemoryIdempotencyStore()
        const watcher = await kit.open({ idempotencyStore: store })
        if (!(await persistenceOn(t, watcher, topic, group))) return
        const dead = await deadLetterSpy(t, watcher, topic, group)
        if (!dead) return
        await watcher.provision(topic, group)
        const receipt = await watcher.publish(topic, { poison: true })
        const calls: number[] = []
        for (let round = 1; round <= 6 && dead.messages.length === 0; round++) {
          const member = await kit.open({ idempotencyStore: store })
          const before = calls.length
          const subscribing = member.subscribe(
            topic,
            { group, deadLetter: true, retry: fastRetry(3) },
            (message) => {
              calls.push(message.attempt)
              // the process dies: no ack, no nack, the connection just goes
              void member.transport.close()
              return new Promise(() => {})
            },
          )
          // the message may arrive (and the "process" die) before subscribe() has even returned
          await subscribing.catch((error: unknown) => {
            if (!(isMsgkitError(error) && error.code === ErrorCodes.CLOSED)) throw error
          })
          await waitFor(() => calls.length > before || dead.messages.length > 0, {
            timeoutMs: LONG_WAIT_MS,
            message: `round ${round}: the poison message delivered again, or dead-lettered`,
          })
        }
        const letter = await dead.waitForMessage((m) => m.id === receipt.id, { timeoutMs: LONG_WAIT_MS })
        await sleep(QUIET_MS)
        await report(
          t,
          `handler calls by attempt: ${calls.join(', ')}; broker count: ${watcher.capabilities.deliveryCount}`,
        )
        expect(calls, 'one handler call per delivery, counted across crashes').toEqual([1, 2, 3])
        expect(dead.messages.length, 'dead letters').toBe(1)
        expect(letter.deadLetter).toMatchObject({ reason: 'handler-failed', attempts: 3, topic, group })
      },
      180_000,
    )
  })
}
