/**
 * A partition assigner that honours each member's own subscription.
 *
 * kafkajs's RoundRobinAssigner spreads the leader's topics over every member, whether or not a
 * member subscribed to them; in msgkit one group often has several subscriptions to different
 * topics (one kafkajs consumer each), and a partition given to a member that did not subscribe
 * to its topic would never be consumed. This assigner reads every member's topics from its join
 * metadata and gives each partition to the least-loaded member subscribed to that topic.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs'

const NAME = 'msgkit-subscription-aware'
const VERSION = 1

/**
 * Member id → topic → partitions, for `subscriptions` (member id → topics) and `partitionsOf`
 * (topic → partition ids). Deterministic: members sorted by id, topics by name, ties to the first.
 */
export function planAssignment(
  subscriptions: ReadonlyMap<string, readonly string[]>,
  partitionsOf: (topic: string) => readonly number[],
): Map<string, Record<string, number[]>> {
  const members = [...subscriptions.keys()].sort()
  const plan = new Map(members.map((m): [string, Record<string, number[]>] => [m, {}]))
  const load = new Map(members.map((m) => [m, 0]))
  for (const topic of [...new Set(members.flatMap((m) => subscriptions.get(m) ?? []))].sort()) {
    const candidates = members.filter((m) => subscriptions.get(m)?.includes(topic))
    for (const partition of [...partitionsOf(topic)].sort((a, b) => a - b)) {
      const chosen = candidates.reduce((a, b) => ((load.get(b) ?? 0) < (load.get(a) ?? 0) ? b : a))
      load.set(chosen, (load.get(chosen) ?? 0) + 1)
      const assignment = plan.get(chosen) as Record<string, number[]>
      assignment[topic] = [...(assignment[topic] ?? []), partition]
    }
  }
  return plan
}

/** The kafkajs PartitionAssigner using {@link planAssignment}. */
export const subscriptionAwareAssigner: PartitionAssigner = ({ cluster }) => ({
  name: NAME,
  version: VERSION,
  async assign({ members }) {
    const subscriptions = new Map(
      members.map((m) => [
        m.memberId,
        AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.topics ?? [],
      ]),
    )
    // the leader needs partition metadata for topics only other members subscribed to
    await cluster.addMultipleTargetTopics([...new Set([...subscriptions.values()].flat())])
    const plan = planAssignment(subscriptions, (topic) =>
      cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId),
    )
    return [...plan].map(([memberId, assignment]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: VERSION,
        assignment,
        userData: Buffer.alloc(0),
      }),
    }))
  },
  protocol: ({ topics }) => ({
    name: NAME,
    metadata: AssignerProtocol.MemberMetadata.encode({ version: VERSION, topics, userData: Buffer.alloc(0) }),
  }),
})
