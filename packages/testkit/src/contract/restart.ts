/** RS: a broker restart under load. Runs last and alone. */
import type { EventName, Messaging, PublishReceipt } from '@msgkit/core'
import { expect } from 'vitest'
import { waitFor } from '../helpers/wait-for.js'
import {
  countDuplicates,
  describeError,
  QUIET_MS,
  reflect,
  report,
  type SuiteKit,
  settleWithin,
  sleep,
  waitForIds,
} from './support.js'

/** Record connection events in order. */
function recordConnectionEvents(messaging: Messaging): EventName[] {
  const events: EventName[] = []
  for (const name of ['connected', 'disconnected', 'reconnecting'] as const)
    messaging.on(name, () => events.push(name))
  return events
}

export function restartCases(kit: SuiteKit): void {
  kit.describe('restart', () => {
    const restartBroker = kit.options.probe.restartBroker
    const rs1 = restartBroker ? kit.it : kit.it.skip
    rs1(
      `RS-1 300 messages at ~50/s, broker restarted at ~100: reconnects, no resubscribe, no publish rejected, every one received, duplicates bounded${restartBroker ? '' : ' — skipped: probe has no restartBroker'}`,
      async (t) => {
        const topic = kit.topic()
        const group = kit.group('rs1')
        const consumer = await kit.open()
        const consumerEvents = recordConnectionEvents(consumer)
        const received: string[] = []
        const subscription = await consumer.subscribe(topic, { group, concurrency: 4 }, (message) => {
          received.push(message.id)
        })
        const producer = await kit.open()
        const producerEvents = recordConnectionEvents(producer)

        const publishes: Array<Promise<PromiseSettledResult<PublishReceipt>>> = []
        let restarting: Promise<void> | undefined
        let restartedAt = -1
        for (let i = 0; i < 300; i++) {
          if (i === 100) {
            restarting = restartBroker!().then(() => {
              restartedAt = publishes.length
            })
          }
          // the last 100 go out after the broker is back, to prove the consumer resumed by itself
          if (i === 200 && restarting) await restarting
          publishes.push(reflect(producer.publish(topic, { i })))
          await sleep(20)
        }
        const outcome = await settleWithin(Promise.all(publishes), 120_000)
        if (outcome.status !== 'fulfilled') throw new Error('not every publish settled within 120 s')
        const confirmed: string[] = []
        const failures: string[] = []
        outcome.value.forEach((result, i) => {
          if (result.status === 'fulfilled') confirmed.push(result.value.id)
          else failures.push(`#${i}: ${describeError(result.reason)}`)
        })
        await report(
          t,
          `${confirmed.length} confirmed, ${failures.length} rejected; restart done by #${restartedAt}`,
        )
        // each publish had the default 30 s deadline, longer than the restart: none may give up
        expect(failures, 'publishes rejected although their deadline outlasted the restart').toEqual([])
        await waitForIds(() => received, confirmed, 'every confirmed publish received', 90_000)
        await sleep(QUIET_MS * 2)
        const { unique, duplicates } = countDuplicates(received)
        await report(t, `${duplicates} duplicate deliveries across the restart`)
        expect(unique.size, 'distinct messages received').toBe(300)
        expect(
          received.filter((id) => !unique.has(id)),
          'received something never published',
        ).toEqual([])
        // at-least-once across a restart: messages in flight may come twice, not the whole stream
        expect(duplicates, 'duplicates across one restart (at most 10% of 300)').toBeLessThanOrEqual(30)
        // the same subscription, never re-subscribed by the user, is still the one consuming
        expect(consumer.health().subscriptions, 'subscriptions of the consumer').toBe(1)
        expect(subscription.inFlight, 'subscription still open').toBeGreaterThanOrEqual(0)
        await waitFor(() => consumer.health().status === 'up' && producer.health().status === 'up', {
          timeoutMs: 30_000,
          message: 'consumer and producer report up again',
        })

        for (const [who, events] of [
          ['consumer', consumerEvents],
          ['producer', producerEvents],
        ] as const) {
          const lost = Math.max(events.lastIndexOf('disconnected'), events.lastIndexOf('reconnecting'))
          expect(
            lost,
            `${who}: a disconnected/reconnecting event (${events.join(', ')})`,
          ).toBeGreaterThanOrEqual(0)
          expect(
            events.indexOf('connected', lost),
            `${who}: connected again (${events.join(', ')})`,
          ).toBeGreaterThan(lost)
        }
      },
      240_000,
    )
  })
}
