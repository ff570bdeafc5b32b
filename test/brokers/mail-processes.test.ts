// The seed story on a real broker: MailService, MemberService and OrderService as three separate
// processes sharing nothing but MSGKIT_URL. Run by `pnpm test:brokers`, which sets MSGKIT_URL.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const url = process.env.MSGKIT_URL
const exampleDir = join(import.meta.dirname, '..', '..', 'examples', 'mail')
const children: ChildProcess[] = []

function start(
  script: string,
  env: Record<string, string>,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    ['--conditions=@msgkit/source', '--import', 'tsx', `src/${script}.ts`],
    {
      cwd: exampleDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  children.push(child)
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, output: () => out, exited }
}

async function waitForText(
  read: () => string,
  pattern: RegExp,
  count: number,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((read().match(new RegExp(pattern, 'g')) ?? []).length >= count) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${what}: expected ${count}× ${pattern} within ${timeoutMs} ms; output so far:\n${read()}`)
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
})

describe(`mail example as three processes on ${url ?? '(MSGKIT_URL not set)'}`, () => {
  it('MailService sends the mails for events published by two other processes', async () => {
    expect(url, 'MSGKIT_URL must point at the broker under test (pnpm test:brokers sets it)').toBeTruthy()
    const outbox = await mkdtemp(join(tmpdir(), 'msgkit-mail-'))
    const env = { MSGKIT_URL: url as string, MAIL_OUTBOX: outbox }
    const mail = start('mail-service', env)
    await waitForText(mail.output, /waiting for events/, 1, 60_000, 'mail-service start')

    const member = start('member-service', env)
    expect(await member.exited, `member-service output:\n${member.output()}`).toBe(0)
    const order = start('order-service', env)
    expect(await order.exited, `order-service output:\n${order.output()}`).toBe(0)

    await waitForText(mail.output, /\[mail-service\] sent /, 4, 60_000, 'mails sent')
    mail.child.kill('SIGTERM')
    expect(await mail.exited, `mail-service output:\n${mail.output()}`).toBe(0)
    expect(mail.output()).toMatch(/sent "Welcome, Kim Minji!" to member1@example.com/)
    expect(mail.output()).toMatch(/sent "Order [0-9a-f]{8} confirmed" to member1@example.com/)
    expect(await readdir(outbox)).toHaveLength(4)
  })
})
