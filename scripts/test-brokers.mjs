#!/usr/bin/env node
// pnpm test:brokers [broker…] — start each real broker, run its adapter's tests against it, stop it.
// Brokers are started one after another (a 2-core machine); a broker that cannot start fails the run.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createVhost } from './brokers/rabbitmq-vhost.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const BROKERS = {
  rabbitmq: {
    script: 'scripts/brokers/rabbitmq.sh',
    tests: ['packages/rabbitmq/test', 'test/brokers'],
    bench: 'rabbitmq',
    url: 'amqp://guest:guest@127.0.0.1:5672',
    // Debian's RabbitMQ keeps its data between runs (/var/lib/rabbitmq): a vhost per run, deleted after
    isolate: rabbitmqRunVhost,
    env: (url) => ({ MSGKIT_RABBITMQ_URL: url, BENCH_AMQP_URL: url }),
  },
  kafka: {
    script: 'scripts/brokers/kafka.sh',
    tests: ['packages/kafka/test', 'test/brokers'],
    bench: 'kafka',
    url: 'kafka://127.0.0.1:9092',
  },
  activemq: {
    script: 'scripts/brokers/activemq.sh',
    tests: ['packages/activemq/test', 'test/brokers'],
    bench: 'activemq',
    url: 'stomp://msgkit:msgkit@127.0.0.1:61613',
  },
  sqs: {
    script: 'scripts/brokers/sqs.sh',
    tests: ['packages/sqs/test', 'test/brokers'],
    bench: 'sqs',
    // moto accepts any credentials (CI has none); a 10 s visibility timeout keeps the crash cases short
    url: 'sqs://test:test@us-east-1?endpoint=http://127.0.0.1:4566&visibilityTimeoutSeconds=10',
  },
  'kafka-cluster': {
    script: 'scripts/brokers/kafka-cluster.sh',
    tests: ['test/brokers/kafka-cluster-failover.test.ts'],
    url: 'kafka://127.0.0.1:29091,127.0.0.1:29092,127.0.0.1:29093',
  },
  'rabbitmq-cluster': {
    script: 'scripts/brokers/rabbitmq-cluster.sh',
    tests: ['test/brokers/rabbitmq-cluster-failover.test.ts'],
    url: 'amqp://guest:guest@127.0.0.1:5701,127.0.0.1:5702,127.0.0.1:5703',
  },
}

/**
 * A vhost of its own for one run on the local RabbitMQ: whatever the tests declare (a few hundred
 * queues and exchanges, some without `x-expires`) goes with it, instead of piling up on a broker
 * whose data outlives the checkout. Returns the run's URL and how to delete it, or why it failed.
 */
function rabbitmqRunVhost(url) {
  const vhost = `msgkit-test-${Date.now().toString(36)}`
  const created = createVhost(url, vhost)
  if (created.error) return created
  return {
    url: created.url,
    what: `vhost ${vhost}`,
    dispose() {
      const t0 = Date.now()
      const problem = created.dispose()
      if (problem === undefined)
        console.log(`=== deleted ${vhost} and all it held in ${((Date.now() - t0) / 1000).toFixed(1)} s ===`)
      else console.error(`could not delete ${vhost}: ${problem}`)
    },
  }
}

const args = process.argv.slice(2).filter((a) => a !== '--')
const unknown = args.filter((a) => !(a in BROKERS))
if (unknown.length > 0) {
  console.error(
    `test:brokers: unknown broker(s) ${unknown.join(', ')}; known: ${Object.keys(BROKERS).join(', ')}`,
  )
  process.exit(2)
}
const selected = args.length > 0 ? args : Object.keys(BROKERS)

const run = (cmd, argv, opts = {}) => spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts })
const status = (script) => spawnSync('bash', [script, 'status'], { cwd: root, stdio: 'ignore' }).status === 0

const results = []
for (const name of selected) {
  const { script, tests, bench, isolate, env = () => ({}) } = BROKERS[name]
  let { url } = BROKERS[name]
  const started = Date.now()
  console.log(`\n=== ${name}: installing and starting the broker (${script}) ===`)
  const wasRunning = status(script)
  const install = run('bash', [script, 'install'])
  const start = install.status === 0 ? run('bash', [script, 'start']) : install
  if (start.status !== 0) {
    console.error(
      `\n✗ ${name}: the broker did not start. See the output above; try \`bash ${script} start\` by hand, and its logs under .brokers/${name}/.`,
    )
    results.push({ name, ok: false, why: 'broker did not start' })
    // a half-started broker (a cluster with some nodes up) must not outlive the run
    if (!wasRunning) run('bash', [script, 'stop'])
    continue
  }
  const files = tests.filter((t) => existsSync(join(root, t)))
  const isolated = isolate?.(url)
  if (isolated?.error) {
    console.error(`\n✗ ${name}: could not set up the run's own namespace: ${isolated.error}`)
    results.push({ name, ok: false, why: 'no namespace for the run' })
  } else if (files.length === 0) {
    console.error(`\n✗ ${name}: no test folder found (${tests.join(', ')}).`)
    results.push({ name, ok: false, why: 'no tests found' })
  } else {
    if (isolated) url = isolated.url
    const runEnv = { ...process.env, MSGKIT_URL: url, ...env(url) }
    console.log(
      `\n=== ${name}: running ${files.join(' ')} against the real broker${isolated ? ` (in ${isolated.what})` : ''} ===`,
    )
    // test/brokers holds cross-package tests that run once per broker, pointed at it by MSGKIT_URL
    const vitest = run('pnpm', ['exec', 'vitest', 'run', '--project', 'brokers', ...files], { env: runEnv })
    const why = vitest.status === 0 ? [] : ['tests failed']
    // a small smoke of this broker's benchmark while it is up, so the bench keeps working (MSGKIT_BENCH_SMOKE=0: skip)
    if (bench && process.env.MSGKIT_BENCH_SMOKE !== '0') {
      console.log(`\n=== ${name}: benchmark smoke (pnpm bench:smoke ${bench}) ===`)
      if (run('pnpm', ['bench:smoke', bench], { env: runEnv }).status !== 0) why.push('bench smoke failed')
    }
    results.push({ name, ok: why.length === 0, why: why.join('; '), seconds: 0 })
  }
  isolated?.dispose?.()
  if (!wasRunning) {
    console.log(`\n=== ${name}: stopping the broker ===`)
    run('bash', [script, 'stop'])
  } else console.log(`\n=== ${name}: the broker was already running before; left running ===`)
  const seconds = Math.round((Date.now() - started) / 1000)
  const last = results.at(-1)
  if (last && last.name === name) last.seconds = seconds
  console.log(`=== ${name}: done in ${seconds} s ===`)
}

console.log('\nReal-broker summary:')
for (const r of results)
  console.log(`  ${r.ok ? '✓' : '✗'} ${r.name} (${r.seconds ?? '?'} s)${r.ok ? '' : ` — ${r.why}`}`)
process.exit(results.every((r) => r.ok) ? 0 : 1)
