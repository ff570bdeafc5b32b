/**
 * A partition assigner that honours each member's own subscription.
 *
 * kafkajs's RoundRobinAssigner spreads the leader's topics over every member, whether or not a
 * member subscribed to them; in msgkit one group often has several subscriptions to different
 * topics (one kafkajs consumer each), and a partition given to a member that did not subscribe
 * to its topic would never be consumed. This assigner reads every member's topics from its join
 * metadata and gives each partition to the least-loaded member subscribed to that topic.
 */
import { type Assigner, AssignerProtocol, type Cluster, type PartitionAssigner } from 'kafkajs'

export const MSGKIT_ASSIGNER_NAME = 'msgkit-subscription-aware'
const VERSION = 1

/** Member id → topic → partitions. */
export type AssignmentPlan = Map<string, Record<string, number[]>>

/**
 * Pure part: `subscriptions` (member id → topics) and `partitionsOf` (topic → partition ids).
 * Deterministic: members sorted by id, topics by name, ties go to the first member.
 */
export function planAssignment(
  subscriptions: ReadonlyMap<string, readonly string[]>,
  partitionsOf: (topic: string) => readonly number[],
): AssignmentPlan {
  const members = [...subscriptions.keys()].sort()
  const plan: AssignmentPlan = new Map(members.map((m) => [m, {}]))
  const load = new Map(members.map((m) => [m, 0]))
  const topics = [...new Set(members.flatMap((m) => subscriptions.get(m) ?? []))].sort()
  for (const topic of topics) {
    const candidates = members.filter((m) => subscriptions.get(m)?.includes(topic))
    for (const partition of [...partitionsOf(topic)].sort((a, b) => a - b)) {
      let chosen = candidates[0] as string
      for (const m of candidates) if ((load.get(m) ?? 0) < (load.get(chosen) ?? 0)) chosen = m
      load.set(chosen, (load.get(chosen) ?? 0) + 1)
      const assignment = plan.get(chosen) as Record<string, number[]>
      assignment[topic] = [...(assignment[topic] ?? []), partition]
    }
  }
  return plan
}

const encodeMetadata = (topics: string[]) =>
  AssignerProtocol.MemberMetadata.encode({ version: VERSION, topics, userData: Buffer.alloc(0) })

/** The kafkajs PartitionAssigner using {@link planAssignment}. */
export const subscriptionAwareAssigner: PartitionAssigner = ({
  cluster,
}: {
  cluster: Cluster
}): Assigner => ({
  name: MSGKIT_ASSIGNER_NAME,
  version: VERSION,
  async assign({ members }) {
    const subscriptions = new Map<string, string[]>()
    for (const member of members)
      subscriptions.set(
        member.memberId,
        AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.topics ?? [],
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
  protocol: ({ topics }) => ({ name: MSGKIT_ASSIGNER_NAME, metadata: encodeMetadata(topics) }),
})
