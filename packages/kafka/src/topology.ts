/**
 * Topics and groups: creating topics, provisioning groups, removing a dead member. One attempt
 * each; the transport runs them through the supervisor (`perform`), which retries across outages.
 *
 * "A group exists from its first provision on and gets every later message": when a group has no
 * committed offset for a partition, msgkit commits the partition's current end offset for it, the
 * way Kafka's Admin API does (an OffsetCommit with generation -1, accepted only while the group
 * has no members). kafkajs has no such admin call (its setOffsets joins the group), so the request
 * goes to the group coordinator through a kafkajs Cluster handle.
 */
import type { Logger } from '@msgkit/core'
import type { Admin, Cluster, Kafka } from 'kafkajs'
import type { KafkaTransportConfig } from './config.js'
import { classifyKafka, rootCause } from './errors.js'

/** A topic that does not exist while autoCreateTopics is off (mapped through the error table). */
export class KafkaTopicMissingError extends Error {
  override name = 'KafkaTopicMissingError'
  constructor(readonly topic: string) {
    super(
      `Kafka topic ${topic} does not exist and autoCreateTopics is off: create it (e.g. kafka-topics.sh --create) or set autoCreateTopics: true`,
    )
  }
}

export interface Topology {
  /** Creates the topic when missing (autoCreateTopics) or fails when it does not exist; cached once done. */
  ensureTopic(admin: Admin, topic: string): Promise<void>
  /** Commits end offsets for the group's partitions of `topic` that have no committed offset. */
  initGroupOffsets(admin: Admin, topic: string, group: string): Promise<void>
  /** Removes a member (a crashed consumer of ours) from its group at once, instead of after its session timeout. */
  leaveGroup(group: string, memberId: string): Promise<void>
  close(): Promise<void>
}

/** Captures the Cluster a kafkajs consumer is built with (see the module comment). */
function captureCluster(kafka: Kafka): Cluster {
  let captured: Cluster | undefined
  kafka.consumer({
    groupId: 'msgkit-admin-unused',
    partitionAssigners: [
      ({ cluster }) => {
        captured = cluster
        return {
          name: 'unused',
          version: 0,
          assign: async () => [],
          protocol: () => ({ name: 'unused', metadata: Buffer.alloc(0) }),
        }
      },
    ],
  })
  if (!captured) throw new Error('kafkajs did not hand a cluster to the partition assigner')
  return captured
}

export function createTopology(kafka: Kafka, config: KafkaTransportConfig, logger: Logger): Topology {
  const known = new Set<string>()
  const creating = new Map<string, Promise<void>>()
  let cluster: Cluster | undefined

  const coordinator = async (group: string) => {
    cluster ??= captureCluster(kafka)
    if (!cluster.isConnected()) await cluster.connect()
    return cluster.findGroupCoordinator({ groupId: group })
  }

  const createOrCheck = async (admin: Admin, topic: string): Promise<void> => {
    if (config.autoCreateTopics) {
      await admin.createTopics({
        topics: [{ topic, numPartitions: config.partitions, replicationFactor: config.replicationFactor }],
        waitForLeaders: true,
        timeout: Math.max(5_000, config.requestTimeout),
      })
    } else if (!(await admin.listTopics()).includes(topic)) throw new KafkaTopicMissingError(topic)
    known.add(topic)
  }

  return {
    async ensureTopic(admin, topic) {
      if (known.has(topic)) return
      let pending = creating.get(topic)
      if (!pending) {
        pending = createOrCheck(admin, topic).finally(() => creating.delete(topic))
        creating.set(topic, pending)
      }
      await pending
    },

    async initGroupOffsets(admin, topic, group) {
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
      const missing = new Set(
        (committed?.partitions ?? []).filter((p) => Number(p.offset) < 0).map((p) => p.partition),
      )
      if (missing.size === 0) return
      const partitions = (await admin.fetchTopicOffsets(topic))
        .filter((p) => missing.has(p.partition))
        .map((p) => ({ partition: p.partition, offset: p.high }))
      if (partitions.length === 0) return
      const broker = await coordinator(group)
      try {
        await broker.offsetCommit({
          groupId: group,
          groupGenerationId: -1,
          memberId: '',
          topics: [{ topic, partitions }],
        })
        logger.debug({ topic, group, partitions }, 'kafka: group starts at the end of the topic')
      } catch (error) {
        // the group has members now; they consume from the earliest uncommitted offset themselves
        if (classifyKafka(error) !== 'transient') throw error
      }
    },

    async leaveGroup(group, memberId) {
      // a public method of kafkajs's Broker that its typings omit
      const broker = (await coordinator(group)) as unknown as {
        leaveGroup?: (r: { groupId: string; memberId: string }) => Promise<unknown>
      }
      try {
        await broker.leaveGroup?.({ groupId: group, memberId })
      } catch (error) {
        // already gone: that is what we wanted
        if ((rootCause(error) as { type?: string })?.type !== 'UNKNOWN_MEMBER_ID') throw error
      }
    },

    async close() {
      const c = cluster
      cluster = undefined
      await c?.disconnect().catch(() => {})
    },
  }
}
