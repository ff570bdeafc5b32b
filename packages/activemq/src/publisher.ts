/**
 * Publishing on the kit's outbox, on the publishing connection (the supervisor's session, which
 * never consumes: a connection that both sends with receipts and receives stalled the broker in
 * our probe). A batch is pipelined: every SEND of it written at once, each settled by its own
 * RECEIPT. An ERROR frame names the SEND it refuses (that one fails for good); the others on the
 * dead connection are sent again after the reconnect (same msgkit id: at-least-once).
 */
import type { OutgoingMessage, SendOptions } from '@msgkit/core'
import { createOutbox, type ErrorTable, type Supervisor } from '@msgkit/core/adapter'
import type { StompConnection } from './driver.js'
import { type Frame, toFrame } from './mapping.js'
import { topicDestination } from './topology.js'

export function createPublisher(
  supervisor: Supervisor<StompConnection>,
  errors: ErrorTable,
  limits: { maxMessageBytes: number },
) {
  const outbox = createOutbox<StompConnection, Frame>({
    name: 'activemq',
    supervisor,
    errors,
    maxBatchBytes: 8 * 1024 * 1024,
    // a RECEIPT waits for the fsync: one batch at a time made the next wait too (+30 ms p50 at 500/s);
    // batches fail together (an ERROR frame ends the connection), so they go back in order
    maxInFlight: 64,
    async flush(connection, batch, confirmed) {
      // each SEND settles on its own RECEIPT, not on its batch's last one
      const sent = batch.map(({ wire }, i) =>
        connection.request('SEND', wire.headers, wire.body).then(
          () => confirmed(i),
          (error: unknown) => error ?? 'SEND failed',
        ),
      )
      const outcomes = await Promise.all(sent)
      return outcomes.some((outcome) => outcome !== undefined) ? outcomes : undefined
    },
  })

  return {
    send(topic: string, messages: OutgoingMessage[], options: SendOptions): Promise<void> {
      const destination = topicDestination(topic)
      return outbox.send(topic, messages, options.deadline, (message) => {
        const frame = toFrame(destination, topic, message, limits)
        return { wire: frame, bytes: frame.body.byteLength }
      })
    },
    /** gives queued sends the kit's grace period, then rejects the rest with MSGKIT_CLOSED */
    close: () => outbox.close(),
  }
}
