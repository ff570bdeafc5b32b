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
import { closedError, createSupervisor } from '@msgkit/core/adapter'
import { clientOptions, endpointLabel, type SqsTransportConfig } from './config.js'
import { createSqsErrors } from './errors.js'
import { MAX_HEADER_BYTES, maxBodyBytes, SNS_MAX_BYTES, SQS_MAX_BYTES } from './mapping.js'
import { createPublisher } from './publisher.js'
import { createReceipts } from './receipts.js'
import { createSubscriber } from './subscriber.js'
import { createTopology } from './topology.js'

/** The supervisor's session: one client per service, replaced together after a network failure. */
export type SqsSession = { sqs: SQS.SQSClient; sns: SNS.SNSClient }

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

export function createSqsTransport(config: SqsTransportConfig, context: TransportContext): Transport {
  const where = endpointLabel(config)
  const errors = createSqsErrors({ where, scrub: context.scrub })
  const close = async (session: SqsSession): Promise<void> => {
    session.sqs.destroy()
    session.sns.destroy()
  }
  const open = async (): Promise<SqsSession> => {
    const session = {
      sqs: new SQS.SQSClient(clientOptions(config)),
      sns: new SNS.SNSClient(clientOptions(config)),
    }
    const answer = await session.sqs
      .send(new SQS.ListQueuesCommand({ MaxResults: 1 }))
      .catch((error: unknown) => error)
    // a refusal by a reachable service that knew the signature (AccessDenied) still means up
    if (!(answer instanceof Error) || errors.classify(answer) === 'fatal') return session
    await close(session)
    throw answer
  }
  const supervisor = createSupervisor<SqsSession>({
    name: 'sqs',
    context,
    errors,
    driver: { endpoints: [where], open, close },
  })
  const topology = createTopology(config)
  const receipts = createReceipts(supervisor, errors)
  const publisher = createPublisher({ config, supervisor, errors, topology, context })
  const subscribers = new Set<{ close(): Promise<void> }>()
  const deadline = (): number => Date.now() + config.provisionTimeoutMs
  let closing: Promise<void> | undefined

  return {
    name: 'sqs',
    capabilities: sqsCapabilities(config),
    telemetry: {
      system: 'aws_sqs',
      serverAddress: config.endpoint ? new URL(config.endpoint).hostname : where,
    },
    connect: () => supervisor.connect().then(() => {}),
    send: (topic, messages, options) => publisher.send(topic, messages, options),
    async provision(topic, group) {
      if (closing) throw closedError('sqs')
      await supervisor.perform({ operation: 'provision', topic }, deadline(), (s) =>
        topology.ensureGroup(s, topic, group),
      )
    },
    async subscribe(request, onDelivery) {
      if (closing) throw closedError('sqs')
      const topic = request.topic
      if (topic === undefined)
        throw new MsgkitError(
          ErrorCodes.CAPABILITY_UNSUPPORTED,
          'SNS has no topic patterns: subscribe to each topic.',
        )
      const onClosed = () => subscribers.delete(subscriber)
      const deps = { config, supervisor, topology, receipts, errors, context, onClosed }
      const subscriber = createSubscriber({ ...request, topic }, onDelivery, deps)
      subscribers.add(subscriber)
      await subscriber.start().catch(async (error: unknown) => {
        await subscriber.close()
        throw error
      })
      return subscriber
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...subscribers].map((s) => s.close()))
        await Promise.all([publisher.close(), receipts.close()])
        await supervisor.close()
      })()
      return closing
    },
  }
}
