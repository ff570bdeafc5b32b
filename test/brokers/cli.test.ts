// The msgkit command line on each real broker (pointed at it by MSGKIT_URL, scripts/test-brokers.mjs):
// the docs/cli.md walk-through as a user runs it — health, provision, a service whose handler fails
// for one message, tail, send, the dead letter in dlq list/show, the fixed service, redrive, handled.
// Where the transport lacks a feature the command must exit 5 (MSGKIT_CAPABILITY_UNSUPPORTED) and
// the walk-through goes on the documented way (tail --group, redrive --to-topic).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { jsonLines, runCli } from '../../packages/cli/test/support/run-cli.js'

const url = process.env.MSGKIT_URL
const repoRoot = join(import.meta.dirname, '..', '..')
const running = new Set<ChildProcess>()

interface Service {
  lines: string[]
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  stop(): Promise<void>
}

/** MailService (packages/cli/test/support/mail-service.ts) in its own process; `fixed` = MAIL_FIX=1. */
async function startService(topic: string, fixed: boolean): Promise<Service> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@msgkit/source',
      '--import',
      'tsx',
      join(repoRoot, 'packages/cli/test/support/mail-service.ts'),
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, MSGKIT_URL: url, MAIL_TOPIC: topic, ...(fixed ? { MAIL_FIX: '1' } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  running.add(child)
  const lines: string[] = []
  let buffer = ''
  const listeners = new Set<() => void>()
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString()
    const parts = buffer.split('\n')
    buffer = parts.pop() ?? ''
    lines.push(...parts)
    for (const l of listeners) l()
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000)
  })
  const service: Service = {
    lines,
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => pattern.test(l))
          if (!hit) return
          listeners.delete(check)
          clearTimeout(timer)
          resolve(hit)
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(new Error(`service never printed ${pattern}; it printed: ${lines.join(' | ')} ${stderr}`))
        }, timeoutMs)
        listeners.add(check)
        check()
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }).then(() => void running.delete(child)),
  }
  await service.waitFor(/^ready$/)
  return service
}

afterEach(async () => {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
})

it.runIf(url)(
  'the walk-through: send → tail → a failing handler dead-letters → dlq list/show → redrive → handled',
  async () => {
    const env = { MSGKIT_URL: url }
    const cli = (args: string[], timeoutMs = 90_000) => runCli(args, { env, timeoutMs })
    const topic = `mail-${randomUUID().slice(0, 8)}`

    const health = await cli(['health', '--json'])
    expect(health.code, health.stderr).toBe(0)
    const report = JSON.parse(health.stdout) as {
      status: string
      roundTrip: { ok: boolean }
      capabilities: { temporaryGroups?: boolean; sendToGroup?: boolean; browse?: string | false }
    }
    expect(report).toMatchObject({ status: 'up', roundTrip: { ok: true } })
    const caps = report.capabilities
    expect(report.capabilities).toBeTypeOf('object')

    expect((await cli(['provision', topic, '--group', 'mail-service'])).code).toBe(0)
    const failing = await startService(topic, false)

    // tail: a temporary group of its own, or (without temporary groups: exit 5 first) a named one
    let tailArgs = ['tail', topic, '--limit', '2', '--json']
    if (!caps.temporaryGroups) {
      const refused = await cli(['tail', topic, '--limit', '1'])
      expect(refused.code).toBe(5)
      expect(refused.stderr).toContain('MSGKIT_CAPABILITY_UNSUPPORTED')
      tailArgs = [...tailArgs, '--group', `tail-${randomUUID().slice(0, 8)}`]
    }
    let tailReady!: () => void
    const tailing = new Promise<void>((resolve) => (tailReady = resolve))
    const tail = runCli(tailArgs, {
      env,
      timeoutMs: 90_000,
      onSpawn: (child) =>
        child.stderr?.on('data', (d: Buffer) => d.toString().includes('tailing ') && tailReady()),
    })
    await tailing

    const good = await cli([
      'send',
      topic,
      '--body',
      '{"to":"minji@example.com"}',
      '--key',
      'member-42',
      '--json',
    ])
    const bad = await cli([
      'send',
      topic,
      '--body',
      '{"to":"broken-address"}',
      '--key',
      'member-43',
      '--json',
    ])
    expect([good.code, bad.code]).toEqual([0, 0])
    const badId = (JSON.parse(bad.stdout) as { id: string }).id
    const goodId = (JSON.parse(good.stdout) as { id: string }).id

    const tailed = await tail
    expect(tailed.code, tailed.stderr).toBe(0)
    expect((jsonLines(tailed.stdout) as Array<{ id: string }>).map((m) => m.id)).toEqual([goodId, badId])
    await failing.waitFor(new RegExp(`^mailed minji@example.com ${goodId}`))

    if (caps.browse) {
      let listed: { count: number; reasons: Array<{ reason: string }> } | undefined
      for (let i = 0; i < 60 && !listed?.count; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 500))
        const list = await cli(['dlq', 'list', topic, '--group', 'mail-service', '--json'])
        expect(list.code, list.stderr).toBe(0)
        listed = JSON.parse(list.stdout)
      }
      expect(listed).toMatchObject({ count: 1, reasons: [{ reason: 'handler-failed', count: 1 }] })
      const show = await cli(['dlq', 'show', topic, '--group', 'mail-service', '--json'])
      expect(show.code).toBe(0)
      expect(JSON.parse(show.stdout)).toEqual([
        expect.objectContaining({
          id: badId,
          key: 'member-43',
          body: { to: 'broken-address' },
          deadLetter: expect.objectContaining({
            reason: 'handler-failed',
            attempts: 3,
            errorMessage: 'invalid address: broken-address',
            group: 'mail-service',
          }),
        }),
      ])
    } else {
      for (const command of ['list', 'show']) {
        const refused = await cli(['dlq', command, topic, '--group', 'mail-service'])
        expect(refused.code, command).toBe(5)
        expect(refused.stderr).toContain('MSGKIT_CAPABILITY_UNSUPPORTED')
      }
    }

    await failing.stop()
    const fixed = await startService(topic, true)
    let redriveArgs = ['dlq', 'redrive', topic, '--group', 'mail-service', '--json']
    if (!caps.sendToGroup) {
      const refused = await cli(redriveArgs)
      expect(refused.code).toBe(5)
      expect(refused.stderr).toContain('--to-topic')
      redriveArgs = [...redriveArgs, '--to-topic']
    }
    // the dead letter may still be on its way where the broker could not be browsed to wait for it
    let moved = 0
    for (let i = 0; i < 10 && moved === 0; i++) {
      const redrive = await cli(redriveArgs)
      expect(redrive.code, redrive.stderr).toBe(0)
      moved = (JSON.parse(redrive.stdout) as { moved: number }).moved
    }
    expect(moved).toBe(1)
    const handled = await fixed.waitFor(new RegExp(`^mailed broken-address ${badId}`))
    expect(handled).toMatch(/attempt=1$/)
    if (caps.browse) {
      const after = await cli(['dlq', 'list', topic, '--group', 'mail-service', '--json'])
      expect(JSON.parse(after.stdout)).toMatchObject({ count: 0 })
    }
    await fixed.stop()
  },
  300_000,
)
