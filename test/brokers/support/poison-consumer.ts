/**
 * One instance of a service whose handler crashes the process on a poison message:
 *   node --conditions=@msgkit/source --import tsx poison-consumer.ts <topic> <group> <store.json>
 * Prints one line per event (CALL <attempt>, HANDLED <body>, DEAD-LETTERED <id>) and SIGKILLs
 * itself when the poison message reaches the handler. MSGKIT_URL selects the broker.
 */
import { createMessaging } from '@msgkit/core'
import { createFileStore } from './file-store.js'

const [topic, group, storePath] = process.argv.slice(2) as [string, string, string]
const url = process.env.MSGKIT_URL
if (!url || !topic || !group || !storePath) {
  console.error('usage: MSGKIT_URL=… poison-consumer.ts <topic> <group> <store.json>')
  process.exit(2)
}
const messaging = await createMessaging(url, { idempotencyStore: createFileStore(storePath) })
messaging.on('dead-lettered', (event) => {
  console.log(`DEAD-LETTERED ${event.id}`)
})
messaging.on('error', (event) => {
  console.log(`ERROR ${(event.error as Error)?.message ?? event.error}`)
})
await messaging.subscribe<{ poison?: boolean; n?: number }>(
  topic,
  { group, retry: { attempts: 3, backoff: { initialMs: 50, jitter: 0 } } },
  (message) => {
    if (message.body.poison) {
      console.log(`CALL ${message.attempt}`)
      // the crash: no ack, no nack, no goodbye to the broker
      process.kill(process.pid, 'SIGKILL')
    }
    console.log(`HANDLED ${message.body.n} attempt=${message.attempt} redelivered=${message.redelivered}`)
  },
)
// a service stops gracefully on SIGTERM: in-flight work finishes, what is done is acked/committed
process.once('SIGTERM', () => {
  void messaging.close().then(() => process.exit(0))
})
console.log('READY')
