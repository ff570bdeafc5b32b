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
import { createBrowser, createSubscriber } from './subscriber.js'
import { createTopology } from './topology.js'

/** What RabbitMQ does natively, given the config (docs/brokers/rabbitmq.md says why). */
export function rabbitmqCapabilities(config: RabbitmqTransportConfig): Capabilities {
  return {
    persistence: true,
    fanout: true,
    // a queue is FIFO, but members of a group share it, unless one single active consumer takes all
    orderedKeys: config.singleActiveConsumer ? 'group' : 'consumer',
    delay: config.maxDelayMs > 0 ? { maxMs: config.maxDelayMs } : false,
    patterns: true,
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
  const where = (endpoint = options.endpoints.join(',')) =>
    `${options.connect(0).protocol}://${encodeURIComponent(config.username)}@${endpoint}/${config.vhost === '/' ? '' : encodeURIComponent(config.vhost)}`
  const errors = createErrorTable({ where, scrub: context.scrub })
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
        model.on('blocked', (why: unknown) =>
          log.warn({ why: String(why) }, 'rabbitmq blocks publishing (alarm)'),
        )
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
  let closing: Promise<void> | undefined
  /** Declarations and consumers wait for the connection through an outage, this long. */
  const waitDeadline = (): number => Date.now() + config.connectTimeoutMs + config.reconnect.maxDelayMs * 5
  const assertOpen = (): void => {
    if (closing) throw closedError('rabbitmq')
  }

  return {
    name: 'rabbitmq',
    capabilities: rabbitmqCapabilities(config),
    telemetry: endpointTelemetry('rabbitmq', supervisor, (topic) => ({ routingKey: topic })),
    // a window of 1,000+ keeps a fast consumer busy across round trips (docs/performance.md)
    defaultPrefetch: (concurrency) => Math.min(10_000, Math.max(1_000, concurrency * 8)),
    connect: () => supervisor.connect().then(() => {}),
    // after close() the outbox refuses with MSGKIT_CLOSED
    send: (topic, messages, sendOptions) => publisher.send(topic, messages, sendOptions),
    async provision(topic, group) {
      assertOpen()
      await supervisor.perform({ operation: 'provision', topic }, waitDeadline(), (model) =>
        topology.ensureGroup(model, topic, group),
      )
    },
    sendToGroup: (topic, group, messages, sendOptions) =>
      publisher.send(topic, messages, sendOptions, topology.naming.groupQueue(topic, group)),
    async browse(request, onMessage) {
      assertOpen()
      const browse = createBrowser(request, onMessage, config.queueType === 'quorum')
      const queue = topology.naming.groupQueue(request.topic, request.group)
      await supervisor.perform({ operation: 'browse', topic: request.topic }, waitDeadline(), (m) =>
        browse(m, queue),
      )
    },
    subscribe: (request, onDelivery) =>
      subscriptions.add(async () => {
        const counts = config.queueType === 'quorum'
        const subscriber = createSubscriber(request, onDelivery, { topology, supervisor, context, counts })
        const what = { operation: 'subscribe', topic: request.topic ?? request.pattern }
        await supervisor.perform(what, waitDeadline(), subscriber.start).catch(async (error: unknown) => {
          await subscriber.close()
          throw error
        })
        return subscriber
      }),
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
