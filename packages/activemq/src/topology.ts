/**
 * Where msgkit's names live on ActiveMQ, and the broker-side set-up: a topic is the virtual topic
 * `VirtualTopic.<topic>`, a group the queue `Consumer.<group>.VirtualTopic.<topic>` the broker
 * copies every message of the topic into (provisioned by a SUBSCRIBE + UNSUBSCRIBE, since a
 * message sent before its group's queue exists reaches nobody), and the start-up probe of the
 * scheduler (which silently ignores `AMQ_SCHEDULED_DELAY` when it is off).
 */
import { createHash, randomUUID } from 'node:crypto'
import { ErrorCodes, MsgkitError, withTimeout } from '@msgkit/core'
import type { FrameHeaders, StompConnection } from './driver.js'

const TOPIC_PREFIX = '/topic/VirtualTopic.'

/** A STOMP destination must never be empty (the broker drops the connection) nor a wildcard or composite. */
function wireName(name: string, what: string): string {
  if (!/^[^\s,*>/]+$/.test(name))
    throw new MsgkitError(
      ErrorCodes.INVALID_ARGUMENT,
      `Invalid ${what} ${JSON.stringify(name)} for ActiveMQ.`,
    )
  return name
}

/** The virtual topic a msgkit topic is published to. */
export const topicDestination = (topic: string): string => `${TOPIC_PREFIX}${wireName(topic, 'topic')}`

/** The queue of a group subscribed to one topic. */
export const groupQueue = (topic: string, group: string): string =>
  `/queue/Consumer.${wireName(group, 'group')}.VirtualTopic.${wireName(topic, 'topic')}`

/** msgkit's trailing `>` is one or more segments, ActiveMQ's zero or more: `a.>` becomes `a.*.>`. */
export const toWildcard = (pattern: string): string => pattern.replace(/(^|\.)>$/, '$1*.>')

/**
 * The queue of a group subscribed to a pattern. A consumer of a wildcard queue also reads every
 * queue its name matches, so `Consumer.g.VirtualTopic.orders.*` would compete for the messages of
 * the group's exact queue `Consumer.g.VirtualTopic.orders.paid` (and see them twice); a consumer
 * name of its own per (group, pattern) keeps every subscription to its own queue.
 */
export function patternQueue(pattern: string, group: string): string {
  const tag = createHash('sha256').update(pattern).digest('hex').slice(0, 8)
  return `/queue/Consumer.${wireName(group, 'group')}~${tag}.VirtualTopic.${toWildcard(pattern)}`
}

/** The msgkit topic a delivered frame was published to, when the frame says. */
export function topicOf(headers: FrameHeaders): string | undefined {
  const original = headers['original-destination']
  if (original?.startsWith(TOPIC_PREFIX)) return original.slice(TOPIC_PREFIX.length)
  if (headers['msgkit-topic']) return headers['msgkit-topic']
  const queue = /^\/queue\/Consumer\.[^.]+\.VirtualTopic\.([^*>]+)$/.exec(headers.destination ?? '')
  return queue?.[1]
}

/** Creates `queue` (lasting, collecting) without taking anything from it: prefetch 0 dispatches nothing. */
export async function provisionQueue(connection: StompConnection, queue: string): Promise<void> {
  const id = `msgkit-provision-${randomUUID()}`
  await connection.request('SUBSCRIBE', { id, destination: queue, ack: 'auto', 'activemq.prefetchSize': '0' })
  await connection.request('UNSUBSCRIBE', { id })
}

/**
 * Does the broker honour `AMQ_SCHEDULED_DELAY`? Sends a message with a 250 ms delay, then one
 * without, to a temporary queue: without a scheduler the first arrives first (a queue is FIFO),
 * with one the second does. `done` settles once the delayed one came too (a scheduled job left for
 * a temporary queue that is gone makes the broker log an error).
 */
export async function probeScheduler(connection: StompConnection, timeoutMs: number) {
  const id = `msgkit-probe-${randomUUID()}`
  const destination = `/temp-queue/${id}`
  const tags: string[] = []
  const wake: Array<() => void> = []
  const arrived = (n: number, ms: number) =>
    withTimeout(
      new Promise<void>((r) => (tags.length >= n ? r() : wake.push(r))),
      ms,
      () => new Error('no probe message'),
    )
  connection.listen(id, (frame) => {
    tags.push(frame.headers['msgkit-probe'] ?? '')
    for (const r of wake.splice(0)) r()
  })
  const empty = new Uint8Array(0)
  await connection.request('SUBSCRIBE', { id, destination, ack: 'auto' })
  await connection.request(
    'SEND',
    { destination, AMQ_SCHEDULED_DELAY: '250', 'msgkit-probe': 'delayed' },
    empty,
  )
  await connection.request('SEND', { destination, 'msgkit-probe': 'control' }, empty)
  await arrived(1, timeoutMs)
  const done = arrived(2, 3_000)
    .then(() => connection.request('UNSUBSCRIBE', { id }))
    .catch(() => {})
    .finally(() => connection.unlisten(id))
  return { honoured: tags[0] === 'control', done }
}
