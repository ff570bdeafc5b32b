// The seed story on a real broker, as a new user meets it: the README's real-broker steps for the
// mail example, run line by line as written (through pnpm, each service its own process), on a
// FRESH broker, where no queue, topic or group is left from an earlier run:
//   - RabbitMQ: a new vhost (rabbitmqctl add_vhost + set_permissions), deleted afterwards;
//   - ActiveMQ: a second instance (scripts/brokers/activemq.sh with its own state dir and ports);
//   - Kafka: a second, throwaway Kafka (scripts/brokers/kafka.sh with its own state dir and ports),
//     so a new cluster id and an empty data dir, stopped and deleted afterwards.
// Asserted: exactly 4 mails, each once (no loss, no duplicate), and after `stop` no process the
// steps started is left. Run by `pnpm test:brokers`, which sets MSGKIT_URL to the broker's kind.
//
// Env: MSGKIT_RABBITMQCTL (default "rabbitmqctl"; with Docker e.g.
// "docker compose exec -T rabbitmq rabbitmqctl") to manage vhosts on the broker's node.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createVhost } from '../../scripts/brokers/rabbitmq-vhost.mjs'

const url = process.env.MSGKIT_URL
const repoRoot = join(import.meta.dirname, '..', '..')
const EXAMPLE = '@msgkit/example-mail'
/** Every process the steps start inherits this variable: how we find survivors in /proc. */
const RUN_MARK = 'MSGKIT_MAIL_TEST_RUN'
const STEP_TIMEOUT_MS = 90_000

const secretFree = (u: string) => u.replace(/\/\/[^@/]*@/, '//***@')
const log = (text: string) => console.log(`[mail-processes] ${text}`)

// ---- the README's steps ------------------------------------------------------------------------

/**
 * The package scripts the README's real-broker block runs, in order. The lines that start the
 * broker and export MSGKIT_URL are the test's job (it points MSGKIT_URL at a fresh broker); any
 * other line must be `pnpm --filter @msgkit/example-mail <script>`, or this test cannot stand for
 * the README and says so.
 */
function readmeSteps(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .find((b) => b.includes(`pnpm --filter ${EXAMPLE} `) && b.includes('MSGKIT_URL'))
  if (!block) throw new Error(`README.md: no \`\`\`sh block with the mail example's real-broker steps found`)
  const steps: string[] = []
  for (const raw of block.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '').trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('pnpm brokers:start ') || line.startsWith('export MSGKIT_URL=')) continue
    const m = new RegExp(`^pnpm --filter ${EXAMPLE} ([\\w:-]+)$`).exec(line)
    if (!m) throw new Error(`README.md mail example: this test does not know how to run \`${line}\``)
    steps.push(m[1] as string)
  }
  return steps
}

interface StepResult {
  script: string
  code: number | null
  output: string
  began: number
  ms: number
}

/** Runs `pnpm --filter @msgkit/example-mail <script>` from the repository root, as a user would. */
function runStep(script: string, env: NodeJS.ProcessEnv): Promise<StepResult> {
  const began = Date.now()
  const child: ChildProcess = spawn('pnpm', ['--filter', EXAMPLE, script], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString()
  })
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      output += `\n(test: no exit within ${STEP_TIMEOUT_MS} ms, killed)`
      child.kill('SIGKILL')
    }, STEP_TIMEOUT_MS)
    // 'close', not 'exit': a step that leaves a process holding its stdout would hang here, and
    // the timeout above would say so
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ script, code, output, began, ms: Date.now() - began })
    })
  })
}

// ---- fresh brokers -----------------------------------------------------------------------------

interface FreshBroker {
  url: string
  what: string
  dispose(): Promise<void>
}

function sh(command: string[], env: NodeJS.ProcessEnv = process.env, timeout = 120_000) {
  const r = spawnSync(command[0] as string, command.slice(1), {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout,
  })
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` }
}

async function freshRabbitVhost(baseUrl: string, runId: string): Promise<FreshBroker> {
  const vhost = `msgkit-mail-${runId}`
  const created = createVhost(baseUrl, vhost)
  if (created.error !== undefined) throw new Error(created.error)
  return {
    url: created.url,
    what: `new vhost ${vhost}`,
    async dispose() {
      const problem = created.dispose()
      if (problem) log(`could not delete vhost ${vhost}: ${problem}`)
    },
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * A second Kafka beside the shared one: own state dir (so a new cluster id, formatted empty) and own
 * ports. Reuses the shared broker's downloaded jars when present (a symlink) to skip the download.
 */
async function freshKafkaCluster(): Promise<FreshBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'msgkit-fresh-kafka-'))
  const sharedLib = join(repoRoot, '.brokers', 'kafka', 'lib')
  mkdirSync(join(dir, 'kafka'), { recursive: true })
  if (existsSync(join(sharedLib, '.complete'))) symlinkSync(sharedLib, join(dir, 'kafka', 'lib'))
  // the cluster id kafka.sh formats the storage with (it keeps a non-empty one): a Kafka Uuid, 16
  // random bytes in URL-safe base64, never starting with '-' (the storage tool would take it for an
  // option, as kafka.sh's own random id does 1 time in 64; Kafka's Uuid.randomUuid() skips those too)
  let clusterId = ''
  while (clusterId === '' || clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url')
  writeFileSync(join(dir, 'kafka', 'cluster.id'), clusterId)
  const port = await freePort()
  let controllerPort = await freePort()
  while (controllerPort === port) controllerPort = await freePort()
  const env = {
    ...process.env,
    MSGKIT_BROKERS_DIR: dir,
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_HEAP: '-Xmx512m -Xms128m',
  }
  const script = join('scripts', 'brokers', 'kafka.sh')
  const began = Date.now()
  const started = sh(['bash', script, 'start'], env, 180_000)
  const stop = () => {
    const r = sh(['bash', script, 'stop'], env)
    if (!r.ok) log(`could not stop the fresh Kafka in ${dir}:\n${r.output}`)
  }
  if (!started.ok) {
    stop()
    await rm(dir, { recursive: true, force: true })
    throw new Error(
      `starting a fresh Kafka (${script} start, cluster id ${clusterId}) failed:\n${started.output}`,
    )
  }
  return {
    url: `kafka://127.0.0.1:${port}`,
    what: `new Kafka cluster ${clusterId} on 127.0.0.1:${port} (up in ${((Date.now() - began) / 1000).toFixed(1)} s)`,
    async dispose() {
      stop()
      await rm(dir, { recursive: true, force: true }) // removes the lib symlink, not the shared jars
    },
  }
}

/**
 * A second ActiveMQ beside the shared one: its own state dir (no queue, no scheduled job from any
 * earlier run) and its own ports; the shared one's login.
 */
async function freshActivemq(baseUrl: string): Promise<FreshBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'msgkit-fresh-activemq-'))
  const port = await freePort()
  let openwire = await freePort()
  while (openwire === port) openwire = await freePort()
  const env = {
    ...process.env,
    MSGKIT_BROKERS_DIR: dir,
    ACTIVEMQ_STOMP_PORT: String(port),
    ACTIVEMQ_OPENWIRE_PORT: String(openwire),
    ACTIVEMQ_HEAP: '-Xms64m -Xmx512m',
  }
  const script = join('scripts', 'brokers', 'activemq.sh')
  const began = Date.now()
  const started = sh(['bash', script, 'start'], env, 180_000)
  const stop = () => {
    const r = sh(['bash', script, 'stop'], env)
    if (!r.ok) log(`could not stop the fresh ActiveMQ in ${dir}:\n${r.output}`)
  }
  if (!started.ok) {
    stop()
    await rm(dir, { recursive: true, force: true })
    throw new Error(`starting a fresh ActiveMQ (${script} start) failed:\n${started.output}`)
  }
  const login = /^stomp(\+ssl)?:\/\/([^@/]*@)?/.exec(baseUrl)?.[2] ?? ''
  return {
    url: `stomp://${login}127.0.0.1:${port}`,
    what: `new ActiveMQ instance on 127.0.0.1:${port} (up in ${((Date.now() - began) / 1000).toFixed(1)} s)`,
    async dispose() {
      stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * SQS: queues and topics under a name prefix no earlier run used (a second moto would be fresh too,
 * but its state file is the point of the shared one; names are what make SQS state "fresh").
 */
async function freshSqsPrefix(baseUrl: string, runId: string): Promise<FreshBroker> {
  const prefix = `mail${runId.replace(/[^A-Za-z0-9]/g, '').slice(0, 16)}-`
  const u = new URL(baseUrl.replace(/^sqs:/, 'http:'))
  u.searchParams.set('prefix', prefix)
  return {
    url: u.toString().replace(/^http:/, 'sqs:'),
    what: `new name prefix ${prefix}`,
    async dispose() {},
  }
}

async function freshBroker(baseUrl: string, runId: string): Promise<FreshBroker> {
  if (/^amqps?:/.test(baseUrl)) return freshRabbitVhost(baseUrl, runId)
  if (baseUrl.startsWith('kafka:')) return freshKafkaCluster()
  if (/^stomp(\+ssl)?:/.test(baseUrl)) return freshActivemq(baseUrl)
  if (baseUrl.startsWith('sqs:')) return freshSqsPrefix(baseUrl, runId)
  throw new Error(
    `no recipe for a fresh broker behind ${secretFree(baseUrl)} (known: amqp://, kafka://, stomp://, sqs://)`,
  )
}

// ---- processes and mails -----------------------------------------------------------------------

/** Live processes (zombies excluded) carrying this run's mark: whatever the steps left running. */
function processesOfRun(runId: string): Array<{ pid: number; cmd: string }> {
  if (!existsSync('/proc/self/environ'))
    throw new Error('this test finds leftover processes in /proc: run it on Linux (as CI does)')
  const mark = `${RUN_MARK}=${runId}\0`
  const found: Array<{ pid: number; cmd: string }> = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'latin1').includes(mark)) continue
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim()
      found.push({ pid: Number(entry), cmd })
    } catch {
      // exited while we looked
    }
  }
  return found
}

interface Mails {
  /** one per handler success (a redelivered event that is mailed again counts twice) */
  sent: Array<{ subject: string; to: string }>
  /** one .eml file per distinct event id */
  files: string[]
}

function mailsOf(runDir: string, outbox: string): Mails {
  const logFile = join(runDir, 'mail-service.log')
  const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''
  const sent = [...text.matchAll(/^\[mail-service\] sent "(.+)" to (\S+)$/gm)].map((m) => ({
    subject: m[1] as string,
    to: m[2] as string,
  }))
  const files = existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.eml')) : []
  return { sent, files }
}

function expectTheFourMails(mails: Mails, context: string): void {
  const duplicates = mails.sent.length - mails.files.length
  expect(mails.files, `distinct mails in the outbox\n${context}`).toHaveLength(4)
  expect(duplicates, `mails sent more than once\n${context}`).toBe(0)
  expect(
    mails.sent.map((m) => `${m.subject} → ${m.to}`).sort(),
    `exactly these mails, each once\n${context}`,
  ).toEqual([
    expect.stringMatching(/^Order [0-9a-f]{8} confirmed → member1@example\.com$/),
    'Welcome, Kim Minji! → member1@example.com',
    'Welcome, Lee Jiho! → member2@example.com',
    'Welcome, Park Seoyeon! → member3@example.com',
  ])
}

// ---- one run -----------------------------------------------------------------------------------

interface Run {
  runId: string
  base: string
  env: NodeJS.ProcessEnv
  runDir: string
  outbox: string
  broker: FreshBroker
  results: StepResult[]
}

let current: Run | undefined

async function newRun(name: string): Promise<Run> {
  const runId = `${name}-${Date.now().toString(36)}-${process.pid}`
  const base = await mkdtemp(join(tmpdir(), 'msgkit-mail-run-'))
  const runDir = join(base, 'run')
  const outbox = join(base, 'outbox')
  const broker = await freshBroker(url as string, runId)
  const env = {
    ...process.env,
    MSGKIT_URL: broker.url,
    MAIL_OUTBOX: outbox,
    MAIL_RUN_DIR: runDir,
    [RUN_MARK]: runId,
  }
  current = { runId, base, env, runDir, outbox, broker, results: [] }
  log(`${name}: ${broker.what} (${secretFree(broker.url)})`)
  return current
}

async function step(run: Run, script: string): Promise<StepResult> {
  const result = await runStep(script, run.env)
  run.results.push(result)
  expect(result.code, `\`pnpm --filter ${EXAMPLE} ${script}\` failed; its output:\n${result.output}`).toBe(0)
  return result
}

const transcript = (run: Run) =>
  run.results.map((r) => `$ pnpm --filter ${EXAMPLE} ${r.script}   (${r.ms} ms)\n${r.output}`).join('\n')

const timings = (run: Run) => run.results.map((r) => `${r.script} ${(r.ms / 1000).toFixed(1)} s`).join(', ')

afterEach(async () => {
  const run = current
  current = undefined
  if (!run) return
  for (const { pid } of processesOfRun(run.runId)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  await run.broker.dispose()
  await rm(run.base, { recursive: true, force: true }) // a failure message carries the transcript
}, 120_000)

describe(`mail example on a fresh broker like ${secretFree(url ?? '(MSGKIT_URL not set)')}`, () => {
  it("the README's steps, as written, deliver every mail once and leave nothing running", async () => {
    expect(url, 'MSGKIT_URL must point at the broker under test (pnpm test:brokers sets it)').toBeTruthy()
    const steps = readmeSteps()
    expect(steps, 'the README block must start the services and stop them again').toEqual(
      expect.arrayContaining(['member-service', 'order-service', 'stop']),
    )
    expect(steps.at(-1), 'the README block must end by stopping what it started').toBe('stop')
    const run = await newRun('readme')

    // watch the outbox while the steps run: when the 4th mail is written, against when `stop` begins
    let fourthMailAt: number | undefined
    const watcher = setInterval(() => {
      if (fourthMailAt === undefined && mailsOf(run.runDir, run.outbox).files.length >= 4)
        fourthMailAt = Date.now()
    }, 20)
    try {
      for (const script of steps) await step(run, script)
    } finally {
      clearInterval(watcher)
    }

    const left = processesOfRun(run.runId)
    expect(left, `processes still running after \`stop\`:\n${transcript(run)}`).toEqual([])
    const pidFilesLeft = existsSync(run.runDir)
      ? readdirSync(run.runDir).filter((f) => f.endsWith('.pid'))
      : []
    expect(pidFilesLeft, 'pid files left behind').toEqual([])
    const mails = mailsOf(run.runDir, run.outbox)
    expectTheFourMails(mails, transcript(run))
    // when stop's SIGTERM went out: its end minus the "stopped pid N in M ms" it reports
    const stopStep = run.results.at(-1) as StepResult
    const stoppedIn = Number(/stopped pid \d+ in (\d+) ms/.exec(stopStep.output)?.[1] ?? 0)
    const sigtermAt = stopStep.began + stopStep.ms - stoppedIn
    log(
      `readme: ${steps.join(' → ')}: ${mails.files.length}/4 mails, ${mails.sent.length - mails.files.length} duplicates, ` +
        `no process left; ${timings(run)}; the 4th mail was written ${
          fourthMailAt === undefined
            ? '(not seen by the watcher)'
            : `${sigtermAt - fourthMailAt} ms before stop's SIGTERM`
        }`,
    )
  }, 300_000)

  it('events published before MailService first starts are kept by the provisioned group', async () => {
    expect(url, 'MSGKIT_URL must point at the broker under test (pnpm test:brokers sets it)').toBeTruthy()
    const run = await newRun('deploy-order')
    // the deploy step, then the producers, and only then the consumer's first start
    for (const script of ['provision', 'member-service', 'order-service', 'start']) await step(run, script)
    const deadline = Date.now() + 60_000
    while (mailsOf(run.runDir, run.outbox).sent.length < 4 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100))
    await step(run, 'stop')

    expect(processesOfRun(run.runId), `processes still running after \`stop\`:\n${transcript(run)}`).toEqual(
      [],
    )
    const mails = mailsOf(run.runDir, run.outbox)
    expectTheFourMails(mails, transcript(run))
    log(
      `deploy-order: ${mails.files.length}/4 mails, ${mails.sent.length - mails.files.length} duplicates, ` +
        `no process left; ${timings(run)}`,
    )
  }, 300_000)
})
