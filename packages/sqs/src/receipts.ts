/**
 * Receipt-handle work (acks: DeleteMessageBatch; heartbeats and give-backs:
 * ChangeMessageVisibilityBatch) on a second kit outbox: coalesced, 10 entries a call, per-entry
 * outcomes, throttling retried, waiting through an outage. A receipt handle belongs to the message,
 * not to a connection, so a settle survives a reconnect (until the message's visibility runs out).
 */
import * as SQS from '@aws-sdk/client-sqs'
import {
  createOutbox,
  type ErrorTable,
  flushByKey,
  type OutboxEntry,
  type Supervisor,
} from '@msgkit/core/adapter'
import { entryError } from './errors.js'
import type { SqsSession } from './transport.js'

/** "Nothing left to do": the message is gone or no longer in flight under this handle. */
const SETTLED = /^(ReceiptHandleIsInvalid|MessageNotInflight|InvalidParameterValue)$/

/** One operation on a handle: delete (the ack) or a new visibility timeout (0 = give back). */
type Receipt = { url: string; handle: string; seconds?: number }
export type Receipts = ReturnType<typeof createReceipts>

export function createReceipts(supervisor: Supervisor<SqsSession>, errors: ErrorTable) {
  const outbox = createOutbox<SqsSession, Receipt>({
    name: 'sqs',
    supervisor,
    errors,
    maxBatchMessages: 10,
    maxInFlight: 8,
    // one call per kind and queue
    flush: flushByKey(
      ({ wire }) => `${wire.seconds === undefined}\n${wire.url}`,
      async (s, _, batch) => {
        const { url: QueueUrl, seconds } = (batch[0] as OutboxEntry<Receipt>).wire
        // a handle's last visibility change wins; the earlier ones are done by it
        const last = new Map(batch.map(({ wire }, i) => [wire.handle, i]))
        const Entries = [...last].map(([ReceiptHandle, i]) => ({
          Id: `e${i}`,
          ReceiptHandle,
          VisibilityTimeout: batch[i]?.wire.seconds as number,
        }))
        const { Failed = [] } = await (seconds === undefined
          ? s.sqs.send(new SQS.DeleteMessageBatchCommand({ QueueUrl, Entries }))
          : s.sqs.send(new SQS.ChangeMessageVisibilityBatchCommand({ QueueUrl, Entries })))
        const failed = new Map(Failed.filter((f) => !SETTLED.test(f.Code ?? '')).map((f) => [f.Id, f]))
        return batch.map((_, i) => {
          const f = failed.get(`e${i}`)
          return f && entryError(f)
        })
      },
    ),
  })

  const submit = (what: string, wire: Receipt, deadline: number): Promise<void> =>
    outbox.send(what, [{ wire, bytes: 1 }], deadline)
  return {
    /** the ack */
    delete: (url: string, handle: string, deadline: number) => submit('ack', { url, handle }, deadline),
    /** heartbeat (extend) or give back (0) */
    changeVisibility: (url: string, handle: string, seconds: number, deadline: number) =>
      submit('change visibility', { url, handle, seconds }, deadline),
    close: () => outbox.close(),
  }
}
