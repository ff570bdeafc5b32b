/**
 * Where topics, groups and delays live on RabbitMQ: names, and their idempotent declaration once per
 * connection, each on a short-lived channel (a refusal closes only that one), thrown as amqplib raised it.
 */
import { createHash } from 'node:crypto'
import type { Channel, ChannelModel } from 'amqplib'
import type { RabbitmqTransportConfig } from './config.js'

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
export function createTopology(config: RabbitmqTransportConfig) {
  const naming = createNaming(config.prefix)
  // one promise per declaration and connection; a failed one is tried again next time
  const declared = new WeakMap<ChannelModel, Map<string, Promise<void>>>()
  const delayDeclaredAt = new Map<string, number>()
  const queueArguments: Record<string, unknown> = { 'x-queue-type': config.queueType }
  if (config.singleActiveConsumer) queueArguments['x-single-active-consumer'] = true
  if (config.queueExpiresMs !== undefined) queueArguments['x-expires'] = config.queueExpiresMs

  const once = (model: ChannelModel, key: string, work: (ch: Channel) => Promise<unknown>): Promise<void> => {
    const cache = declared.get(model) ?? new Map<string, Promise<void>>()
    declared.set(model, cache)
    let pending = cache.get(key)
    if (!pending) {
      pending = model.createChannel().then(async (channel) => {
        channel.on('error', () => {}) // the failed operation reports it
        await work(channel).finally(() => channel.close().catch(() => {}))
      })
      cache.set(key, pending)
      pending.catch(() => cache.delete(key))
    }
    return pending
  }

  const ensurePatternExchange = (model: ChannelModel) =>
    once(model, `x:${naming.patternExchange}`, (ch) =>
      ch.assertExchange(naming.patternExchange, 'topic', { durable: true }),
    )

  const ensureTopic = async (model: ChannelModel, topic: string): Promise<void> => {
    await ensurePatternExchange(model)
    const exchange = naming.exchange(topic)
    await once(model, `x:${exchange}`, async (ch) => {
      await ch.assertExchange(exchange, 'topic', { durable: true })
      // every topic also flows to the pattern exchange, so pattern queues see topics created later
      await ch.bindExchange(naming.patternExchange, exchange, '#')
    })
  }

  /** A durable group queue bound to `source` with `key` (temporary: classic, this connection's, gone with it). */
  const ensureQueue = async (
    model: ChannelModel,
    queue: string,
    source: string,
    key: string,
    temp = false,
  ) => {
    await once(model, `q:${queue}`, async (ch) => {
      const classic = { exclusive: true, arguments: { 'x-queue-type': 'classic' } }
      await ch.assertQueue(queue, temp ? classic : { durable: true, arguments: queueArguments })
      await ch.bindQueue(queue, source, key)
    })
    return queue
  }

  return {
    naming,
    ensureTopic,
    /** the group's queue, bound with '#': whatever is published to the topic's exchange is the topic's */
    async ensureGroup(model: ChannelModel, topic: string, group: string, temp?: boolean): Promise<string> {
      await ensureTopic(model, topic)
      return ensureQueue(model, naming.groupQueue(topic, group), naming.exchange(topic), '#', temp)
    },

    async ensurePattern(model: ChannelModel, pattern: string, group: string, temporary?: boolean) {
      await ensurePatternExchange(model)
      const queue = naming.patternQueue(pattern, group)
      return ensureQueue(model, queue, naming.patternExchange, bindingKey(pattern), temporary)
    },

    /** the (classic) wait queue of one delay bucket: TTL, then dead-lettered to the topic's exchange */
    async ensureDelay(model: ChannelModel, topic: string, bucketMs: number): Promise<string> {
      await ensureTopic(model, topic)
      const queue = naming.delayQueue(topic, bucketMs)
      const idleMs = 2 * bucketMs + 5 * 60_000 // x-expires after the last declaration
      // publishing does not count as use for x-expires: declare again well before it could expire
      if (Date.now() - (delayDeclaredAt.get(queue) ?? 0) > idleMs / 4) {
        declared.get(model)?.delete(`q:${queue}`)
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
      declared.get(model)?.delete(`x:${name}`)
      declared.get(model)?.delete(`q:${name}`)
    },
  }
}
