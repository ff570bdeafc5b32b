/**
 * A subscription: long polls on the group's queue with at most `prefetch` messages unsettled (those
 * being received count too), visibility extended while msgkit holds a message (heartbeat), every
 * unsettled message visible again at once on close. Polls wait through an outage: nothing to restore.
 */
import { type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import type { DeliveryHandler, SubscribeRequest, TransportContext, TransportSubscription } from '@msgkit/core'
import { backoffDelay, sleep } from '@msgkit/core'
import type { ErrorTable, Supervisor } from '@msgkit/core/adapter'
import { closedError, createDelivery, createInFlightCounter } from '@msgkit/core/adapter'
import type { SqsTransportConfig } from './config.js'
import { isNotFound } from './errors.js'
import { dueInMs, toTransportMessage } from './mapping.js'
import type { Receipts } from './receipts.js'
import type { GroupQueue, Topology } from './topology.js'
import type { SqsSession } from './transport.js'

const SYSTEM = 'ApproximateReceiveCount ApproximateFirstReceiveTimestamp SentTimestamp MessageGroupId'.split(
  ' ',
)
const POLL_BACKOFF = { initialMs: 200, maxMs: 5_000, multiplier: 2, jitter: 0.2 }
/** how long the give-backs of close() may take */
const RELEASE_MS = 5_000

export interface SubscriberDeps {
  config: SqsTransportConfig
  supervisor: Supervisor<SqsSession>
  topology: Topology
  receipts: Receipts
  errors: ErrorTable
  context: TransportContext
  onClosed(): void
}

export function createSubscriber(
  request: SubscribeRequest & { topic: string },
  onDelivery: DeliveryHandler,
  deps: SubscriberDeps,
): TransportSubscription & { start(): Promise<void> } {
  const { config, supervisor, topology, receipts, context } = deps
  const { topic, group, prefetch } = request
  const visibilityMs = config.visibilityTimeoutSeconds * 1000
  const heartbeatMs = Math.max(500, Math.floor(visibilityMs / 3))
  const settleBy = (): number => Date.now() + visibilityMs + config.requestTimeoutMs
  const pollMs = config.waitTimeSeconds * 1000
  const poll = {
    WaitTimeSeconds: config.waitTimeSeconds,
    VisibilityTimeout: config.visibilityTimeoutSeconds,
    MessageAttributeNames: ['All'],
    MessageSystemAttributeNames: SYSTEM as never,
  }
  const inFlight = createInFlightCounter()
  /** unsettled messages by receipt handle: their queue and when their visibility runs out */
  const held = new Map<string, { url: string; expiresAt: number }>()
  const polls = new Set<AbortController>()
  const releasing = new Set<Promise<void>>()
  /** give-backs that wait for the last poll to return */
  const later: Array<() => void> = []
  let [reserved, failures, idle, stopped] = [0, 0, true, false]
  let closing: Promise<void> | undefined
  let heartbeat: NodeJS.Timeout | undefined
  let loop: Promise<void> | undefined
  let wake = (): void => {}
  let signalStop = (): void => {}
  const stopping = new Promise<undefined>((resolve) => (signalStop = () => resolve(undefined)))

  /** the group's queue (topology remembers it; forgotten when it turns out deleted) */
  const groupQueue = (): Promise<GroupQueue> =>
    supervisor.perform({ operation: 'subscribe', topic }, Date.now() + config.provisionTimeoutMs, (s) =>
      topology.ensureGroup(s, topic, group),
    )

  /**
   * Visible again at once (ApproximateReceiveCount + 1 on the next receive); while stopping, only once
   * the last long poll of this subscription has returned: it would pick the message up again.
   */
  const giveBack = (url: string, handle: string, deadline = Date.now() + RELEASE_MS): Promise<void> => {
    if (stopped && polls.size > 0)
      return new Promise((resolve) => later.push(() => giveBack(url, handle).then(resolve)))
    const done = receipts.changeVisibility(url, handle, 0, deadline)
    releasing.add(done)
    return done.finally(() => releasing.delete(done))
  }

  const hand = (url: string, raw: Message): void => {
    const handle = raw.ReceiptHandle as string
    held.set(handle, { url, expiresAt: Date.now() + visibilityMs })
    const settlement = inFlight.track({
      ack() {
        held.delete(handle)
        return receipts.delete(url, handle, settleBy())
      },
      nack(requeue) {
        held.delete(handle)
        return requeue ? giveBack(url, handle, settleBy()) : receipts.delete(url, handle, settleBy())
      },
      // after close() gave it back (someone else may hold it now) its handle settles nothing
      valid: () => held.has(handle),
    })
    try {
      const delivery = createDelivery(toTransportMessage(raw, topic), settlement)
      onDelivery(delivery).catch((error: unknown) => context.emit({ type: 'error', error }))
    } catch (error) {
      context.emit({ type: 'error', error })
    }
  }

  /** One ReceiveMessage of up to `want`; failures back off here, so the loop cannot spin. */
  const receive = async (want: number): Promise<void> => {
    const abort = new AbortController()
    polls.add(abort)
    let session: SqsSession | undefined
    try {
      // through an outage: wait for the next session, unless the subscription stops first
      session = await Promise.race([
        supervisor.waitUp(Date.now() + 3_600_000, () => closedError('sqs')),
        stopping,
      ])
      const url = session && (await Promise.race([groupQueue(), stopping]))?.url
      if (!session || !url || stopped) return
      const input = { ...poll, QueueUrl: url, MaxNumberOfMessages: want }
      const http = { abortSignal: abort.signal, requestTimeout: pollMs + config.requestTimeoutMs }
      const { Messages = [] } = await session.sqs.send(new ReceiveMessageCommand(input), http)
      ;[failures, idle] = [0, Messages.length === 0]
      for (const raw of Messages) {
        const handle = raw.ReceiptHandle as string
        const due = dueInMs(raw)
        if (stopped) void giveBack(url, handle).catch(() => {})
        // fan-out delayed (SNS has no DelaySeconds): hidden until due, never handed over early
        else if (due > 0)
          receipts.changeVisibility(url, handle, Math.ceil(due / 1000), settleBy()).catch(() => {})
        else hand(url, raw)
      }
    } catch (error) {
      if (stopped || abort.signal.aborted) return
      const kind = deps.errors.classify(error)
      if (kind === 'connection' && session) return supervisor.lost(session, error)
      // deleted behind our back: declared again on the next poll
      if (isNotFound(error)) topology.forget(topic, group)
      if (kind !== 'transient' || failures > 2)
        context.emit({ type: 'error', error: deps.errors.toError(error, { operation: 'receive', topic }) })
      failures += 1
      await Promise.race([sleep(backoffDelay(failures, POLL_BACKOFF)), stopping])
    } finally {
      polls.delete(abort)
    }
  }

  /** Starts receives while there is room under `prefetch`: one long poll while idle, up to maxReceives while busy. */
  const run = async (): Promise<void> => {
    let active = 0
    while (!stopped) {
      const free = prefetch - inFlight.count - reserved
      if (free > 0 && active < (idle ? 1 : config.maxReceives)) {
        const want = Math.min(10, free)
        ;[reserved, active] = [reserved + want, active + 1]
        void receive(want).finally(() => {
          ;[reserved, active] = [reserved - want, active - 1]
          wake()
        })
        continue
      }
      const changed = new Promise<void>((resolve) => (wake = resolve))
      await Promise.race([changed, inFlight.count > 0 ? inFlight.room(inFlight.count) : changed])
    }
    while (active > 0) await new Promise<void>((resolve) => (wake = resolve))
    for (const release of later.splice(0)) release()
  }

  /** Extend what is held and would run out before the beat after next. */
  const beat = (): void => {
    const now = Date.now()
    for (const [handle, h] of held) {
      if (h.expiresAt - now > 2 * heartbeatMs) continue
      h.expiresAt = now + visibilityMs
      // a failed extension: the message may come back early, at-least-once holds
      receipts.changeVisibility(h.url, handle, config.visibilityTimeoutSeconds, settleBy()).catch(() => {})
    }
  }

  /**
   * No new receives. An open long poll is not aborted: SQS would complete it on its side anyway and
   * hide what it picked for a whole visibility timeout; what it returns is given back instead.
   */
  const stop = async (): Promise<void> => {
    stopped = true
    signalStop()
    wake()
  }

  return {
    async start() {
      await groupQueue()
      heartbeat = setInterval(beat, heartbeatMs)
      loop = run()
    },
    stop,
    close() {
      closing ??= (async () => {
        await stop()
        // open polls end within the wait time (or fail with the connection); abort only a stuck one
        const stuck = setTimeout(() => {
          for (const abort of polls) abort.abort()
        }, pollMs + 2_000)
        await loop
        clearTimeout(stuck)
        clearInterval(heartbeat)
        for (const [handle, h] of held) void giveBack(h.url, handle).catch(() => {})
        held.clear()
        await Promise.allSettled([...releasing])
        deps.onClosed()
      })()
      return closing
    },
  }
}
