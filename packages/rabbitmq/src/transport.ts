/** The RabbitMQ transport: wires connection, topology, publisher and subscribers into the SPI. */
import {
  assertGroupName,
  assertPattern,
  assertTopicName,
  type Capabilities,
  ErrorCodes,
  MsgkitError,
  type Transport,
  type TransportContext,
} from '@msgkit/core'
import type { RabbitmqTransportConfig } from './config.js'
import { createConnectionManager } from './connection.js'
import { MAX_ENCODED_HEADER_BYTES } from './message.js'
import { createNaming } from './naming.js'
import { createPublisher } from './publisher.js'
import { createSubscriber, type Subscriber } from './subscriber.js'
import { createTopology } from './topology.js'

/** What RabbitMQ does natively, given the config. */
export function rabbitmqCapabilities(config: RabbitmqTransportConfig): Capabilities {
  return {
    // durable exchanges and queues, persistent messages, publisher confirms
    persistence: true,
    // one queue per group, each bound to the topic exchange
    fanout: true,
    // a queue is FIFO; core keeps per-key order among its concurrent handlers (see docs for several instances)
    // one queue per group: one member keeps a key in order; several members interleave it unless one is active
    orderedKeys: config.singleActiveConsumer ? 'group' : 'consumer',
    // per-delay wait queues: TTL, then dead-lettered to the topic exchange
    delay: config.maxDelayMs > 0 ? { maxMs: config.maxDelayMs } : false,
    // topic exchanges forward to one pattern exchange; `*` and `>` become binding keys
    patterns: true,
    maxMessageBytes: config.maxMessageBytes,
    // counted as core counts (name + value bytes); the encoded table must also fit amqplib's 64 KiB buffer
    maxHeaderBytes: Math.min(32 * 1024, MAX_ENCODED_HEADER_BYTES),
    // core sends dead letters to `<topic>.<group>.dlq`, a topic like any other
    deadLetter: true,
    // quorum queues carry x-delivery-count; classic queues only the redelivered flag
    deliveryCount: config.queueType === 'quorum' ? 'exact' : 'flag',
    // not yet: mandatory + basic.return (issue 8)
    unroutable: false,
  }
}

/** Creates a RabbitMQ transport (not yet connected). */
export function createRabbitmqTransport(config: RabbitmqTransportConfig, ctx: TransportContext): Transport {
  const cm = createConnectionManager(config, ctx)
  const naming = createNaming(config.prefix)
  const topology = createTopology(config, naming, cm)
  const publisher = createPublisher(config, naming, topology, cm)
  const subscribers = new Set<Subscriber>()
  let closing: Promise<void> | undefined

  cm.onRestore(async (connection) => {
    const failures: unknown[] = []
    await Promise.all(
      [...subscribers].map((s) =>
        s.restore(connection).catch((error: unknown) => {
          failures.push(error)
        }),
      ),
    )
    if (failures.length > 0) throw failures[0]
  })

  const assertOpen = (): void => {
    if (closing || cm.closed) throw new MsgkitError(ErrorCodes.CLOSED, 'This RabbitMQ transport is closed.')
  }

  /** Declarations need the connection; during an outage wait for it (bounded). */
  const whenUp = async (what: string): Promise<void> => {
    await cm.waitUp(
      Date.now() + config.connectTimeoutMs + config.reconnect.maxDelayMs * 5,
      () =>
        new MsgkitError(
          ErrorCodes.TRANSPORT_ERROR,
          `Cannot ${what}: RabbitMQ at ${cm.where} is unreachable.`,
          { retriable: true },
        ),
    )
  }

  return {
    name: 'rabbitmq',
    capabilities: rabbitmqCapabilities(config),

    connect: () => cm.connect(),

    async send(topic, messages, options) {
      assertOpen()
      if (messages.length === 0) return
      await publisher.send(topic, messages, options)
    },

    async provision(topic, group) {
      assertOpen()
      assertTopicName(topic)
      assertGroupName(group)
      await whenUp(`provision group ${group} of ${topic}`)
      await topology.ensureGroup(topic, group)
    },

    async subscribe(request, onDelivery) {
      assertOpen()
      if ((request.topic === undefined) === (request.pattern === undefined)) {
        throw new MsgkitError(
          ErrorCodes.INVALID_ARGUMENT,
          'subscribe needs exactly one of topic and pattern.',
        )
      }
      if (request.topic !== undefined) assertTopicName(request.topic)
      else assertPattern(request.pattern as string)
      assertGroupName(request.group)
      if (!Number.isInteger(request.prefetch) || request.prefetch < 1 || request.prefetch > 65_535) {
        throw new MsgkitError(
          ErrorCodes.INVALID_ARGUMENT,
          `prefetch must be an integer from 1 to 65535 (got ${request.prefetch}).`,
        )
      }
      await whenUp(`subscribe to ${request.topic ?? request.pattern}`)
      const subscriber = createSubscriber(request, onDelivery, {
        config,
        naming,
        topology,
        cm,
        ctx,
        onClosed: () => subscribers.delete(subscriber),
      })
      subscribers.add(subscriber)
      const generation = cm.generation
      try {
        await subscriber.start()
      } catch (error) {
        // the connection dropped while we were starting: the reconnect restores this consumer
        const lostConnection = cm.generation !== generation || cm.current === undefined
        if (lostConnection && !cm.closed) return subscriber
        await subscriber.close().catch(() => {})
        throw error
      }
      return subscriber
    },

    close() {
      closing ??= (async () => {
        await Promise.allSettled([...subscribers].map((s) => s.close()))
        await publisher.close()
        await cm.close()
      })()
      return closing
    },
  }
}
