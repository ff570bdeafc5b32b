/**
 * Publishing on the kit's outbox: each flush is a SendMessageBatch (fan-out off) or PublishBatch (on)
 * of ≤ 10 entries within AWS's per-call size; 8 on the wire at once on standard topics, 1 on FIFO
 * ones. Outcomes are per entry: the kit retries throttled entries and rejects refused ones.
 * `detectUnroutable` (fan-out on): a confirmed send to a topic without a subscription rejects.
 */
import * as SNS from '@aws-sdk/client-sns'
import * as SQS from '@aws-sdk/client-sqs'
import type { OutgoingMessage, SendOptions } from '@msgkit/core'
import { ErrorCodes, MsgkitError, withTimeout } from '@msgkit/core'
import { createOutbox, flushByKey, type OutboxEntry } from '@msgkit/core/adapter'
import { entryError, isNotFound } from './errors.js'
import { SNS_MAX_BYTES, SQS_MAX_BYTES, toWire, type Wire } from './mapping.js'
import type { SqsParts, SqsSession } from './transport.js'

/** An entry the answer mentions neither as successful nor as failed (moto's PublishBatch does that). */
const UNANSWERED = { Code: 'NotConfirmed', Message: 'not in the batch answer', SenderFault: false }

export function createPublisher({ config, supervisor, errors, topology, context }: SqsParts) {
  const shape = { ...config, maxBytes: config.fanout ? SNS_MAX_BYTES : SQS_MAX_BYTES }

  /** One batch call to one topic: each entry's error (undefined = confirmed). */
  const call = async (s: SqsSession, topic: string, batch: ReadonlyArray<OutboxEntry<Wire>>) => {
    const target = await topology.ensureTopic(s, topic).catch((error: unknown) => {
      if (isNotFound(error)) topology.forget(topic) // deleted behind our back: declared again on the retry
      throw error
    })
    const entries = batch.map(({ wire }, i) => ({
      Id: `m${i}`,
      MessageGroupId: wire.groupId,
      MessageDeduplicationId: wire.deduplicationId,
      MessageAttributes: wire.attributes,
    }))
    const answer = config.fanout
      ? await s.sns.send(
          new SNS.PublishBatchCommand({
            TopicArn: target,
            PublishBatchRequestEntries: entries.map((e, i) => ({ ...e, Message: batch[i]?.wire.body })),
          }),
        )
      : await s.sqs.send(
          new SQS.SendMessageBatchCommand({
            QueueUrl: target,
            Entries: entries.map((e, i) => ({
              ...e,
              MessageBody: batch[i]?.wire.body,
              DelaySeconds: batch[i]?.wire.delaySeconds,
            })),
          }),
        )
    const ok = new Set(answer.Successful?.map((e) => e.Id))
    const failed = new Map(answer.Failed?.map((e) => [e.Id, e]))
    return entries.map(({ Id }) => (ok.has(Id) ? undefined : entryError(failed.get(Id) ?? UNANSWERED)))
  }

  const outbox = createOutbox<SqsSession, Wire>({
    name: 'sqs',
    supervisor,
    errors,
    // a batch of several topics is one call each
    flush: flushByKey((entry) => entry.topic, call),
    maxBatchMessages: 10,
    maxBatchBytes: shape.maxBytes,
    // FIFO: one call after the other keeps the order within each MessageGroupId
    maxInFlight: config.fifo ? 1 : 8,
  })

  /** Fan-out on: SNS drops a message for a topic without subscriptions; ask (a question that fails tells nothing). */
  const routed = (topic: string, deadline: number): Promise<boolean> =>
    withTimeout(
      supervisor.perform({ operation: 'check subscriptions', topic }, deadline, (s) =>
        topology.hasSubscribers(s, topic),
      ),
      // bounded by the send's deadline (the transport keeps it): an unanswered question tells nothing
      Math.max(0, deadline - Date.now()),
      () => new Error('no answer before the deadline'),
    ).catch((error: unknown) => {
      context.logger.debug({ topic, err: String(error) }, 'sqs: could not list subscriptions')
      return true
    })

  return {
    async send(topic: string, messages: OutgoingMessage[], options: SendOptions): Promise<void> {
      await outbox.send(topic, messages, options.deadline, (m) => {
        const wire = toWire(topic, m, shape)
        return { wire, bytes: wire.bytes }
      })
      if (!options.detectUnroutable || !config.fanout || (await routed(topic, options.deadline))) return
      throw new MsgkitError(
        ErrorCodes.UNROUTABLE,
        `SNS confirmed ${messages.length} message(s) for ${topic}, but the topic has no subscription: they reached no group and are gone. Provision the groups (messaging.provision) before publishing.`,
        { details: { topic, ids: messages.map((m) => m.id) } },
      )
    },
    close: () => outbox.close(),
  }
}
