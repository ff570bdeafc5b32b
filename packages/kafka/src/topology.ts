/**
 * Topics and groups: creating topics, provisioning groups, removing a crashed member. One attempt
 * each; the transport runs them through the supervisor (`perform`), which retries across outages.
 * What succeeded once is not asked again (a subscribe after a provision, a second subscribe).
 *
 * "A group exists from its first provision on and gets every later message": when a group has no
 * committed offset for a partition, msgkit commits the partition's current end offset for it, the
 * way Kafka's Admin API does (an OffsetCommit with generation -1, accepted only while the group
 * has no members). kafkajs has no such admin call (its setOffsets joins the group), so the request
 * goes to the group coordinator through a kafkajs Cluster handle.
 */
import type { Logger } from '@msgkit/core'
import { createDeclarations } from '@msgkit/core/adapter'
import { type Admin, type Cluster, type Kafka, type PartitionAssigner, PartitionAssigners } from 'kafkajs'
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

/** Captures the Cluster a kafkajs consumer is built with (see the module comment). */
function captureCluster(kafka: Kafka): Cluster {
  let captured: Cluster | undefined
  const spy: PartitionAssigner = (options) => {
    captured = options.cluster
    return PartitionAssigners.roundRobin(options)
  }
  kafka.consumer({ groupId: 'msgkit-admin-unused', partitionAssigners: [spy] })
  if (!captured) throw new Error('kafkajs did not hand a cluster to the partition assigner')
  return captured
}

export type Topology = ReturnType<typeof createTopology>

export function createTopology(kafka: Kafka, config: KafkaTransportConfig, logger: Logger) {
  const declared = createDeclarations()
  let cluster: Cluster | undefined

  const coordinator = async (group: string) => {
    cluster ??= captureCluster(kafka)
    if (!cluster.isConnected()) {
      await cluster.connect()
      // without broker metadata the coordinator lookup fails once and retries after a backoff (~250 ms)
      await cluster.refreshMetadata()
    }
    return cluster.findGroupCoordinator({ groupId: group })
  }

  /**
   * kafkajs's admin races concurrent metadata work: a fetchTopicOffsets beside another topic's
   * refresh finds no partitions and throws a TypeError (kafkajs#461; 8 concurrent provisions in
   * DG-2 met it). One call at a time: provisioning is no hot path.
   */
  let metadataQueue: Promise<unknown> = Promise.resolve()
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const run = metadataQueue.then(work, work)
    metadataQueue = run.catch(() => undefined)
    return run
  }
  const topicOffsets = (admin: Admin, topic: string) =>
    serially(() => admin.fetchTopicOffsets(topic)).catch((error: unknown) => {
      // the same TypeError for metadata that does not list a new topic yet: transient, tried again
      if (!(error instanceof TypeError)) throw error
      throw Object.assign(new Error(`no partition metadata for ${topic} yet`), {
        name: 'KafkaJSTopicMetadataNotLoaded',
      })
    })

  /** Creates the topic (or checks that it exists) once; resolves to its number of partitions. */
  const ensureTopic = (admin: Admin, topic: string): Promise<number> =>
    declared.once(topic, async () => {
      if (config.autoCreateTopics) {
        const topics = [
          { topic, numPartitions: config.partitions, replicationFactor: config.replicationFactor },
        ]
        const timeout = Math.max(5_000, config.requestTimeout)
        await serially(() => admin.createTopics({ topics, waitForLeaders: true, timeout }))
      } else if (!(await serially(() => admin.listTopics())).includes(topic))
        throw new KafkaTopicMissingError(topic)
      // not fetchTopicMetadata: it replaces the admin's cached metadata with this topic's alone
      return (await topicOffsets(admin, topic)).length || 1
    })

  const initGroupOffsets = async (admin: Admin, topic: string, group: string): Promise<void> => {
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    const missing = new Set(
      (committed?.partitions ?? []).filter((p) => Number(p.offset) < 0).map((p) => p.partition),
    )
    if (missing.size === 0) return
    const partitions = (await topicOffsets(admin, topic))
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
  }

  return {
    /** Creates the topic when missing (autoCreateTopics) or fails when it does not exist. */
    ensureTopic,

    /** Every topic's name (serialised with the other metadata reads). */
    listTopics: (admin: Admin): Promise<string[]> => serially(() => admin.listTopics()),

    /** The topic, and the group starting at its end on every partition without a committed offset. */
    provision: (admin: Admin, topic: string, group: string): Promise<void> =>
      declared.once(`${topic}\u0000${group}`, async () => {
        await ensureTopic(admin, topic)
        await initGroupOffsets(admin, topic, group)
      }),

    /** The topic was deleted behind our back: create (or check) it again on its next use. */
    forget: (topic: string): void =>
      declared.forget((key) => key === topic || key.startsWith(`${topic}\u0000`)),

    /** Removes a member (a crashed consumer of ours) from its group at once, not after its session timeout. */
    async leaveGroup(group: string, memberId: string): Promise<void> {
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

    async close(): Promise<void> {
      const c = cluster
      cluster = undefined
      await c?.disconnect().catch(() => {})
    },
  }
}
