/**
 * Publishing on the kit's outbox: a batch goes out on the connection's confirm channel (honouring
 * backpressure), each message settles on its own confirm; one lost with the connection is published
 * again (same msgkit id). With `detectUnroutable` messages go out `mandatory`, and a send with
 * returned ones rejects with MSGKIT_UNROUTABLE once all of it was confirmed.
 */

import type { Socket } from 'node:net'
import { ErrorCodes, MsgkitError, type OutgoingMessage, type SendOptions } from '@msgkit/core'
import * as kit from '@msgkit/core/adapter'
import type { ChannelModel, ConfirmChannel, Message } from 'amqplib'
import { errorText, SessionLost } from './errors.js'
import { toWire, type Wire } from './mapping.js'
import { delayBucket, type Topology } from './topology.js'

/** `error`: what the broker closed it with (a refusal); `returned`: `exchange \n id` of returned, unconfirmed messages */
type PublishChannel = { model: ChannelModel; channel: ConfirmChannel; error?: unknown; returned: Set<string> }

/**
 * amqplib hands every publish to the socket as its own write: one syscall and, with noDelay, one TCP
 * segment per message, the largest part of a publish's CPU. Corking the socket while a batch is
 * written, until amqplib's muxer has run (it writes on a setImmediate scheduled from the channel
 * buffer's 'readable', a nextTick), sends the batch in a few writes. Returns the uncork, which
 * must be called once. Only timing depends on amqplib's internals: without them, writes go as before.
 */
function corked(model: ChannelModel): () => void {
  const socket = (model as { connection?: { stream?: Partial<Socket> } }).connection?.stream
  if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return () => {}
  socket.cork()
  return () => process.nextTick(() => setImmediate(() => socket.uncork?.()))
}

export function createPublisher(
  topology: Topology,
  supervisor: kit.Supervisor<ChannelModel>,
  errors: kit.ErrorTable,
) {
  // one channel on the live connection, shared by the batches in flight (one channel keeps their order)
  let live: { model: ChannelModel; channel: Promise<PublishChannel> } | undefined

  const open = async (model: ChannelModel, gone: () => void): Promise<PublishChannel> => {
    const channel = await model.createConfirmChannel()
    const pc: PublishChannel = { model, channel, returned: new Set() }
    channel.on('error', (error: unknown) => Object.assign(pc, { error }))
    channel.on('close', gone)
    channel.on('return', (m: Message) => pc.returned.add(`${m.fields.exchange}\n${m.properties.messageId}`))
    return pc
  }
  const channelOf = (model: ChannelModel): Promise<PublishChannel> => {
    if (live?.model === model) return live.channel
    // forgotten when it closes or fails to open; an older channel's close leaves a newer one alone
    const mine = { model } as NonNullable<typeof live>
    const gone = () => {
      if (live === mine) live = undefined
    }
    mine.channel = open(model, gone)
    mine.channel.catch(gone)
    live = mine
    return mine.channel
  }

  /** A message's exchange and routing key: its topic's exchange, or (default exchange) its delay's wait queue. */
  const route = async (model: ChannelModel, topic: string, bucket: number): Promise<[string, string]> => {
    if (bucket > 0) return ['', await topology.ensureDelay(model, topic, bucket)]
    await topology.ensureTopic(model, topic)
    return [topology.naming.exchange(topic), topic]
  }

  const flush: kit.FlushBatch<ChannelModel, Wire> = async (model, batch, settled) => {
    const pc = await channelOf(model)
    const known = new Map<string, Promise<[string, string]>>() // one route per topic and delay, not per message
    const routeOf = ({ topic, wire }: kit.OutboxEntry<Wire>) => {
      const key = `${wire.bucket}:${topic}`
      if (!wire.queue && !known.has(key)) known.set(key, route(model, topic, wire.bucket))
      return wire.queue ? (['', wire.queue] as [string, string]) : known.get(key)
    }
    const routes = await Promise.all(batch.map(routeOf))
    const confirms: Array<Promise<unknown>> = []
    let release = corked(model)
    for (const [i, { wire }] of batch.entries()) {
      const [exchange, key] = routes[i] as [string, string]
      let writable = true
      confirms[i] = new Promise<unknown>((resolve) => {
        const confirmed = (error: unknown) => {
          if (error) return resolve(error)
          // RabbitMQ sends basic.return before the basic.ack of a mandatory unroutable message
          if (wire.returned && pc.returned.delete(`${exchange}\n${wire.id}`)) wire.returned.push(wire.id)
          settled(i)
          resolve(undefined)
        }
        try {
          writable = pc.channel.publish(exchange, key, wire.content, wire.options, confirmed)
        } catch (error) {
          resolve(error) // amqplib throws at once on a closed channel
        }
      })
      if (!writable) {
        release()
        await kit.whenDrained(pc.channel)
        release = corked(model)
      }
    }
    release()
    const outcomes = await Promise.all(batch.map((_, i) => confirms[i]))
    if (outcomes.every((e) => e === undefined)) return undefined
    // 3.10 nacks every publish on a channel whose quorum-queue client met a dead leader: the retry takes a new one
    if (outcomes.some((e) => errorText(e) === 'message nacked')) void pc.channel.close().catch(() => {})
    // by now amqplib has reported a lost connection too (it closes the channels first, synchronously)
    const lost = supervisor.session !== model
    if (pc.error !== undefined)
      for (const e of batch) topology.forget(model, topology.naming.exchange(e.topic))
    // the broker closed the channel over one message: the kit retries each alone to find it
    if (!lost && pc.error !== undefined && batch.length > 1) throw pc.error
    const lostError = new SessionLost('the connection to RabbitMQ was lost before the confirm')
    return outcomes.map((error) => (error === undefined ? undefined : lost ? lostError : (pc.error ?? error)))
  }

  const outbox = kit.createOutbox<ChannelModel, Wire>({
    name: 'rabbitmq',
    supervisor,
    errors,
    flush,
    maxBatchBytes: 4 * 1024 * 1024,
    // one channel keeps the batches in order; its confirms settle each message as they arrive
    maxInFlight: 16,
  })

  return {
    /** `queue`: into that group queue only (mandatory: a missing queue returns it, MSGKIT_UNROUTABLE) */
    send(topic: string, messages: OutgoingMessage[], options: SendOptions, queue?: string): Promise<void> {
      const returned = options.detectUnroutable || queue ? ([] as string[]) : undefined
      const sending = outbox.send(topic, messages, options.deadline, (m) => {
        const bucket = !queue && m.delayMs && m.delayMs > 0 ? delayBucket(m.delayMs) : 0
        const wire = toWire(topic, m, bucket, returned)
        if (queue) wire.queue = queue
        return { wire, bytes: wire.content.byteLength }
      })
      // most sends: the outbox's own promise (no async frame per publish)
      if (!returned) return sending
      return sending.then(() => {
        if (returned.length > 0)
          throw new MsgkitError(
            ErrorCodes.UNROUTABLE,
            `RabbitMQ confirmed ${returned.length} of ${messages.length} message(s) for ${topic} but routed them to no queue (basic.return): no group is provisioned ${queue ? `as ${queue}` : 'for this topic'}, so they were dropped. Provision the groups (messaging.provision) before publishing.`,
            { details: { topic, ids: returned } },
          )
      })
    },
    close: () => outbox.close(),
  }
}
