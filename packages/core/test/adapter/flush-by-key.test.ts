/**
 * A flush made of one batch call per destination: outcomes back in their places, a failed call fails
 * the flush only once every call answered, and what another call confirmed is not sent again.
 */
import { describe, expect, it } from 'vitest'
import { flushByKey, type OutboxEntry } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

const entry = (topic: string, wire: string): OutboxEntry<string> => ({ topic, wire, bytes: 1, deadline: 0 })

describe('flushByKey', () => {
  it('makes one call per key and puts each outcome back in its place', async () => {
    const calls: string[][] = []
    const flush = flushByKey<null, string>(
      (e) => e.topic,
      async (_, key, entries) => {
        calls.push([key, ...entries.map((e) => e.wire)])
        return entries.map((e) => (e.wire === 'bad' ? new Error('refused') : undefined))
      },
    )
    const batch = [entry('a', 'a1'), entry('b', 'bad'), entry('a', 'a2'), entry('b', 'b2')]
    const outcomes = await flush(null, batch)
    expect(calls).toEqual([
      ['a', 'a1', 'a2'],
      ['b', 'bad', 'b2'],
    ])
    expect(outcomes?.map((o) => (o instanceof Error ? o.message : o))).toEqual([
      undefined,
      'refused',
      undefined,
      undefined,
    ])
  })

  it('fails the flush when a call fails, after the others answered, and does not send what they confirmed again', async () => {
    const sent: string[] = []
    let down = true
    const flush = flushByKey<null, string>(
      (e) => e.topic,
      async (_, key, entries) => {
        if (key === 'b' && down) throw new Error('throttled')
        await sleep(10)
        sent.push(...entries.map((e) => e.wire))
        return undefined
      },
    )
    const batch = [entry('a', 'a1'), entry('b', 'b1')]
    const settled: number[] = []
    await expect(flush(null, batch, (i) => settled.push(i))).rejects.toThrow('throttled')
    expect(sent).toEqual(['a1'])
    // the outbox heard of a1 as soon as its call answered
    expect(settled).toEqual([0])
    down = false
    // the outbox retries the same entries
    expect(await flush(null, batch)).toEqual([undefined, undefined])
    expect(sent).toEqual(['a1', 'b1'])
  })
})
