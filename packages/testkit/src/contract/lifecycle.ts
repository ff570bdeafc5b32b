/** LC: opening, closing, and what happens around close. */
import { createMessaging, ErrorCodes, isMsgkitError, type Messaging, type PublishReceipt } from '@msgkit/core'
import { expect } from 'vitest'
import { createHandlerSpy } from '../helpers/handler-spy.js'
import {
  CASE_MS,
  describeError,
  expectHandlesReleased,
  expectRejectsWithCode,
  inParallel,
  liveHandleCount,
  persistenceOn,
  reflect,
  report,
  type SuiteKit,
  settleWithin,
  sleep,
  WAIT_MS,
  waitForIds,
  watchProcessErrors,
} from './support.js'

/** Every text an error carries, down its cause chain: where a secret must not appear. */
function errorTexts(error: unknown, depth = 0): string[] {
  if (depth > 8 || error === undefined || error === null) return []
  if (typeof error !== 'object') return [String(error)]
  const texts = [String(error)]
  const record = error as { message?: unknown; stack?: unknown; details?: unknown; cause?: unknown }
  if (typeof record.message === 'string') texts.push(record.message)
  if (typeof record.stack === 'string') texts.push(record.stack)
  if (record.details !== undefined) {
    try {
      texts.push(JSON.stringify(record.details))
    } catch {
      texts.push(String(record.details))
    }
  }
  if (error instanceof AggregateError)
    for (const inner of error.errors) texts.push(...errorTexts(inner, depth + 1))
  return [...texts, ...errorTexts(record.cause, depth + 1)]
}

export function lifecycleCases(kit: SuiteKit): void {
  kit.describe('lifecycle', () => {
    kit.it(
      'LC-1 close producer, subscription and messaging twice, in sequence and concurrently: no throw, no leaked handles',
      async () => {
        const handlesBefore = liveHandleCount()
        // opened directly: this case closes it itself and then counts handles
        const messaging = await kit.options.createMessaging()
        try {
          const topic = kit.topic()
          const spy = createHandlerSpy()
          const group = kit.group('lc1')
          const subscription = await messaging.subscribe(topic, { group }, spy.handler)
          const producer = messaging.producer()
          const receipt = await producer.publish(topic, 'lc-1')
          await spy.waitForMessage((message) => message.id === receipt.id, { timeoutMs: WAIT_MS })

          await subscription.close()
          await subscription.close()
          await Promise.all([subscription.close(), subscription.close()])
          expect((await settleWithin(subscription.closed, 5_000)).status, 'subscription.closed').toBe(
            'fulfilled',
          )

          await producer.close()
          await producer.close()
          await Promise.all([producer.close(), producer.close()])
          // closing a producer handle leaves the Messaging usable
          await messaging.publish(topic, 'after producer close')

          const second = await messaging.subscribe(topic, { group }, () => {})
          await Promise.all([messaging.close(), messaging.close()])
          await messaging.close()
          expect(
            (await settleWithin(second.closed, 5_000)).status,
            'subscription closed by messaging.close',
          ).toBe('fulfilled')
          expect(messaging.health().status).toBe('closed')
        } finally {
          await messaging.close().catch(() => {})
        }
        await expectHandlesReleased(handlesBefore, 'after close')
      },
      CASE_MS,
    )

    kit.it(
      'LC-2 publish or subscribe after close rejects with MSGKIT_CLOSED fast',
      async () => {
        const topic = kit.topic()
        const group = kit.group('lc2')
        const messaging = await kit.open()
        await messaging.close()
        await expectRejectsWithCode(
          messaging.publish(topic, 'x'),
          ErrorCodes.CLOSED,
          'publish after close',
          2_000,
        )
        await expectRejectsWithCode(
          messaging.publishBatch(topic, [{ body: 'x' }]),
          ErrorCodes.CLOSED,
          'publishBatch after close',
          2_000,
        )
        await expectRejectsWithCode(
          messaging.subscribe(topic, { group }, () => {}),
          ErrorCodes.CLOSED,
          'subscribe after close',
          2_000,
        )

        const open = await kit.open()
        const producer = open.producer()
        await producer.close()
        await expectRejectsWithCode(
          producer.publish(topic, 'x'),
          ErrorCodes.CLOSED,
          'producer.publish after close',
          2_000,
        )
        // the Messaging itself is still open
        await open.publish(topic, 'still open')
      },
      CASE_MS,
    )

    kit.it(
      'LC-3 close during a burst of 200 publishes: every promise settles, every resolved one is consumed',
      async (t) => {
        const topic = kit.topic()
        const group = kit.group('lc3')
        const consumer = await kit.open()
        const received: string[] = []
        await consumer.subscribe(topic, { group, concurrency: 8 }, (message) => {
          received.push(message.id)
        })

        const producer = await kit.open()
        const beforeClose: Promise<PromiseSettledResult<PublishReceipt>>[] = []
        const afterClose: Promise<PromiseSettledResult<PublishReceipt>>[] = []
        let closing: Promise<void> | undefined
        for (let i = 0; i < 200; i++) {
          ;(closing ? afterClose : beforeClose).push(reflect(producer.publish(topic, { i })))
          if (i % 25 === 24) await sleep(1) // let part of the burst reach the wire
          if (i === 119) closing = producer.close()
        }
        const outcome = await settleWithin(
          Promise.all([Promise.all(beforeClose), Promise.all(afterClose), closing]),
          30_000,
        )
        if (outcome.status !== 'fulfilled') {
          throw new Error(
            outcome.status === 'timeout'
              ? 'not every publish / close settled within 30 s'
              : `close() rejected: ${describeError(outcome.reason)}`,
          )
        }
        const [before, after] = outcome.value
        // close() waits for pending publishes; later ones reject with MSGKIT_CLOSED
        const failedBefore = before.filter((result) => result.status === 'rejected')
        expect(
          failedBefore.map((result) => describeError((result as PromiseRejectedResult).reason)),
          'publishes started before close() must complete',
        ).toEqual([])
        for (const result of after) {
          expect(result.status, 'publish after close()').toBe('rejected')
          const reason = (result as PromiseRejectedResult).reason
          expect(isMsgkitError(reason) && reason.code, describeError(reason)).toBe(ErrorCodes.CLOSED)
        }
        const confirmed = before.map((result) => (result as PromiseFulfilledResult<PublishReceipt>).value.id)
        await report(t, `${confirmed.length} confirmed before close, ${after.length} rejected after`)
        await waitForIds(() => received, confirmed, 'every confirmed publish consumed')
      },
      CASE_MS,
    )

    kit.it(
      'LC-4 5 concurrent subscribe+close cycles, then 50 messages: a fresh consumer gets all 50',
      async () => {
        const topic = kit.topic()
        const group = kit.group('lc4')
        const cycling = await kit.open()
        const stale: string[] = []
        await Promise.all(
          Array.from({ length: 5 }, async () => {
            const subscription = await cycling.subscribe(topic, { group }, (message) => {
              stale.push(message.id)
            })
            await subscription.close()
          }),
        )
        expect(cycling.health().subscriptions, 'subscriptions left open after the cycles').toBe(0)

        const fresh = await kit.open()
        const received: string[] = []
        await fresh.subscribe(topic, { group }, (message) => {
          received.push(message.id)
        })
        const sent = await inParallel(50, 10, async (i) => (await cycling.publish(topic, { i })).id)
        await waitForIds(() => received, sent, 'the fresh consumer gets all 50')
        expect(stale, 'closed subscriptions must not receive').toEqual([])
      },
      CASE_MS,
    )

    kit.it(
      'LC-5 stop consumer → publish 5 → start again: all 5 received [persistence]',
      async (t) => {
        const topic = kit.topic()
        const group = kit.group('lc5')
        const first = await kit.open()
        if (!(await persistenceOn(t, first, topic, group))) return
        const spy = createHandlerSpy()
        const subscription = await first.subscribe(topic, { group }, spy.handler)
        const warmup = await first.publish(topic, 'warm-up')
        await spy.waitForMessage((message) => message.id === warmup.id, { timeoutMs: WAIT_MS })
        await subscription.close()

        const sent: string[] = []
        for (let i = 0; i < 5; i++) sent.push((await first.publish(topic, { i })).id)
        await sleep(200)
        expect(spy.messages.length, 'a stopped consumer must not receive').toBe(1)

        const second = await kit.open()
        const received: string[] = []
        await second.subscribe(topic, { group }, (message) => {
          received.push(message.id)
        })
        await waitForIds(() => received, sent, 'all 5 received after restart')
      },
      CASE_MS,
    )

    const badConnections = kit.options.probe.badConnections
    const lc6 = badConnections.length > 0 ? kit.it : kit.it.skip
    lc6(
      `LC-6 bad connections fail fast with a typed error, no unhandled rejection, no secret, no leaked handles${badConnections.length > 0 ? '' : ' — skipped: probe.badConnections is empty'}`,
      async (t) => {
        for (const bad of badConnections) {
          const handlesBefore = liveHandleCount()
          await watchProcessErrors(async (processErrors) => {
            const outcome = await settleWithin<Messaging>(
              createMessaging(bad.config as Parameters<typeof createMessaging>[0]),
              10_000,
            )
            if (outcome.status === 'fulfilled') {
              await outcome.value.close().catch(() => {})
              throw new Error(`${bad.name}: createMessaging resolved; expected a connection error`)
            }
            if (outcome.status === 'timeout')
              throw new Error(`${bad.name}: createMessaging did not settle within 10 s`)
            const error = outcome.reason
            expect(isMsgkitError(error), `${bad.name}: a MsgkitError (got ${describeError(error)})`).toBe(
              true,
            )
            expect(
              [ErrorCodes.CONNECTION_FAILED, ErrorCodes.AUTH_FAILED],
              `${bad.name}: error code`,
            ).toContain((error as { code: string }).code)
            if (bad.secret) {
              const leaking = errorTexts(error).filter((text) => text.includes(bad.secret as string))
              expect(leaking, `${bad.name}: the secret appears in the error`).toEqual([])
            }
            // stray rejections of a half-open connection surface a moment later
            await sleep(500)
            expect(processErrors.map(describeError), `${bad.name}: unhandled rejections`).toEqual([])
            await report(t, `${bad.name}: ${describeError(error)} after ${Math.round(outcome.ms)} ms`)
          })
          // nothing left running, so the process can exit
          await expectHandlesReleased(handlesBefore, bad.name)
        }
      },
      60_000,
    )
  })
}
