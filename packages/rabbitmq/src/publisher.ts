/**
 * Confirmed publishing on one confirm channel. A send resolves only once RabbitMQ confirmed
 * every message; messages whose confirm was lost with the connection are published again after
 * the reconnect (at-least-once: the broker may already have stored some — same msgkit id),
 * until the deadline.
 */
import { ErrorCodes, MsgkitError, type OutgoingMessage, type SendOptions } from '@msgkit/core'
import type { ConfirmChannel } from 'amqplib'
import type { RabbitmqTransportConfig } from './config.js'
import type { ConnectionManager } from './connection.js'
import { errorText, ReplyCodes, replyCode } from './errors.js'
import { type PreparedMessage, prepareMessage } from './message.js'
import { delayBucket, type Naming } from './naming.js'
import type { Topology } from './topology.js'

/** A channel-level refusal (406, 403, 404 …) is retried this often per send: it may be a neighbour's fault. */
const CHANNEL_ERROR_RETRIES = 2

interface PublishChannel {
  channel: ConfirmChannel
  generation: number
  open: boolean
  /** the error the broker closed the channel with; unset when the connection went away */
  error?: unknown
  /** resolved on 'drain' or 'close' */
  drained?: Promise<void>
}

type Outcome = { ok: true } | { ok: false; error: unknown; channelError: unknown }

export interface Publisher {
  send(topic: string, messages: OutgoingMessage[], options: SendOptions): Promise<void>
  /** sends still waiting for confirms */
  readonly inFlight: number
  /** give the confirms in flight a moment, then stop */
  close(): Promise<void>
}

export function createPublisher(
  config: RabbitmqTransportConfig,
  naming: Naming,
  topology: Topology,
  cm: ConnectionManager,
): Publisher {
  let current: PublishChannel | undefined
  let opening: Promise<PublishChannel> | undefined
  let closing = false
  const inFlight = new Set<Promise<unknown>>()

  const closedError = (): MsgkitError =>
    new MsgkitError(ErrorCodes.CLOSED, 'This RabbitMQ transport is closed; nothing was sent.')

  const timeoutError = (topic: string, unconfirmed: number, total: number, cause?: unknown): MsgkitError =>
    new MsgkitError(
      ErrorCodes.PUBLISH_TIMEOUT,
      `Publishing to ${topic} was not confirmed by RabbitMQ at ${cm.where} before the deadline (${unconfirmed} of ${total} message(s) unconfirmed${cause === undefined ? '' : `; last problem: ${errorText(cause)}`}). A message may still have been stored.`,
      { retriable: true, details: { topic, unconfirmed, total } },
    )

  const openChannel = async (deadline: number, topic: string, total: number): Promise<PublishChannel> => {
    const connection = await cm.waitUp(deadline, () =>
      timeoutError(topic, total, total, 'RabbitMQ is unreachable'),
    )
    if (current?.open && current.generation === cm.generation) return current
    if (opening) return opening
    const generation = cm.generation
    opening = (async () => {
      const channel = await connection.createConfirmChannel()
      const pc: PublishChannel = { channel, generation, open: true }
      channel.on('error', (error: unknown) => {
        pc.error = error
      })
      channel.on('close', () => {
        pc.open = false
        if (current === pc) current = undefined
      })
      // many concurrent sends each wait for 'drain'
      channel.setMaxListeners(0)
      current = pc
      return pc
    })().finally(() => {
      opening = undefined
    })
    return opening
  }

  /** Resolves once the channel's write buffer drained (or it closed). */
  const drained = (pc: PublishChannel): Promise<void> => {
    pc.drained ??= new Promise<void>((resolve) => {
      const done = (): void => {
        pc.channel.off('drain', done)
        pc.channel.off('close', done)
        pc.drained = undefined
        resolve()
      }
      pc.channel.on('drain', done)
      pc.channel.on('close', done)
    })
    return pc.drained
  }

  /** Publishes each message, honouring backpressure, and collects one outcome per message. */
  const publishAll = async (
    pc: PublishChannel,
    exchange: string,
    routingKey: string,
    batch: PreparedMessage[],
  ): Promise<Outcome[]> => {
    const confirms: Array<Promise<Outcome>> = []
    for (const m of batch) {
      if (!pc.open) {
        confirms.push(
          Promise.resolve({ ok: false, error: new Error('channel closed'), channelError: pc.error }),
        )
        continue
      }
      let writable = true
      const confirmed = new Promise<Outcome>((resolve) => {
        try {
          writable = pc.channel.publish(exchange, routingKey, m.content, m.options, (error: unknown) => {
            resolve(error ? { ok: false, error, channelError: pc.error } : { ok: true })
          })
        } catch (error) {
          // amqplib throws synchronously once the channel is closed, and for a too-large header table
          resolve({ ok: false, error, channelError: pc.error })
        }
      })
      confirms.push(confirmed)
      if (!writable) await drained(pc)
    }
    return Promise.all(confirms)
  }

  const send = async (
    topic: string,
    messages: OutgoingMessage[],
    { deadline }: SendOptions,
  ): Promise<void> => {
    if (closing || cm.closed) throw closedError()
    const prepared = messages.map((m) => prepareMessage(topic, m, config.maxMessageBytes))
    // messages with a delay go to their bucket's wait queue, the others to the topic exchange
    const groups = new Map<number, PreparedMessage[]>()
    messages.forEach((m, i) => {
      const bucket = m.delayMs && m.delayMs > 0 ? delayBucket(m.delayMs) : 0
      const list = groups.get(bucket) ?? []
      list.push(prepared[i] as PreparedMessage)
      groups.set(bucket, list)
    })

    let remaining = [...groups.entries()]
    let channelErrors = 0
    let lastProblem: unknown
    while (remaining.length > 0) {
      if (closing || cm.closed) throw closedError()
      const unconfirmed = remaining.reduce((n, [, list]) => n + list.length, 0)
      if (Date.now() >= deadline) throw timeoutError(topic, unconfirmed, messages.length, lastProblem)
      let pc: PublishChannel
      try {
        pc = await openChannel(deadline, topic, unconfirmed)
      } catch (error) {
        if (error instanceof MsgkitError) throw error
        lastProblem = error
        await pause(50, deadline)
        continue
      }
      const next: Array<[number, PreparedMessage[]]> = []
      let rejected: MsgkitError | undefined
      const attempts = remaining.map(async ([bucket, list]) => {
        let exchange: string
        let routingKey: string
        try {
          if (bucket === 0) {
            await topology.ensureTopic(topic)
            exchange = naming.exchange(topic)
            routingKey = topic
          } else {
            routingKey = await topology.ensureDelay(topic, bucket)
            exchange = '' // the default exchange routes by queue name
          }
        } catch (error) {
          if (error instanceof MsgkitError && !error.retriable) rejected ??= error
          else {
            lastProblem = error
            next.push([bucket, list])
          }
          return
        }
        const outcomes = await raceDeadline(publishAll(pc, exchange, routingKey, list), deadline)
        if (outcomes === 'deadline') {
          next.push([bucket, list])
          return
        }
        const again: PreparedMessage[] = []
        outcomes.forEach((outcome, i) => {
          if (outcome.ok) return
          const m = list[i] as PreparedMessage
          if (errorText(outcome.error) === 'message nacked') {
            rejected ??= new MsgkitError(
              ErrorCodes.PUBLISH_REJECTED,
              `RabbitMQ refused message ${m.id} for ${topic} (basic.nack: an internal error, or a queue limit with overflow=reject-publish).`,
              { retriable: true, details: { topic, id: m.id } },
            )
            return
          }
          if (outcome.error instanceof RangeError) {
            rejected ??= new MsgkitError(
              ErrorCodes.MESSAGE_TOO_LARGE,
              `Message ${m.id} for ${topic} cannot be encoded: ${outcome.error.message}. Nothing was sent.`,
            )
            return
          }
          lastProblem = outcome.channelError ?? outcome.error
          again.push(m)
        })
        if (again.length > 0) {
          const code = replyCode(lastProblem)
          if (code === ReplyCodes.NOT_FOUND) topology.forgetTopic(topic)
          next.push([bucket, again])
        }
      })
      await Promise.all(attempts)
      if (rejected) throw rejected
      // the channel was closed by the broker because of a message (not by a lost connection)
      if (pc.error !== undefined && cm.current && next.length > 0) {
        channelErrors += 1
        if (channelErrors > CHANNEL_ERROR_RETRIES) throw channelRefusal(topic, pc.error)
      }
      remaining = next
      if (remaining.length > 0 && Date.now() < deadline && cm.current) await pause(20, deadline)
    }
  }

  return {
    send(topic, messages, options) {
      const p = send(topic, messages, options)
      inFlight.add(p)
      const forget = (): void => {
        inFlight.delete(p)
      }
      p.then(forget, forget)
      return p
    },
    get inFlight() {
      return inFlight.size
    },
    async close() {
      closing = true
      if (inFlight.size > 0) await raceDeadline(Promise.allSettled([...inFlight]), Date.now() + 2_000)
      const pc = current
      current = undefined
      if (pc?.open) await pc.channel.close().catch(() => {})
    },
  }
}

function channelRefusal(topic: string, error: unknown): MsgkitError {
  const text = errorText(error)
  if (
    replyCode(error) === ReplyCodes.PRECONDITION_FAILED &&
    /max size|message size|larger than/i.test(text)
  ) {
    return new MsgkitError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `RabbitMQ refused a message for ${topic} as too large (${text}). Lower maxMessageBytes to the broker's max_message_size.`,
      { details: { topic } },
    )
  }
  return new MsgkitError(ErrorCodes.PUBLISH_REJECTED, `RabbitMQ refused publishing to ${topic}: ${text}`, {
    cause: error,
    details: { topic, replyCode: replyCode(error) },
  })
}

function pause(ms: number, deadline: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(ms, deadline - Date.now()))))
}

/** The promise's value, or 'deadline' if it comes too late. */
async function raceDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | 'deadline'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), Math.max(0, deadline - Date.now()))
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}
