/** The built-in memory transport: the embedded default for demos, unit tests and local development. */
import { z } from 'zod'
import { SETTLED } from '../adapter/delivery.js'
import { ErrorCodes, MsgkitError } from '../errors.js'
import type {
  Delivery,
  OutgoingMessage,
  SendOptions,
  Transport,
  TransportDefinition,
  TransportMessage,
  TransportSubscription,
} from '../spi.js'
import { getMemoryBroker, type MemoryConsumer, memoryQueueName, type StoredMessage } from './broker.js'

/** A stored message as the transport hands it over; `deliveries` counts this delivery too. */
function toTransportMessage(message: StoredMessage, deliveries: number): TransportMessage {
  const out: TransportMessage = {
    id: message.id,
    topic: message.topic,
    // stored once at send time and shared read-only: no copy per delivery
    headers: message.headers,
    body: message.body,
    timestamp: message.timestamp,
    attempt: deliveries,
    redelivered: deliveries > 1,
  }
  if (message.key !== undefined) out.key = message.key
  return out
}

export const memoryConfigSchema = z
  .object({
    /** which in-process broker to join (`memory://name`); services sharing a name talk to each other */
    broker: z.string().min(1).default('default'),
    password: z.string().optional(),
    maxMessageBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024),
    maxHeaderBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(64 * 1024),
    /** wait before reconnecting after a (simulated) broker restart */
    reconnectDelayMs: z.coerce.number().int().min(0).default(100),
  })
  .strict()

export type MemoryTransportConfig = z.infer<typeof memoryConfigSchema>

/** The memory transport's definition (also reachable as `memory://`). */
export const memoryTransport: TransportDefinition<MemoryTransportConfig> = {
  name: 'memory',
  schemes: ['memory'],
  configSchema: memoryConfigSchema,
  secretFields: ['password'],
  fromUrl(url) {
    const out: Record<string, unknown> = { ...url.params }
    const host = url.hosts[0]?.host
    if (host) out.broker = host
    if (url.password !== undefined) out.password = url.password
    return out
  },
  create(config, context): Transport {
    const broker = getMemoryBroker(config.broker)
    let connected = false
    let closed = false
    let waiters: Array<() => void> = []
    const subscriptions = new Set<{ reattach(): void; close(): Promise<void> }>()
    let unlisten: (() => void) | undefined

    const wakeWaiters = (): void => {
      const w = waiters
      waiters = []
      for (const f of w) f()
    }

    const onBrokerState = (up: boolean): void => {
      if (closed) return
      if (!up) {
        if (connected) {
          connected = false
          context.emit({ type: 'disconnected', error: new Error(`memory broker "${broker.name}" went down`) })
        }
        return
      }
      // reconnect after a short pause, like a real client's backoff
      context.emit({ type: 'reconnecting', attempt: 1, delayMs: config.reconnectDelayMs })
      setTimeout(() => {
        if (closed || !broker.up) return
        connected = true
        for (const s of subscriptions) s.reattach()
        context.emit({ type: 'connected' })
        wakeWaiters()
      }, config.reconnectDelayMs).unref?.()
    }

    const waitConnected = async (deadline: number): Promise<void> => {
      while (!connected) {
        if (closed) throw new MsgkitError(ErrorCodes.CLOSED, 'The memory transport is closed.')
        const left = deadline - Date.now()
        if (left <= 0) {
          throw new MsgkitError(
            ErrorCodes.PUBLISH_TIMEOUT,
            `Memory broker "${broker.name}" stayed unavailable until the publish deadline.`,
            {
              retriable: true,
            },
          )
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left)
          waiters.push(() => {
            clearTimeout(t)
            resolve()
          })
        })
      }
    }

    /**
     * Puts each message into every queue it routes to; throws MSGKIT_UNROUTABLE when asked to.
     * At most one body copy: a body core encoded (`owned`) is kept, the caller's own bytes are
     * copied (it may reuse its array). The headers object is core's own, made for this message, and
     * is shared read-only from here on.
     */
    const store = (topic: string, messages: OutgoingMessage[], options: SendOptions): void => {
      let unroutable: string[] | undefined
      for (const m of messages) {
        const stored: StoredMessage = {
          id: m.id,
          topic,
          headers: m.headers,
          // bytes core encoded are kept as they are; the caller's own (it may reuse them) are copied
          body: m.owned ? m.body : Buffer.from(m.body),
          timestamp: m.timestamp,
        }
        if (m.key !== undefined) stored.key = m.key
        if (!broker.publish(topic, stored, m.delayMs)) {
          unroutable ??= []
          unroutable.push(m.id)
        }
      }
      if (options.detectUnroutable && unroutable) {
        throw new MsgkitError(
          ErrorCodes.UNROUTABLE,
          `${unroutable.length} message(s) for ${topic} reached no group: nobody provisioned a group for this topic.`,
          { details: { topic, ids: unroutable } },
        )
      }
    }

    return {
      name: 'memory',
      // an in-process broker: no server address; a custom `messaging.system` value (none in the conventions fits)
      telemetry: { system: 'msgkit_memory' },
      capabilities: {
        persistence: true,
        fanout: true,
        // competing consumers of a group are served round-robin: order holds within each one
        orderedKeys: 'consumer',
        delay: { maxMs: 24 * 60 * 60 * 1000 },
        patterns: true,
        maxMessageBytes: config.maxMessageBytes,
        maxHeaderBytes: config.maxHeaderBytes,
        deadLetter: true,
        // the memory broker counts every delivery, give-backs included
        deliveryCount: 'exact',
        unroutable: true,
        temporaryGroups: true,
        // nothing is kept for a group that did not exist when a message was published
        replay: false,
        sendToGroup: true,
        browse: 'exact',
      },
      async connect() {
        if (closed) throw new MsgkitError(ErrorCodes.CLOSED, 'The memory transport is closed.')
        if (!broker.up) {
          throw new MsgkitError(
            ErrorCodes.CONNECTION_FAILED,
            `Memory broker "${broker.name}" is not running (stopped or restarting). Start it, or try again.`,
            {
              retriable: true,
            },
          )
        }
        if (broker.password !== undefined && broker.password !== config.password) {
          throw new MsgkitError(
            ErrorCodes.AUTH_FAILED,
            `Memory broker "${broker.name}" refused the credentials. Check the password in the msgkit config.`,
          )
        }
        connected = true
        unlisten = broker.onStateChange(onBrokerState)
        context.emit({ type: 'connected' })
      },
      send(topic, messages, options) {
        // connected (the usual case): stored at once, no async frame
        if (!connected) return waitConnected(options.deadline).then(() => store(topic, messages, options))
        try {
          store(topic, messages, options)
          return SETTLED
        } catch (error) {
          return Promise.reject(error)
        }
      },
      async provision(topic, group) {
        broker.ensureQueue({ topic }, group)
      },
      async subscribe(request, onDelivery): Promise<TransportSubscription> {
        if (closed) throw new MsgkitError(ErrorCodes.CLOSED, 'The memory transport is closed.')
        const binding =
          request.topic !== undefined ? { topic: request.topic } : { pattern: request.pattern as string }
        if (request.temporary && broker.hasQueue(memoryQueueName(binding, request.group))) {
          throw new MsgkitError(
            ErrorCodes.INVALID_ARGUMENT,
            `Group ${request.group} already exists for ${request.topic ?? request.pattern}: a temporary group needs a name of its own.`,
          )
        }
        const qname = broker.ensureQueue(binding, request.group)
        let stopped = false
        const reportError = (error: unknown): void => context.emit({ type: 'error', error })
        const consumer: MemoryConsumer = {
          prefetch: request.prefetch,
          unacked: new Map(),
          deliver({ message, deliveries, tag }) {
            let settled = false
            // (plain methods, not a class: wrappers spread deliveries — `{ ...delivery, message }`)
            const delivery: Delivery = {
              message: toTransportMessage(message, deliveries),
              ack() {
                if (settled) return SETTLED
                settled = true
                broker.ack(qname, consumer, tag)
                return SETTLED
              },
              nack(options) {
                if (settled) return SETTLED
                settled = true
                if (options?.requeue === false) broker.ack(qname, consumer, tag)
                else broker.requeue(qname, consumer, tag)
                return SETTLED
              },
            }
            // send, ack and nack are done at once: SETTLED, which core attaches no reaction to;
            // core's consumer answers SETTLED unless it asks the transport to wait (never rejects)
            const taken = onDelivery(delivery)
            if (taken !== SETTLED) taken.then(undefined, reportError)
          },
        }
        const handle = {
          reattach() {
            if (!stopped) broker.attach(qname, consumer)
          },
          async close() {
            stopped = true
            subscriptions.delete(handle)
            broker.detach(qname, consumer)
            if (request.temporary) broker.deleteQueue(qname)
          },
        }
        subscriptions.add(handle)
        if (connected) broker.attach(qname, consumer)
        return {
          async stop() {
            // stop new deliveries but keep the unacked ones with this consumer until close()
            stopped = true
            consumer.prefetch = 0
          },
          close: handle.close,
        }
      },
      async sendToGroup(topic, group, messages, options) {
        await waitConnected(options.deadline)
        const qname = memoryQueueName({ topic }, group)
        if (!broker.hasQueue(qname)) {
          throw new MsgkitError(
            ErrorCodes.UNROUTABLE,
            `Group ${group} has no storage for ${topic} (never provisioned, or deleted): nothing was stored.`,
            { details: { topic, group, ids: messages.map((m) => m.id) } },
          )
        }
        for (const m of messages) {
          const stored: StoredMessage = {
            id: m.id,
            topic,
            headers: m.headers,
            body: Buffer.from(m.body),
            timestamp: m.timestamp,
          }
          if (m.key !== undefined) stored.key = m.key
          broker.enqueue(qname, stored)
        }
      },
      async browse(request, onMessage) {
        if (closed) throw new MsgkitError(ErrorCodes.CLOSED, 'The memory transport is closed.')
        const qname = memoryQueueName({ topic: request.topic }, request.group)
        for (const { message, deliveries } of broker.peek(qname, request.limit)) {
          if (request.signal?.aborted) return
          // reading is not a delivery: the message shows the number its next delivery will have
          onMessage(toTransportMessage(message, deliveries + 1))
        }
      },
      async close() {
        if (closed) return
        closed = true
        unlisten?.()
        await Promise.all([...subscriptions].map((s) => s.close()))
        connected = false
        wakeWaiters()
      },
    }
  },
}
