/**
 * The RabbitMQ transport: the kit's supervisor over amqplib connections (a `ChannelModel` is a session,
 * its 'close' reports the loss), topology, publisher and consumers. Core validates names and options.
 */
import { type Capabilities, type Transport, type TransportContext, withTimeout } from '@msgkit/core'
import { closedError, createSubscriptionSet, createSupervisor, endpointTelemetry } from '@msgkit/core/adapter'
import amqp, { type ChannelModel } from 'amqplib'
import { connectOptions, type RabbitmqTransportConfig } from './config.js'
import { createErrorTable, errorText } from './errors.js'
import { MAX_HEADER_BYTES } from './mapping.js'
import { createPublisher } from './publisher.js'
import { createBrowser, startSubscriber } from './subscriber.js'
import { createTopology } from './topology.js'

/** What RabbitMQ does natively, given the config (docs/brokers/rabbitmq.md says why). */
export function rabbitmqCapabilities(config: RabbitmqTransportConfig): Capabilities {
  return {
    persistence: true,
    fanout: true,
    // a queue is FIFO, but members of a group share it, unless one single active consumer takes all
    orderedKeys: config.singleActiveConsumer ? 'group' : 'consumer',
    delay: config.maxDelayMs > 0 ? { maxMs: config.maxDelayMs } : false,
    patterns: config.patterns,
    maxMessageBytes: config.maxMessageBytes,
    maxHeaderBytes: MAX_HEADER_BYTES,
    deadLetter: true,
    // quorum queues carry x-delivery-count; classic queues only the redelivered flag
    deliveryCount: config.queueType === 'quorum' ? 'exact' : 'flag',
    // mandatory + basic.return
    unroutable: true,
    // an exclusive queue; a group queue via the default exchange; basic.get + requeue (subscriber.ts)
    ...{ temporaryGroups: true, sendToGroup: true, browse: 'redelivers' },
  }
}

/** Creates a RabbitMQ transport (not yet connected). */
export function createRabbitmqTransport(
  config: RabbitmqTransportConfig,
  context: TransportContext,
): Transport {
  const options = connectOptions(config)
  const errors = createErrorTable({ where: options.where, scrub: context.scrub })
  const { initialDelayMs, maxDelayMs, multiplier, jitter } = config.reconnect
  const supervisor = createSupervisor<ChannelModel>({
    name: 'rabbitmq',
    context,
    errors,
    backoff: { initialMs: initialDelayMs, maxMs: maxDelayMs, multiplier, jitter },
    driver: {
      endpoints: options.endpoints,
      async open(index) {
        const model = await amqp.connect(options.connect(index), options.socket)
        const log = context.logger
        // 'error' is always followed by 'close'
        model.on('error', (e: unknown) => log.debug({ err: context.scrub(errorText(e)) }, 'rabbitmq error'))
        model.on('blocked', (why) => log.warn({ why: String(why) }, 'rabbitmq blocks publishing (alarm)'))
        model.on('unblocked', () => log.info({}, 'rabbitmq unblocked publishing'))
        model.on('close', (error?: unknown) => supervisor.lost(model, error))
        return model
      },
      async close(model) {
        // a polite close, but a frozen broker never sends close-ok
        await withTimeout(model.close(), 3_000, () => new Error('no close-ok')).catch(() => {
          ;(model.connection as unknown as { stream?: { destroy(): void } }).stream?.destroy()
        })
      },
    },
  })
  const topology = createTopology(config)
  const publisher = createPublisher(topology, supervisor, errors)
  const subscriptions = createSubscriptionSet('rabbitmq')
  const counts = config.queueType === 'quorum'
  let closing: Promise<void> | undefined
  /** `work` on the connection; declarations and consumers wait for it through an outage this long. */
  const perform = async <T>(operation: string, topic: string, work: (model: ChannelModel) => Promise<T>) => {
    if (closing) throw closedError('rabbitmq')
    const deadline = Date.now() + config.connectTimeoutMs + config.reconnect.maxDelayMs * 5
    return supervisor.perform({ operation, topic }, deadline, work)
  }

  return {
    name: 'rabbitmq',
    capabilities: rabbitmqCapabilities(config),
    // every send goes through the kit's outbox, which settles it by its deadline
    keepsDeadlines: true,
    telemetry: endpointTelemetry('rabbitmq', supervisor, (topic) => ({ routingKey: topic })),
    // a window of 1,000+ keeps a fast consumer busy across round trips (docs/performance.md)
    defaultPrefetch: (concurrency) => Math.min(10_000, Math.max(1_000, concurrency * 8)),
    connect: () => supervisor.connect().then(() => {}),
    // after close() the outbox refuses with MSGKIT_CLOSED
    send: (topic, messages, sendOptions) => publisher.send(topic, messages, sendOptions),
    async provision(topic, group) {
      await perform('provision', topic, (model) => topology.ensureQueue(model, { topic, group }))
    },
    sendToGroup: (topic, group, messages, sendOptions) =>
      publisher.send(topic, messages, sendOptions, topology.naming.groupQueue(topic, group)),
    async browse(request, onMessage) {
      const browse = createBrowser(request, onMessage, counts)
      const queue = topology.naming.groupQueue(request.topic, request.group)
      await perform('browse', request.topic, (model) => browse(model, queue))
    },
    subscribe: (request, onDelivery) =>
      subscriptions.add(() =>
        startSubscriber(request, onDelivery, { topology, supervisor, context, counts, perform }),
      ),
    close() {
      closing ??= (async () => {
        await subscriptions.close()
        await publisher.close()
        await supervisor.close()
      })()
      return closing
    },
  }
}
