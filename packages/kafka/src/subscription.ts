/**
 * One msgkit subscription = one kafkajs consumer (one group member).
 *
 * - Records are handed to core one by one from eachBatch; before each hand-over the subscription
 *   waits for core's "room" promise (backpressure), heartbeating meanwhile so the member stays in
 *   the group while core is busy.
 * - autoCommit is off: an OffsetTracker per partition knows which records are done, and only the
 *   processed prefix is committed, coalesced, one commit request at a time.
 * - A rebalance revokes partitions: nothing more is handed out or committed for them. When a
 *   partition comes back and the group's committed offset shows nobody else consumed it, the
 *   bookkeeping continues, so records still in flight with core are not handed out twice.
 * - A crashed kafkajs consumer (CRASH without restart) is replaced by a new one.
 * - Pattern subscriptions re-read the topic list every `patternRefreshInterval` ms and restart
 *   the member with the new topics (kafkajs resolves a RegExp only at subscribe time).
 */
import {
  type Delivery,
  type DeliveryHandler,
  type Logger,
  patternToRegExp,
  type SubscribeRequest,
  type TransportSubscription,
} from '@msgkit/core'
import {
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  PartitionAssigners,
} from 'kafkajs'
import { subscriptionAwareAssigner } from './assigner.js'
import { CLIENT_RETRY } from './client.js'
import type { ClusterAdmin } from './cluster-admin.js'
import type { KafkaTransportConfig } from './config.js'
import type { ConnectionState } from './connection-state.js'
import { isConnectionLoss, isTransient, toMsgkitError } from './errors.js'
import { OffsetTracker } from './offset-tracker.js'
import { decodeRecord } from './records.js'

export interface SubscriptionDeps {
  /** a fresh kafkajs client for this member (see createKafkaClient) */
  newClient(): Kafka
  config: KafkaTransportConfig
  admin: ClusterAdmin
  /** committed offsets of a group (-1: none), for deciding whether a re-assigned partition continues */
  fetchCommitted(
    group: string,
    topics: string[],
  ): Promise<Array<{ topic: string; partition: number; offset: number }>>
  /** create the topic if needed and start the group at its end when it has no offsets */
  provision(topic: string, group: string): Promise<void>
  connection: ConnectionState
  logger: Logger
  secrets: readonly string[]
  emitError(error: unknown): void
}

interface PartitionState {
  topic: string
  partition: number
  owned: boolean
  tracker: OffsetTracker | undefined
  /** re-assigned with a tracker from before: decide continue/reset before using it */
  checkResume: boolean
}

const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`

/** How long close() waits for the final commit and for the member to leave the group. */
const CLOSE_COMMIT_MS = 3_000
const CLOSE_LEAVE_MS = 6_000
const REQUEUE_DELAY_MS = 250
/** Share of the rebalance timeout a member may spend finishing in-flight work before rejoining. */
const DRAIN_SHARE = 1 / 3
const RESTART_DELAY_MS = 1_000

function timeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

export interface KafkaSubscription extends TransportSubscription {
  readonly group: string
}

/** Starts a subscription; resolves once the member joined its group (or the join is under way). */
export async function startSubscription(
  request: SubscribeRequest,
  onDelivery: DeliveryHandler,
  deps: SubscriptionDeps,
): Promise<KafkaSubscription> {
  const { config, admin, connection, logger, secrets } = deps
  const group = request.group
  const pattern = request.pattern === undefined ? undefined : patternToRegExp(request.pattern)
  const what = request.topic ?? `pattern ${request.pattern}`
  // no heartbeats while draining: stay well inside the session timeout too
  const drainMs = Math.min(
    10_000,
    Math.round(config.rebalanceTimeout * DRAIN_SHARE),
    Math.round(config.sessionTimeout / 2),
  )
  const topics = new Set<string>()
  const partitions = new Map<string, PartitionState>()

  let consumer: Consumer | undefined
  /** a consumer being replaced: its last commits still go through it */
  let retiring: Consumer | undefined
  let halted = false
  let closed = false
  let closing: Promise<void> | undefined
  let restarting: Promise<void> | undefined
  let restartTimer: NodeJS.Timeout | undefined
  let refreshTimer: NodeJS.Timeout | undefined
  let refreshing = false
  /** core's room promise from the last hand-over */
  let gate: Promise<void> | undefined
  /** wakes every wait when the subscription stops or the member changes */
  let wake: { promise: Promise<void>; resolve(): void } = deferred()

  function deferred(): { promise: Promise<void>; resolve(): void } {
    let resolve!: () => void
    const promise = new Promise<void>((r) => {
      resolve = r
    })
    return { promise, resolve }
  }
  const wakeAll = (): void => {
    const w = wake
    wake = deferred()
    w.resolve()
  }

  // ---- commits ------------------------------------------------------------------------------

  let commitTimer: NodeJS.Timeout | undefined
  let commitRunning: Promise<void> | undefined
  let commitAgain = false

  const scheduleCommit = (delayMs = 0): void => {
    if (closed || commitTimer) return
    commitTimer = setTimeout(() => {
      commitTimer = undefined
      void runCommit()
    }, delayMs)
  }

  const runCommit = (): Promise<void> => {
    if (commitRunning) {
      commitAgain = true
      return commitRunning
    }
    const via = consumer ?? retiring
    if (!via) return Promise.resolve()
    const batch: Array<{ tracker: OffsetTracker; topic: string; partition: number; offset: number }> = []
    for (const part of partitions.values()) {
      if (!part.owned || part.checkResume || !part.tracker) continue
      const offset = part.tracker.pendingCommit()
      if (offset !== undefined)
        batch.push({ tracker: part.tracker, topic: part.topic, partition: part.partition, offset })
    }
    if (batch.length === 0) return Promise.resolve()
    commitRunning = (async () => {
      let retry = false
      try {
        await via.commitOffsets(
          batch.map((c) => ({ topic: c.topic, partition: c.partition, offset: String(c.offset) })),
        )
        for (const c of batch) c.tracker.markCommitted(c.offset)
      } catch (error) {
        // rebalancing (the new owner commits from here), or the broker is away: try again later
        retry = !closed
        if (isConnectionLoss(error)) connection.down(error)
        logger.debug({ group, err: String(error) }, 'kafka: commit failed; will retry')
      } finally {
        commitRunning = undefined
        if (commitAgain || retry) {
          commitAgain = false
          scheduleCommit(retry ? 500 : 0)
        }
      }
    })()
    return commitRunning
  }

  const hasPendingCommit = (): boolean => {
    for (const p of partitions.values())
      if (p.owned && !p.checkResume && p.tracker?.pendingCommit() !== undefined) return true
    return false
  }

  /** Commit what is done now and wait for it (bounded). */
  const flushCommits = async (ms: number): Promise<void> => {
    clearTimeout(commitTimer)
    commitTimer = undefined
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (commitRunning) {
        await timeout(commitRunning, deadline - Date.now())
        continue
      }
      if (!hasPendingCommit()) return
      await timeout(runCommit(), deadline - Date.now())
      if (!commitAgain && !hasPendingCommit()) return
      // a failed commit: wait a moment before the next try
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  // ---- hand-over ----------------------------------------------------------------------------

  const deliver = (delivery: Delivery): void => {
    try {
      gate = Promise.resolve(onDelivery(delivery)).catch((error: unknown) => {
        logger.error({ group, err: String(error) }, 'kafka: delivery handler failed')
      })
    } catch (error) {
      logger.error({ group, err: String(error) }, 'kafka: delivery handler threw')
    }
  }

  const hand = (
    part: PartitionState,
    tracker: OffsetTracker,
    record: KafkaMessage,
    redelivered: boolean,
  ): void => {
    const offset = Number(record.offset)
    const message = decodeRecord(part.topic, part.partition, record)
    message.redelivered = redelivered
    let settled = false
    const done = (): void => {
      if (tracker.complete(offset) && part.tracker === tracker && part.owned) scheduleCommit()
    }
    deliver({
      message,
      async ack() {
        if (settled) return
        settled = true
        done()
      },
      async nack(options) {
        if (settled) return
        settled = true
        if (options?.requeue === false) {
          done()
          return
        }
        tracker.giveBack(offset)
        // given back while running (core could not dead-letter it, say): deliver it again here;
        // when stopping, it stays uncommitted and the group's next owner gets it
        setTimeout(() => void redeliver(part, tracker, record), REQUEUE_DELAY_MS)
      },
    })
  }

  const redeliver = async (
    part: PartitionState,
    tracker: OffsetTracker,
    record: KafkaMessage,
  ): Promise<void> => {
    const offset = Number(record.offset)
    while (gate && !halted && !closed) {
      const g = gate
      const room = await Promise.race([g.then(() => true), wake.promise.then(() => false)])
      if (room && gate === g) gate = undefined
    }
    if (halted || closed || !part.owned || part.tracker !== tracker || !tracker.isReturned(offset)) return
    tracker.add(offset)
    hand(part, tracker, record, true)
  }

  /** Wait until core has room, heartbeating meanwhile. Throws kafkajs's rebalance errors. */
  const waitForRoom = async (heartbeat: () => Promise<void>, stale: () => boolean): Promise<void> => {
    while (gate && !stale()) {
      const g = gate
      let timer: NodeJS.Timeout | undefined
      const outcome = await Promise.race([
        g.then(() => 'room' as const),
        wake.promise.then(() => 'woken' as const),
        new Promise<'tick'>((resolve) => {
          timer = setTimeout(() => resolve('tick'), config.heartbeatInterval)
        }),
      ])
      clearTimeout(timer)
      if (outcome === 'room') {
        if (gate === g) gate = undefined
        return
      }
      // still waiting: tell the group we are alive (throws when a rebalance started)
      if (outcome === 'tick') await heartbeatOrDrain(heartbeat)
    }
  }

  const inFlight = (): number => {
    let n = 0
    for (const part of partitions.values()) if (part.owned && part.tracker) n += part.tracker.inFlight
    return n
  }

  /**
   * Heartbeat; when it reveals a rebalance, first let core finish what it holds (bounded) and
   * commit it — the group still accepts commits of the old generation while it waits for members
   * to rejoin — so the next owner of a partition does not redo that work. Then rethrow, and
   * kafkajs rejoins.
   */
  const heartbeatOrDrain = async (heartbeat: () => Promise<void>): Promise<void> => {
    try {
      await heartbeat()
    } catch (error) {
      if ((error as { type?: string })?.type === 'REBALANCE_IN_PROGRESS' && !halted) {
        const until = Date.now() + drainMs
        while (inFlight() > 0 && Date.now() < until && !halted)
          await new Promise((resolve) => setTimeout(resolve, 10))
        await flushCommits(Math.max(0, until - Date.now()) + 1_000)
        logger.debug({ group, what, left: inFlight() }, 'kafka: rebalance; drained before rejoining')
      }
      throw error
    }
  }

  const applyResume = (part: PartitionState, fetchOffset: number): void => {
    part.checkResume = false
    if (part.tracker && part.tracker.resume(fetchOffset) === 'continued') return
    part.tracker = new OffsetTracker(fetchOffset)
  }

  const eachBatch =
    (c: Consumer) =>
    async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
      if (c !== consumer || halted) return
      const part = partitions.get(partitionKey(batch.topic, batch.partition))
      if (!part?.owned) return
      // kafkajs keeps the offset it fetched from on the batch (not in its typings)
      const fetched = Number((batch as { fetchedOffset?: string }).fetchedOffset ?? batch.firstOffset())
      if (!part.tracker) {
        part.tracker = new OffsetTracker(fetched)
        part.checkResume = false
      } else if (part.checkResume) applyResume(part, fetched)
      const tracker = part.tracker!
      const stale = (): boolean =>
        c !== consumer || halted || !isRunning() || isStale() || !part.owned || part.tracker !== tracker
      for (const record of batch.messages) {
        if (stale()) return
        const offset = Number(record.offset)
        if (tracker.isHandedOut(offset)) {
          resolveOffset(record.offset)
          continue
        }
        await waitForRoom(heartbeat, stale)
        if (stale()) return
        tracker.add(offset)
        resolveOffset(record.offset)
        hand(part, tracker, record, false)
      }
      if (stale()) return
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

  // ---- membership ---------------------------------------------------------------------------

  let joinedOnce: { promise: Promise<void>; resolve(): void } = deferred()
  let firstCrash: unknown

  const resolveResumes = async (parts: PartitionState[]): Promise<void> => {
    try {
      const committed = new Map<string, number>()
      for (const c of await deps.fetchCommitted(group, [...new Set(parts.map((p) => p.topic))])) {
        committed.set(partitionKey(c.topic, c.partition), c.offset)
      }
      for (const part of parts) {
        if (!part.checkResume || !part.owned) continue
        const offset = committed.get(partitionKey(part.topic, part.partition))
        if (offset !== undefined && offset >= 0) applyResume(part, offset)
      }
      scheduleCommit()
    } catch (error) {
      // decided at the first fetched batch instead
      logger.debug({ group, err: String(error) }, 'kafka: could not read committed offsets after a rebalance')
    }
  }

  /** member id of the last join; stale once that kafkajs consumer crashed */
  let memberId: string | undefined
  let reaper: NodeJS.Timeout | undefined

  /**
   * A crashed kafkajs consumer restarts under a new member id, and its old id stays in the group
   * until the session times out, holding up the rejoin. Tell the coordinator it left.
   */
  const reapStaleMember = (stale: string): void => {
    clearTimeout(reaper)
    const until = Date.now() + Math.max(60_000, 2 * config.sessionTimeout)
    const attempt = async (): Promise<void> => {
      reaper = undefined
      if (closed || halted || memberId !== stale || Date.now() > until) return
      try {
        await admin.leaveGroup(group, stale)
        logger.debug({ group, memberId: stale }, 'kafka: removed the crashed member from the group')
      } catch {
        if (!closed && !halted && memberId === stale) reaper = setTimeout(() => void attempt(), 500)
      }
    }
    reaper = setTimeout(() => void attempt(), 200)
  }

  const onAssigned = (assignment: Record<string, number[]>, joinedAs: string): void => {
    memberId = joinedAs
    const assigned = new Set<string>()
    for (const [topic, ps] of Object.entries(assignment))
      for (const p of ps) assigned.add(partitionKey(topic, p))
    for (const [k, part] of partitions) if (!assigned.has(k)) part.owned = false
    const toCheck: PartitionState[] = []
    for (const k of assigned) {
      const [topic = '', p = '0'] = k.split('\u0000')
      let part = partitions.get(k)
      if (!part) {
        part = { topic, partition: Number(p), owned: true, tracker: undefined, checkResume: false }
        partitions.set(k, part)
        continue
      }
      part.owned = true
      if (part.tracker) {
        part.checkResume = true
        toCheck.push(part)
      }
    }
    connection.ok()
    joinedOnce.resolve()
    if (toCheck.length > 0) void resolveResumes(toCheck)
    logger.debug({ group, what, partitions: assigned.size }, 'kafka: partitions assigned')
  }

  const revokeAll = (): void => {
    for (const part of partitions.values()) part.owned = false
    wakeAll()
  }

  const onCrash = (c: Consumer, error: unknown, restart: boolean): void => {
    if (c !== consumer) return
    revokeAll()
    firstCrash ??= error
    if (memberId !== undefined && !closed && !halted) reapStaleMember(memberId)
    if (isConnectionLoss(error)) connection.down(error)
    else if (!closed && !halted)
      deps.emitError(
        toMsgkitError(error, 'consume', `Kafka consumer of ${what} (group ${group}) crashed`, secrets),
      )
    logger.warn({ group, what, restart, err: String(error) }, 'kafka: consumer crashed')
    if (!restart && !closed && !halted) {
      clearTimeout(restartTimer)
      restartTimer = setTimeout(() => void restartMember(), RESTART_DELAY_MS)
    }
  }

  const newConsumer = (): Consumer => {
    const kafka = deps.newClient()
    const c: Consumer = kafka.consumer({
      groupId: group,
      partitionAssigners: [subscriptionAwareAssigner, PartitionAssigners.roundRobin],
      sessionTimeout: config.sessionTimeout,
      rebalanceTimeout: config.rebalanceTimeout,
      heartbeatInterval: config.heartbeatInterval,
      maxWaitTimeInMs: config.maxWaitTime,
      allowAutoTopicCreation: false,
      retry: { ...CLIENT_RETRY, restartOnFailure: async () => !closed && !halted && c === consumer },
    })
    c.on(c.events.GROUP_JOIN, (event) => {
      if (c === consumer) onAssigned(event.payload.memberAssignment, event.payload.memberId)
    })
    c.on(c.events.CRASH, (event) => onCrash(c, event.payload.error, event.payload.restart))
    c.on(c.events.FETCH, () => {
      if (c === consumer) connection.ok()
    })
    return c
  }

  /** Creates, connects and runs a member for the current topic set; resolves after its first join. */
  const startMember = async (): Promise<void> => {
    if (topics.size === 0 || closed || halted) return
    const c = newConsumer()
    consumer = c
    joinedOnce = deferred()
    firstCrash = undefined
    try {
      await c.connect()
      await c.subscribe({ topics: [...topics], fromBeginning: true })
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: eachBatch(c),
      })
    } catch (error) {
      if (consumer === c) consumer = undefined
      await c.disconnect().catch(() => {})
      throw error
    }
    // run() returns after the first join, or after a failed one was handled
    await timeout(joinedOnce.promise, config.sessionTimeout + config.rebalanceTimeout)
    if (firstCrash !== undefined && !isTransient(firstCrash)) {
      const error = firstCrash
      if (consumer === c) consumer = undefined
      await c.disconnect().catch(() => {})
      throw error
    }
  }

  /** Replace the member (new topics, or after a crash kafkajs does not restart from). */
  const restartMember = (): Promise<void> => {
    restarting ??= (async () => {
      try {
        const old = consumer
        retiring = old
        consumer = undefined
        wakeAll()
        if (old) {
          await flushCommits(CLOSE_COMMIT_MS)
          revokeAll()
          await timeout(
            old.disconnect().catch(() => {}),
            CLOSE_LEAVE_MS,
          )
        }
        retiring = undefined
        if (!closed && !halted) await startMember()
      } catch (error) {
        logger.warn(
          { group, what, err: String(error) },
          'kafka: restarting the consumer failed; trying again',
        )
        if (!closed && !halted) {
          clearTimeout(restartTimer)
          restartTimer = setTimeout(() => void restartMember(), RESTART_DELAY_MS * 2)
        }
      } finally {
        restarting = undefined
      }
    })()
    return restarting
  }

  const matchingTopics = async (): Promise<string[]> =>
    (await admin.listTopics()).filter((t) => !t.startsWith('__') && pattern!.test(t)).sort()

  const refresh = async (): Promise<void> => {
    if (refreshing || closed || halted) return
    refreshing = true
    try {
      const fresh = (await matchingTopics()).filter((t) => !topics.has(t))
      if (fresh.length === 0 || closed || halted) return
      for (const t of fresh) topics.add(t)
      logger.debug({ group, pattern: request.pattern, topics: fresh }, 'kafka: new topics match the pattern')
      await restartMember()
    } catch (error) {
      logger.debug({ group, err: String(error) }, 'kafka: pattern refresh failed')
    } finally {
      refreshing = false
    }
  }

  // ---- start --------------------------------------------------------------------------------

  try {
    if (request.topic !== undefined) {
      await deps.provision(request.topic, group)
      topics.add(request.topic)
    } else {
      for (const t of await matchingTopics()) {
        await deps.provision(t, group)
        topics.add(t)
      }
    }
    await startMember()
  } catch (error) {
    closed = true
    throw toMsgkitError(error, 'consume', `Subscribing to Kafka ${what} (group ${group}) failed`, secrets)
  }
  if (pattern) {
    refreshTimer = setInterval(() => void refresh(), config.patternRefreshInterval)
  }

  const stop = async (): Promise<void> => {
    if (halted) return
    halted = true
    clearInterval(refreshTimer)
    clearTimeout(restartTimer)
    clearTimeout(reaper)
    wakeAll()
    const c = consumer
    if (c) {
      try {
        c.pause([...topics].map((topic) => ({ topic })))
      } catch {
        // not running (between a crash and its restart): nothing is fetched anyway
      }
    }
  }

  return {
    group,
    stop,
    close() {
      closing ??= (async () => {
        await stop()
        if (restarting) await timeout(restarting, CLOSE_LEAVE_MS)
        await flushCommits(CLOSE_COMMIT_MS)
        closed = true
        clearTimeout(commitTimer)
        commitTimer = undefined
        const c = consumer
        consumer = undefined
        revokeAll()
        if (c)
          await timeout(
            c.disconnect().catch(() => {}),
            CLOSE_LEAVE_MS,
          )
      })()
      return closing
    },
  }
}
