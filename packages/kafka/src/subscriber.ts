/**
 * One msgkit subscription = one kafkajs consumer (one group member).
 *
 * - Intake is held at `prefetch` unacked deliveries (an in-flight counter; heartbeats go on while
 *   it waits, so the member stays in its group while core is busy).
 * - autoCommit is off: an OffsetTracker per partition knows which records are done, and only the
 *   processed prefix is committed, coalesced, one commit request at a time.
 * - A rebalance revokes partitions: nothing more is handed out or committed for them. When a
 *   partition comes back and the group's committed offset shows nobody else consumed it, the
 *   bookkeeping continues, so records still in flight with core are not handed out twice.
 * - kafkajs restarts a crashed consumer itself; when it gives up, the member is replaced. A crash
 *   for a connection-class reason is reported to the supervisor (one outage, one set of events).
 * - Pattern subscriptions re-read the topic list every `patternRefreshInterval` ms and restart the
 *   member with the new topics (kafkajs resolves a RegExp only at subscribe time).
 */
import type { DeliveryHandler, Logger, SubscribeRequest, TransportSubscription } from '@msgkit/core'
import { patternToRegExp, sleep, withTimeout } from '@msgkit/core'
import { createDelivery, createInFlightCounter, type ErrorTable, type Supervisor } from '@msgkit/core/adapter'
import {
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  PartitionAssigners,
} from 'kafkajs'
import { subscriptionAwareAssigner } from './assigner.js'
import { CLIENT_RETRY, type KafkaTransportConfig } from './config.js'
import { rootCause } from './errors.js'
import { decodeRecord } from './mapping.js'
import { OffsetTracker } from './offset-tracker.js'
import type { KafkaSession } from './publisher.js'
import type { Topology } from './topology.js'

export interface SubscriberDeps {
  config: KafkaTransportConfig
  supervisor: Supervisor<KafkaSession>
  errors: ErrorTable
  topology: Topology
  logger: Logger
  /** a client per member: kafkajs shares a committed-offset cache between the consumers of one client */
  newClient(): Kafka
  provision(topic: string, group: string): Promise<void>
  listTopics(): Promise<string[]>
  emitError(error: unknown): void
}

interface Partition {
  topic: string
  partition: number
  owned: boolean
  tracker?: OffsetTracker
  /** re-assigned with a tracker from before: decide continue/reset before using it */
  checkResume?: boolean
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`
/** bounds of close() and of replacing a member: the final commit, leaving the group */
const COMMIT_MS = 3_000
const LEAVE_MS = 6_000
const REQUEUE_DELAY_MS = 250
const RESTART_DELAY_MS = 1_000
const bounded = (work: Promise<unknown>, ms: number) =>
  withTimeout(work, ms, () => new Error('timed out')).catch(() => undefined)
const signal = () => {
  let fire!: () => void
  return { promise: new Promise<void>((resolve) => (fire = resolve)), fire }
}

/** Starts a subscription; resolves once the member joined its group. */
export async function startSubscriber(
  request: SubscribeRequest,
  onDelivery: DeliveryHandler,
  deps: SubscriberDeps,
): Promise<TransportSubscription> {
  const {
    config,
    supervisor,
    errors,
    topology,
    logger,
    prefetch = request.prefetch,
  } = { ...deps, ...request }
  const group = request.group
  const pattern = request.pattern === undefined ? undefined : patternToRegExp(request.pattern)
  const what = request.topic ?? `pattern ${request.pattern}`
  // a member draining before a rebalance sends no heartbeats: stay well inside the session timeout
  const drainMs = Math.min(10_000, config.rebalanceTimeout / 3, config.sessionTimeout / 2)
  const topics = new Set<string>()
  const partitions = new Map<string, Partition>()
  const inFlight = createInFlightCounter()
  let consumer: Consumer | undefined
  /** a consumer being replaced: its last commits still go through it */
  let retiring: Consumer | undefined
  /** the supervisor's session when this member last fetched: a crash after it is an outage of that one */
  let healthy: KafkaSession | undefined
  let memberId: string | undefined
  let halted = false
  let closed = false
  let closing: Promise<void> | undefined
  let restarting: Promise<void> | undefined
  let timers: Partial<Record<'restart' | 'refresh' | 'reaper' | 'commit', NodeJS.Timeout>> = {}
  /** fired when the subscription stops or the member changes: wakes every wait */
  let wake = signal()
  const wakeAll = (): void => {
    const w = wake
    wake = signal()
    w.fire()
  }
  const active = (): boolean => !closed && !halted

  // ---- commits: the processed prefix of each owned partition, one request at a time ----------

  let committing: Promise<void> | undefined
  let commitAgain = false
  const due = () =>
    [...partitions.values()].flatMap((p) => {
      const offset = p.owned && !p.checkResume ? p.tracker?.pendingCommit() : undefined
      return offset === undefined ? [] : [{ p, tracker: p.tracker as OffsetTracker, offset }]
    })

  const scheduleCommit = (delayMs = 0): void => {
    if (closed || timers.commit) return
    timers.commit = setTimeout(() => {
      timers.commit = undefined
      void commit()
    }, delayMs)
  }

  const commit = (): Promise<void> => {
    const via = consumer ?? retiring
    const batch = due()
    if (committing) commitAgain = true
    if (committing || !via || batch.length === 0) return committing ?? Promise.resolve()
    const offsets = batch.map(({ p, offset }) => ({
      topic: p.topic,
      partition: p.partition,
      offset: `${offset}`,
    }))
    committing = via.commitOffsets(offsets).then(
      () => {
        for (const c of batch) c.tracker.markCommitted(c.offset)
        committing = undefined
        if (commitAgain) scheduleCommit()
        commitAgain = false
      },
      (error: unknown) => {
        // rebalancing (the new owner commits from here), or the broker is away: try again later
        logger.debug({ group, err: String(error) }, 'kafka: commit failed; will retry')
        committing = undefined
        commitAgain = false
        scheduleCommit(500)
      },
    )
    return committing
  }

  /** Commit what is done now and wait for it (bounded). */
  const flushCommits = async (ms: number): Promise<void> => {
    clearTimeout(timers.commit)
    timers.commit = undefined
    const deadline = Date.now() + ms
    while (Date.now() < deadline && (committing || due().length > 0)) {
      await bounded(committing ?? commit(), deadline - Date.now())
      if (!committing && due().length > 0) await sleep(100) // it failed: a moment before the next try
    }
  }

  // ---- hand-over -------------------------------------------------------------------------------

  const hand = (p: Partition, tracker: OffsetTracker, record: KafkaMessage, redelivered: boolean): void => {
    const offset = Number(record.offset)
    const message = decodeRecord(p.topic, p.partition, record)
    message.redelivered = redelivered
    tracker.add(offset)
    const done = (): void => {
      if (tracker.complete(offset) && p.tracker === tracker && p.owned) scheduleCommit()
    }
    const settlement = inFlight.track({
      ack: done,
      nack(requeue) {
        if (!requeue) return done()
        // given back while running: hand it over again, marked redelivered; once stopped, it stays
        // uncommitted and the group's next owner of the partition gets it
        tracker.giveBack(offset)
        setTimeout(() => void redeliver(p, tracker, record), REQUEUE_DELAY_MS)
      },
    })
    onDelivery(createDelivery(message, settlement)).catch((error: unknown) =>
      logger.error({ group, err: String(error) }, 'kafka: delivery handler failed'),
    )
  }

  const redeliver = async (p: Partition, tracker: OffsetTracker, record: KafkaMessage): Promise<void> => {
    const gone = (): boolean => !active() || !p.owned || p.tracker !== tracker
    await waitForRoom(gone)
    if (!gone() && tracker.isReturned(Number(record.offset))) hand(p, tracker, record, true)
  }

  /** Wait until fewer than `prefetch` deliveries are unacked; heartbeat meanwhile inside a batch. */
  const waitForRoom = async (stale: () => boolean, heartbeat?: () => Promise<void>): Promise<void> => {
    while (inFlight.count >= prefetch && !stale()) {
      const woken = wake.promise.then(() => false)
      const room = inFlight.room(prefetch).then(() => false)
      if (await Promise.race([room, woken, heartbeat ? sleep(config.heartbeatInterval) : woken]))
        await heartbeatOrDrain(heartbeat as () => Promise<void>)
    }
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
        while (inFlight.count > 0 && Date.now() < until && !halted) await sleep(10)
        await flushCommits(Math.max(0, until - Date.now()) + 1_000)
        logger.debug({ group, what, left: inFlight.count }, 'kafka: rebalance; drained before rejoining')
      }
      throw error
    }
  }

  const resume = (p: Partition, fetchOffset: number): void => {
    p.checkResume = false
    if (p.tracker?.resume(fetchOffset) !== 'continued') p.tracker = new OffsetTracker(fetchOffset)
  }

  const eachBatch =
    (c: Consumer) =>
    async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
      const p = partitions.get(keyOf(batch.topic, batch.partition))
      if (c !== consumer || halted || !p?.owned) return
      // kafkajs keeps the offset it fetched from on the batch (not in its typings)
      if (!p.tracker || p.checkResume)
        resume(p, Number((batch as { fetchedOffset?: string }).fetchedOffset ?? batch.firstOffset()))
      const tracker = p.tracker as OffsetTracker
      const stale = (): boolean =>
        c !== consumer || halted || !isRunning() || isStale() || !p.owned || p.tracker !== tracker
      for (const record of batch.messages) {
        if (stale()) return
        if (!tracker.isHandedOut(Number(record.offset))) {
          await waitForRoom(stale, heartbeat)
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
        scheduleCommit()
      }
      // notice a rebalance here rather than in kafkajs's loop, which would rejoin without draining
      await heartbeatOrDrain(heartbeat)
    }

  // ---- membership ------------------------------------------------------------------------------

  let joined = signal()
  let firstCrash: unknown

  /** Partitions back after a rebalance: continue or reset, by the group's committed offsets. */
  const resolveResumes = async (parts: Partition[]): Promise<void> => {
    const admin = supervisor.session?.admin
    if (!admin) return // decided at the first fetched batch instead
    const topicsOf = [...new Set(parts.map((p) => p.topic))]
    try {
      const committed = new Map<string, number>()
      for (const t of await admin.fetchOffsets({ groupId: group, topics: topicsOf }))
        for (const p of t.partitions) committed.set(keyOf(t.topic, p.partition), Number(p.offset))
      for (const p of parts) {
        const offset = committed.get(keyOf(p.topic, p.partition)) ?? -1
        if (p.checkResume && p.owned && offset >= 0) resume(p, offset)
      }
      scheduleCommit()
    } catch (error) {
      logger.debug({ group, err: String(error) }, 'kafka: could not read committed offsets after a rebalance')
    }
  }

  /**
   * A crashed kafkajs consumer restarts under a new member id, and its old id stays in the group
   * until the session times out, holding up the rejoin. Tell the coordinator it left.
   */
  const reapStaleMember = (stale: string): void => {
    clearTimeout(timers.reaper)
    const until = Date.now() + Math.max(60_000, 2 * config.sessionTimeout)
    const attempt = (): void => {
      if (!active() || memberId !== stale || Date.now() > until) return
      topology.leaveGroup(group, stale).then(
        () => logger.debug({ group, memberId: stale }, 'kafka: removed the crashed member from the group'),
        () => (timers.reaper = setTimeout(attempt, 500)),
      )
    }
    timers.reaper = setTimeout(attempt, 200)
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
    joined.fire()
    if (back.length > 0) void resolveResumes(back)
  }

  const revokeAll = (): void => {
    for (const p of partitions.values()) p.owned = false
    wakeAll()
  }

  const onCrash = (c: Consumer, error: unknown, restart: boolean): void => {
    if (c !== consumer) return
    revokeAll()
    firstCrash ??= error
    if (memberId !== undefined && active()) reapStaleMember(memberId)
    if (errors.classify(error) === 'connection') {
      const session = healthy ?? supervisor.session
      if (session) supervisor.lost(session, error)
    } else if (active()) deps.emitError(errors.toError(error, { operation: 'consume', topic: what }))
    logger.warn({ group, what, restart, err: String(error) }, 'kafka: consumer crashed')
    if (!restart && active()) {
      clearTimeout(timers.restart)
      timers.restart = setTimeout(() => void restartMember(), RESTART_DELAY_MS)
    }
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
      retry: { ...CLIENT_RETRY, restartOnFailure: async () => active() && c === consumer },
    })
    c.on(c.events.GROUP_JOIN, ({ payload }) => {
      if (c === consumer) onAssigned(payload.memberAssignment, payload.memberId)
    })
    c.on(c.events.CRASH, ({ payload }) => onCrash(c, payload.error, payload.restart))
    c.on(c.events.FETCH, () => {
      if (c === consumer) healthy = supervisor.session ?? healthy
    })
    return c
  }

  /** Creates, connects and runs a member for the current topic set; resolves after its first join. */
  const startMember = async (): Promise<void> => {
    if (topics.size === 0 || !active()) return
    const c = newConsumer()
    consumer = c
    joined = signal()
    firstCrash = undefined
    try {
      await c.connect()
      await c.subscribe({ topics: [...topics], fromBeginning: true })
      const run = { autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1 }
      await c.run({ ...run, eachBatch: eachBatch(c) })
      // run() returns after the first join, or after a failed one was handled
      await bounded(joined.promise, config.sessionTimeout + config.rebalanceTimeout)
      const kind = firstCrash === undefined ? undefined : errors.classify(firstCrash)
      if (kind === 'fatal' || kind === 'auth') throw firstCrash
    } catch (error) {
      if (consumer === c) consumer = undefined
      await c.disconnect().catch(() => {})
      throw error
    }
  }

  /** Replace the member (new topics, or after a crash kafkajs does not restart from). */
  const restartMember = (): Promise<void> => {
    restarting ??= (async () => {
      try {
        retiring = consumer
        consumer = undefined
        wakeAll()
        if (retiring) {
          await flushCommits(COMMIT_MS)
          revokeAll()
          await bounded(retiring.disconnect(), LEAVE_MS)
        }
        retiring = undefined
        await startMember()
      } catch (error) {
        logger.warn(
          { group, what, err: String(error) },
          'kafka: restarting the consumer failed; trying again',
        )
        if (active()) timers.restart = setTimeout(() => void restartMember(), RESTART_DELAY_MS * 2)
      } finally {
        restarting = undefined
      }
    })()
    return restarting
  }

  const matchingTopics = async (): Promise<string[]> =>
    (await deps.listTopics()).filter((t) => !t.startsWith('__') && pattern?.test(t)).sort()

  const refresh = async (): Promise<void> => {
    if (restarting || !active() || !supervisor.session) return
    try {
      const fresh = (await matchingTopics()).filter((t) => !topics.has(t))
      if (fresh.length === 0 || !active()) return
      for (const t of fresh) topics.add(t)
      logger.debug({ group, pattern: request.pattern, topics: fresh }, 'kafka: new topics match the pattern')
      await restartMember()
    } catch (error) {
      logger.debug({ group, err: String(error) }, 'kafka: pattern refresh failed')
    }
  }

  // ---- start and stop --------------------------------------------------------------------------

  try {
    for (const topic of request.topic !== undefined ? [request.topic] : await matchingTopics()) {
      await deps.provision(topic, group)
      topics.add(topic)
    }
    await startMember()
  } catch (error) {
    closed = true
    throw errors.toError(error, { operation: 'subscribe', topic: `${what} (group ${group})` })
  }
  if (pattern) timers.refresh = setInterval(() => void refresh(), config.patternRefreshInterval)

  const stop = async (): Promise<void> => {
    if (halted) return
    halted = true
    clearInterval(timers.refresh)
    clearTimeout(timers.restart)
    clearTimeout(timers.reaper)
    wakeAll()
    try {
      consumer?.pause([...topics].map((topic) => ({ topic })))
    } catch {
      // not running (between a crash and its restart): nothing is fetched anyway
    }
  }

  return {
    stop,
    close() {
      closing ??= (async () => {
        await stop()
        if (restarting) await bounded(restarting, LEAVE_MS)
        await flushCommits(COMMIT_MS)
        closed = true
        clearTimeout(timers.commit)
        timers = {}
        const c = consumer
        consumer = undefined
        revokeAll()
        if (c) await bounded(c.disconnect(), LEAVE_MS)
      })()
      return closing
    },
  }
}
