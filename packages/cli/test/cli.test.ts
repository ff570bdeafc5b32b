// The `msgkit` executable on the memory transport, run as a child process the way a shell runs it:
// help, exit codes, JSON output, no secrets in errors, send / tail / health, and the dead-letter
// commands against a memory broker seeded in the CLI's own process (test/support/memory-seed.ts).
import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { jsonLines, runCli, seedModule } from './support/run-cli.js'

const memory = () => `memory://cli-${randomUUID().slice(0, 8)}`

describe('msgkit: help and usage', () => {
  it('--help on every command exits 0 and documents the exit codes', async () => {
    const top = await runCli(['--help'])
    expect(top.code).toBe(0)
    expect(top.stdout).toContain('Exit codes:')
    const commands = [
      'send',
      'tail',
      'dlq',
      'dlq list',
      'dlq show',
      'dlq redrive',
      'dlq purge',
      'health',
      'provision',
    ]
    const runs = await Promise.all(commands.map((command) => runCli([...command.split(' '), '--help'])))
    runs.forEach((run, i) => {
      expect(run.code, commands[i]).toBe(0)
      expect(run.stdout, commands[i]).toContain(`Usage: msgkit ${commands[i]}`)
    })
    expect((await runCli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('wrong usage exits 2 with a message on stderr, never a stack', async () => {
    const wrong = [
      ['nope'],
      ['send'],
      ['dlq', 'list', 'orders'],
      ['send', 'orders', '--bogus'],
      ['send', 'orders', '-n', 'x'],
    ]
    const runs = await Promise.all(wrong.map((args) => runCli(args, { env: { MSGKIT_URL: 'memory://' } })))
    runs.forEach((run, i) => {
      expect(run.code, wrong[i]?.join(' ')).toBe(2)
      expect(run.stderr, wrong[i]?.join(' ')).toMatch(/error|msgkit/i)
      expect(run.stderr).not.toMatch(/\n\s+at /)
    })
    const badName = await runCli(['dlq', 'list', 'orders', '--group', 'bad.group', '--url', memory()])
    expect(badName.code).toBe(2)
    expect(badName.stderr).toContain('MSGKIT_INVALID_ARGUMENT')
    const badJson = await runCli(['send', 'orders', '--body', '{oops', '--url', memory()])
    expect(badJson.code).toBe(2)
    expect(badJson.stderr).toContain('not valid JSON')
  })

  it('configuration problems exit 3: no URL, an unknown scheme', async () => {
    // (an adapter that is not installed, MSGKIT_TRANSPORT_MISSING, is checked where it can be
    // missing: in the pack-and-install check, scripts/check-packages.mjs)
    const none = await runCli(['health'])
    expect(none.code).toBe(3)
    expect(none.stderr).toContain('MSGKIT_CLI_NO_URL')
    const unknown = await runCli(['health', '--json', '--url', 'nats://localhost:4222'])
    expect(unknown.code).toBe(3)
    const error = (jsonLines(unknown.stderr)[0] as { error: { code: string; exitCode: number } }).error
    expect(error.code).toMatch(/MSGKIT_(URL_INVALID|TRANSPORT_UNKNOWN)/)
    expect(error.exitCode).toBe(3)
  })

  it('an unreachable broker exits 4 and the password never appears', async () => {
    const secret = `pw-${randomUUID()}`
    const run = await runCli(['health', '--url', `amqp://guest:${secret}@127.0.0.1:1`], { timeoutMs: 60_000 })
    expect(run.code).toBe(4)
    expect(run.stderr).toContain('MSGKIT_CONNECTION_FAILED')
    expect(run.stdout + run.stderr).not.toContain(secret)
  })
})

describe('msgkit on memory://', () => {
  it('health reports status, capabilities and a round trip', async () => {
    const run = await runCli(['health', '--json', '--url', memory()])
    expect(run.code, run.stderr).toBe(0)
    const report = JSON.parse(run.stdout) as Record<string, unknown>
    expect(report).toMatchObject({
      status: 'up',
      transport: 'memory',
      roundTrip: { ok: true, temporary: true },
    })
    expect(report.capabilities).toMatchObject({ browse: 'exact', sendToGroup: true, temporaryGroups: true })
  })

  it('send prints one receipt per confirmed message; bodies from --body, --file and stdin', async () => {
    const url = memory()
    const many = await runCli([
      'send',
      'orders',
      '--body',
      '{"a":1}',
      '-n',
      '250',
      '-k',
      'k1',
      '-H',
      'x=1',
      '--json',
      '--unroutable',
      'ignore',
      '--url',
      url,
    ])
    expect(many.code).toBe(0)
    const receipts = jsonLines(many.stdout) as Array<{ id: string; topic: string; key: string }>
    expect(receipts).toHaveLength(250)
    expect(new Set(receipts.map((r) => r.id)).size).toBe(250)
    expect(receipts[0]).toMatchObject({ topic: 'orders', key: 'k1' })
    expect(many.stderr).toContain('250 message(s) confirmed')
    const file = join(tmpdir(), `msgkit-body-${randomUUID()}.json`)
    await writeFile(file, '{"from":"file"}')
    expect(
      (await runCli(['send', 'orders', '--file', file, '--unroutable', 'ignore', '--url', url])).code,
    ).toBe(0)
    const piped = await runCli(
      ['send', 'orders', '--format', 'text', '--unroutable', 'ignore', '--url', url],
      { input: 'plain text' },
    )
    expect(piped.code).toBe(0)
    expect(piped.stdout).toMatch(/^sent \S+ to orders$/m)
  })

  it('send to a topic no group was provisioned for warns, or exits 6 with --unroutable reject', async () => {
    const warn = await runCli(['send', 'nobody', '--body', '1', '--url', memory()])
    expect(warn.code).toBe(0)
    expect(warn.stderr).toContain('reached no group')
    const reject = await runCli([
      'send',
      'nobody',
      '--body',
      '1',
      '--unroutable',
      'reject',
      '--url',
      memory(),
    ])
    expect(reject.code).toBe(6)
    expect(reject.stderr).toContain('MSGKIT_UNROUTABLE')
  })

  it('tail prints messages as a temporary group and stops at --limit; --from-start exits 5 where there is no log', async () => {
    const url = memory()
    const run = await runCli(['tail', 'orders', '--limit', '2', '--json', '--url', url], {
      preload: [seedModule],
      env: { MSGKIT_URL: url, SEED_PUBLISH: '3', SEED_PUBLISH_AFTER_MS: '1500' },
    })
    expect(run.code, run.stderr).toBe(0)
    const messages = jsonLines(run.stdout) as Array<{
      topic: string
      key: string
      body: unknown
      attempt: number
    }>
    expect(messages).toEqual([
      expect.objectContaining({ topic: 'orders', key: 't1', body: { tail: 1 }, attempt: 1 }),
      expect.objectContaining({ topic: 'orders', key: 't2', body: { tail: 2 }, attempt: 1 }),
    ])
    expect(run.stderr).toMatch(/temporary group msgkit-tail-\w+ \(removed on exit\)/)
    const replay = await runCli(['tail', 'orders', '--from-start', '--url', memory()])
    expect(replay.code).toBe(5)
    expect(replay.stderr).toContain('MSGKIT_CAPABILITY_UNSUPPORTED')
  })

  it('tail ends cleanly (exit 0) on SIGINT', async () => {
    const run = await runCli(['tail', 'orders.*', '--url', memory()], {
      // once it says it is tailing (a fixed delay would race the start-up on a slow machine)
      onSpawn: (child) =>
        child.stderr?.on('data', (d: Buffer) => d.toString().includes('tailing ') && child.kill('SIGINT')),
    })
    expect(run.code).toBe(0)
    expect(run.stderr).toContain('0 message(s) shown')
  })

  it('dlq list / show read the dead letters and leave them', async () => {
    const url = memory()
    const env = { MSGKIT_URL: url, SEED_DEAD_LETTERS: '3' }
    const list = await runCli(['dlq', 'list', 'orders', '--group', 'billing', '--json'], {
      preload: [seedModule],
      env,
    })
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout)).toMatchObject({
      deadLetterTopic: 'orders.billing.dlq',
      count: 3,
      complete: true,
      reasons: [
        {
          reason: 'handler-failed',
          count: 3,
          errors: [{ error: 'TypeError: mail server said 550', count: 3 }],
        },
      ],
    })
    const show = await runCli(['dlq', 'show', 'orders', '--group', 'billing'], { preload: [seedModule], env })
    expect(show.code).toBe(0)
    expect(show.stdout).toContain('reason:   handler-failed after 1 attempt(s), group billing')
    expect(show.stdout).toContain('error:    TypeError: mail server said 550')
    expect(show.stdout).toContain('headers:  tenant="t1"')
    expect(show.stdout).toContain('body:     {"n":2}')
    expect(show.stdout.match(/^#\d/gm)).toHaveLength(3)
  })

  it('dlq redrive moves matching dead letters back to the group (same id, attempt 1) and the rest stay; purge asks', async () => {
    const url = memory()
    const env = { MSGKIT_URL: url, SEED_DEAD_LETTERS: '3', SEED_CONSUMER: '1' }
    const run = await runCli(
      [
        'dlq',
        'redrive',
        'orders',
        '--group',
        'billing',
        '--filter',
        'reason=handler-failed',
        '--filter',
        'key=k2',
        '--idle',
        '300',
        '--json',
      ],
      { preload: [seedModule], env },
    )
    expect(run.code, run.stderr).toBe(0)
    const report = JSON.parse(run.stdout) as {
      moved: number
      skipped: number
      ids: string[]
      stopped: string
    }
    expect(report).toMatchObject({ moved: 1, skipped: 2, stopped: 'drained' })
    expect(run.stderr).toContain(`handled ${report.ids[0]} attempt=1`)
    const dry = await runCli(['dlq', 'redrive', 'orders', '--group', 'billing', '--dry-run'], {
      preload: [seedModule],
      env,
    })
    expect(dry.stdout).toContain('3 dead letter(s) would move to group billing on orders; 0 would stay.')
    const refused = await runCli(['dlq', 'purge', 'orders', '--group', 'billing'], {
      preload: [seedModule],
      env,
    })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain('--yes')
    const purge = await runCli(['dlq', 'purge', 'orders', '--group', 'billing', '--yes', '--idle', '300'], {
      preload: [seedModule],
      env,
    })
    expect(purge.code).toBe(0)
    expect(purge.stdout).toContain('3 dead letter(s) removed from orders.billing.dlq.')
  })

  it('provision makes every topic × group pair exist', async () => {
    const run = await runCli(['provision', 'a', 'b', '-g', 'g1', '-g', 'g2', '--json', '--url', memory()])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout).provisioned).toHaveLength(4)
    expect((await runCli(['provision', 'a', '--url', memory()])).code).toBe(2)
  })
})
