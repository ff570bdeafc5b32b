/**
 * A group's dead letters as an operator sees them (the msgkit CLI's `dlq` commands): read them
 * without removing them, send them back to the group they failed in, remove them. Built on the
 * optional transport members `browse` and `sendToGroup` (spi.ts); where a transport lacks one, the
 * operation fails with MSGKIT_CAPABILITY_UNSUPPORTED before touching anything.
 *
 * Redrive and purge read the dead-letter topic as its group `dlq` and settle one message at a
 * time: a dead letter is acked only after its copy was confirmed by the broker, so an interrupted
 * run loses nothing (at worst the last message is moved twice, with the same id). They end when the
 * dead-letter topic stays quiet for `idleMs`, at `limit`, on abort, or on the first failure.
 */
import type { DeadLetterInfo, Messaging } from './api.js'
import { readDeadLetter } from './dead-letter.js'
import { ErrorCodes, isMsgkitError, MsgkitError } from './errors.js'
import { assertGroupName, assertTopicName, DEAD_LETTER_GROUP, deadLetterTopicOf } from './names.js'
import type { Delivery, Headers, OutgoingMessage, Transport, TransportMessage } from './spi.js'
import { isReservedHeader, WireHeaders } from './wire.js'

/** One dead letter, read back. */
export interface DeadLetter {
  /** the original message's id (kept through dead-lettering and redrive) */
  id: string
  key?: string
  /** the original user headers */
  headers: Headers
  /** the body bytes as dead-lettered (a prefix of the original when `deadLetter.truncated` is set) */
  body: Uint8Array
  /** the content type the body was published with (before a decode failure marked it as bytes) */
  contentType?: string
  /** when the original was published (epoch ms) */
  timestamp: number
  /** why and when it was dead-lettered; undefined for a message msgkit did not dead-letter */
  deadLetter?: DeadLetterInfo
}

export interface RedriveProgress {
  /** moved back (dry run: would be moved) */
  moved: number
  /** read and left where they were: not matching the filter, or truncated */
  skipped: number
}

export interface RedriveOptions {
  /** only dead letters for which this returns true are moved; the others stay (default: all) */
  filter?: (letter: DeadLetter) => boolean
  /** move at most this many */
  limit?: number
  /** only count what would be moved (needs capability `browse`); nothing changes */
  dryRun?: boolean
  /**
   * Re-publish to the topic instead of the group's storage: every group of the topic receives the
   * message again. For transports without `sendToGroup` (Kafka), when that is what you want.
   */
  toTopic?: boolean
  /** the end: nothing arrived from the dead-letter topic for this long (default 3000 ms) */
  idleMs?: number
  /** per message: how long its send may wait for the broker (default 30 s) */
  sendTimeoutMs?: number
  /** dead letters held back (not matching) at most; reaching it ends the run (default 1000) */
  scanWindow?: number
  signal?: AbortSignal
  onProgress?(progress: RedriveProgress): void
}

export type StopReason = 'drained' | 'limit' | 'interrupted' | 'window-full' | 'failed'

export interface RedriveReport extends RedriveProgress {
  dryRun: boolean
  /** of the skipped: reduced dead letters, never moved (their body is cut) */
  truncated: number
  /** ids moved (dry run: that would be moved), in order */
  ids: string[]
  stopped: StopReason
  /** set when `stopped` is 'failed': the first failure; the message it concerned stayed a dead letter */
  error?: unknown
}

export interface PurgeReport {
  removed: number
  stopped: Exclude<StopReason, 'limit' | 'window-full'>
  error?: unknown
}

/** The dead letters of one (topic, group) pair. */
export interface DeadLetterQueue {
  /** the dead-letter topic, `<topic>.<group>.dlq` */
  readonly topic: string
  readonly source: { topic: string; group: string }
  /** Reads up to `limit` (default 1000) dead letters, oldest first, and leaves them in place. */
  browse(options?: { limit?: number; signal?: AbortSignal }): Promise<DeadLetter[]>
  /** Sends dead letters back to the group they failed in (or to the topic), each confirmed before its dead letter goes. */
  redrive(options?: RedriveOptions): Promise<RedriveReport>
  /** Removes every dead letter (up to when the topic goes quiet). */
  purge(options?: {
    idleMs?: number
    signal?: AbortSignal
    onProgress?(progress: { removed: number }): void
  }): Promise<PurgeReport>
}

/** Throws MSGKIT_CAPABILITY_UNSUPPORTED unless the transport declares and implements `feature`. */
export function requireTransportFeature(
  transport: Transport,
  feature: 'browse' | 'sendToGroup',
  what: string,
  hint: string,
): void {
  if (transport.capabilities[feature] && typeof transport[feature] === 'function') return
  throw new MsgkitError(
    ErrorCodes.CAPABILITY_UNSUPPORTED,
    `The ${transport.name} transport cannot ${what}. ${hint}`,
    { details: { transport: transport.name, capability: feature } },
  )
}

/** A dead letter as read from the dead-letter topic. */
export function toDeadLetter(message: TransportMessage): DeadLetter {
  const headers: Headers = {}
  for (const [name, value] of Object.entries(message.headers))
    if (!isReservedHeader(name)) headers[name] = value
  const contentType =
    message.headers[WireHeaders.deadLetterContentType] ?? message.headers[WireHeaders.contentType]
  const letter: DeadLetter = { id: message.id, headers, body: message.body, timestamp: message.timestamp }
  if (message.key !== undefined) letter.key = message.key
  if (contentType !== undefined) letter.contentType = contentType
  const info = readDeadLetter(message.headers)
  if (info) letter.deadLetter = info
  return letter
}

/** The message to send back: original id, key, timestamp, user headers, body and content type. */
function restore(letter: DeadLetter): OutgoingMessage {
  const headers: Headers = { ...letter.headers }
  if (letter.contentType !== undefined) headers[WireHeaders.contentType] = letter.contentType
  const out: OutgoingMessage = { id: letter.id, headers, body: letter.body, timestamp: letter.timestamp }
  if (letter.key !== undefined) out.key = letter.key
  return out
}

type Verdict = 'done' | 'hold' | 'stop'

/**
 * Reads `topic` as group `dlq`, one delivery at a time through `handle`, until it is quiet for
 * `idleMs`, `handle` says stop, the window of held deliveries is full, or `signal` aborts. Held and
 * unhandled deliveries go back to the broker when the subscription closes.
 */
async function drain(
  transport: Transport,
  topic: string,
  options: { idleMs: number; window: number; signal?: AbortSignal },
  handle: (delivery: Delivery) => Promise<Verdict>,
): Promise<{ stopped: StopReason; error?: unknown }> {
  let stopped: { stopped: StopReason; error?: unknown } | undefined
  let finish!: () => void
  const finished = new Promise<void>((resolve) => (finish = resolve))
  let held = 0
  let idle: NodeJS.Timeout | undefined
  const stop = (stopped_: StopReason, error?: unknown): void => {
    if (stopped) return
    stopped = error === undefined ? { stopped: stopped_ } : { stopped: stopped_, error }
    clearTimeout(idle)
    finish()
  }
  const quiet = (): void => {
    clearTimeout(idle)
    idle = setTimeout(() => stop('drained'), options.idleMs)
  }
  const onAbort = (): void => stop('interrupted')
  if (options.signal?.aborted) return { stopped: 'interrupted' }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  let chain = Promise.resolve()
  const subscription = await transport.subscribe(
    { topic, group: DEAD_LETTER_GROUP, prefetch: options.window + 1 },
    (delivery) => {
      clearTimeout(idle)
      chain = chain.then(async () => {
        if (stopped) return // left unsettled: closing the subscription gives it back
        try {
          const verdict = await handle(delivery)
          if (verdict === 'hold' && ++held > options.window) stop('window-full')
          else if (verdict === 'stop') stop('limit')
        } catch (error) {
          stop('failed', error)
        }
        if (!stopped) quiet()
      })
      return chain
    },
  )
  quiet()
  await finished
  options.signal?.removeEventListener('abort', onAbort)
  await subscription.stop().catch(() => {})
  await chain
  await subscription.close()
  return stopped as { stopped: StopReason; error?: unknown }
}

/** The dead letters of `group` on `topic`, for reading, redriving and purging. */
export function deadLetterQueue(messaging: Messaging, topic: string, group: string): DeadLetterQueue {
  assertTopicName(topic)
  assertGroupName(group)
  const dlTopic = deadLetterTopicOf(topic, group)
  const transport = (): Transport => {
    if (messaging.health().status === 'closed')
      throw new MsgkitError(ErrorCodes.CLOSED, 'This msgkit instance is closed.')
    return messaging.transport
  }

  const browse: DeadLetterQueue['browse'] = async (options = {}) => {
    const t = transport()
    requireTransportFeature(
      t,
      'browse',
      'read dead letters without removing them',
      'Read them with a subscription to the dead-letter topic as group "dlq" (that removes what it acks).',
    )
    const letters: DeadLetter[] = []
    const request = { topic: dlTopic, group: DEAD_LETTER_GROUP, limit: options.limit ?? 1000 }
    await t.browse?.(options.signal ? { ...request, signal: options.signal } : request, (m) =>
      letters.push(toDeadLetter(m)),
    )
    return letters
  }

  return {
    topic: dlTopic,
    source: { topic, group },
    browse,

    async redrive(options = {}) {
      const t = transport()
      const limit = options.limit ?? Number.POSITIVE_INFINITY
      const filter = options.filter ?? (() => true)
      const report: RedriveReport = {
        moved: 0,
        skipped: 0,
        truncated: 0,
        dryRun: options.dryRun === true,
        ids: [],
        stopped: 'drained',
      }
      const movable = (letter: DeadLetter): boolean => {
        if (letter.deadLetter?.truncated) {
          report.truncated += 1
          return false
        }
        return filter(letter)
      }
      if (!options.toTopic)
        requireTransportFeature(
          t,
          'sendToGroup',
          `send messages to one group only (${group} on ${topic})`,
          'Redrive with toTopic (CLI: --to-topic) to re-publish to the topic instead: every group of the topic then gets the messages again.',
        )
      if (options.dryRun) {
        const letters = await browse({
          limit: Number.isFinite(limit) ? Math.max(limit * 10, 10_000) : 100_000,
          ...(options.signal ? { signal: options.signal } : {}),
        })
        for (const letter of letters) {
          if (report.moved < limit && movable(letter)) {
            report.moved += 1
            report.ids.push(letter.id)
          } else report.skipped += 1
        }
        return report
      }
      const timeout = options.sendTimeoutMs ?? 30_000
      const drained = await drain(
        t,
        dlTopic,
        {
          idleMs: options.idleMs ?? 3_000,
          window: options.scanWindow ?? 1_000,
          ...(options.signal ? { signal: options.signal } : {}),
        },
        async (delivery) => {
          if (report.moved >= limit) return 'stop'
          const letter = toDeadLetter(delivery.message)
          if (!movable(letter)) {
            report.skipped += 1
            options.onProgress?.({ moved: report.moved, skipped: report.skipped })
            return 'hold'
          }
          const message = restore(letter)
          const sendOptions = { deadline: Date.now() + timeout }
          if (options.toTopic) await t.send(topic, [message], sendOptions)
          else await t.sendToGroup?.(topic, group, [message], sendOptions)
          await delivery.ack()
          report.moved += 1
          report.ids.push(letter.id)
          options.onProgress?.({ moved: report.moved, skipped: report.skipped })
          return report.moved >= limit ? 'stop' : 'done'
        },
      )
      report.stopped = drained.stopped
      if (drained.error !== undefined) report.error = explain(drained.error, topic, group)
      return report
    },

    async purge(options = {}) {
      let removed = 0
      const drained = await drain(
        transport(),
        dlTopic,
        {
          idleMs: options.idleMs ?? 3_000,
          window: 1_000,
          ...(options.signal ? { signal: options.signal } : {}),
        },
        async (delivery) => {
          await delivery.ack()
          removed += 1
          options.onProgress?.({ removed })
          return 'done'
        },
      )
      const report: PurgeReport = { removed, stopped: drained.stopped as PurgeReport['stopped'] }
      if (drained.error !== undefined) report.error = drained.error
      return report
    },
  }
}

/** An unroutable redrive means the group has no storage for the topic: say what to do. */
function explain(error: unknown, topic: string, group: string): unknown {
  if (!isMsgkitError(error) || error.code !== ErrorCodes.UNROUTABLE) return error
  return new MsgkitError(
    ErrorCodes.UNROUTABLE,
    `Group ${group} has no storage for topic ${topic} (not provisioned, deleted, or a pattern subscription's group), so nothing was moved there. Provision it (msgkit provision ${topic} --group ${group}) or redrive to the topic.`,
    { cause: error, details: { topic, group } },
  )
}
