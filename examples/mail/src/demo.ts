/**
 * `pnpm demo`: the three services in one process on the built-in memory broker (no setup), or on
 * the broker MSGKIT_URL points at. Prints every mail sent, then shuts down cleanly.
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from './connect.js'
import { type SentMail, startMailService } from './mail-service.js'
import { createMemberService } from './member-service.js'
import { createOrderService } from './order-service.js'

const outbox = process.env.MAIL_OUTBOX ?? join(fileURLToPath(new URL('..', import.meta.url)), 'outbox')
const url = process.env.MSGKIT_URL ?? 'memory://mail-demo'
console.log(`msgkit mail demo on ${url.replace(/\/\/[^@/]*@/, '//***@')}\n`)

const mailMessaging = await connect('mail-service')
const sent: SentMail[] = []
const mail = await startMailService(mailMessaging, { outbox, onSent: (m) => sent.push(m) })

const memberMessaging = await connect('member-service')
const orderMessaging = await connect('order-service')
const members = createMemberService(memberMessaging)
const orders = createOrderService(orderMessaging)

const minji = await members.signUp('Kim Minji', 'minji@example.com')
const jiho = await members.signUp('Lee Jiho', 'jiho@example.com')
await orders.complete(minji, 'minji@example.com', [{ sku: 'KEYBOARD-01', quantity: 1 }], 89_000)
await orders.complete(
  jiho,
  'jiho@example.com',
  [
    { sku: 'MUG-02', quantity: 2 },
    { sku: 'TEA-07', quantity: 3 },
  ],
  31_500,
)

const expected = 4
const deadline = Date.now() + 30_000
while (sent.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))

await Promise.all([memberMessaging.close(), orderMessaging.close()])
await mail.close()
await mailMessaging.close()

if (sent.length < expected) {
  console.error(
    `\nOnly ${sent.length} of ${expected} mails were sent within 30 s. Is the broker at ${url} reachable?`,
  )
  process.exit(1)
}
console.log(`\n${sent.length} mails sent; the .eml files are in ${outbox}`)
