/** GR: competing consumers in a group, fan-out across groups, provisioned groups, patterns. */
import { definePattern } from '@msgkit/core'
import { expect } from 'vitest'
import { createHandlerSpy } from '../helpers/handler-spy.js'
import {
  CASE_MS,
  countDuplicates,
  expectExactly,
  expectUnsupported,
  inParallel,
  LONG_WAIT_MS,
  persistenceOn,
  QUIET_MS,
  report,
  type SuiteKit,
  sleep,
  WAIT_MS,
  waitForIds,
} from './support.js'

export function groupCases(kit: SuiteKit): void {
  kit.describe('groups', () => {
    kit.it(
      'GR-1 3 consumers in one group, 300 messages over 30 keys: union = sent, each gets some, duplicates ≤ 5%',
      async (t) => {
        const topic = kit.topic()
        const group = kit.group('gr1')
        const members: string[][] = []
        for (let i = 0; i < 3; i++) {
          const messaging = await kit.open()
          const received: string[] = []
          members.push(received)
          await messaging.subscribe(topic, { group, concurrency: 4 }, async (message) => {
            received.push(message.id)
            await sleep(2) // a little work, so no member can take everything
          })
        }
        const producer = await kit.open()
        const sent = await inParallel(
          300,
          20,
          async (i) => (await producer.publish(topic, { i }, { key: `k-${i % 30}` })).id,
        )
        await waitForIds(() => members.flat(), sent, 'the group received all 300', LONG_WAIT_MS)
        await sleep(QUIET_MS)
        const { unique, duplicates } = countDuplicates(members.flat())
        expect(unique, 'union of the members').toEqual(new Set(sent))
        await report(t, `per member: ${members.map((m) => m.length).join(' / ')}; ${duplicates} duplicates`)
        members.forEach((received, index) => {
          expect(received.length, `member ${index + 1} got some`).toBeGreaterThan(0)
        })
        expect(duplicates, 'duplicates (≤ 5% of 300)').toBeLessThanOrEqual(15)
      },
      90_000,
    )

    kit.it(
      'GR-2 groups A, B, C provisioned, then 50 messages: each group gets all 50 [fanout]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const groups = ['a', 'b', 'c'].map((label) => kit.group(`gr2-${label}`))
        if (!messaging.capabilities.fanout) {
          await messaging.subscribe(topic, { group: groups[0]! }, () => {})
          await expectUnsupported(
            t,
            'fanout',
            messaging.subscribe(topic, { group: groups[1]! }, () => {}),
            'subscribing a second group to the same topic',
          )
          return
        }
        const persistent = messaging.capabilities.persistence
        const received = new Map<string, string[]>(groups.map((group) => [group, []]))
        const subscribeAll = () =>
          Promise.all(
            groups.map((group) =>
              messaging.subscribe(topic, { group }, (message) => {
                received.get(group)?.push(message.id)
              }),
            ),
          )
        // with persistence the groups are provisioned and subscribed after publishing; without, first
        if (persistent) for (const group of groups) await messaging.provision(topic, group)
        else await subscribeAll()
        const sent = await inParallel(50, 10, async (i) => (await messaging.publish(topic, { i })).id)
        if (persistent) await subscribeAll()
        else await report(t, 'persistence off: groups subscribed (not provisioned) before publishing')
        for (const group of groups)
          await waitForIds(() => received.get(group)!, sent, `group ${group}: all 50`)
        await sleep(QUIET_MS)
        for (const group of groups) expectExactly(received.get(group) ?? [], sent, `group ${group}`)
      },
      CASE_MS,
    )

    kit.it(
      'GR-3 group provisioned, 10 published while no consumer runs, then start: all 10 received [persistence]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('gr3')
        if (!(await persistenceOn(t, messaging, topic, group))) return
        await messaging.provision(topic, group)
        const sent: string[] = []
        for (let i = 0; i < 10; i++) sent.push((await messaging.publish(topic, { i })).id)
        const consumer = await kit.open()
        const received: string[] = []
        await consumer.subscribe(topic, { group }, (message) => {
          received.push(message.id)
        })
        await waitForIds(() => received, sent, 'all 10 received')
        await sleep(QUIET_MS)
        expectExactly(received, sent, 'GR-3')
      },
      CASE_MS,
    )

    kit.it(
      'GR-4 pattern subscription t-<uuid>.* gets …a and …b, not …x.y or another prefix [patterns]',
      async (t) => {
        const messaging = await kit.open()
        const base = kit.topic()
        const group = kit.group('gr4')
        const pattern = definePattern<{ phase: string }>(`${base}.*`)
        if (!messaging.capabilities.patterns) {
          await expectUnsupported(
            t,
            'patterns',
            messaging.subscribe(pattern, { group }, () => {}),
            'subscribe to a pattern',
          )
          return
        }
        const wanted = [`${base}.a`, `${base}.b`]
        const unwanted = [`${base}.x.y`, `${base}z.a`, `${kit.topic()}.a`, base]
        // create every topic first: some brokers only match topics that exist when the subscription starts
        for (const topic of [...wanted, ...unwanted]) await messaging.publish(topic, { phase: 'warm-up' })
        const spy = createHandlerSpy<{ phase: string }>()
        await messaging.subscribe(pattern, { group }, spy.handler)
        const live = new Map<string, string>()
        for (const topic of [...wanted, ...unwanted]) {
          live.set((await messaging.publish(topic, { phase: 'live' })).id, topic)
        }
        const wantedIds = [...live].filter(([, topic]) => wanted.includes(topic)).map(([id]) => id)
        await waitForIds(
          () => spy.messages.map((m) => m.id),
          wantedIds,
          'live messages of …a and …b',
          WAIT_MS,
        )
        await sleep(QUIET_MS)
        const liveReceived = spy.messages.filter((m) => m.body.phase === 'live')
        expect(new Set(liveReceived.map((m) => m.topic)), 'topics of live messages received').toEqual(
          new Set(wanted),
        )
        expect(new Set(liveReceived.map((m) => m.id))).toEqual(new Set(wantedIds))
        for (const message of liveReceived) expect(message.topic).toBe(live.get(message.id))
        const strays = spy.messages.filter((m) => !wanted.includes(m.topic)).map((m) => m.topic)
        expect(strays, 'messages from topics the pattern does not match').toEqual([])
      },
      CASE_MS,
    )
  })
}
