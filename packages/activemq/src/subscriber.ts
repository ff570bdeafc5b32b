/**
 * One msgkit subscription = one consumer connection under a supervisor of its own, which reconnects
 * across the hosts and subscribes again on every new connection ("up" once the SUBSCRIBE has its
 * receipt). Never on the publishing connection: one that both sends with receipts and consumes
 * deadlocked the broker in our probe. Intake is held by the broker at the (capped) prefetch; acks are
 * `client-individual` on the connection the message came on (later: a no-op, the broker took it back).
 * nack(requeue): ActiveMQ's NACK dead-letters at once, so the message is sent again to its own queue
 * and acked in one STOMP transaction, numbered in `msgkit-attempt`. After stop() nothing is handed
 * over; what arrives stays unacked until close() disconnects.
 */
import { randomUUID } from 'node:crypto'
import type {
  DeliveryHandler,
  SubscribeRequest,
  TransportContext,
  TransportMessage,
  TransportSubscription,
} from '@msgkit/core'
import { createDelivery } from '@msgkit/core/adapter'
import type { InboundFrame, StompConnection } from './driver.js'
import { fromFrame, requeueHeaders, toFrame } from './mapping.js'
import { groupQueue, patternQueue, topicOf } from './topology.js'
import type { Supervise } from './transport.js'

export interface SubscriberDeps {
  context: TransportContext
  supervise: Supervise
  config: { prefetchCap: number; maxMessageBytes: number }
  /** the transport's open subscriptions (this one is in it until closed) */
  live: Set<TransportSubscription>
  /** runs the first connect, waiting through an outage of the broker (the transport's `perform`) */
  whenUp(what: string, connect: () => Promise<unknown>): Promise<unknown>
}

/** Starts a subscription; resolves once the broker confirmed its SUBSCRIBE. */
export async function startSubscriber(
  request: SubscribeRequest,
  onDelivery: DeliveryHandler,
  deps: SubscriberDeps,
): Promise<TransportSubscription> {
  const { context } = deps
  const { group } = request
  const label = request.topic ?? (request.pattern as string)
  const queue = request.topic !== undefined ? groupQueue(request.topic, group) : patternQueue(label, group)
  const id = `msgkit-${randomUUID()}`
  const prefetch = String(Math.max(1, Math.min(request.prefetch, deps.config.prefetchCap)))
  const subscribe = { id, destination: queue, ack: 'client-individual', 'activemq.prefetchSize': prefetch }
  let stopped = false

  /** nack(requeue): the copy and the ack of the original commit together, or neither does */
  const requeue = async (connection: StompConnection, message: TransportMessage, ackId: string) => {
    const frame = (() => {
      try {
        return toFrame(queue, message.topic, message, deps.config, requeueHeaders(message))
      } catch {} // a foreign frame at the broker's limits has no room for our headers
    })()
    // ActiveMQ's own dead-letter queue (DLQ.<queue> or ActiveMQ.DLQ) takes it then
    if (!frame) return connection.post('NACK', { id: ackId })
    const transaction = `msgkit-tx-${randomUUID()}`
    connection.post('BEGIN', { transaction })
    connection.post('SEND', { ...frame.headers, transaction }, frame.body)
    connection.post('ACK', { id: ackId, transaction })
    // a failed COMMIT means a lost connection: the broker rolls back and redelivers the original
    await connection.request('COMMIT', { transaction }).catch(() => {})
  }

  const receive = (connection: StompConnection, frame: InboundFrame): void => {
    if (stopped) return
    const message = fromFrame(frame, topicOf(frame.headers) ?? label)
    const ackId = frame.headers.ack ?? ''
    const ack = () => connection.post('ACK', { id: ackId })
    const delivery = createDelivery(message, {
      ack,
      // after stop() a requeue stays unacked: close() hands it back with the rest
      nack: (again) => (!again ? ack() : stopped ? undefined : requeue(connection, message, ackId)),
      valid: () => !connection.closed && supervisor.session === connection,
    })
    onDelivery(delivery).catch((error: unknown) => context.emit({ type: 'error', error }))
  }

  // connection state is the publishing connection's to report: here only errors go to core
  const quiet: TransportContext = {
    ...context,
    emit: (event) =>
      event.type === 'error'
        ? context.emit(event)
        : context.logger.debug({ queue, event: event.type }, 'activemq consumer connection'),
  }
  const supervisor = deps.supervise(quiet, async (connection) => {
    connection.listen(id, (frame) => receive(connection, frame))
    await connection.request('SUBSCRIBE', subscribe)
  })

  try {
    await deps.whenUp(label, () => supervisor.connect())
  } catch (error) {
    await supervisor.close()
    throw error
  }
  const subscription: TransportSubscription = {
    async stop() {
      stopped = true
    },
    async close() {
      stopped = true
      deps.live.delete(subscription)
      // DISCONNECT: the broker takes back every unacked message of this connection
      await supervisor.close()
    },
  }
  deps.live.add(subscription)
  return subscription
}
