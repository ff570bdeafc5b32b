/**
 * `pnpm demo`: the three services in one process on the built-in memory broker (no setup), or on
 * the broker MSGKIT_URL points at. Prints every mail sent, then shuts down cleanly.
 * `pnpm demo --trace` (or MAIL_TRACE=1) also prints the OpenTelemetry trace of each event.
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

// --trace: spans recorded from here on and printed as trees at the end (src/tracing.ts)
const tracing =
  process.argv.includes('--trace') || process.env.MAIL_TRACE === '1'
    ? (await import('./tracing.js')).startTracing()
    : undefined
/** the request that makes a service publish, as a span when tracing */
const request = <T>(name: string, fn: () => Promise<T>): Promise<T> =>
  tracing ? tracing.inSpan(name, fn) : fn()

const mailMessaging = await connect('mail-service')
const sent: SentMail[] = []
const mail = await startMailService(mailMessaging, { outbox, onSent: (m) => sent.push(m) })

const memberMessaging = await connect('member-service')
const orderMessaging = await connect('order-service')
const members = createMemberService(memberMessaging)
const orders = createOrderService(orderMessaging)

const minji = await request('POST /members', () => members.signUp('Kim Minji', 'minji@example.com'))
const jiho = await request('POST /members', () => members.signUp('Lee Jiho', 'jiho@example.com'))
await request('POST /orders', () =>
  orders.complete(minji, 'minji@example.com', [{ sku: 'KEYBOARD-01', quantity: 1 }], 89_000),
)
await request('POST /orders', () =>
  orders.complete(
    jiho,
    'jiho@example.com',
    [
      { sku: 'MUG-02', quantity: 2 },
      { sku: 'TEA-07', quantity: 3 },
    ],
    31_500,
  ),
)

const expected = 4
const deadline = Date.now() + 30_000
while (sent.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))

await Promise.all([memberMessaging.close(), orderMessaging.close()])
await mail.close()
await mailMessaging.close()
if (tracing) {
  console.log('\nTraces (OpenTelemetry, one tree per trace):')
  await tracing.print()
}

if (sent.length < expected) {
  console.error(
    `\nOnly ${sent.length} of ${expected} mails were sent within 30 s. Is the broker at ${url} reachable?`,
  )
  process.exit(1)
}
console.log(`\n${sent.length} mails sent; the .eml files are in ${outbox}`)
