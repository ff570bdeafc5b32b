// The walk-through's service (docs/cli.md): MailService consumes mail.requested as group mail-service
// and fails for addresses without "@" — until it is started with MAIL_FIX=1 (the bug fixed).
// Prints "ready" once consuming and "mailed <to> <id> attempt=<n>" per handled message.
import { createMessaging } from '@msgkit/core'

const topic = process.env.MAIL_TOPIC ?? 'mail.requested'
const messaging = await createMessaging(process.env.MSGKIT_URL ?? 'memory://')
await messaging.subscribe<{ to: string }>(
  topic,
  { group: 'mail-service', retry: { attempts: 3, backoff: { initialMs: 50 } } },
  async (msg) => {
    if (!process.env.MAIL_FIX && !msg.body.to.includes('@'))
      throw new Error(`invalid address: ${msg.body.to}`)
    console.log(`mailed ${msg.body.to} ${msg.id} attempt=${msg.attempt}`)
  },
)
console.log('ready')
const stop = () => void messaging.close().then(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
