/**
 * The SQS transport on the adapter kit. HTTP has no connection, so the supervisor's session is a pair
 * of SDK clients: opening one asks a cheap question (ListQueues, 1 result) to prove that the endpoint
 * answers and takes the credentials; a request failing with a network error marks it lost, and the
 * reconnect opens fresh clients. Publishes wait in the outbox, polls for the session, settles neither.
 */
import * as SNS from '@aws-sdk/client-sns'
import * as SQS from '@aws-sdk/client-sqs'
import {
  type Capabilities,
  ErrorCodes,
  MsgkitError,
  type Transport,
  type TransportContext,
} from '@msgkit/core'
import { closedError, createSubscriptionSet, createSupervisor, httpSessionDriver } from '@msgkit/core/adapter'
import { clientOptions, endpointLabel, type SqsTransportConfig } from './config.js'
import { createSqsErrors } from './errors.js'
import { MAX_HEADER_BYTES, maxBodyBytes, SNS_MAX_BYTES, SQS_MAX_BYTES } from './mapping.js'
import { createPublisher } from './publisher.js'
import { createReceipts } from './receipts.js'
import { startSubscriber } from './subscriber.js'
import { createTopology } from './topology.js'

/** The supervisor's session: one client per service, replaced together after a network failure. */
export type SqsSession = { sqs: SQS.SQSClient; sns: SNS.SNSClient }
/** What the publisher and the subscribers share: the config and the transport's kit parts. */
export type SqsParts = ReturnType<typeof createParts>

/** What SQS (and SNS) do natively, given the config (docs/brokers/sqs.md says why). */
export function sqsCapabilities(config: SqsTransportConfig): Capabilities {
  return {
    persistence: true,
    fanout: config.fanout,
    // FIFO hands one MessageGroupId to one consumer at a time, in order; standard queues keep no order
    orderedKeys: config.fifo ? 'group' : false,
    // DelaySeconds (fan-out off) or the consumer's wait (on); FIFO has no per-message delay
    delay: config.fifo ? false : { maxMs: 900_000 },
    patterns: false,
    // a base64 body next to a full set of attributes still fits SNS's / SQS's limit
    maxMessageBytes: maxBodyBytes(config.fanout ? SNS_MAX_BYTES : SQS_MAX_BYTES),
    maxHeaderBytes: MAX_HEADER_BYTES,
    deadLetter: true,
    deliveryCount: 'exact', // ApproximateReceiveCount
    // SNS drops a message for a topic without subscriptions (ListSubscriptionsByTopic tells); a queue keeps it
    unroutable: config.fanout,
  }
}

/** The error table, the supervisor of the session, the topology and the receipts' outbox. */
function createParts(config: SqsTransportConfig, context: TransportContext) {
  const where = endpointLabel(config)
  const errors = createSqsErrors({ where, scrub: context.scrub })
  const supervisor = createSupervisor<SqsSession>({
    name: 'sqs',
    context,
    errors,
    driver: httpSessionDriver({
      endpoint: where,
      errors,
      create: () => ({
        sqs: new SQS.SQSClient(clientOptions(config)),
        sns: new SNS.SNSClient(clientOptions(config)),
      }),
      probe: (session) => session.sqs.send(new SQS.ListQueuesCommand({ MaxResults: 1 })),
      destroy(session) {
        session.sqs.destroy()
        session.sns.destroy()
      },
    }),
  })
  const topology = createTopology(config)
  const receipts = createReceipts(supervisor, errors)
  return { config, context, where, errors, supervisor, topology, receipts }
}

export function createSqsTransport(config: SqsTransportConfig, context: TransportContext): Transport {
  const parts = createParts(config, context)
  const { supervisor, topology, receipts } = parts
  const publisher = createPublisher(parts)
  const subscriptions = createSubscriptionSet('sqs')
  let closing: Promise<void> | undefined

  return {
    name: 'sqs',
    capabilities: sqsCapabilities(config),
    // every send goes through the kit's outbox, and the unroutable check after it is bounded too
    keepsDeadlines: true,
    telemetry: {
      system: 'aws_sqs',
      serverAddress: config.endpoint ? new URL(config.endpoint).hostname : parts.where,
    },
    connect: () => supervisor.connect().then(() => {}),
    send: (topic, messages, options) => publisher.send(topic, messages, options),
    async provision(topic, group) {
      if (closing) throw closedError('sqs')
      const deadline = Date.now() + config.provisionTimeoutMs
      await supervisor.perform({ operation: 'provision', topic }, deadline, (s) =>
        topology.ensureGroup(s, topic, group),
      )
    },
    async subscribe(request, onDelivery) {
      const topic = request.topic
      if (topic === undefined)
        throw new MsgkitError(
          ErrorCodes.CAPABILITY_UNSUPPORTED,
          'SNS has no topic patterns: subscribe to each topic.',
        )
      return subscriptions.add(() => startSubscriber({ ...request, topic }, onDelivery, parts))
    },
    close() {
      closing ??= (async () => {
        await subscriptions.close()
        await Promise.all([publisher.close(), receipts.close()])
        await supervisor.close()
      })()
      return closing
    },
  }
}
