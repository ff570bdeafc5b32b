/** OR: per-key order with concurrency, and a failing message holding back only its own key. */
import type { Message } from '@msgkit/core'
import { expect } from 'vitest'
import { waitFor } from '../helpers/wait-for.js'
import {
  CASE_MS,
  LONG_WAIT_MS,
  orderedKeysOn,
  QUIET_MS,
  report,
  type SuiteKit,
  sleep,
  WAIT_MS,
} from './support.js'

interface Sequenced {
  seq: number
}

export function orderingCases(kit: SuiteKit): void {
  kit.describe('ordering', () => {
    kit.it(
      'OR-1 8 keys × 50 with concurrency 4: per-key sequence strictly increasing, no gaps [orderedKeys]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('or1')
        if (!(await orderedKeysOn(t, messaging, topic, group))) return
        const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`)
        const handled = new Map<string, number[]>(keys.map((key) => [key, []]))
        const busyKeys = new Set<string>()
        const overlaps: string[] = []
        let running = 0
        let peak = 0
        await messaging.subscribe(
          topic,
          { group, concurrency: 4, ordered: true },
          async (message: Message<Sequenced>) => {
            const key = message.key ?? '?'
            if (busyKeys.has(key)) overlaps.push(`${key}#${message.body.seq}`)
            busyKeys.add(key)
            running++
            peak = Math.max(peak, running)
            // long enough for a same-key message run in parallel to overtake this one
            await sleep(1 + Math.random() * 3)
            handled.get(key)?.push(message.body.seq)
            running--
            busyKeys.delete(key)
          },
        )
        // each key's messages published in order, the keys concurrently
        await Promise.all(
          keys.map(async (key) => {
            for (let seq = 0; seq < 50; seq++) await messaging.publish(topic, { seq }, { key })
          }),
        )
        await waitFor(() => [...handled.values()].every((seqs) => seqs.length >= 50), {
          timeoutMs: LONG_WAIT_MS,
          message: 'all 400 handled',
        })
        await sleep(QUIET_MS)
        const expected = Array.from({ length: 50 }, (_, i) => i)
        for (const key of keys) expect(handled.get(key), `${key}: handled sequence`).toEqual(expected)
        expect(overlaps, 'same-key messages handled at the same time').toEqual([])
        expect(peak, 'different keys ran in parallel (concurrency 4)').toBeGreaterThanOrEqual(2)
        await report(t, `peak ${peak} handlers in parallel`)
      },
      90_000,
    )

    kit.it(
      'OR-1 again with 3 members in one group: each member sees each key in order; across members too where the order is per group [orderedKeys]',
      async (t) => {
        const first = await kit.open()
        const topic = kit.topic()
        const group = kit.group('or1m')
        if (!(await orderedKeysOn(t, first, topic, group))) return
        const scope = first.capabilities.orderedKeys
        const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`)
        // every handling, in the order it finished, across the members
        const log: Array<{ member: number; key: string; seq: number }> = []
        const busy = new Set<string>()
        const overlaps: string[] = []
        for (let member = 0; member < 3; member++) {
          const messaging = member === 0 ? first : await kit.open()
          await messaging.subscribe(
            topic,
            { group, concurrency: 4, ordered: true },
            async (message: Message<Sequenced>) => {
              const key = message.key ?? '?'
              if (scope === 'group' && busy.has(key)) overlaps.push(`${key}#${message.body.seq}`)
              busy.add(key)
              await sleep(1 + Math.random() * 3)
              log.push({ member, key, seq: message.body.seq })
              busy.delete(key)
            },
          )
        }
        // let the group settle before publishing (steady state: no rebalance while messages flow)
        await sleep(QUIET_MS)
        await Promise.all(
          keys.map(async (key) => {
            for (let seq = 0; seq < 50; seq++) await first.publish(topic, { seq }, { key })
          }),
        )
        await waitFor(() => log.length >= 400, { timeoutMs: LONG_WAIT_MS, message: 'all 400 handled' })
        await sleep(QUIET_MS)
        const expected = Array.from({ length: 50 }, (_, i) => i)
        for (const key of keys) {
          const ofKey = log.filter((e) => e.key === key)
          expect(
            ofKey.map((e) => e.seq).sort((a, b) => a - b),
            `${key}: every message handled once`,
          ).toEqual(expected)
          for (let member = 0; member < 3; member++) {
            const seqs = ofKey.filter((e) => e.member === member).map((e) => e.seq)
            const sorted = [...seqs].sort((a, b) => a - b)
            expect(seqs, `${key} in member ${member + 1}: in publish order`).toEqual(sorted)
          }
          if (scope === 'group')
            expect(
              ofKey.map((e) => e.seq),
              `${key} across the group's members: in publish order`,
            ).toEqual(expected)
        }
        if (scope === 'group')
          expect(overlaps, 'same-key messages handled at once by two members').toEqual([])
        const perMember = [0, 1, 2].map((m) => log.filter((e) => e.member === m).length)
        await report(t, `order scope ${scope}; handled per member: ${perMember.join(' / ')}`)
      },
      120_000,
    )

    kit.it(
      'OR-2 first message of key K fails once: K’s next waits, other keys keep flowing [orderedKeys]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const group = kit.group('or2')
        if (!(await orderedKeysOn(t, messaging, topic, group))) return
        const log: Array<{ event: 'start' | 'done'; name: string; attempt: number }> = []
        await messaging.subscribe(
          topic,
          {
            group,
            concurrency: 4,
            ordered: true,
            retry: { attempts: 3, backoff: { initialMs: 1_000, maxMs: 1_000, multiplier: 1, jitter: 0 } },
          },
          (message: Message<Sequenced>) => {
            const name = `${message.key}#${message.body.seq}`
            log.push({ event: 'start', name, attempt: message.attempt })
            if (name === 'K#0' && message.attempt === 1) throw new Error('OR-2: K#0 fails once')
            log.push({ event: 'done', name, attempt: message.attempt })
          },
        )
        await messaging.publish(topic, { seq: 0 }, { key: 'K' })
        await messaging.publish(topic, { seq: 1 }, { key: 'K' })
        const others = Array.from({ length: 6 }, (_, i) => `other-${i}#0`)
        for (let i = 0; i < 6; i++) await messaging.publish(topic, { seq: 0 }, { key: `other-${i}` })

        const at = (event: 'start' | 'done', name: string, attempt?: number): number =>
          log.findIndex(
            (e) => e.event === event && e.name === name && (attempt === undefined || e.attempt === attempt),
          )
        await waitFor(() => at('done', 'K#1') >= 0 && others.every((name) => at('done', name) >= 0), {
          timeoutMs: WAIT_MS,
          message: 'K#1 and every other key handled',
        })
        await sleep(QUIET_MS)
        const k0Retry = at('start', 'K#0', 2)
        expect(at('done', 'K#0', 2), 'K#0 succeeds on its retry').toBeGreaterThan(k0Retry)
        expect(at('start', 'K#1'), 'K#1 starts only after K#0 is done').toBeGreaterThan(at('done', 'K#0', 2))
        for (const name of others) {
          expect(at('done', name), `${name} is not held back by K#0's retry`).toBeLessThan(k0Retry)
        }
        expect(
          log.filter((e) => e.event === 'done' && e.name.startsWith('K#')).map((e) => e.name),
          'K handled in order',
        ).toEqual(['K#0', 'K#1'])
      },
      CASE_MS,
    )
  })
}
