/**
 * Receipt-handle work (acks: DeleteMessageBatch; heartbeats and give-backs:
 * ChangeMessageVisibilityBatch) on a second kit outbox: coalesced, 10 entries a call, per-entry
 * outcomes, throttling retried, waiting through an outage. A receipt handle belongs to the message,
 * not to a connection, so a settle survives a reconnect (until the message's visibility runs out).
 */
import * as SQS from '@aws-sdk/client-sqs'
import { createOutbox, type ErrorTable, type OutboxEntry, type Supervisor } from '@msgkit/core/adapter'
import { entryError } from './errors.js'
import type { SqsSession } from './transport.js'

/** "Nothing left to do": the message is gone or no longer in flight under this handle. */
const SETTLED = /^(ReceiptHandleIsInvalid|MessageNotInflight|InvalidParameterValue)$/

/** One operation on a handle: delete (the ack) or a new visibility timeout (0 = give back). */
type Receipt = { url: string; handle: string; seconds?: number }
export type Receipts = ReturnType<typeof createReceipts>

export function createReceipts(supervisor: Supervisor<SqsSession>, errors: ErrorTable) {
  const call = async (s: SqsSession, ops: Receipt[]): Promise<unknown[]> => {
    const { url: QueueUrl, seconds } = ops[0] as Receipt
    const Entries = ops.map((op, i) => ({
      Id: `e${i}`,
      ReceiptHandle: op.handle,
      VisibilityTimeout: op.seconds,
    }))
    const { Failed = [] } = await (seconds === undefined
      ? s.sqs.send(new SQS.DeleteMessageBatchCommand({ QueueUrl, Entries }))
      : s.sqs.send(new SQS.ChangeMessageVisibilityBatchCommand({ QueueUrl, Entries: Entries as never })))
    const failed = new Map(Failed.filter((f) => !SETTLED.test(f.Code ?? '')).map((f) => [f.Id, f]))
    return ops.map((_, i) => {
      const f = failed.get(`e${i}`)
      return f && entryError(f)
    })
  }

  const outbox = createOutbox<SqsSession, Receipt>({
    name: 'sqs',
    supervisor,
    errors,
    maxBatchMessages: 10,
    maxInFlight: 8,
    async flush(s, batch: ReadonlyArray<OutboxEntry<Receipt>>) {
      // one call per kind and queue; a handle's last visibility change wins
      const calls = new Map<string, Map<string, number>>()
      for (const [i, { wire }] of batch.entries()) {
        const call = `${wire.seconds === undefined}\n${wire.url}`
        calls.set(call, (calls.get(call) ?? new Map()).set(wire.handle, i))
      }
      const outcomes: unknown[] = batch.map(() => undefined)
      for (const indexes of [...calls.values()].map((byHandle) => [...byHandle.values()])) {
        const results = await call(
          s,
          indexes.map((i) => batch[i]?.wire as Receipt),
        )
        for (const [k, i] of indexes.entries()) outcomes[i] = results[k]
      }
      return outcomes
    },
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
