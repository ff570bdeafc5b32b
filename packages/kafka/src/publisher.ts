/**
 * The publishing side on the kit's outbox: concurrent sends are batched by the outbox, and a batch
 * goes out as one kafkajs `send` per partition, all at once, with acks=-1 (every in-sync replica
 * has it). Per partition because a produce request is atomic only per partition: one `sendBatch`
 * over several partitions that fails on one of them (a leader not ready after a restart) has
 * written the others, and sending it all again duplicated them. Each record's partition is chosen
 * here, once, by kafkajs's default partitioner (murmur2 of the key, as any Kafka client; round
 * robin without a key), so a retry goes to the same partition; what one partition's send confirmed
 * is not sent again (the kit's `flushByKey`). A topic seen for the first time is created (or
 * checked) inside the flush, so its wait counts against each message's deadline like any other outage.
 *
 * After any failed batch the session's idempotent producer is renewed (transport.ts): kafkajs rolls its sequence
 * numbers back on failure, and reusing them after a batch that may have been written could make
 * the broker discard a later batch as a "duplicate". A new producer id makes a resend a possible
 * duplicate (at-least-once), never a loss.
 */
import { ErrorCodes, MsgkitError, type OutgoingMessage } from '@msgkit/core'
import {
  createOutbox,
  type ErrorTable,
  flushByKey,
  type OutboxEntry,
  type Supervisor,
} from '@msgkit/core/adapter'
import { CompressionTypes, type Message, Partitioners, type PartitionMetadata } from 'kafkajs'
import type { KafkaTransportConfig } from './config.js'
import { staleMetadata } from './errors.js'
import { encodeRecord, RECORD_BATCH_HEADER_BYTES } from './mapping.js'
import type { Topology } from './topology.js'
import type { KafkaSession } from './transport.js'

export function createPublisher(deps: {
  config: KafkaTransportConfig
  supervisor: Supervisor<KafkaSession>
  errors: ErrorTable
  topology: Topology
}) {
  const { config, errors, topology } = deps
  /** gzip can grow incompressible data a little: ~5 bytes per 16 KiB block plus its header */
  const gzipSlack = (bytes: number): number =>
    config.compression === 'gzip' ? Math.ceil(bytes / 16_384) * 5 + 64 : 0

  const partitioner = Partitioners.DefaultPartitioner()
  /** per partition count: what the partitioner reads of a topic whose partitions all have a leader */
  const layouts = new Map<number, PartitionMetadata[]>()
  const layout = (count: number): PartitionMetadata[] =>
    Array.from({ length: count }, (_, id) => ({
      partitionId: id,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [],
      isr: [],
    }))
  /** the partition kafkajs would pick for `message` on a topic of `count` partitions */
  const partitionOf = (topic: string, count: number, message: Message): number => {
    if (!layouts.has(count)) layouts.set(count, layout(count))
    return partitioner({ topic, partitionMetadata: layouts.get(count) ?? [], message })
  }

  const sendPerPartition = flushByKey<KafkaSession, Message>(
    (entry) => `${entry.wire.partition}\u0000${entry.topic}`,
    async (session, _key, entries) => {
      const [{ topic }] = entries as [OutboxEntry<Message>]
      await session.producer
        .use((producer) =>
          producer.send({
            topic,
            messages: entries.map((entry) => entry.wire),
            acks: -1,
            timeout: config.requestTimeout,
            compression: config.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
          }),
        )
        .catch((error: unknown) => {
          // deleted behind our back (or not spread yet): the retry creates or checks it again
          if (staleMetadata(error)) topology.forget(topic)
          throw error
        })
      return undefined
    },
  )

  const outbox = createOutbox<KafkaSession, Message>({
    name: 'kafka',
    supervisor: deps.supervisor,
    errors,
    lingerMs: config.linger,
    maxBatchMessages: 2_000,
    // the broker's limit applies to one partition's record batch; no batch of ours is larger
    maxBatchBytes: config.messageMaxBytes - RECORD_BATCH_HEADER_BYTES - gzipSlack(config.messageMaxBytes),
    async flush(session, batch, settled) {
      const refused = new Map<string, unknown>()
      for (const topic of new Set(batch.map((entry) => entry.topic))) {
        try {
          const count = await session.admin.use((admin) => topology.ensureTopic(admin, topic))
          for (const { topic: t, wire } of batch)
            if (t === topic && wire.partition === undefined) wire.partition = partitionOf(topic, count, wire)
        } catch (error) {
          if (batch.length === 1 || errors.classify(error) === 'connection') throw error
          refused.set(topic, error)
        }
      }
      const ready = refused.size === 0 ? batch : batch.filter((entry) => !refused.has(entry.topic))
      // a partition's records settle when its send answers (indexes are the batch's only when nothing was refused)
      if (ready.length > 0) await sendPerPartition(session, ready, ready === batch ? settled : undefined)
      return refused.size === 0 ? undefined : batch.map((entry) => refused.get(entry.topic))
    },
  })

  return {
    send(topic: string, messages: OutgoingMessage[], deadline: number): Promise<void> {
      return outbox.send(topic, messages, deadline, (message) => {
        const record = encodeRecord(message)
        // exact check of what core cannot see: key, per-header overhead, batch header, compression
        const bytes = record.bytes + RECORD_BATCH_HEADER_BYTES + gzipSlack(record.bytes)
        if (bytes > config.messageMaxBytes) {
          throw new MsgkitError(
            ErrorCodes.MESSAGE_TOO_LARGE,
            `A message for Kafka topic ${topic} needs up to ${bytes} bytes on the wire (body, key, headers and record overhead); the broker takes at most ${config.messageMaxBytes} (messageMaxBytes). Nothing was sent.`,
            { details: { topic, bytes, max: config.messageMaxBytes } },
          )
        }
        return { wire: record.message, bytes: record.bytes }
      })
    },
    /** gives queued sends the kit's grace period, then rejects the rest with MSGKIT_CLOSED */
    close: () => outbox.close(),
  }
}
