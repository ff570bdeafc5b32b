/**
 * One msgkit subscription = one kafkajs consumer (one group member).
 *
 * - Intake is held at `prefetch` unacked deliveries; heartbeats go on while it waits, so the member
 *   stays in its group while core is busy.
 * - autoCommit is off: a prefix tracker per partition knows which records are done, and only the
 *   processed prefix is committed (the kit's coalescer: one commit request at a time).
 * - A rebalance revokes partitions: nothing more is handed out or committed for them. When a
 *   partition comes back and the group's committed offset shows nobody else consumed it, the
 *   bookkeeping continues, so records still in flight with core are not handed out twice.
 * - A crashed member is replaced by the kit's restarter (kafkajs's own restart is off), right away
 *   when the supervisor reconnects. A connection-class crash is reported to the supervisor (one
 *   outage, one set of events).
 * - Pattern subscriptions re-read the topic list every `patternRefreshInterval` ms and replace the
 *   member when new topics match (kafkajs resolves a RegExp only at subscribe time).
 */
import type { DeliveryHandler, SubscribeRequest, TransportContext, TransportSubscription } from '@msgkit/core'
import { patternToRegExp, sleep, withTimeout } from '@msgkit/core'
import * as kit from '@msgkit/core/adapter'
import {
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  PartitionAssigners,
} from 'kafkajs'
import { subscriptionAwareAssigner } from './assigner.js'
import { BROKER_WAIT_MS, CLIENT_RETRY, type KafkaTransportConfig } from './config.js'
import { rootCause } from './errors.js'
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
  provision(topic: string, group: string): Promise<void>
}

interface Partition {
  topic: string
  partition: number
  owned: boolean
  tracker?: kit.PrefixTracker
  /** re-assigned with a tracker from before: decide continue/reset before using it */
  checkResume?: boolean
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`
/** bounds of close() and of replacing a member: the final commit, leaving the group */
const COMMIT_MS = 3_000
const LEAVE_MS = 6_000
const REQUEUE_DELAY_MS = 250
const bounded = (work: Promise<unknown>, ms: number) =>
  withTimeout(work, ms, () => new Error('timed out')).catch(() => undefined)

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
  const partitions = new Map<string, Partition>()
  const intake = kit.createIntake(prefetch, config.heartbeatInterval)
  let consumer: Consumer | undefined
  /** how many of `topics` (which only grow) the live member subscribed to */
  let memberTopics = 0
  /** a member being replaced: its last commits still go through it */
  let retiring: Consumer | undefined
  /** the supervisor's session when this member last fetched: a crash after it is an outage of that one */
  let healthy: KafkaSession | undefined
  let memberId: string | undefined
  /** a crashed member's id, to remove from the group until it must have expired by itself */
  let crashed: { memberId: string; until: number } | undefined
  let lastCrash: unknown
  let halted = false
  let closed = false
  let closing: Promise<void> | undefined
  let refreshTimer: NodeJS.Timeout | undefined
  const active = (): boolean => !closed && !halted

  // ---- commits: the processed prefix of each owned partition ---------------------------------

  const due = () =>
    [...partitions.values()].flatMap((p) => {
      const offset = p.owned && !p.checkResume ? p.tracker?.pending() : undefined
      return p.tracker && offset !== undefined ? [{ p, tracker: p.tracker, offset }] : []
    })
  const commits = kit.createCoalescer({
    due: () => due().length > 0,
    async flush() {
      const via = consumer ?? retiring
      if (!via) throw new Error('no group member to commit through (it is being replaced)')
      const batch = due()
      await via.commitOffsets(
        batch.map(({ p, offset }) => ({ topic: p.topic, partition: p.partition, offset: `${offset}` })),
      )
      for (const c of batch) c.tracker.confirmed(c.offset)
    },
    // rebalancing (the new owner commits from here), or the broker is away: tried again later
    onError: (error) => logger.debug({ group, err: String(error) }, 'kafka: commit failed; will retry'),
  })

  // ---- hand-over -------------------------------------------------------------------------------

  const hand = (p: Partition, tracker: kit.PrefixTracker, record: KafkaMessage, again: boolean): void => {
    const offset = Number(record.offset)
    const message = decodeRecord(p.topic, p.partition, record)
    message.redelivered = again
    tracker.add(offset)
    const done = (): void => {
      if (tracker.complete(offset) && p.tracker === tracker && p.owned) commits.request()
    }
    const settlement = intake.track({
      ack: done,
      nack(requeue) {
        if (!requeue) return done()
        // given back while running: hand it over again, marked redelivered; once stopped, it stays
        // uncommitted and the group's next owner of the partition gets it
        tracker.giveBack(offset)
        setTimeout(() => void redeliver(p, tracker, record), REQUEUE_DELAY_MS)
      },
    })
    onDelivery(kit.createDelivery(message, settlement)).catch((error: unknown) =>
      logger.error({ group, err: String(error) }, 'kafka: delivery handler failed'),
    )
  }

  const redeliver = async (p: Partition, tracker: kit.PrefixTracker, record: KafkaMessage): Promise<void> => {
    const gone = (): boolean => !active() || !p.owned || p.tracker !== tracker
    await intake.room(gone)
    if (!gone() && tracker.isReturned(Number(record.offset))) hand(p, tracker, record, true)
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
        while (intake.count > 0 && Date.now() < until && !halted) await sleep(10)
        await commits.drain(Math.max(0, until - Date.now()) + 1_000)
        logger.debug({ group, what, left: intake.count }, 'kafka: rebalance; drained before rejoining')
      }
      throw error
    }
  }

  const resume = (p: Partition, fetchOffset: number): void => {
    p.checkResume = false
    if (p.tracker?.resume(fetchOffset) !== 'continued') p.tracker = kit.createPrefixTracker(fetchOffset)
  }

  const eachBatch =
    (c: Consumer) =>
    async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
      const p = partitions.get(keyOf(batch.topic, batch.partition))
      if (c !== consumer || halted || !p?.owned) return
      // kafkajs keeps the offset it fetched from on the batch (not in its typings)
      if (!p.tracker || p.checkResume)
        resume(p, Number((batch as { fetchedOffset?: string }).fetchedOffset ?? batch.firstOffset()))
      const tracker = p.tracker as kit.PrefixTracker
      const stale = (): boolean =>
        c !== consumer || halted || !isRunning() || isStale() || !p.owned || p.tracker !== tracker
      for (const record of batch.messages) {
        if (stale()) return
        if (!tracker.isHandedOut(Number(record.offset))) {
          // heartbeats go on while core is busy: the member stays in its group
          await intake.room(stale, () => heartbeatOrDrain(heartbeat))
          if (stale()) return
          hand(p, tracker, record, false)
        }
        resolveOffset(record.offset)
      }
      // transaction markers / filtered records after the last data record
      const last = Number(batch.lastOffset())
      if (Number.isFinite(last) && last >= tracker.next) {
        tracker.skipTo(last)
        resolveOffset(batch.lastOffset())
        commits.request()
      }
      // notice a rebalance here rather than in kafkajs's loop, which would rejoin without draining
      await heartbeatOrDrain(heartbeat)
    }

  // ---- membership ------------------------------------------------------------------------------

  /** Partitions back after a rebalance: continue or reset, by the group's committed offsets. */
  const resolveResumes = async (parts: Partition[]): Promise<void> => {
    const session = supervisor.session
    if (!session) return // decided at the first fetched batch instead
    try {
      const topics = [...new Set(parts.map((p) => p.topic))]
      const committed = new Map<string, number>()
      for (const t of await session.useAdmin((admin) => admin.fetchOffsets({ groupId: group, topics })))
        for (const p of t.partitions) committed.set(keyOf(t.topic, p.partition), Number(p.offset))
      for (const p of parts) {
        const offset = committed.get(keyOf(p.topic, p.partition)) ?? -1
        if (p.checkResume && p.owned && offset >= 0) resume(p, offset)
      }
      commits.request()
    } catch (error) {
      logger.debug({ group, err: String(error) }, 'kafka: could not read committed offsets after a rebalance')
    }
  }

  const onAssigned = (assignment: Record<string, number[]>, joinedAs: string): void => {
    memberId = joinedAs
    healthy = supervisor.session ?? healthy
    for (const p of partitions.values()) p.owned = false
    const back: Partition[] = []
    for (const [topic, ids] of Object.entries(assignment)) {
      for (const partition of ids) {
        const p = partitions.get(keyOf(topic, partition))
        if (!p) partitions.set(keyOf(topic, partition), { topic, partition, owned: true })
        else {
          p.owned = true
          p.checkResume = p.tracker !== undefined
          if (p.tracker) back.push(p)
        }
      }
    }
    if (back.length > 0) void resolveResumes(back)
  }

  const revokeAll = (): void => {
    for (const p of partitions.values()) p.owned = false
    intake.wake()
  }

  const onCrash = (c: Consumer, error: unknown): void => {
    if (c !== consumer) return
    consumer = undefined
    lastCrash = error
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
    restarts.soon()
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
      if (c === consumer) onAssigned(payload.memberAssignment, payload.memberId)
    })
    c.on(c.events.CRASH, ({ payload }) => onCrash(c, payload.error))
    c.on(c.events.FETCH, () => {
      if (c === consumer) healthy = supervisor.session ?? healthy
    })
    return c
  }

  /**
   * A crashed member's id stays in the group until its session times out (after a broker restart,
   * counted from the restart), and the rejoin waits for it: remove it. While the broker is away the
   * attempt fails (and is retried); while its coordinator loads or moves, try again shortly.
   */
  const leaveCrashed = async (): Promise<void> => {
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
  }

  /** A member commits what is done through it, then leaves the group (both bounded). */
  const retire = async (c: Consumer): Promise<void> => {
    consumer = undefined
    retiring = c
    intake.wake()
    await commits.drain(COMMIT_MS)
    revokeAll()
    await bounded(c.disconnect(), LEAVE_MS)
    retiring = undefined
  }

  /** One restart attempt: a member for the current topics, replacing a crashed or outdated one. */
  const ensureMember = async (): Promise<void> => {
    if (!active() || topics.size === 0 || (consumer && memberTopics === topics.size)) return
    if (consumer) await retire(consumer) // new topics
    await leaveCrashed()
    lastCrash = undefined
    const c = newConsumer()
    consumer = c
    memberTopics = topics.size
    try {
      await c.connect()
      await c.subscribe({ topics: [...topics], fromBeginning: true })
      const run = { autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1 }
      await c.run({ ...run, eachBatch: eachBatch(c) })
      // run() returns once the member joined, or once its crash was handled (onCrash)
      if (consumer !== c || !active()) throw lastCrash ?? new Error('the subscription stopped while joining')
    } catch (error) {
      if (consumer === c) consumer = undefined
      await c.disconnect().catch(() => {})
      throw error
    }
  }

  const restarts = kit.createRestarter({
    start: ensureMember,
    active,
    onFailure: (error, failures) =>
      logger.warn({ group, what, failures, err: String(error) }, 'kafka: replacing the consumer failed'),
  })
  // the broker answers again: replace a crashed member now rather than at the restarter's next try
  const unregister = supervisor.onRestore(async () => {
    if (!consumer && active()) restarts.run().catch(() => restarts.soon())
  })

  const matchingTopics = async (): Promise<string[]> => {
    const all = await supervisor.perform(
      { operation: 'list topics' },
      Date.now() + BROKER_WAIT_MS,
      (session) => session.useAdmin((admin) => admin.listTopics()),
    )
    return all.filter((t) => !t.startsWith('__') && pattern?.test(t)).sort()
  }

  const refresh = async (): Promise<void> => {
    if (restarts.busy || !active() || !supervisor.session) return
    try {
      const fresh = (await matchingTopics()).filter((t) => !topics.has(t))
      if (fresh.length === 0 || !active()) return
      for (const t of fresh) topics.add(t)
      logger.debug({ group, pattern: request.pattern, topics: fresh }, 'kafka: new topics match the pattern')
      restarts.soon()
    } catch (error) {
      logger.debug({ group, err: String(error) }, 'kafka: pattern refresh failed')
    }
  }

  // ---- start and stop --------------------------------------------------------------------------

  const label = `${what} (group ${group})`
  try {
    for (const topic of request.topic !== undefined ? [request.topic] : await matchingTopics()) {
      await deps.provision(topic, group)
      topics.add(topic)
    }
    const deadline = Date.now() + BROKER_WAIT_MS
    await supervisor.perform({ operation: 'subscribe', topic: label }, deadline, () => restarts.run())
  } catch (error) {
    closed = true
    unregister()
    commits.close()
    await restarts.stop()
    throw errors.toError(error, { operation: 'subscribe', topic: label })
  }
  if (pattern) refreshTimer = setInterval(() => void refresh(), config.patternRefreshInterval)

  const stop = async (): Promise<void> => {
    if (halted) return
    halted = true
    clearInterval(refreshTimer)
    void restarts.stop()
    intake.wake()
    try {
      consumer?.pause([...topics].map((topic) => ({ topic })))
    } catch {
      // not running (between a crash and its replacement): nothing is fetched anyway
    }
  }

  return {
    stop,
    close() {
      closing ??= (async () => {
        await stop()
        await bounded(restarts.stop(), LEAVE_MS)
        if (consumer) await retire(consumer)
        closed = true
        unregister()
        commits.close()
      })()
      return closing
    },
  }
}
