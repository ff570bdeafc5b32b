/**
 * A subscription: long polls on the group's queue (the kit's pull loop) with at most `prefetch`
 * messages unsettled (those being received count too), visibility extended while msgkit holds a
 * message (heartbeat), every unsettled message visible again at once on close. Polls wait through an
 * outage: nothing to restore.
 */
import { type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import type { DeliveryHandler, SubscribeRequest, TransportSubscription } from '@msgkit/core'
import { createDelivery, createLeases, createPullLoop, failureKind } from '@msgkit/core/adapter'
import { isNotFound } from './errors.js'
import { dueInMs, toTransportMessage } from './mapping.js'
import type { SqsParts, SqsSession } from './transport.js'

const SYSTEM = 'ApproximateReceiveCount ApproximateFirstReceiveTimestamp SentTimestamp MessageGroupId'
/** how long the give-backs of close() may take */
const RELEASE_MS = 5_000

/** Starts a subscription once its queue is there; a failed start leaves nothing running. */
export async function startSubscriber(
  request: SubscribeRequest & { topic: string },
  onDelivery: DeliveryHandler,
  parts: SqsParts,
): Promise<TransportSubscription> {
  const { config, supervisor, topology, receipts, context, errors } = parts
  const { topic, group } = request
  const visibilityMs = config.visibilityTimeoutSeconds * 1000
  const settleBy = (): number => Date.now() + visibilityMs + config.requestTimeoutMs
  const pollMs = config.waitTimeSeconds * 1000
  const poll = {
    WaitTimeSeconds: config.waitTimeSeconds,
    VisibilityTimeout: config.visibilityTimeoutSeconds,
    MessageAttributeNames: ['All'],
    MessageSystemAttributeNames: SYSTEM.split(' ') as never,
  }
  /** unsettled messages by handle, with their queue: extended while held, dead once given back at close */
  const held = createLeases<string>({
    leaseMs: visibilityMs,
    renew: (handle, url) => hide(url, handle, config.visibilityTimeoutSeconds),
  })
  const releasing = new Set<Promise<void>>()
  let closing: Promise<void> | undefined

  /** Hidden `seconds` from now; if that fails, the message may come back early (at-least-once holds). */
  const hide = (url: string, handle: string, seconds: number): void =>
    void receipts.changeVisibility(url, handle, seconds, settleBy()).catch(() => {})

  /**
   * Visible again at once (ApproximateReceiveCount + 1 on the next receive); while stopping, only once
   * the last long poll of this subscription has returned: it would pick the message up again.
   */
  const giveBack = (url: string, handle: string, deadline?: number): Promise<void> => {
    const now = () => receipts.changeVisibility(url, handle, 0, deadline ?? Date.now() + RELEASE_MS)
    const done = pulls.stopped && pulls.pulling > 0 ? pulls.stop().then(now) : now()
    releasing.add(done)
    return done.finally(() => releasing.delete(done))
  }

  const hand = (url: string, handle: string, raw: Message): void => {
    const settlement = held.hold(handle, url, {
      ack: () => receipts.delete(url, handle, settleBy()),
      nack: (requeue) =>
        requeue ? giveBack(url, handle, settleBy()) : receipts.delete(url, handle, settleBy()),
    })
    const delivery = createDelivery(toTransportMessage(raw, topic), pulls.track(settlement))
    onDelivery(delivery).catch((error: unknown) => context.emit({ type: 'error', error }))
  }

  /** One ReceiveMessage of up to `want` on the group's queue (declared again if it was deleted). */
  const receive = async (session: SqsSession, want: number, signal: AbortSignal): Promise<number> => {
    const { url } = await topology.ensureGroup(session, topic, group)
    if (pulls.stopped) return 0 // stopped while the queue was declared: no new long poll
    const input = { ...poll, QueueUrl: url, MaxNumberOfMessages: want }
    const http = { abortSignal: signal, requestTimeout: pollMs + config.requestTimeoutMs }
    const { Messages = [] } = await session.sqs.send(new ReceiveMessageCommand(input), http)
    for (const raw of Messages) {
      const handle = raw.ReceiptHandle as string
      const due = dueInMs(raw)
      if (pulls.stopped) void giveBack(url, handle).catch(() => {})
      // fan-out delayed (SNS has no DelaySeconds): hidden until due, never handed over early
      else if (due > 0) hide(url, handle, Math.ceil(due / 1000))
      else hand(url, handle, raw)
    }
    return Messages.length
  }

  const pulls = createPullLoop<SqsSession>({
    name: 'sqs',
    supervisor,
    errors,
    prefetch: request.prefetch,
    maxBatch: 10,
    maxPulls: config.maxReceives,
    pull: receive,
    onError(error, failures) {
      // deleted behind our back: declared again on the next poll
      if (isNotFound(error)) topology.forget(topic, group)
      if (failureKind(errors, error) !== 'transient' || failures > 3)
        context.emit({ type: 'error', error: errors.toError(error, { operation: 'receive', topic }) })
    },
  })

  const close = (): Promise<void> => {
    closing ??= (async () => {
      // open polls end within the wait time (or fail with the connection); abort only a stuck one
      await pulls.stop(pollMs + 2_000)
      for (const [handle, url] of held.close()) void giveBack(url, handle).catch(() => {})
      await Promise.allSettled([...releasing])
    })()
    return closing
  }

  await supervisor.perform({ operation: 'subscribe', topic }, Date.now() + config.provisionTimeoutMs, (s) =>
    topology.ensureGroup(s, topic, group),
  )
  pulls.start()
  // stop: no new receives; an open long poll is not aborted: SQS would complete it on its side anyway
  // and hide what it picked for a whole visibility timeout; what it returns is given back instead
  return { stop: async () => void pulls.stop(), close }
}
