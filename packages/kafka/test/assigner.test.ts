import { AssignerProtocol, type Cluster } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { planAssignment, subscriptionAwareAssigner } from '../src/assigner.js'

const parts = (n: number) => Array.from({ length: n }, (_, i) => i)

describe('planAssignment', () => {
  it('spreads one topic evenly and deterministically', () => {
    const plan = planAssignment(
      new Map([
        ['m-b', ['t']],
        ['m-a', ['t']],
        ['m-c', ['t']],
      ]),
      () => parts(6),
    )
    expect(plan.get('m-a')).toEqual({ t: [0, 3] })
    expect(plan.get('m-b')).toEqual({ t: [1, 4] })
    expect(plan.get('m-c')).toEqual({ t: [2, 5] })
  })

  it('gives a topic only to members subscribed to it', () => {
    const plan = planAssignment(
      new Map([
        ['orders-1', ['orders']],
        ['mail-1', ['mail']],
        ['both', ['orders', 'mail']],
      ]),
      (topic) => (topic === 'orders' ? parts(4) : parts(2)),
    )
    const all = [...plan].flatMap(([member, a]) =>
      Object.entries(a).map(([topic, ps]) => ({ member, topic, ps })),
    )
    for (const { member, topic } of all) {
      if (member === 'orders-1') expect(topic).toBe('orders')
      if (member === 'mail-1') expect(topic).toBe('mail')
    }
    const count = (topic: string) =>
      all
        .filter((a) => a.topic === topic)
        .flatMap((a) => a.ps)
        .sort()
    expect(count('orders')).toEqual([0, 1, 2, 3])
    expect(count('mail')).toEqual([0, 1])
  })

  it('leaves members without partitions empty, and topics without partitions out', () => {
    const plan = planAssignment(
      new Map([
        ['a', ['t', 'gone']],
        ['b', ['t']],
        ['c', ['t']],
      ]),
      (topic) => (topic === 't' ? [0] : []),
    )
    expect(plan.get('a')).toEqual({ t: [0] })
    expect(plan.get('b')).toEqual({})
    expect(plan.get('c')).toEqual({})
  })
})

describe('subscriptionAwareAssigner', () => {
  it('reads each member’s topics from its join metadata and encodes assignments', async () => {
    const added: string[][] = []
    const cluster = {
      addMultipleTargetTopics: async (topics: string[]) => {
        added.push(topics)
      },
      findTopicPartitionMetadata: (topic: string) =>
        (topic === 'x' ? [0, 1] : [0]).map((partitionId) => ({ partitionId })),
    } as unknown as Cluster
    const assigner = subscriptionAwareAssigner({ cluster, groupId: 'g', logger: {} as never })
    const members = [
      { memberId: 'm1', memberMetadata: assigner.protocol({ topics: ['x'] }).metadata },
      { memberId: 'm2', memberMetadata: assigner.protocol({ topics: ['x', 'y'] }).metadata },
    ]
    const result = await assigner.assign({ members, topics: ['x'] })
    expect(added[0]?.sort()).toEqual(['x', 'y'])
    const decoded = Object.fromEntries(
      result.map((r) => [
        r.memberId,
        AssignerProtocol.MemberAssignment.decode(r.memberAssignment)?.assignment,
      ]),
    )
    expect(decoded).toEqual({ m1: { x: [0] }, m2: { x: [1], y: [0] } })
  })
})
