import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMessaging, ErrorCodes } from '@msgkit/core'
import { describe, expect, it } from 'vitest'
import { provisionMailService, type SentMail, startMailService } from '../src/mail-service.js'
import { createMemberService } from '../src/member-service.js'
import { createOrderService } from '../src/order-service.js'
import { OrderCompleted } from '../src/topics.js'

describe('mail example', () => {
  it('sends a welcome mail and an order mail as .eml files', async () => {
    const outbox = await mkdtemp(join(tmpdir(), 'msgkit-outbox-'))
    const url = `memory://mail-test-${Date.now()}`
    const mail = await createMessaging(url)
    const sent: SentMail[] = []
    const service = await startMailService(mail, { outbox, onSent: (m) => sent.push(m) })
    const shop = await createMessaging(url)
    const memberId = await createMemberService(shop).signUp('Kim Minji', 'minji@example.com')
    await createOrderService(shop).complete(
      memberId,
      'minji@example.com',
      [{ sku: 'KB-1', quantity: 2 }],
      1000,
    )
    const deadline = Date.now() + 10_000
    while (sent.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await service.close()
    await Promise.all([mail.close(), shop.close()])

    expect(sent.map((m) => m.subject).sort()).toEqual([
      expect.stringMatching(/^Order [0-9a-f]{8} confirmed$/),
      'Welcome, Kim Minji!',
    ])
    const files = await readdir(outbox)
    expect(files).toHaveLength(2)
    const texts = await Promise.all(files.map((f) => readFile(join(outbox, f), 'utf8')))
    expect(texts.join('\n')).toContain('To: minji@example.com')
    expect(texts.join('\n')).toContain('2 × KB-1')
  })

  it('keeps the events published after the deploy step (provision) and before MailService starts', async () => {
    const outbox = await mkdtemp(join(tmpdir(), 'msgkit-outbox-'))
    const url = `memory://mail-test-provision-${Date.now()}`
    const deploy = await createMessaging(url)
    await provisionMailService(deploy)
    await deploy.close()
    // the producers run while MailService is not up yet
    const shop = await createMessaging(url)
    const memberId = await createMemberService(shop).signUp('Lee Jiho', 'jiho@example.com')
    await createOrderService(shop).complete(
      memberId,
      'jiho@example.com',
      [{ sku: 'MUG-02', quantity: 1 }],
      900,
    )

    const mail = await createMessaging(url)
    const sent: SentMail[] = []
    const service = await startMailService(mail, { outbox, onSent: (m) => sent.push(m) })
    const deadline = Date.now() + 10_000
    while (sent.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 100)) // a duplicate would show up here
    await service.close()
    await Promise.all([mail.close(), shop.close()])
    expect(sent.map((m) => m.subject).sort()).toEqual([
      expect.stringMatching(/^Order [0-9a-f]{8} confirmed$/),
      'Welcome, Lee Jiho!',
    ])
  })

  it('refuses an order that breaks the schema before anything is sent', async () => {
    const shop = await createMessaging(`memory://mail-test-bad-${Date.now()}`)
    await expect(
      shop.publish(OrderCompleted, {
        orderId: 'o1',
        memberId: 'm1',
        email: 'not-an-email',
        items: [],
        totalCents: -1,
      }),
    ).rejects.toMatchObject({ code: ErrorCodes.SCHEMA_INVALID })
    await shop.close()
  })
})
