/** How msgkit topics, groups and patterns become RabbitMQ exchange, queue and binding names. */
import { createHash } from 'node:crypto'

/** AMQP 0-9-1 names are short strings: at most 255 bytes. */
const MAX_NAME_BYTES = 255

/** Keeps a name under 255 bytes; a too-long one keeps its start and gets a hash for uniqueness. */
export function amqpName(name: string): string {
  if (Buffer.byteLength(name) <= MAX_NAME_BYTES) return name
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 16)
  return `${name.slice(0, MAX_NAME_BYTES - hash.length - 1)}~${hash}`
}

export interface Naming {
  /** the durable topic exchange a topic is published to */
  exchange(topic: string): string
  /** the exchange every topic exchange forwards to, where pattern queues bind (`:` never occurs in topic names) */
  readonly patternExchange: string
  /** the durable queue of a (topic, group) pair: `<topic>.<group>` (DESIGN §5) */
  groupQueue(topic: string, group: string): string
  /** the queue of a pattern subscription's group: `<pattern>.<group>` */
  patternQueue(pattern: string, group: string): string
  /** the wait queue that holds a topic's messages for `delayMs`, then dead-letters them to the topic exchange */
  delayQueue(topic: string, delayMs: number): string
}

export function createNaming(prefix: string): Naming {
  return {
    exchange: (topic) => amqpName(`${prefix}${topic}`),
    patternExchange: amqpName(`${prefix}msgkit:topics`),
    groupQueue: (topic, group) => amqpName(`${prefix}${topic}.${group}`),
    patternQueue: (pattern, group) => amqpName(`${prefix}${pattern}.${group}`),
    delayQueue: (topic, delayMs) => amqpName(`${prefix}msgkit:delay:${delayMs}:${topic}`),
  }
}

/**
 * A msgkit pattern as an AMQP topic binding key. `*` means one segment in both; msgkit's
 * trailing `>` is one or more segments, AMQP's `#` zero or more, hence `*.#`.
 */
export function bindingKey(pattern: string): string {
  return pattern
    .split('.')
    .map((segment) => (segment === '>' ? '*.#' : segment))
    .join('.')
}

/**
 * Rounds a delay up to two significant digits (2345 → 2400 ms) so that varying delays share
 * a bounded set of wait queues. Rounding up keeps the promise "no earlier than delayMs".
 */
export function delayBucket(delayMs: number): number {
  const ms = Math.max(1, Math.ceil(delayMs))
  if (ms < 100) return ms
  const step = 10 ** (Math.floor(Math.log10(ms)) - 1)
  return Math.ceil(ms / step) * step
}
