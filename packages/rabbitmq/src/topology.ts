/**
 * Where topics, groups and delays live on RabbitMQ: names, and their idempotent declaration once per
 * connection, each on a short-lived channel (a refusal closes only that one), thrown as amqplib raised it.
 */
import { createHash } from 'node:crypto'
import type { SubscribeRequest } from '@msgkit/core'
import { createDeclarations, type Declarations } from '@msgkit/core/adapter'
import type { Channel, ChannelModel } from 'amqplib'
import type { RabbitmqTransportConfig } from './config.js'

/** `work` on a short-lived channel of its own: a refusal closes only that one (`work` reports it). */
export async function onChannel<T>(model: ChannelModel, work: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await model.createChannel()
  channel.on('error', () => {})
  return work(channel).finally(() => channel.close().catch(() => {}))
}

/** Keeps a name within AMQP's 255 bytes; a longer one keeps its start and gets a hash for uniqueness. */
export function amqpName(name: string): string {
  if (Buffer.byteLength(name) <= 255) return name
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 16)
  return `${name.slice(0, 255 - hash.length - 1)}~${hash}`
}

/** Names (DESIGN §5). `:` never occurs in topic names, so msgkit's own objects cannot collide. */
export function createNaming(prefix: string) {
  return {
    /** the durable topic exchange a topic is published to */
    exchange: (topic: string) => amqpName(`${prefix}${topic}`),
    /** every topic exchange forwards to it; pattern queues bind there */
    patternExchange: amqpName(`${prefix}msgkit:topics`),
    groupQueue: (topic: string, group: string) => amqpName(`${prefix}${topic}.${group}`),
    patternQueue: (pattern: string, group: string) => amqpName(`${prefix}${pattern}.${group}`),
    /** holds a topic's messages for `delayMs`, then dead-letters them to the topic's exchange */
    delayQueue: (topic: string, delayMs: number) => amqpName(`${prefix}msgkit:delay:${delayMs}:${topic}`),
  }
}
export type Naming = ReturnType<typeof createNaming>

/** A msgkit pattern as a binding key: msgkit's trailing `>` is one or more segments, AMQP's `#` zero or more. */
export const bindingKey = (pattern: string): string => pattern.replace(/(^|\.)>$/, '$1*.#')

/** Rounds a delay up to two significant digits (2345 → 2400 ms): a bounded set of wait queues, never early. */
export function delayBucket(delayMs: number): number {
  const ms = Math.max(1, Math.ceil(delayMs))
  if (ms < 100) return ms
  const step = 10 ** (Math.floor(Math.log10(ms)) - 1)
  return Math.ceil(ms / step) * step
}

export type Topology = ReturnType<typeof createTopology>
type QueueRequest = Pick<SubscribeRequest, 'topic' | 'pattern' | 'group' | 'temporary'>
export function createTopology(config: RabbitmqTransportConfig) {
  const naming = createNaming(config.prefix)
  // what was declared on each connection (a new one knows nothing)
  const declared = new WeakMap<ChannelModel, Declarations>()
  const delayDeclaredAt = new Map<string, number>()
  const queueArguments: Record<string, unknown> = { 'x-queue-type': config.queueType }
  if (config.singleActiveConsumer) queueArguments['x-single-active-consumer'] = true
  if (config.queueExpiresMs !== undefined) queueArguments['x-expires'] = config.queueExpiresMs

  const once = (model: ChannelModel, key: string, work: (ch: Channel) => Promise<unknown>): Promise<void> => {
    const onModel = declared.get(model) ?? createDeclarations()
    declared.set(model, onModel)
    return onModel.once(key, () => onChannel(model, work).then(() => {}))
  }

  const ensurePatternExchange = (model: ChannelModel) =>
    once(model, `x:${naming.patternExchange}`, (ch) =>
      ch.assertExchange(naming.patternExchange, 'topic', { durable: true }),
    )

  const ensureTopic = async (model: ChannelModel, topic: string): Promise<void> => {
    if (config.patterns) await ensurePatternExchange(model)
    const exchange = naming.exchange(topic)
    await once(model, `x:${exchange}`, async (ch) => {
      await ch.assertExchange(exchange, 'topic', { durable: true })
      // every topic also flows to the pattern exchange, so pattern queues see topics created later
      if (config.patterns) await ch.bindExchange(naming.patternExchange, exchange, '#')
    })
  }

  return {
    naming,
    ensureTopic,
    /**
     * A subscription's durable queue, bound: a group's to its topic's exchange with '#' (whatever is
     * published there is the topic's), a pattern's to the pattern exchange by routing key. A
     * temporary one is classic and exclusive: this connection's, gone with it.
     */
    async ensureQueue(model: ChannelModel, request: QueueRequest): Promise<string> {
      const { topic, pattern = '', group } = request
      const [queue, source, key] =
        topic === undefined
          ? [naming.patternQueue(pattern, group), naming.patternExchange, bindingKey(pattern)]
          : [naming.groupQueue(topic, group), naming.exchange(topic), '#']
      await (topic === undefined ? ensurePatternExchange(model) : ensureTopic(model, topic))
      await once(model, `q:${queue}`, async (ch) => {
        const classic = { exclusive: true, arguments: { 'x-queue-type': 'classic' } }
        await ch.assertQueue(
          queue,
          request.temporary ? classic : { durable: true, arguments: queueArguments },
        )
        await ch.bindQueue(queue, source, key)
      })
      return queue
    },

    /** the (classic) wait queue of one delay bucket: TTL, then dead-lettered to the topic's exchange */
    async ensureDelay(model: ChannelModel, topic: string, bucketMs: number): Promise<string> {
      await ensureTopic(model, topic)
      const queue = naming.delayQueue(topic, bucketMs)
      const idleMs = 2 * bucketMs + 5 * 60_000 // x-expires after the last declaration
      // publishing does not count as use for x-expires: declare again well before it could expire
      if (Date.now() - (delayDeclaredAt.get(queue) ?? 0) > idleMs / 4) {
        declared.get(model)?.forget(`q:${queue}`)
        delayDeclaredAt.set(queue, Date.now())
      }
      const args = {
        'x-queue-type': 'classic',
        'x-message-ttl': bucketMs,
        'x-dead-letter-exchange': naming.exchange(topic),
        'x-dead-letter-routing-key': topic,
        'x-expires': idleMs,
      }
      await once(model, `q:${queue}`, (ch) => ch.assertQueue(queue, { durable: true, arguments: args }))
      return queue
    },

    /** forget an exchange or queue (deleted behind our back): declare it again next time */
    forget(model: ChannelModel, name: string): void {
      declared.get(model)?.forget(`x:${name}`)
      declared.get(model)?.forget(`q:${name}`)
    },
  }
}
