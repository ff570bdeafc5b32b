/**
 * message-queue-toolkit's SQS adapter (@message-queue-toolkit/sqs on @message-queue-toolkit/core),
 * set up the way its README shows, on an existing queue (`locatorConfig`), with the same zod-validated
 * message type as the AMQP peer. A peer in the SQS bench, on the same SDK and the same server.
 */
import type { SQSClient } from '@aws-sdk/client-sqs'
import { AbstractSqsConsumer, AbstractSqsPublisher } from '@message-queue-toolkit/sqs'
import { consumerDeps, errorReporter, logger, MQT_EVENT, type MqtEvent, mqtHandlers } from './mqt.js'

/** What it guarantees, for the tables (read from its source, version 24.2.1 / core 25.4.0 / sqs-consumer 14.2.8). */
export const MQT_SQS_GUARANTEES =
  "publish(): one SendMessage per message, awaited (SQS stored it), no batching; consume: sqs-consumer, each message deleted with its own DeleteMessage after the handler; a handler's retryLater is sent again as a new message (standard queues) until maxRetryDuration, dead letters through the queue's redrive policy; every message is validated with zod on both sides. Here: 4 consumer instances (`concurrentConsumersAmount`), 10 messages per receive (`batchSize`; its default is 1), long poll 1 s"

export class MqtSqsPublisher extends AbstractSqsPublisher<MqtEvent> {
  constructor(sqsClient: SQSClient, queueUrl: string) {
    super(
      { sqsClient, logger, errorReporter } as never,
      {
        messageSchemas: [MQT_EVENT],
        messageTypeResolver: { messageTypePath: 'type' },
        locatorConfig: { queueUrl },
        logMessages: false,
      } as never,
    )
  }
}

export class MqtSqsConsumer extends AbstractSqsConsumer<MqtEvent, undefined> {
  constructor(sqsClient: SQSClient, queueUrl: string, onMessage: (message: MqtEvent) => void) {
    super(
      { sqsClient, ...consumerDeps } as never,
      {
        locatorConfig: { queueUrl },
        messageTypeResolver: { messageTypePath: 'type' },
        logMessages: false,
        concurrentConsumersAmount: 4,
        consumerOverrides: { batchSize: 10, waitTimeSeconds: 1 },
        handlers: mqtHandlers(onMessage),
      } as never,
      undefined,
    )
  }
}
