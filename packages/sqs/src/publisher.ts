/**
 * Publishing on the kit's outbox: each flush is a SendMessageBatch (fan-out off) or PublishBatch (on)
 * of ≤ 10 entries within AWS's per-call size; 8 on the wire at once on standard topics, 1 on FIFO
 * ones. Outcomes are per entry: the kit retries throttled entries and rejects refused ones.
 * `detectUnroutable` (fan-out on): a confirmed send to a topic without a subscription rejects.
 */
import * as SNS from '@aws-sdk/client-sns'
import * as SQS from '@aws-sdk/client-sqs'
import type { OutgoingMessage, SendOptions, TransportContext } from '@msgkit/core'
import { ErrorCodes, MsgkitError } from '@msgkit/core'
import { createOutbox, type ErrorTable, type OutboxEntry, type Supervisor } from '@msgkit/core/adapter'
import type { SqsTransportConfig } from './config.js'
import { entryError, isNotFound } from './errors.js'
import { SNS_MAX_BYTES, SQS_MAX_BYTES, toWire, type Wire } from './mapping.js'
import type { Topology } from './topology.js'
import type { SqsSession } from './transport.js'

/** An entry the answer mentions neither as successful nor as failed (moto's PublishBatch does that). */
const UNANSWERED = { Code: 'NotConfirmed', Message: 'not in the batch answer', SenderFault: false }

export interface PublisherDeps {
  config: SqsTransportConfig
  supervisor: Supervisor<SqsSession>
  errors: ErrorTable
  topology: Topology
  context: TransportContext
}

export function createPublisher(deps: PublisherDeps) {
  const { config, topology } = deps
  const maxBytes = config.fanout ? SNS_MAX_BYTES : SQS_MAX_BYTES

  /** One batch call: each entry's error (undefined = confirmed); confirmed wires are marked. */
  const call = async (s: SqsSession, target: string, wires: Wire[]): Promise<unknown[]> => {
    const ids = (w: Wire, i: number) => ({
      Id: `m${i}`,
      MessageGroupId: w.groupId,
      MessageDeduplicationId: w.deduplicationId,
    })
    const entries = wires.map((w, i) => ({ ...ids(w, i), MessageAttributes: w.attributes }))
    const answer = config.fanout
      ? await s.sns.send(
          new SNS.PublishBatchCommand({
            TopicArn: target,
            PublishBatchRequestEntries: entries.map((e, i) => ({ ...e, Message: wires[i]?.body })),
          }),
        )
      : await s.sqs.send(
          new SQS.SendMessageBatchCommand({
            QueueUrl: target,
            Entries: entries.map((e, i) => ({
              ...e,
              MessageBody: wires[i]?.body,
              DelaySeconds: wires[i]?.delaySeconds,
            })),
          }),
        )
    const ok = new Set(answer.Successful?.map((e) => e.Id))
    const failed = new Map(answer.Failed?.map((e) => [e.Id, e]))
    return wires.map((w, i) => {
      w.confirmed = ok.has(`m${i}`)
      return w.confirmed ? undefined : entryError(failed.get(`m${i}`) ?? UNANSWERED)
    })
  }

  /** The outbox hands over ≤ 10 entries within one call's size; a batch of several topics is one call each. */
  const flush = async (s: SqsSession, batch: ReadonlyArray<OutboxEntry<Wire>>): Promise<unknown[]> => {
    const outcomes: unknown[] = batch.map(() => undefined)
    const byTopic = new Map<string, number[]>()
    for (const [i, e] of batch.entries())
      if (!e.wire.confirmed) byTopic.set(e.topic, [...(byTopic.get(e.topic) ?? []), i])
    const sendTopic = async ([topic, indexes]: [string, number[]]): Promise<void> => {
      const target = await topology.ensureTopic(s, topic).catch((error: unknown) => {
        if (isNotFound(error)) topology.forget(topic) // deleted behind our back: declared again on the retry
        throw error
      })
      const results = await call(
        s,
        target,
        indexes.map((i) => batch[i]?.wire as Wire),
      )
      for (const [k, index] of indexes.entries()) outcomes[index] = results[k]
    }
    // a whole call failed: the kit retries (connection, transient) or tries each entry alone (confirmed ones are skipped)
    const failed = (await Promise.allSettled([...byTopic].map(sendTopic))).find(
      (r) => r.status === 'rejected',
    )
    if (failed) throw failed.reason
    return outcomes
  }

  const outbox = createOutbox<SqsSession, Wire>({
    name: 'sqs',
    supervisor: deps.supervisor,
    errors: deps.errors,
    flush,
    maxBatchMessages: 10,
    maxBatchBytes: maxBytes,
    // FIFO: one call after the other keeps the order within each MessageGroupId
    maxInFlight: config.fifo ? 1 : 8,
  })

  /** Fan-out on: SNS drops a message for a topic without subscriptions; ask (a question that fails tells nothing). */
  const routed = (topic: string, deadline: number): Promise<boolean> =>
    deps.supervisor
      .perform({ operation: 'check subscriptions', topic }, deadline, (s) =>
        topology.hasSubscribers(s, topic),
      )
      .catch((error: unknown) => {
        deps.context.logger.debug({ topic, err: String(error) }, 'sqs: could not list subscriptions')
        return true
      })

  return {
    async send(topic: string, messages: OutgoingMessage[], options: SendOptions): Promise<void> {
      const shape = { fifo: config.fifo, fanout: config.fanout, maxBytes }
      const wires = messages.map((m) => toWire(topic, m, shape)).map((wire) => ({ wire, bytes: wire.bytes }))
      await outbox.send(topic, wires, options.deadline)
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
