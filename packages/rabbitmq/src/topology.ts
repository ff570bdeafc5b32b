/**
 * Declares exchanges, queues and bindings idempotently, once per connection. Each declaration
 * runs on a short-lived channel of its own: a refused declaration (406) closes only that
 * channel, never the publishing or consuming ones.
 */
import { ErrorCodes, MsgkitError } from '@msgkit/core'
import type { Channel, ChannelModel } from 'amqplib'
import type { RabbitmqTransportConfig } from './config.js'
import type { ConnectionManager } from './connection.js'
import { topologyError } from './errors.js'
import { bindingKey, type Naming } from './naming.js'

/** Wait queues live at least this long after their last declaration (x-expires). */
const DELAY_QUEUE_IDLE_MS = 5 * 60 * 1000

export interface Topology {
  /** the topic exchange, forwarding to the pattern exchange */
  ensureTopic(topic: string): Promise<void>
  /** the group queue bound to its topic exchange; returns its name */
  ensureGroup(topic: string, group: string): Promise<string>
  /** the pattern queue bound to the pattern exchange; returns its name */
  ensurePattern(pattern: string, group: string): Promise<string>
  /** the wait queue for one delay bucket; returns its name */
  ensureDelay(topic: string, bucketMs: number): Promise<string>
  /** forget a topic's exchange (deleted behind our back): declare it again next time */
  forgetTopic(topic: string): void
  /** forget a queue (deleted behind our back): declare it and its binding again next time */
  forgetQueue(queue: string): void
}

export function createTopology(
  config: RabbitmqTransportConfig,
  naming: Naming,
  cm: ConnectionManager,
): Topology {
  // promise per declaration, valid for one connection generation
  let cacheGeneration = -1
  const cache = new Map<string, Promise<void>>()
  const delayDeclaredAt = new Map<string, number>()

  const groupQueueArguments: Record<string, unknown> = { 'x-queue-type': config.queueType }
  if (config.singleActiveConsumer) groupQueueArguments['x-single-active-consumer'] = true
  if (config.queueExpiresMs !== undefined) groupQueueArguments['x-expires'] = config.queueExpiresMs

  const withChannel = async (what: string, work: (channel: Channel) => Promise<unknown>): Promise<void> => {
    const connection: ChannelModel | undefined = cm.current
    if (!connection) {
      throw new MsgkitError(
        ErrorCodes.TRANSPORT_ERROR,
        `Cannot declare ${what}: the connection to RabbitMQ is down.`,
        { retriable: true },
      )
    }
    let channel: Channel
    try {
      channel = await connection.createChannel()
    } catch (error) {
      throw topologyError(error, what)
    }
    channel.on('error', () => {
      // reported through the failed operation below
    })
    try {
      await work(channel)
    } catch (error) {
      throw topologyError(error, what)
    } finally {
      await channel.close().catch(() => {})
    }
  }

  /** Runs a declaration once per connection; a failed one is tried again next time. */
  const once = (key: string, what: string, work: (channel: Channel) => Promise<unknown>): Promise<void> => {
    if (cacheGeneration !== cm.generation) {
      cache.clear()
      cacheGeneration = cm.generation
    }
    let pending = cache.get(key)
    if (!pending) {
      pending = withChannel(what, work)
      cache.set(key, pending)
      pending.catch(() => cache.delete(key))
    }
    return pending
  }

  const ensurePatternExchange = (): Promise<void> =>
    once('pattern-exchange', `exchange ${naming.patternExchange}`, (ch) =>
      ch.assertExchange(naming.patternExchange, 'topic', { durable: true }),
    )

  const ensureTopic = async (topic: string): Promise<void> => {
    await ensurePatternExchange()
    const exchange = naming.exchange(topic)
    await once(`exchange:${topic}`, `exchange ${exchange}`, async (ch) => {
      await ch.assertExchange(exchange, 'topic', { durable: true })
      // every topic also flows to the pattern exchange, so pattern queues see topics created later
      await ch.bindExchange(naming.patternExchange, exchange, '#')
    })
  }

  return {
    ensureTopic,

    async ensureGroup(topic, group) {
      await ensureTopic(topic)
      const queue = naming.groupQueue(topic, group)
      const exchange = naming.exchange(topic)
      await once(`group:${queue}`, `queue ${queue}`, async (ch) => {
        await ch.assertQueue(queue, { durable: true, arguments: groupQueueArguments })
        // '#': whatever is published to the topic's exchange belongs to the topic, whatever its routing key
        await ch.bindQueue(queue, exchange, '#')
      })
      return queue
    },

    async ensurePattern(pattern, group) {
      await ensurePatternExchange()
      const queue = naming.patternQueue(pattern, group)
      await once(`pattern:${queue}`, `queue ${queue}`, async (ch) => {
        await ch.assertQueue(queue, { durable: true, arguments: groupQueueArguments })
        await ch.bindQueue(queue, naming.patternExchange, bindingKey(pattern))
      })
      return queue
    },

    async ensureDelay(topic, bucketMs) {
      await ensureTopic(topic)
      const queue = naming.delayQueue(topic, bucketMs)
      const idleMs = 2 * bucketMs + DELAY_QUEUE_IDLE_MS
      // publishing does not count as use for x-expires: declare again well before it could expire
      const last = delayDeclaredAt.get(queue) ?? 0
      if (Date.now() - last > idleMs / 4) {
        cache.delete(`delay:${queue}`)
        delayDeclaredAt.set(queue, Date.now())
      }
      await once(`delay:${queue}`, `delay queue ${queue}`, (ch) =>
        ch.assertQueue(queue, {
          durable: true,
          arguments: {
            // classic: a wait queue needs TTL + dead-lettering, nothing else
            'x-queue-type': 'classic',
            'x-message-ttl': bucketMs,
            'x-dead-letter-exchange': naming.exchange(topic),
            'x-dead-letter-routing-key': topic,
            'x-expires': idleMs,
          },
        }),
      )
      return queue
    },

    forgetTopic(topic) {
      cache.delete(`exchange:${topic}`)
    },

    forgetQueue(queue) {
      cache.delete(`group:${queue}`)
      cache.delete(`pattern:${queue}`)
    },
  }
}
