/** MailService: turns both events into e-mails (.eml files in an outbox folder). */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Messaging, Subscription } from '@msgkit/core'
import { connect, isMain, runAsProcess } from './connect.js'
import { MemberSignedUp, OrderCompleted } from './topics.js'

/**
 * The group MailService consumes in, and the topics it reads. A consumer owns its group: this
 * list is the one place that says which groups must exist, for the deploy step (`pnpm … provision`,
 * src/provision.ts) and for the service's own start-up alike.
 */
export const MAIL_SERVICE_GROUP = 'mail-service'
export const MAIL_SERVICE_TOPICS = [MemberSignedUp, OrderCompleted] as const

/**
 * Makes MailService's groups exist, so every event published from now on is kept for it, whether
 * or not it runs. Idempotent: run it at every deploy, before anything publishes.
 */
export async function provisionMailService(messaging: Messaging): Promise<void> {
  // a transport that keeps nothing for absent consumers has nothing to provision
  if (!messaging.capabilities.persistence) return
  for (const topic of MAIL_SERVICE_TOPICS) await messaging.provision(topic, MAIL_SERVICE_GROUP)
}

export interface SentMail {
  to: string
  subject: string
  file: string
}

function eml(to: string, subject: string, text: string, messageId: string): string {
  return [
    'From: MailService <no-reply@example.com>',
    `To: ${to}`,
    `Subject: ${subject}`,
    `Message-ID: <${messageId}@msgkit.example>`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    text,
    '',
  ].join('\r\n')
}

export async function startMailService(
  messaging: Messaging,
  options: { outbox: string; onSent?: (mail: SentMail) => void },
): Promise<{ close(): Promise<void> }> {
  await mkdir(options.outbox, { recursive: true })
  // all groups first, then the subscriptions: on Kafka a group provisioned while it has no members
  // yet starts at the end of each topic, the same "from now on" as on every other broker
  await provisionMailService(messaging)
  const send = async (id: string, to: string, subject: string, text: string): Promise<void> => {
    // one file per message id: a redelivered message overwrites its own mail instead of sending twice
    const file = join(options.outbox, `${id}.eml`)
    await writeFile(file, eml(to, subject, text, id))
    console.log(`[mail-service] sent "${subject}" to ${to}`)
    options.onSent?.({ to, subject, file })
  }
  const common = {
    group: MAIL_SERVICE_GROUP,
    concurrency: 4,
    retry: { attempts: 5, backoff: { initialMs: 100, maxMs: 5_000 } },
  }
  const subs: Subscription[] = [
    await messaging.subscribe(MemberSignedUp, common, (msg) =>
      send(
        msg.id,
        msg.body.email,
        `Welcome, ${msg.body.name}!`,
        `Hello ${msg.body.name},\n\nthanks for signing up.`,
      ),
    ),
    await messaging.subscribe(OrderCompleted, common, (msg) => {
      const lines = msg.body.items.map((i) => `  ${i.quantity} × ${i.sku}`).join('\n')
      return send(
        msg.id,
        msg.body.email,
        `Order ${msg.body.orderId.slice(0, 8)} confirmed`,
        `Your order:\n${lines}\nTotal: ${(msg.body.totalCents / 100).toFixed(2)}`,
      )
    }),
  ]
  return {
    async close() {
      await Promise.all(subs.map((s) => s.close()))
    },
  }
}

if (isMain(import.meta.url)) {
  runAsProcess(
    'mail-service',
    async () => {
      const messaging = await connect('mail-service')
      const outbox = process.env.MAIL_OUTBOX ?? join(process.cwd(), 'outbox')
      await startMailService(messaging, { outbox })
      console.log(
        `[mail-service] waiting for events on ${messaging.transport.name} (pid ${process.pid}); mails go to ${outbox}`,
      )
      return { close: () => messaging.close() }
    },
    { pidFile: true },
  )
}
