/**
 * A consumer on its own channel (prefetch = the request's). After a reconnect, or when RabbitMQ
 * cancels the consumer or closes its channel, it comes back by itself. Deliveries remember their
 * channel: acking one whose channel is gone is a no-op (RabbitMQ redelivers it), never a
 * PRECONDITION_FAILED "unknown delivery tag" that would kill the new channel.
 */
import {
  backoffDelay,
  type Delivery,
  type DeliveryHandler,
  ErrorCodes,
  MsgkitError,
  type SubscribeRequest,
  type TransportContext,
  type TransportSubscription,
} from '@msgkit/core'
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib'
import type { RabbitmqTransportConfig } from './config.js'
import type { ConnectionManager } from './connection.js'
import { errorText, topologyError } from './errors.js'
import { toTransportMessage } from './message.js'
import type { Naming } from './naming.js'
import type { Topology } from './topology.js'

interface ConsumerChannel {
  channel: Channel
  open: boolean
  consumerTag?: string
}

export interface Subscriber extends TransportSubscription {
  /** (re)start consuming on the current connection; errors propagate */
  start(): Promise<void>
  /** called after a reconnect */
  restore(connection: ChannelModel): Promise<void>
}

export function createSubscriber(
  request: SubscribeRequest,
  onDelivery: DeliveryHandler,
  deps: {
    config: RabbitmqTransportConfig
    naming: Naming
    topology: Topology
    cm: ConnectionManager
    ctx: TransportContext
    onClosed(): void
  },
): Subscriber {
  const { config, naming, topology, cm, ctx } = deps
  const label = request.topic ?? request.pattern ?? ''
  const countsDeliveries = config.queueType === 'quorum'
  let current: ConsumerChannel | undefined
  let starting: Promise<void> | undefined
  let stopped = false
  let closed = false
  let retryTimer: NodeJS.Timeout | undefined
  let retries = 0

  const queueName =
    request.topic !== undefined
      ? naming.groupQueue(request.topic, request.group)
      : naming.patternQueue(request.pattern as string, request.group)
  const declare = (): Promise<string> =>
    request.topic !== undefined
      ? topology.ensureGroup(request.topic, request.group)
      : topology.ensurePattern(request.pattern as string, request.group)

  const deliver = (cc: ConsumerChannel, raw: ConsumeMessage): void => {
    // a pattern queue is bound by routing key, and msgkit publishes with routing key = topic
    const topic = request.topic ?? raw.fields.routingKey
    let message: ReturnType<typeof toTransportMessage>
    try {
      message = toTransportMessage(raw, topic, countsDeliveries)
    } catch (error) {
      ctx.emit({ type: 'error', error })
      return
    }
    let settled = false
    const settle = (how: (channel: Channel) => void): void => {
      if (settled) return
      settled = true
      // the channel it came on is gone: RabbitMQ has already put it back, acking would be an error
      if (!cc.open || current !== cc) return
      try {
        how(cc.channel)
      } catch (error) {
        ctx.logger.debug({ err: errorText(error) }, 'rabbitmq ack/nack on a closing channel ignored')
      }
    }
    const delivery: Delivery = {
      message,
      async ack() {
        settle((ch) => ch.ack(raw))
      },
      async nack(options) {
        settle((ch) => ch.nack(raw, false, options?.requeue ?? true))
      },
    }
    try {
      onDelivery(delivery).catch((error: unknown) => ctx.emit({ type: 'error', error }))
    } catch (error) {
      // never let a handler's throw reach amqplib's frame loop
      ctx.emit({ type: 'error', error })
    }
  }

  const scheduleRetry = (why: unknown): void => {
    if (stopped || closed || retryTimer) return
    retries += 1
    // doubling from initialDelayMs * 2, capped; no jitter (the exponent stops at 10)
    const delay = backoffDelay(Math.min(retries, 10) + 1, {
      initialMs: config.reconnect.initialDelayMs,
      maxMs: config.reconnect.maxDelayMs,
      multiplier: 2,
      jitter: 0,
    })
    ctx.logger.warn(
      { subscription: label, group: request.group, delayMs: delay, err: errorText(why) },
      'rabbitmq consumer lost; restarting it',
    )
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      // the queue may be gone (deleted, or expired): declare it again rather than trust the cache
      topology.forgetQueue(queueName)
      // if the whole connection is down, the reconnect restores us instead
      if (cm.current) start().catch((error: unknown) => scheduleRetry(error))
    }, delay)
  }

  const consumeOn = async (connection: ChannelModel): Promise<void> => {
    const queue = await declare()
    let channel: Channel
    try {
      channel = await connection.createChannel()
    } catch (error) {
      throw topologyError(error, `a channel for ${queue}`)
    }
    const cc: ConsumerChannel = { channel, open: true }
    channel.on('error', (error: unknown) => {
      ctx.logger.warn(
        { subscription: label, group: request.group, err: errorText(error) },
        'rabbitmq closed a consumer channel',
      )
    })
    channel.on('close', () => {
      cc.open = false
      if (current !== cc) return
      current = undefined
      // amqplib closes the channels just before it reports the connection closed: look again
      // once that has happened. A channel closed while its connection lives (queue deleted,
      // channel error) is ours to restart; a lost connection is the reconnect's job.
      setImmediate(() => {
        if (cm.current === connection && !stopped && !closed)
          scheduleRetry(new Error('consumer channel closed'))
      })
    })
    try {
      await channel.prefetch(request.prefetch, false)
      current = cc
      const reply = await channel.consume(
        queue,
        (raw) => {
          if (raw === null) {
            // RabbitMQ cancelled us (queue deleted, or a quorum leader moved): start over
            if (current === cc) {
              current = undefined
              channel.close().catch(() => {})
              scheduleRetry(new Error(`consumer of ${queue} cancelled by RabbitMQ`))
            }
            return
          }
          // after stop(): keep it unacked; close() gives it back to the queue
          if (stopped || current !== cc) return
          deliver(cc, raw)
        },
        { noAck: false },
      )
      cc.consumerTag = reply.consumerTag
      retries = 0
    } catch (error) {
      if (current === cc) current = undefined
      await channel.close().catch(() => {})
      throw topologyError(error, `a consumer on ${queue}`)
    }
  }

  const start = (): Promise<void> => {
    if (closed || stopped) return Promise.resolve()
    if (current?.open) return Promise.resolve()
    if (starting) return starting
    const connection = cm.current
    if (!connection) return Promise.resolve() // the reconnect will start us
    starting = consumeOn(connection).finally(() => {
      starting = undefined
    })
    return starting
  }

  return {
    start,

    async restore(connection) {
      if (closed || stopped) return
      if (current && !current.open) current = undefined
      if (current) return
      try {
        if (starting) await starting.catch(() => {})
        if (!current && cm.current === connection) await start()
      } catch (error) {
        scheduleRetry(error)
        throw new MsgkitError(
          ErrorCodes.TRANSPORT_ERROR,
          `Restoring the consumer of ${label} (group ${request.group}) failed: ${errorText(error)}`,
          {
            cause: error,
            retriable: true,
          },
        )
      }
    },

    async stop() {
      stopped = true
      clearTimeout(retryTimer)
      retryTimer = undefined
      if (starting) await starting.catch(() => {})
      const cc = current
      if (cc?.open && cc.consumerTag) {
        // basic.cancel: no new deliveries; the unacked ones stay ours and can still be acked
        await cc.channel.cancel(cc.consumerTag).catch(() => {})
      }
    },

    async close() {
      if (closed) return
      stopped = true
      closed = true
      clearTimeout(retryTimer)
      retryTimer = undefined
      if (starting) await starting.catch(() => {})
      const cc = current
      current = undefined
      // closing the channel hands every unacked delivery back to RabbitMQ
      if (cc?.open) await cc.channel.close().catch(() => {})
      deps.onClosed()
    },
  }
}
