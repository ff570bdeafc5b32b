/** FC: concurrency limits and graceful / bounded close. */
import { expect } from 'vitest'
import { waitFor } from '../helpers/wait-for.js'
import {
  CASE_MS,
  LONG_WAIT_MS,
  persistenceOn,
  QUIET_MS,
  report,
  type SuiteKit,
  settleWithin,
  sleep,
  WAIT_MS,
  waitForIds,
} from './support.js'

/** A promise with its resolve function, to hold handlers until the test lets them go. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { opened, open }
}

export function flowControlCases(kit: SuiteKit): void {
  kit.describe('flow control', () => {
    kit.it(
      'FC-1 concurrency 4 with 12 blocking handlers: in-flight peak exactly 4, all 12 finish',
      async () => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const hold = gate()
        let running = 0
        let peak = 0
        let finished = 0
        const subscription = await messaging.subscribe(
          topic,
          { group: kit.group('fc1'), concurrency: 4 },
          async () => {
            running++
            peak = Math.max(peak, running)
            await hold.opened
            running--
            finished++
          },
        )
        for (let i = 0; i < 12; i++) await messaging.publish(topic, { i })
        await waitFor(() => running === 4, { timeoutMs: WAIT_MS, message: '4 handlers in flight' })
        await sleep(QUIET_MS)
        expect(peak, 'in-flight peak while blocked').toBe(4)
        expect(subscription.inFlight, 'subscription.inFlight').toBe(4)
        hold.open()
        await waitFor(() => finished === 12, { timeoutMs: WAIT_MS, message: `all 12 finished (${finished})` })
        expect(peak, 'in-flight peak').toBe(4)
      },
      CASE_MS,
    )

    kit.it(
      'FC-2 close() with 3 slow handlers in flight: waits for them, nothing new starts, they are acked',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('fc2')
        const hold = gate()
        const started: string[] = []
        const finished: string[] = []
        await messaging.subscribe(topic, { group, concurrency: 3 }, async (message) => {
          started.push(message.id)
          await hold.opened
          await sleep(50)
          finished.push(message.id)
        })
        const sent: string[] = []
        for (let i = 0; i < 6; i++) sent.push((await messaging.publish(topic, { i })).id)
        await waitFor(() => started.length === 3, { timeoutMs: WAIT_MS, message: '3 handlers in flight' })

        let closed = false
        const closing = messaging.close().then(() => {
          closed = true
        })
        await sleep(QUIET_MS)
        expect(closed, 'close() resolved while handlers were still running').toBe(false)
        hold.open()
        const outcome = await settleWithin(closing, WAIT_MS)
        expect(outcome.status, 'close() after the handlers finished').toBe('fulfilled')
        expect(finished.length, 'in-flight handlers finished before close() resolved').toBe(3)
        await sleep(QUIET_MS)
        expect(started.length, 'nothing new started after close()').toBe(3)

        const survivor = await kit.open()
        if (!survivor.capabilities.persistence) {
          await report(t, 'persistence off: redelivery after close not checked')
          return
        }
        const handledBefore = new Set(finished)
        const rest = sent.filter((id) => !handledBefore.has(id))
        const received: string[] = []
        await survivor.subscribe(topic, { group }, (message) => {
          received.push(message.id)
        })
        await waitForIds(
          () => received,
          rest,
          'the 3 never-started messages go to the next member',
          LONG_WAIT_MS,
        )
        await sleep(QUIET_MS)
        expect(
          received.filter((id) => handledBefore.has(id)),
          'messages finished during close() were redelivered (not acked)',
        ).toEqual([])
      },
      CASE_MS,
    )

    kit.it(
      'FC-3 close({ timeoutMs }) with a never-finishing handler: resolves in time, AbortSignal fires, message redelivered [persistence]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('fc3')
        let signal: AbortSignal | undefined
        await messaging.subscribe(topic, { group }, (_message, context) => {
          signal = context.signal
          return new Promise(() => {}) // never settles
        })
        const receipt = await messaging.publish(topic, 'fc-3')
        const held = await waitFor(() => signal, { timeoutMs: WAIT_MS, message: 'the handler started' })
        expect(held.aborted).toBe(false)
        const outcome = await settleWithin(messaging.close({ timeoutMs: 500 }), 10_000)
        expect(outcome.status, 'close({ timeoutMs: 500 })').toBe('fulfilled')
        expect(outcome.ms, 'close({ timeoutMs: 500 }) took (ms)').toBeLessThan(5_000)
        await waitFor(() => held.aborted, { timeoutMs: 2_000, message: "the handler's AbortSignal fired" })
        await report(t, `close({ timeoutMs: 500 }) resolved after ${Math.round(outcome.ms)} ms`)

        const later = await kit.open()
        if (!(await persistenceOn(t, later, topic, group))) return
        const received: string[] = []
        await later.subscribe(topic, { group }, (message) => {
          received.push(message.id)
        })
        await waitForIds(() => received, [receipt.id], 'the abandoned message redelivered', LONG_WAIT_MS)
      },
      90_000,
    )
  })
}
