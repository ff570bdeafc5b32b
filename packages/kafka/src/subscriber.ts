/**
 * One msgkit subscription = one kafkajs consumer (one group member).
 *
 * - Intake is held at `prefetch` unacked deliveries; heartbeats go on while it waits, so the member
 *   stays in its group while core is busy.
 * - autoCommit is off: the kit's stream ledger knows which records of each assigned partition are
 *   done and commits only the processed prefix; across a rebalance it keeps the bookkeeping of a
 *   partition that comes back unconsumed by others, so records in flight are not handed out twice.
 * - The member sits in the kit's consumer slot (kafkajs's own restart is off): a crashed member is
 *   replaced, right away when the supervisor reconnects. A connection-class crash is reported to
 *   the supervisor (one outage, one set of events).
 * - Pattern subscriptions re-read the topic list every `patternRefreshInterval` ms and replace the
 *   member when new topics match (kafkajs resolves a RegExp only at subscribe time).
 */
import type { DeliveryHandler, SubscribeRequest, TransportContext, TransportSubscription } from '@msgkit/core'
import { patternToRegExp, sleep } from '@msgkit/core'
import * as kit from '@msgkit/core/adapter'
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  PartitionAssigners,
} from 'kafkajs'
import { subscriptionAwareAssigner } from './assigner.js'
import { BROKER_WAIT_MS, CLIENT_RETRY, type KafkaTransportConfig } from './config.js'
import { rootCause, staleMetadata } from './errors.js'
import { decodeRecord } from './mapping.js'
import type { Topology } from './topology.js'
import type { KafkaSession } from './transport.js'

export interface SubscriberDeps {
  config: KafkaTransportConfig
  context: TransportContext
  supervisor: kit.Supervisor<KafkaSession>
  errors: kit.ErrorTable
  topology: Topology
  /** a client per member: kafkajs shares a committed-offset cache between the consumers of one client */
  newClient(): Kafka
  /** `work` on the session's admin, tried across outages (the transport's) */
  withAdmin<T>(operation: string, topic: string, work: (admin: Admin) => Promise<T>): Promise<T>
}

type Partition = { topic: string; partition: number }
type Lease = kit.StreamLease<Partition>

/** bounds of close() and of replacing a member: the final commit, leaving the group */
const COMMIT_MS = 3_000
const LEAVE_MS = 6_000

/** Starts a subscription; resolves once the member joined its group. */
export async function startSubscriber(
  request: SubscribeRequest,
  onDelivery: DeliveryHandler,
  deps: SubscriberDeps,
): Promise<TransportSubscription> {
  const { config, supervisor, errors, topology } = deps
  const { logger } = deps.context
  const { group, prefetch } = request
  const pattern = request.pattern === undefined ? undefined : patternToRegExp(request.pattern)
  const what = request.topic ?? `pattern ${request.pattern}`
  // a member draining before a rebalance sends no heartbeats: stay well inside the session timeout
  const drainMs = Math.min(10_000, config.rebalanceTimeout / 3, config.sessionTimeout / 2)
  const topics = new Set<string>()
  const intake = kit.createIntake(prefetch, config.heartbeatInterval)
  /** how many of `topics` (which only grow) the live member subscribed to */
  let memberTopics = 0
  /** a member being replaced: its last commits still go through it */
  let retiring: Consumer | undefined
  /** the supervisor's session when this member last fetched: a crash after it is an outage of that one */
  let healthy: KafkaSession | undefined
  let memberId: string | undefined
  /** a member failed because a topic is gone (deleted behind our back): its replacement creates it again */
  let topicsGone = false
  /** a crashed member's id, to remove from the group until it must have expired by itself */
  let crashed: { memberId: string; until: number } | undefined
  let halted = false
  let closed = false
  let closing: Promise<void> | undefined
  let refreshTimer: NodeJS.Timeout | undefined
  const active = (): boolean => !closed && !halted

  const ledger = kit.createStreamLedger<Partition>({
    key: (p) => `${p.topic}\u0000${p.partition}`,
    async commit(positions) {
      const via = slot.current ?? retiring
      if (!via) throw new Error('no group member to commit through (it is being replaced)')
      await via.commitOffsets(positions.map(({ stream, position }) => ({ ...stream, offset: `${position}` })))
    },
    // rebalancing (the new owner commits from here), or the broker is away: tried again later
    onCommitError: (error) => logger.debug({ group, err: String(error) }, 'kafka: commit failed; will retry'),
    room: (gone) => intake.room(() => gone() || !active()),
  })

  const hand = (lease: Lease, record: KafkaMessage, again: boolean): void => {
    const message = decodeRecord(lease.stream.topic, lease.stream.partition, record)
    message.redelivered = again
    // given back while running: handed over again, marked redelivered; once stopped, it stays
    // uncommitted and the group's next owner of the partition gets it
    const settlement = lease.take(Number(record.offset), () => {
      if (active()) hand(lease, record, true)
    })
    onDelivery(kit.createDelivery(message, intake.track(settlement))).catch((error: unknown) =>
      logger.error({ group, err: String(error) }, 'kafka: delivery handler failed'),
    )
  }

  /**
   * Heartbeat; when it reveals a rebalance, first let core finish what it holds (bounded) and
   * commit it — the group still takes commits of the old generation while members rejoin — so the
   * next owner of a partition does not redo that work. Then rethrow: kafkajs rejoins.
   */
  const heartbeatOrDrain = async (heartbeat: () => Promise<void>): Promise<void> => {
    try {
      await heartbeat()
    } catch (error) {
      if ((rootCause(error) as { type?: string })?.type === 'REBALANCE_IN_PROGRESS' && !halted) {
        const until = Date.now() + drainMs
        await intake.drained(drainMs, () => halted)
        await ledger.drain(Math.max(0, until - Date.now()) + 1_000)
        logger.debug({ group, what, left: intake.count }, 'kafka: rebalance; drained before rejoining')
      }
      throw error
    }
  }

  const eachBatch =
    (c: Consumer) =>
    async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
      if (c !== slot.current || halted) return
      // kafkajs keeps the offset it fetched from on the batch (not in its typings)
      const fetched = Number((batch as { fetchedOffset?: string }).fetchedOffset ?? batch.firstOffset())
      const lease = ledger.lease({ topic: batch.topic, partition: batch.partition }, fetched)
      if (!lease) return
      const stale = (): boolean => c !== slot.current || halted || !isRunning() || isStale() || !lease.valid
      for (const record of batch.messages) {
        if (stale()) return
        if (!lease.handedOut(Number(record.offset))) {
          // heartbeats go on while core is busy: the member stays in its group
          await intake.room(stale, () => heartbeatOrDrain(heartbeat))
          if (stale()) return
          hand(lease, record, false)
        }
        resolveOffset(record.offset)
      }
      // transaction markers / filtered records after the last data record
      if (lease.skipTo(Number(batch.lastOffset()))) resolveOffset(batch.lastOffset())
      // notice a rebalance here rather than in kafkajs's loop, which would rejoin without draining
      await heartbeatOrDrain(heartbeat)
    }

  /** Partitions back after a rebalance: continue or start over, by the group's committed offsets. */
  const resolveResumes = async (parts: Partition[]): Promise<void> => {
    const session = supervisor.session
    if (!session) return // decided at the first fetched batch instead
    try {
      const topics = [...new Set(parts.map((p) => p.topic))]
      for (const t of await session.admin.use((admin) => admin.fetchOffsets({ groupId: group, topics })))
        for (const p of t.partitions)
          if (Number(p.offset) >= 0)
            ledger.resume({ topic: t.topic, partition: p.partition }, Number(p.offset))
    } catch (error) {
      logger.debug({ group, err: String(error) }, 'kafka: could not read committed offsets after a rebalance')
    }
  }

  const revokeAll = (): void => {
    ledger.revokeAll()
    intake.wake()
  }

  const newConsumer = (): Consumer => {
    const c: Consumer = deps.newClient().consumer({
      groupId: group,
      partitionAssigners: [subscriptionAwareAssigner, PartitionAssigners.roundRobin],
      sessionTimeout: config.sessionTimeout,
      rebalanceTimeout: config.rebalanceTimeout,
      heartbeatInterval: config.heartbeatInterval,
      maxWaitTimeInMs: config.maxWaitTime,
      allowAutoTopicCreation: false,
      retry: { ...CLIENT_RETRY, restartOnFailure: async () => false },
    })
    c.on(c.events.GROUP_JOIN, ({ payload }) => {
      if (c !== slot.current) return
      memberId = payload.memberId
      healthy = supervisor.session ?? healthy
      const assigned = Object.entries(payload.memberAssignment)
      const back = ledger.assign(
        assigned.flatMap(([topic, ids]) => ids.map((partition) => ({ topic, partition }))),
      )
      if (back.length > 0) void resolveResumes(back)
    })
    c.on(c.events.CRASH, ({ payload: { error } }) => {
      if (!slot.crashed(c, error)) return
      topicsGone ||= staleMetadata(error)
      if (memberId !== undefined)
        crashed = { memberId, until: Date.now() + Math.max(60_000, 2 * config.sessionTimeout) }
      revokeAll()
      if (errors.classify(error) === 'connection') {
        const session = healthy ?? supervisor.session
        if (session) supervisor.lost(session, error)
      } else if (active())
        deps.context.emit({
          type: 'error',
          error: errors.toError(error, { operation: 'consume', topic: what }),
        })
      logger.warn({ group, what, err: String(error) }, 'kafka: consumer crashed; replacing it')
    })
    c.on(c.events.FETCH, () => {
      if (c === slot.current) healthy = supervisor.session ?? healthy
    })
    return c
  }

  const slot: kit.ConsumerSlot<Consumer> = kit.createConsumerSlot<Consumer>({
    supervisor,
    active,
    // a member for the current topics
    needed: (c) => topics.size > 0 && (!c || memberTopics !== topics.size),
    create: newConsumer,
    /**
     * A crashed member's id stays in the group until its session times out (after a broker restart,
     * counted from the restart), and the rejoin waits for it: remove it. While the broker is away the
     * attempt fails (and is retried); while its coordinator loads or moves, try again shortly.
     */
    async prepare() {
      while (crashed && Date.now() < crashed.until && active()) {
        try {
          await topology.leaveGroup(group, crashed.memberId)
          break
        } catch (error) {
          const kind = errors.classify(error)
          if (kind === 'connection') throw error
          if (kind !== 'transient') break // refused for good: not worth a wait
        }
        await sleep(200)
      }
      crashed = undefined
      if (topicsGone) {
        for (const t of topics) topology.forget(t)
        for (const t of topics)
          await deps.withAdmin('subscribe', t, (admin) => topology.ensureTopic(admin, t))
        topicsGone = false
      }
    },
    async start(c) {
      memberTopics = topics.size
      await c.connect()
      await c.subscribe({ topics: [...topics], fromBeginning: true })
      // returns once the member joined, or once its crash was handled
      await c.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: eachBatch(c) })
    },
    /** A replaced member commits what is done through it, then leaves the group (both bounded). */
    async retire(c, replaced) {
      if (!replaced) return void (await c.disconnect().catch(() => {}))
      retiring = c
      intake.wake()
      await ledger.drain(COMMIT_MS)
      revokeAll()
      await kit.bounded(c.disconnect(), LEAVE_MS)
      retiring = undefined
    },
    onFailure(error, failures) {
      topicsGone ||= staleMetadata(error)
      logger.warn({ group, what, failures, err: String(error) }, 'kafka: replacing the consumer failed')
    },
  })

  const matchingTopics = async (): Promise<string[]> => {
    const all = await deps.withAdmin('list topics', what, (admin) => topology.listTopics(admin))
    return all.filter((t) => !t.startsWith('__') && pattern?.test(t)).sort()
  }

  const refresh = async (): Promise<void> => {
    if (slot.busy || !active() || !supervisor.session) return
    try {
      const fresh = (await matchingTopics()).filter((t) => !topics.has(t))
      if (fresh.length === 0 || !active()) return
      for (const t of fresh) topics.add(t)
      logger.debug({ group, pattern: request.pattern, topics: fresh }, 'kafka: new topics match the pattern')
      slot.refresh()
    } catch (error) {
      logger.debug({ group, err: String(error) }, 'kafka: pattern refresh failed')
    }
  }

  // ---- start and stop --------------------------------------------------------------------------

  const label = `${what} (group ${group})`
  try {
    for (const topic of request.topic !== undefined ? [request.topic] : await matchingTopics()) {
      await deps.withAdmin('provision', topic, (admin) => topology.provision(admin, topic, group))
      topics.add(topic)
    }
    const deadline = Date.now() + BROKER_WAIT_MS
    await supervisor.perform({ operation: 'subscribe', topic: label }, deadline, () => slot.start())
  } catch (error) {
    closed = true
    ledger.close()
    await slot.close()
    throw errors.toError(error, { operation: 'subscribe', topic: label })
  }
  if (pattern) refreshTimer = setInterval(() => void refresh(), config.patternRefreshInterval)

  const stop = async (): Promise<void> => {
    if (halted) return
    halted = true
    clearInterval(refreshTimer)
    void slot.stop()
    intake.wake()
    try {
      slot.current?.pause([...topics].map((topic) => ({ topic })))
    } catch {
      // not running (between a crash and its replacement): nothing is fetched anyway
    }
  }

  return {
    stop,
    close() {
      closing ??= (async () => {
        await stop()
        await slot.close(LEAVE_MS)
        closed = true
        ledger.close()
      })()
      return closing
    },
  }
}
