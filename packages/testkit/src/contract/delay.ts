/** DL: delayed delivery. */
import type { Message } from '@msgkit/core'
import { expect } from 'vitest'
import { waitFor } from '../helpers/wait-for.js'
import { CASE_MS, expectUnsupported, expectUserHeaders, report, type SuiteKit, WAIT_MS } from './support.js'

export function delayCases(kit: SuiteKit): void {
  kit.describe('delay', () => {
    kit.it(
      'DL-1 publish with delayMs 2000 plus an immediate control: control first, delayed one after 1.9–7 s, headers exactly as sent [delay]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        if (!messaging.capabilities.delay) {
          await expectUnsupported(
            t,
            'delay',
            messaging.publish(topic, 'delayed', { delayMs: 2_000 }),
            'publish with delayMs',
          )
          return
        }
        const arrivals: Array<{ id: string; at: number; message: Message<unknown> }> = []
        await messaging.subscribe(topic, { group: kit.group('dl1') }, (message) => {
          arrivals.push({ id: message.id, at: performance.now(), message })
        })
        const headers = { 'x-case': 'dl1', tenant: 'acme' }
        const publishedAt = performance.now()
        const delayed = await messaging.publish(topic, 'delayed', { delayMs: 2_000, headers })
        const control = await messaging.publish(topic, 'control')
        await waitFor(() => arrivals.some((a) => a.id === delayed.id), {
          timeoutMs: WAIT_MS,
          message: 'the delayed one',
        })
        const order = arrivals.map((a) =>
          a.id === delayed.id ? 'delayed' : a.id === control.id ? 'control' : a.id,
        )
        expect(order, 'arrival order').toEqual(['control', 'delayed'])
        const after = arrivals[1]!.at - publishedAt
        await report(t, `delayed message arrived after ${Math.round(after)} ms`)
        expect(after, 'ms until the delayed message arrived').toBeGreaterThanOrEqual(1_900)
        expect(after, 'ms until the delayed message arrived').toBeLessThanOrEqual(7_000)
        // the delay path (wait queues, schedulers) must not add the broker's own headers
        expectUserHeaders(arrivals[1]!.message, headers, 'DL-1 delayed message')
        expect(arrivals[1]!.message.attempt, 'a delayed message is a first delivery').toBe(1)
      },
      CASE_MS,
    )
  })
}
