/**
 * A consumer on its own channel with the request's prefetch. Restored by the supervisor after a
 * reconnect; restarted through `supervisor.perform` when RabbitMQ cancels it or closes its channel.
 * A delivery settles only on its own channel while that is open (its tag means nothing elsewhere).
 */
import type { DeliveryHandler, SubscribeRequest, TransportContext, TransportSubscription } from '@msgkit/core'
import { createDelivery, type Supervisor, uninstrumented } from '@msgkit/core/adapter'
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib'
import { errorText } from './errors.js'
import { toTransportMessage } from './mapping.js'
import type { Topology } from './topology.js'

/** How long a restart (after a cancel or a closed channel) keeps trying before it reports an error. */
const RESTART_WINDOW_MS = 60_000

type Consumer = { model: ChannelModel; channel: Channel; open: boolean; tag?: string }

/** A subscription, plus `start(model)`: consume on that connection (a no-op when already there). */
export type Subscriber = TransportSubscription & { start(model: ChannelModel): Promise<void> }

export function createSubscriber(
  request: SubscribeRequest,
  onDelivery: DeliveryHandler,
  deps: {
    topology: Topology
    supervisor: Supervisor<ChannelModel>
    context: TransportContext
    countsDeliveries: boolean
    onClosed(): void
  },
): Subscriber {
  const { topology, supervisor, context } = deps
  const { topic, group } = request
  const label = topic ?? (request.pattern as string)
  let current: Consumer | undefined
  let starting: Promise<void> | undefined
  let stopped = false
  let closed = false

  const deliver = (consumer: Consumer, raw: ConsumeMessage): void => {
    const settle = (how: (channel: Channel) => void) => () => {
      try {
        how(consumer.channel)
      } catch {} // the channel is closing: RabbitMQ takes the message back
    }
    try {
      // a pattern queue is bound by routing key, and msgkit publishes with routing key = topic
      const message = toTransportMessage(raw, topic ?? raw.fields.routingKey, deps.countsDeliveries)
      const delivery = createDelivery(message, {
        ack: settle((ch) => ch.ack(raw)),
        nack: (requeue) => settle((ch) => ch.nack(raw, false, requeue))(),
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
    const queue =
      topic === undefined
        ? await topology.ensurePattern(model, label, group)
        : await topology.ensureGroup(model, topic, group)
    const channel = await model.createChannel()
    const consumer: Consumer = { model, channel, open: true }
    channel.on('error', (error: unknown) => {
      const err = context.scrub(errorText(error))
      context.logger.warn({ subscription: label, group, err }, 'rabbitmq closed a consumer channel')
    })
    channel.on('close', () => {
      consumer.open = false
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

  return {
    start,

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
      // closing the channel hands every unacked delivery back to RabbitMQ
      if (consumer?.open) await consumer.channel.close().catch(() => {})
      deps.onClosed()
    },
  }
}
