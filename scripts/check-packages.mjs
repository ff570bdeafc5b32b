#!/usr/bin/env node
// node scripts/check-packages.mjs — the packages as npm users get them (run after `pnpm build`):
//   1. `pnpm pack` every package (workspace: ranges become real versions, as on publish);
//   2. publint (--strict) and @arethetypeswrong/cli (ESM-only profile) on every tarball;
//   3. an empty project installs core + rabbitmq + cli from the tarballs with plain npm (no
//      workspace), type-checks a small TypeScript service against them (NodeNext), runs it on
//      memory:// and on a real RabbitMQ, checks that a missing adapter fails with
//      MSGKIT_TRANSPORT_MISSING naming its package, and runs the installed `msgkit` bin: --help,
//      health, and the docs/cli.md walk-through (send, a failing handler, dlq show, redrive).
// RabbitMQ is started with scripts/brokers/rabbitmq.sh when it is not running (and stopped again).
// The tools are pinned below and cached in .brokers/tools. Each step prints how long it took.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const TOOLS = { publint: '0.3.25', '@arethetypeswrong/cli': '0.18.5' }
const toolsDir = join(root, '.brokers', 'tools')
const rabbitUrl = process.env.MSGKIT_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const keep = process.argv.includes('--keep')
const timings = []
let failed = false

const fail = (message) => {
  throw new Error(message)
}
/** runs a step, prints and remembers its duration; a failing step ends the run */
async function step(name, work) {
  console.log(`\n--> ${name}`)
  const t0 = Date.now()
  try {
    await work()
    timings.push([name, Date.now() - t0, 'ok'])
  } catch (error) {
    timings.push([name, Date.now() - t0, 'FAILED'])
    failed = true
    console.error(`✗ ${name}: ${error.message}`)
    throw error
  } finally {
    console.log(`<-- ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  }
}
/** a command that must succeed; its output shown only when it fails (or `show`) */
function sh(cmd, args, { cwd = root, env = {}, show = false, expectCode = 0 } = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`
  if (show) process.stdout.write(out)
  if (r.status !== expectCode) {
    if (!show) process.stdout.write(out)
    fail(`\`${cmd} ${args.join(' ')}\` (in ${cwd}) exited ${r.status ?? r.signal}, expected ${expectCode}`)
  }
  return r
}

// A user's service, typed against the installed packages: a round trip, or the walk-through's MailService.
const SERVICE = `import { createMessaging, defineTopic, isMsgkitError, type Message } from '@msgkit/core'
import { ExitCodes } from '@msgkit/cli'

interface MailRequested { to: string }

async function main(mode: string): Promise<void> {
  const messaging = await createMessaging(process.env.MSGKIT_URL ?? 'memory://')
  if (mode === 'mail') {
    const topic = defineTopic<MailRequested>(process.env.MAIL_TOPIC ?? 'mail.requested')
    await messaging.subscribe(topic, { group: 'mail-service', retry: { attempts: 3, backoff: { initialMs: 50 } } }, (msg: Message<MailRequested>) => {
      if (!process.env.MAIL_FIX && !msg.body.to.includes('@')) throw new Error('invalid address: ' + msg.body.to)
      console.log('mailed ' + msg.body.to + ' ' + msg.id + ' attempt=' + msg.attempt)
    })
    console.log('ready')
    process.on('SIGTERM', () => void messaging.close().then(() => process.exit(0)))
    return
  }
  const topic = defineTopic<{ n: number }>('install-check-' + process.pid + '-' + Date.now())
  const got: number[] = []
  await messaging.provision(topic, 'checker')
  const sub = await messaging.subscribe(topic, { group: 'checker' }, (m) => void got.push(m.body.n))
  const receipt = await messaging.publish(topic, { n: 42 }, { key: 'k', headers: { via: 'npm' } })
  for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50))
  await sub.close()
  await messaging.close()
  if (got[0] !== 42) throw new Error('no round trip for ' + receipt.id)
  console.log('round trip ok: ' + receipt.id + ' (exit codes known to the cli: ' + Object.keys(ExitCodes).length + ')')
}

main(process.argv[2] ?? 'round-trip').catch((error: unknown) => {
  console.error(isMsgkitError(error) ? error.code + ': ' + error.message : String(error))
  process.exit(isMsgkitError(error) && error.code === 'MSGKIT_TRANSPORT_MISSING' ? 3 : 1)
})
`

const packages = readdirSync(join(root, 'packages'))
  .map((name) => join(root, 'packages', name))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter((p) => !p.manifest.private)

const work = await mkdtemp(join(tmpdir(), 'msgkit-packages-'))
const packs = join(work, 'packs')
const app = join(work, 'app')
mkdirSync(packs)
mkdirSync(app)
const tarballs = {}
let stopRabbit = false

try {
  await step(`pack ${packages.length} packages (pnpm pack)`, async () => {
    for (const { dir, manifest } of packages) {
      const main = manifest.exports?.['.']?.import ?? manifest.main
      if (main && !existsSync(join(dir, main)))
        fail(`${manifest.name}: ${main} is missing — run \`pnpm build\` first`)
      const r = sh('pnpm', ['pack', '--pack-destination', packs], { cwd: dir })
      const file = r.stdout.trim().split('\n').pop()
      tarballs[manifest.name] = file.startsWith('/') ? file : join(packs, file)
      console.log(`    ${manifest.name} → ${tarballs[manifest.name].replace(`${work}/`, '')}`)
    }
  })

  await step('tools: publint, @arethetypeswrong/cli (cached in .brokers/tools)', async () => {
    const have = Object.keys(TOOLS).every((name) => {
      const file = join(toolsDir, 'node_modules', name, 'package.json')
      return existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).version === TOOLS[name]
    })
    if (have) return console.log('    cached')
    mkdirSync(toolsDir, { recursive: true })
    const specs = Object.entries(TOOLS).map(([n, v]) => `${n}@${v}`)
    sh('npm', ['install', '--prefix', toolsDir, '--no-audit', '--no-fund', '--loglevel=error', ...specs])
  })

  await step('publint --strict and attw (ESM-only profile) on every tarball', async () => {
    const problems = []
    const lint = (bin, args) =>
      new Promise((resolve) => {
        const child = spawn(join(toolsDir, 'node_modules/.bin', bin), args, {
          env: { ...process.env, FORCE_COLOR: '0' },
        })
        let out = ''
        child.stdout.on('data', (d) => (out += d))
        child.stderr.on('data', (d) => (out += d))
        child.on('exit', (code) => resolve({ ok: code === 0, out }))
      })
    // two at a time: a 2-core machine
    const names = Object.keys(tarballs)
    for (let i = 0; i < names.length; i += 2) {
      await Promise.all(
        names.slice(i, i + 2).map(async (name) => {
          const tgz = tarballs[name]
          const [publint, attw] = await Promise.all([
            lint('publint', ['run', tgz, '--strict']),
            lint('attw', [tgz, '--profile', 'esm-only', '--format', 'table-flipped']),
          ])
          console.log(
            `    ${name}: publint ${publint.ok ? 'ok' : 'FAILED'}, attw ${attw.ok ? 'ok' : 'FAILED'}`,
          )
          if (!publint.ok) problems.push(`publint ${name}:\n${publint.out}`)
          if (!attw.ok) problems.push(`attw ${name}:\n${attw.out}`)
        }),
      )
    }
    if (problems.length) fail(`packaging problems:\n${problems.join('\n')}`)
  })

  await step('npm install core + rabbitmq + cli tarballs into an empty project', async () => {
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'msgkit-install-check', private: true, type: 'module' }, null, 2),
    )
    const nodeMajor = process.versions.node.split('.')[0]
    const needed = ['@msgkit/core', '@msgkit/rabbitmq', '@msgkit/cli'].map(
      (n) => tarballs[n] ?? fail(`no tarball for ${n}`),
    )
    sh(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...needed,
        'typescript@5.9.3',
        `@types/node@${nodeMajor}`,
      ],
      {
        cwd: app,
      },
    )
    // the adapters' and the CLI's dependency on core must be the tarball, not something from the registry
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8'))
    const cores = Object.entries(lock.packages).filter(([path]) => path.endsWith('node_modules/@msgkit/core'))
    if (cores.length !== 1 || !String(cores[0][1].resolved).startsWith('file:'))
      fail(`expected exactly one @msgkit/core, from the tarball; got ${JSON.stringify(cores)}`)
  })

  await step(
    'type-check a TypeScript service against the installed packages (NodeNext, strict)',
    async () => {
      writeFileSync(
        join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            outDir: 'dist',
            types: ['node'],
            skipLibCheck: false,
          },
          include: ['service.ts'],
        }),
      )
      writeFileSync(join(app, 'service.ts'), SERVICE)
      sh(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.'], { cwd: app, show: true })
    },
  )

  await step('run it on memory://', async () => {
    const r = sh(process.execPath, ['dist/service.js', 'round-trip'], {
      cwd: app,
      env: { MSGKIT_URL: 'memory://' },
    })
    if (!r.stdout.includes('round trip ok')) fail(`unexpected output: ${r.stdout}`)
  })

  await step('a missing adapter: MSGKIT_TRANSPORT_MISSING naming @msgkit/kafka', async () => {
    const r = sh(process.execPath, ['dist/service.js', 'round-trip'], {
      cwd: app,
      env: { MSGKIT_URL: 'kafka://127.0.0.1:9092' },
      expectCode: 3,
    })
    if (!/MSGKIT_TRANSPORT_MISSING/.test(r.stderr) || !r.stderr.includes('@msgkit/kafka'))
      fail(`expected MSGKIT_TRANSPORT_MISSING naming @msgkit/kafka, got: ${r.stderr}`)
    const cli = sh(join(app, 'node_modules/.bin/msgkit'), ['health', '--url', 'kafka://127.0.0.1:9092'], {
      cwd: app,
      expectCode: 3,
    })
    if (!cli.stderr.includes('MSGKIT_TRANSPORT_MISSING') || !cli.stderr.includes('npm install @msgkit/kafka'))
      fail(`msgkit health: expected MSGKIT_TRANSPORT_MISSING naming @msgkit/kafka, got: ${cli.stderr}`)
  })

  await step('RabbitMQ running (scripts/brokers/rabbitmq.sh)', async () => {
    const script = join(root, 'scripts/brokers/rabbitmq.sh')
    if (spawnSync('bash', [script, 'status'], { stdio: 'ignore' }).status === 0)
      return console.log('    already running')
    sh('bash', [script, 'install'], { show: true })
    sh('bash', [script, 'start'], { show: true })
    stopRabbit = true
  })

  await step('run it on RabbitMQ; the installed msgkit bin: --help, health', async () => {
    const r = sh(process.execPath, ['dist/service.js', 'round-trip'], {
      cwd: app,
      env: { MSGKIT_URL: rabbitUrl },
    })
    if (!r.stdout.includes('round trip ok')) fail(`unexpected output: ${r.stdout}`)
    const msgkit = join(app, 'node_modules/.bin/msgkit')
    const help = sh(msgkit, ['--help'], { cwd: app })
    if (!help.stdout.includes('Exit codes:')) fail('msgkit --help printed no usage')
    sh(msgkit, ['health'], { cwd: app, env: { MSGKIT_URL: rabbitUrl }, show: true })
  })

  await step('the docs/cli.md walk-through with the installed msgkit on RabbitMQ', async () => {
    const msgkit = join(app, 'node_modules/.bin/msgkit')
    const topic = `mail-check-${process.pid}-${Date.now()}`
    const env = { MSGKIT_URL: rabbitUrl, MAIL_TOPIC: topic }
    const run = (args, options = {}) => sh(msgkit, args, { cwd: app, env, ...options })
    run(['provision', topic, '--group', 'mail-service'], { show: true })
    const failing = await startService(env, false)
    try {
      run(['send', topic, '--body', '{"to":"broken-address"}', '--key', 'member-43'], { show: true })
      const deadline = Date.now() + 30_000
      for (;;) {
        const list = JSON.parse(run(['dlq', 'list', topic, '--group', 'mail-service', '--json']).stdout)
        if (list.count === 1) break
        if (Date.now() > deadline) fail(`no dead letter after 30 s: ${JSON.stringify(list)}`)
        await new Promise((r) => setTimeout(r, 500))
      }
      const show = run(['dlq', 'show', topic, '--group', 'mail-service'], { show: true })
      if (!show.stdout.includes('invalid address: broken-address')) fail('dlq show did not show the error')
    } finally {
      await failing.stop()
    }
    const fixed = await startService(env, true)
    try {
      run(['dlq', 'redrive', topic, '--group', 'mail-service', '--idle', '1000'], { show: true })
      await fixed.waitFor(/^mailed broken-address .* attempt=1$/)
      console.log('    the fixed service handled the redriven message')
    } finally {
      await fixed.stop()
    }
  })
} catch {
  // reported by step()
} finally {
  if (stopRabbit) spawnSync('bash', [join(root, 'scripts/brokers/rabbitmq.sh'), 'stop'], { stdio: 'inherit' })
  if (keep) console.log(`\nkept ${work}`)
  else await rm(work, { recursive: true, force: true })
  console.log('\npackage checks:')
  for (const [name, ms, outcome] of timings)
    console.log(`  ${(ms / 1000).toFixed(1).padStart(6)} s  ${outcome.padEnd(6)} ${name}`)
  if (failed)
    console.log(
      '\nA check failed: see ✗ above. `node scripts/check-packages.mjs --keep` keeps the temporary project to look at.',
    )
}
process.exit(failed ? 1 : 0)

/** The installed service (dist/service.js) in the background; resolves once it consumes. */
function startService(env, fixed) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/service.js', 'mail'], {
      cwd: app,
      env: { ...process.env, ...env, ...(fixed ? { MAIL_FIX: '1' } : {}) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const lines = []
    const waiters = new Set()
    let buffer = ''
    child.stdout.on('data', (d) => {
      buffer += d
      const parts = buffer.split('\n')
      buffer = parts.pop()
      for (const line of parts) {
        console.log(`    [service] ${line}`)
        lines.push(line)
      }
      for (const w of waiters) w()
    })
    const service = {
      waitFor: (pattern, ms = 30_000) =>
        new Promise((ok, no) => {
          const timer = setTimeout(() => no(new Error(`service never printed ${pattern}`)), ms)
          const check = () => {
            if (!lines.some((l) => pattern.test(l))) return
            clearTimeout(timer)
            waiters.delete(check)
            ok()
          }
          waiters.add(check)
          check()
        }),
      stop: () =>
        new Promise((ok) => {
          if (child.exitCode !== null) return ok()
          child.once('exit', ok)
          child.kill('SIGTERM')
        }),
    }
    child.once('exit', (code) => reject(new Error(`the service exited (${code}) before it was ready`)))
    service.waitFor(/^ready$/).then(() => resolve(service), reject)
  })
}
