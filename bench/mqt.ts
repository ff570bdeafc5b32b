/**
 * message-queue-toolkit (@message-queue-toolkit/amqp on @message-queue-toolkit/core), set up the way
 * its README shows: a queue publisher and a queue consumer with one zod-validated message type.
 * A peer in the RabbitMQ bench, on the same amqplib and the same broker.
 */
import {
  AbstractAmqpQueueConsumer,
  AbstractAmqpQueuePublisher,
  AmqpConnectionManager,
} from '@message-queue-toolkit/amqp'
import { MessageHandlerConfigBuilder } from '@message-queue-toolkit/core'
import { z } from 'zod'

/** What it guarantees, for the tables (read from its source, version 23.1.0 / core 25.4.0). */
export const MQT_GUARANTEES =
  'publish() is fire-and-forget: no publisher confirms, it returns before the write, a message the broker drops (crash, alarm, closed channel) is lost without an error; consume: ack after the handler, no prefetch limit, a failed handler is requeued at once (no backoff, no attempt count, no dead letters: its AMQP adapter rejects `deadLetterQueue`); every message is validated with zod on both sides'

export const MQT_EVENT = z.object({
  id: z.string(),
  type: z.literal('bench.event'),
  timestamp: z.string().optional(),
  payload: z.record(z.string(), z.unknown()),
})
export type MqtEvent = z.infer<typeof MQT_EVENT>

const silent = (): void => {}
/** a logger that says nothing (the toolkit's logger interface, pino-like) */
export const logger = {
  level: 'silent',
  info: silent,
  warn: silent,
  error: silent,
  debug: silent,
  trace: silent,
  fatal: silent,
  silent,
  child: () => logger,
  isLevelEnabled: () => false,
}
export const errorReporter = { report: silent }

/** What the toolkit's consumers (AMQP and SQS) are given besides their client: silence, errors as they are. */
export const consumerDeps = {
  logger,
  errorReporter,
  consumerErrorResolver: { processError: (error: unknown) => error },
  transactionObservabilityManager: undefined,
}

/** The one handler every toolkit consumer in the bench has: count the message, succeed. */
export const mqtHandlers = (onMessage: (message: MqtEvent) => void) =>
  new MessageHandlerConfigBuilder<MqtEvent, undefined>()
    .addConfig(MQT_EVENT, async (message: MqtEvent) => {
      onMessage(message)
      return { result: 'success' as const }
    })
    .build()

export function mqtConnection(url: string): AmqpConnectionManager {
  const u = new URL(url)
  return new AmqpConnectionManager(
    {
      hostname: u.hostname,
      port: Number(u.port || 5672),
      username: decodeURIComponent(u.username || 'guest'),
      password: decodeURIComponent(u.password || 'guest'),
      vhost: decodeURIComponent(u.pathname.slice(1)),
      useTls: u.protocol === 'amqps:',
    },
    logger as never,
  )
}

export class MqtPublisher extends AbstractAmqpQueuePublisher<MqtEvent> {
  constructor(manager: AmqpConnectionManager, queueName: string) {
    super(
      { amqpConnectionManager: manager, logger: logger as never, errorReporter } as never,
      {
        messageSchemas: [MQT_EVENT],
        messageTypeResolver: { messageTypePath: 'type' },
        locatorConfig: { queueName },
        isLazyInitEnabled: false,
        logMessages: false,
      } as never,
    )
  }

  /** a round trip on the publishing channel: every publish before it has reached the broker */
  async flushed(): Promise<void> {
    await (this as unknown as { channel: { checkQueue(q: string): Promise<unknown> } }).channel.checkQueue(
      (this as unknown as { queueName: string }).queueName,
    )
  }
}

export class MqtConsumer extends AbstractAmqpQueueConsumer<MqtEvent, undefined> {
  constructor(manager: AmqpConnectionManager, queueName: string, onMessage: (message: MqtEvent) => void) {
    super(
      { amqpConnectionManager: manager, ...consumerDeps } as never,
      {
        locatorConfig: { queueName },
        messageTypeResolver: { messageTypePath: 'type' },
        logMessages: false,
        handlers: mqtHandlers(onMessage),
      } as never,
      undefined,
    )
  }
}

/** A message in the toolkit's format (its publisher would add the timestamp and retry count itself). */
export const mqtMessage = (id: string, payload: Record<string, unknown>): MqtEvent => ({
  id,
  type: 'bench.event',
  timestamp: new Date().toISOString(),
  payload,
})
