/**
 * The publishing side: concurrent send() calls are coalesced into one kafkajs sendBatch per tick
 * (or per `linger` ms), one batch in flight at a time; each send() resolves when the batch that
 * carried it was acknowledged by all in-sync replicas (acks=-1).
 *
 * Failures: a transient failure (broker down, leader moving) puts the batch's messages back at the
 * front of the queue and tries again with backoff until each message's deadline, then rejects it
 * with MSGKIT_PUBLISH_TIMEOUT. After any failed batch the idempotent kafkajs producer is replaced:
 * kafkajs rolls its sequence numbers back on failure, and reusing them after a batch that may have
 * been written could make the broker discard a later batch as a "duplicate". A new producer id
 * makes a resend a possible duplicate (at-least-once), never a loss.
 */
import { backoffDelay, ErrorCodes, type Logger, MsgkitError, type OutgoingMessage, sleep } from '@msgkit/core'
import { CompressionTypes, type Kafka, Partitioners, type Producer, type TopicMessages } from 'kafkajs'
import { CLIENT_RETRY, RETRY_BACKOFF } from './client.js'
import type { ClusterAdmin } from './cluster-admin.js'
import type { KafkaTransportConfig } from './config.js'
import type { ConnectionState } from './connection-state.js'
import { classify, isConnectionLoss, isTransient, toMsgkitError, transportClosed } from './errors.js'
import { type EncodedRecord, encodeRecord, RECORD_BATCH_HEADER_BYTES } from './records.js'

interface PendingSend {
  topic: string
  records: EncodedRecord[]
  bytes: number
  deadline: number
  settled: boolean
  /** send this one in a batch of its own (after a batch-level rejection) */
  alone: boolean
  resolve(): void
  reject(error: unknown): void
  timer: NodeJS.Timeout
}

export interface Publisher {
  /** connect the kafkajs producer (idempotent producers get their producer id here) */
  start(): Promise<void>
  send(topic: string, messages: OutgoingMessage[], deadline: number): Promise<void>
  /** stop accepting; wait (up to `graceMs`) for what is queued; reject the rest with MSGKIT_CLOSED */
  close(graceMs: number): Promise<void>
}

export interface PublisherDeps {
  kafka: Kafka
  config: KafkaTransportConfig
  admin: ClusterAdmin
  connection: ConnectionState
  logger: Logger
  secrets: readonly string[]
}

export function createPublisher(deps: PublisherDeps): Publisher {
  const { kafka, config, admin, connection, logger, secrets } = deps
  /** gzip can grow incompressible data a little: ~5 bytes per 16 KiB block plus its header */
  const gzipSlack = (bytes: number): number =>
    config.compression === 'gzip' ? Math.ceil(bytes / 16_384) * 5 + 64 : 0
  /** the broker's limit applies to one partition's record batch; no batch of ours is larger */
  const maxBatchBytes = config.messageMaxBytes - RECORD_BATCH_HEADER_BYTES - gzipSlack(config.messageMaxBytes)
  const queue: PendingSend[] = []
  let producer: Producer | undefined
  let producerReady: Promise<Producer> | undefined
  let flushing = false
  let scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined
  let closed = false
  /** set when close() stopped waiting: nothing is sent any more */
  let abandoned = false
  let idle: (() => void) | undefined
  /** the batch being sent right now */
  let inFlight: PendingSend[] = []

  const newProducer = (): Producer =>
    kafka.producer({
      idempotent: config.idempotent,
      maxInFlightRequests: config.idempotent ? 1 : undefined,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: CLIENT_RETRY,
    })

  const connected = (): Promise<Producer> => {
    if (abandoned) return Promise.reject(transportClosed())
    if (!producerReady) {
      const p = newProducer()
      producerReady = p.connect().then(
        () => {
          producer = p
          return p
        },
        (error: unknown) => {
          producerReady = undefined
          void p.disconnect().catch(() => {})
          throw error
        },
      )
    }
    return producerReady
  }

  /** Drop the current kafkajs producer (see the module comment); the next batch makes a new one. */
  const replaceProducer = (): void => {
    const old = producer
    producer = undefined
    producerReady = undefined
    void old?.disconnect().catch(() => {})
  }

  const settle = (entry: PendingSend, error?: unknown): void => {
    if (entry.settled) return
    entry.settled = true
    clearTimeout(entry.timer)
    if (error === undefined) entry.resolve()
    else entry.reject(error)
  }

  const takeBatch = (): PendingSend[] => {
    const batch: PendingSend[] = []
    let bytes = 0
    while (queue.length > 0) {
      const next = queue[0]!
      if (next.settled) {
        queue.shift()
        continue
      }
      if (batch.length > 0 && (next.alone || batch[0]!.alone || bytes + next.bytes > maxBatchBytes)) break
      queue.shift()
      batch.push(next)
      bytes += next.bytes
    }
    return batch
  }

  const sendBatch = async (batch: PendingSend[]): Promise<void> => {
    const byTopic = new Map<string, TopicMessages>()
    for (const entry of batch) {
      let group = byTopic.get(entry.topic)
      if (!group) {
        group = { topic: entry.topic, messages: [] }
        byTopic.set(entry.topic, group)
      }
      for (const record of entry.records) group.messages.push(record.message)
    }
    const p = await connected()
    await p.sendBatch({
      topicMessages: [...byTopic.values()],
      acks: -1,
      timeout: config.requestTimeout,
      compression: config.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
    })
  }

  const flush = async (): Promise<void> => {
    scheduled = undefined
    if (flushing) return
    flushing = true
    let failures = 0
    try {
      while (!abandoned) {
        const batch = takeBatch()
        if (batch.length === 0) break
        inFlight = batch
        try {
          await sendBatch(batch)
          failures = 0
          connection.ok()
          for (const entry of batch) settle(entry)
        } catch (error) {
          replaceProducer()
          if (abandoned) break
          const klass = classify(error)
          if (isTransient(error)) {
            if (isConnectionLoss(error)) connection.down(error)
            failures++
            const delay = backoffDelay(failures, RETRY_BACKOFF)
            logger.debug(
              { err: String(error), delay, messages: batch.length },
              'kafka: publish failed; retrying',
            )
            // back to the front, in order; entries whose deadline passed were settled by their timer
            queue.unshift(...batch.filter((entry) => !entry.settled))
            await sleep(delay)
          } else if (batch.length > 1 && klass !== 'auth') {
            // one bad message must not fail its neighbours: try each alone
            for (const entry of batch) entry.alone = true
            queue.unshift(...batch.filter((entry) => !entry.settled))
          } else {
            const mapped = toMsgkitError(
              error,
              'publish',
              `Kafka rejected a publish to ${batch[0]?.topic}`,
              secrets,
            )
            for (const entry of batch) settle(entry, mapped)
          }
        } finally {
          inFlight = []
        }
      }
    } finally {
      flushing = false
      if (!abandoned && queue.some((entry) => !entry.settled)) schedule()
      else idle?.()
    }
  }

  const schedule = (): void => {
    if (scheduled || flushing || abandoned) return
    scheduled =
      config.linger > 0 ? setTimeout(() => void flush(), config.linger) : setImmediate(() => void flush())
  }

  const ensureTopic = async (topic: string, deadline: number): Promise<void> => {
    let failures = 0
    for (;;) {
      try {
        await admin.ensureTopic(topic)
        return
      } catch (error) {
        if (!isTransient(error))
          throw toMsgkitError(error, 'publish', `Kafka topic ${topic} could not be created`, secrets)
        if (isConnectionLoss(error)) connection.down(error)
        failures++
        const delay = backoffDelay(failures, RETRY_BACKOFF)
        if (Date.now() + delay >= deadline) {
          throw new MsgkitError(
            ErrorCodes.PUBLISH_TIMEOUT,
            `Publishing to ${topic} timed out: the topic could not be created or checked (${String((error as Error)?.message ?? error)}).`,
            {
              retriable: true,
            },
          )
        }
        await sleep(delay)
      }
    }
  }

  return {
    async start() {
      await connected()
    },

    async send(topic, messages, deadline) {
      if (closed) throw transportClosed()
      if (messages.length === 0) return
      const records = messages.map(encodeRecord)
      for (const record of records) {
        // exact check of what core cannot see: key, per-header overhead, batch header, compression
        const wire = record.bytes + RECORD_BATCH_HEADER_BYTES + gzipSlack(record.bytes)
        if (wire > config.messageMaxBytes) {
          throw new MsgkitError(
            ErrorCodes.MESSAGE_TOO_LARGE,
            `A message for Kafka topic ${topic} needs up to ${wire} bytes on the wire (body, key, headers and record overhead); the broker takes at most ${config.messageMaxBytes} (messageMaxBytes). Nothing was sent.`,
            { details: { topic, bytes: wire, max: config.messageMaxBytes } },
          )
        }
      }
      await ensureTopic(topic, deadline)
      if (closed) throw transportClosed()
      await new Promise<void>((resolve, reject) => {
        const wait = Math.max(0, deadline - Date.now())
        const entry: PendingSend = {
          topic,
          records,
          bytes: records.reduce((n, r) => n + r.bytes, 0),
          deadline,
          settled: false,
          alone: false,
          resolve,
          reject,
          timer: setTimeout(() => {
            settle(
              entry,
              new MsgkitError(
                ErrorCodes.PUBLISH_TIMEOUT,
                `Publishing to Kafka topic ${topic} was not confirmed before its deadline (${wait} ms). The broker may be unreachable; the message may or may not have been stored.`,
                { retriable: true, details: { topic } },
              ),
            )
          }, wait),
        }
        queue.push(entry)
        schedule()
      })
    },

    async close(graceMs) {
      if (closed) return
      closed = true
      if (flushing || queue.some((entry) => !entry.settled)) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          new Promise<void>((resolve) => {
            idle = resolve
          }),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, graceMs)
          }),
        ])
        clearTimeout(timer)
      }
      abandoned = true
      const closedError = new MsgkitError(
        ErrorCodes.CLOSED,
        'The Kafka transport was closed before this message was confirmed; it may or may not have been stored.',
      )
      for (const entry of [...queue.splice(0), ...inFlight]) settle(entry, closedError)
      if (scheduled) {
        clearTimeout(scheduled as NodeJS.Timeout)
        clearImmediate(scheduled as NodeJS.Immediate)
        scheduled = undefined
      }
      const p = producer ?? (producerReady ? await producerReady.catch(() => undefined) : undefined)
      producer = undefined
      producerReady = undefined
      await p?.disconnect().catch(() => {})
    },
  }
}
