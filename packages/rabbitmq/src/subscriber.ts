/**
 * A consumer on its own channel with the request's prefetch. Restored by the supervisor after a
 * reconnect; restarted through `supervisor.perform` when RabbitMQ cancels it or closes its channel.
 * A delivery settles only on its own channel while that is open (its tag means nothing elsewhere).
 */
import type {
  BrowseRequest,
  DeliveryHandler,
  TransportMessage as Message,
  SubscribeRequest,
  TransportContext,
  TransportSubscription,
} from '@msgkit/core'
import { createCumulativeAcks, createDelivery, type Supervisor, uninstrumented } from '@msgkit/core/adapter'
import type { Channel, ChannelModel, ConsumeMessage, Message as Raw } from 'amqplib'
import { errorText } from './errors.js'
import { toTransportMessage } from './mapping.js'
import { onChannel, type Topology } from './topology.js'

/** How long a restart (after a cancel or a closed channel) keeps trying before it reports an error. */
const RESTART_WINDOW_MS = 60_000

type Channeled = { model: ChannelModel; channel: Channel; queue: string; open: boolean; tag?: string }
type Consumer = Channeled & { acks: ReturnType<typeof createCumulativeAcks> }

/** Starts consuming `request`; rejects (and closes the subscription) when that fails or takes too long. */
export async function startSubscriber(
  request: SubscribeRequest,
  onDelivery: DeliveryHandler,
  deps: {
    topology: Topology
    supervisor: Supervisor<ChannelModel>
    context: TransportContext
    counts: boolean
    /** the transport's: `work` on the connection, waiting for it through an outage for a while */
    perform(operation: string, topic: string, work: (model: ChannelModel) => Promise<void>): Promise<void>
  },
): Promise<TransportSubscription> {
  const { topology, supervisor, context } = deps
  const { topic, group } = request
  const label = topic ?? (request.pattern as string)
  let current: Consumer | undefined
  let starting: Promise<void> | undefined
  let stopped = false
  let closed = false

  const deliver = (consumer: Consumer, raw: ConsumeMessage): void => {
    const tag = raw.fields.deliveryTag
    try {
      // a pattern queue is bound by routing key, and msgkit publishes with routing key = topic
      const message = toTransportMessage(raw, topic ?? raw.fields.routingKey, deps.counts)
      consumer.acks.add(tag)
      const delivery = createDelivery(message, {
        ack: () => consumer.acks.ack(tag),
        nack: (requeue) => consumer.acks.nack(tag, requeue),
        valid: () => consumer.open && current === consumer,
      })
      onDelivery(delivery).catch((error: unknown) => context.emit({ type: 'error', error }))
    } catch (error) {
      context.emit({ type: 'error', error }) // never let a throw reach amqplib's frame loop
    }
  }

  /** After a cancel or a closed channel; after a lost connection, the supervisor's restore does it too. */
  const restart = (): void => {
    if (stopped) return
    const what = { operation: 'resubscribe', topic: label }
    supervisor.perform(what, Date.now() + RESTART_WINDOW_MS, start).catch((error: unknown) => {
      if (!stopped && supervisor.state === 'up') context.emit({ type: 'error', error })
    })
  }

  const consumeOn = async (model: ChannelModel): Promise<void> => {
    const queue = await topology.ensureQueue(model, request)
    const channel = await model.createChannel()
    const tagged = (deliveryTag: number) => ({ fields: { deliveryTag } }) as Raw
    // acks once per I/O turn with `multiple`, over the finished prefix only (docs/performance.md)
    const acks = createCumulativeAcks({
      start: 1,
      ackUpTo: (tag) => channel.ack(tagged(tag), true),
      ackOne: (tag) => channel.ack(tagged(tag)),
      nackOne: (tag, requeue) => channel.nack(tagged(tag), false, requeue),
      maxHeld: Math.max(16, request.prefetch >> 2),
    })
    const consumer: Consumer = { model, channel, queue, open: true, acks }
    channel.on('error', (error: unknown) => {
      const err = context.scrub(errorText(error))
      context.logger.warn({ subscription: label, group, err }, 'rabbitmq closed a consumer channel')
    })
    channel.on('close', () => {
      consumer.open = false
      acks.close()
      if (current !== consumer) return
      current = undefined
      restart()
    })
    try {
      await channel.prefetch(request.prefetch, false)
      current = consumer
      const reply = await uninstrumented(channel.consume).call(channel, queue, (raw) => {
        if (raw === null) {
          // RabbitMQ cancelled us (the queue may be gone): the restart on a new channel declares it again
          topology.forget(model, queue)
          channel.close().catch(() => {})
        } else if (!stopped && current === consumer) deliver(consumer, raw) // after stop(): keep it unacked
      })
      consumer.tag = reply.consumerTag
    } catch (error) {
      if (current === consumer) current = undefined
      await channel.close().catch(() => {})
      throw error
    }
  }

  const start = async (model: ChannelModel): Promise<void> => {
    while (starting) await starting.catch(() => {})
    if (stopped || (current?.open && current.model === model)) return
    starting = consumeOn(model).finally(() => {
      starting = undefined
    })
    return starting
  }

  const unregister = supervisor.onRestore((model) => start(model).catch(restart))

  const subscription: TransportSubscription = {
    async stop() {
      stopped = true
      await starting?.catch(() => {})
      // basic.cancel: no new deliveries; the unacked ones stay ours and can still be acked
      if (current?.open && current.tag) await current.channel.cancel(current.tag).catch(() => {})
    },

    async close() {
      if (closed) return
      stopped = closed = true
      unregister()
      await starting?.catch(() => {})
      const consumer = current
      current = undefined
      if (!consumer) return
      const { model, channel, queue } = consumer
      // a temporary group goes with its messages; else closing the channel hands the unacked back
      if (consumer.open && request.temporary) await channel.deleteQueue(queue).catch(() => {})
      topology.forget(model, queue)
      consumer.acks.flush() // what was handled is acked, not handed back
      if (consumer.open) await channel.close().catch(() => {})
    },
  }
  await deps.perform('subscribe', label, start).catch(async (error: unknown) => {
    await subscription.close()
    throw error
  })
  return subscription
}

/**
 * Reads a group queue without taking anything: basic.get up to `limit`, then closing the channel
 * hands every message back to the front, in order (both queue types; quorum queues count it as a
 * delivery: x-delivery-count + 1). Run through `perform`: a retry skips what it already handed over.
 */
export function createBrowser(request: BrowseRequest, onMessage: (m: Message) => void, counts: boolean) {
  let handed = 0
  return (model: ChannelModel, queue: string): Promise<void> =>
    onChannel(model, async (channel) => {
      for (let n = 0; handed < request.limit && !request.signal?.aborted; n++) {
        const raw = await channel.get(queue, { noAck: false })
        if (raw === false) return
        if (n >= handed && ++handed) onMessage(toTransportMessage(raw, request.topic, counts))
      }
    }).catch((error: unknown) => {
      // a missing queue (404) closes the channel: an empty group
      if ((error as { code?: unknown }).code !== 404) throw error
    })
}
