/**
 * Topic creation and group provisioning: the admin side of the transport.
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
import { classify, rootCause } from './errors.js'

/** A topic that does not exist while autoCreateTopics is off (mapped through the error table). */
export class KafkaTopicMissingError extends Error {
  constructor(readonly topic: string) {
    super(
      `Kafka topic ${topic} does not exist and autoCreateTopics is off: create it (e.g. kafka-topics.sh --create) or set autoCreateTopics: true.`,
    )
    this.name = 'KafkaTopicMissingError'
  }
}

export interface ClusterAdmin {
  /** Creates the topic when missing (autoCreateTopics) or fails when it does not exist. One attempt. */
  ensureTopic(topic: string): Promise<void>
  /** Commits end offsets for the group's partitions of `topic` that have no committed offset. */
  initGroupOffsets(topic: string, group: string): Promise<void>
  /**
   * Removes a member from its group at once (a consumer of ours that crashed without leaving),
   * instead of letting the group wait a session timeout for it.
   */
  leaveGroup(group: string, memberId: string): Promise<void>
  /** All topic names in the cluster. */
  listTopics(): Promise<string[]>
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
          name: 'msgkit-admin-unused',
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

export function createClusterAdmin(
  kafka: Kafka,
  admin: Admin,
  config: KafkaTransportConfig,
  logger: Logger,
): ClusterAdmin {
  const known = new Set<string>()
  const creating = new Map<string, Promise<void>>()
  let cluster: Cluster | undefined
  let clusterConnecting: Promise<void> | undefined

  const coordinatorCluster = async (): Promise<Cluster> => {
    cluster ??= captureCluster(kafka)
    if (!cluster.isConnected()) {
      clusterConnecting ??= cluster.connect().finally(() => {
        clusterConnecting = undefined
      })
      await clusterConnecting
    }
    return cluster
  }

  const createOrCheck = async (topic: string): Promise<void> => {
    if (config.autoCreateTopics) {
      await admin.createTopics({
        topics: [{ topic, numPartitions: config.partitions, replicationFactor: config.replicationFactor }],
        waitForLeaders: true,
        timeout: Math.max(5_000, config.requestTimeout),
      })
    } else if (!(await admin.listTopics()).includes(topic)) {
      throw new KafkaTopicMissingError(topic)
    }
    known.add(topic)
  }

  return {
    async ensureTopic(topic) {
      if (known.has(topic)) return
      let pending = creating.get(topic)
      if (!pending) {
        pending = createOrCheck(topic).finally(() => creating.delete(topic))
        creating.set(topic, pending)
      }
      await pending
    },

    async initGroupOffsets(topic, group) {
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
      const missing = new Set(
        (committed?.partitions ?? []).filter((p) => Number(p.offset) < 0).map((p) => p.partition),
      )
      if (missing.size === 0) return
      const ends = await admin.fetchTopicOffsets(topic)
      const partitions = ends
        .filter((p) => missing.has(p.partition))
        .map((p) => ({ partition: p.partition, offset: p.high }))
      if (partitions.length === 0) return
      const coordinator = await (await coordinatorCluster()).findGroupCoordinator({ groupId: group })
      try {
        await coordinator.offsetCommit({
          groupId: group,
          groupGenerationId: -1,
          memberId: '',
          topics: [{ topic, partitions }],
        })
        logger.debug({ topic, group, partitions }, 'kafka: group starts at the end of the topic')
      } catch (error) {
        // the group has members now; they consume from the earliest uncommitted offset themselves
        if (classify(error) !== 'transient') throw error
        logger.debug(
          { topic, group, err: String(error) },
          'kafka: group is active, offsets left to its members',
        )
      }
    },

    async leaveGroup(group, memberId) {
      const coordinator = await (await coordinatorCluster()).findGroupCoordinator({ groupId: group })
      // a public method of kafkajs's Broker that its typings omit
      const leave = (
        coordinator as unknown as {
          leaveGroup?: (r: { groupId: string; memberId: string }) => Promise<unknown>
        }
      ).leaveGroup
      if (typeof leave !== 'function') return
      try {
        await leave.call(coordinator, { groupId: group, memberId })
      } catch (error) {
        // already gone: that is what we wanted
        if ((rootCause(error) as { type?: string })?.type !== 'UNKNOWN_MEMBER_ID') throw error
      }
    },

    async listTopics() {
      return admin.listTopics()
    },

    async close() {
      const c = cluster
      cluster = undefined
      await c?.disconnect().catch(() => {})
    },
  }
}
