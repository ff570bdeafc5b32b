/** DL: delayed delivery. */
import { describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/wait-for.js'
import { CASE_MS, expectUnsupported, report, type SuiteKit, WAIT_MS } from './support.js'

export function delayCases(kit: SuiteKit): void {
  describe('delay', () => {
    it(
      'DL-1 publish with delayMs 2000 plus an immediate control: control first, delayed one after 1.9–7 s [delay]',
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
        const arrivals: Array<{ id: string; at: number }> = []
        await messaging.subscribe(topic, { group: kit.group('dl1') }, (message) => {
          arrivals.push({ id: message.id, at: performance.now() })
        })
        const publishedAt = performance.now()
        const delayed = await messaging.publish(topic, 'delayed', { delayMs: 2_000 })
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
      },
      CASE_MS,
    )
  })
}
