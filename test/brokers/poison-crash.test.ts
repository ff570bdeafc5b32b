// DG-12 with real processes, on each real broker: a message whose handler kills the consumer
// process every time is dead-lettered after the configured attempts (3), whether the broker counts
// deliveries (RabbitMQ quorum queues) or core does, in the service's shared store (Kafka, where the
// broker keeps no count; ActiveMQ and classic queues, which only flag redeliveries). The store here
// is a JSON file every instance opens, as a Redis would be. Run by `pnpm test:brokers`.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMessaging, type Message } from '@msgkit/core'
import { afterAll, expect, it } from 'vitest'

const url = process.env.MSGKIT_URL
const repoRoot = join(import.meta.dirname, '..', '..')

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  lines: string[]
}

/** One instance: runs until it kills itself, or until `stopWhen` sees its line, then is stopped. */
function instance(args: string[], stopWhen: (line: string) => boolean, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@msgkit/source',
        '--import',
        'tsx',
        join(import.meta.dirname, 'support', 'poison-consumer.ts'),
        ...args,
      ],
      { cwd: repoRoot, env: { ...process.env, MSGKIT_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const lines: string[] = []
    let tail = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(
          `instance did not crash or finish within ${timeoutMs} ms; it said: ${lines.join(' | ')} ${tail}`,
        ),
      )
    }, timeoutMs)
    let buffer = ''
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString()
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        lines.push(line)
        if (stopWhen(line)) child.kill('SIGTERM')
      }
    })
    child.stderr.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-2_000)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, lines })
    })
  })
}

const dir = await mkdtemp(join(tmpdir(), 'msgkit-poison-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

it.runIf(url)(
  'DG-12 with real processes: the poison message is dead-lettered after 3 crashing deliveries; the next one is handled',
  async () => {
    const topic = `t-${randomUUID()}`
    const group = `poison-${randomUUID().slice(0, 8)}`
    const store = join(dir, `${group}.json`)
    const messaging = await createMessaging(url as string)
    try {
      await messaging.provision(topic, group)
      const dead: Message<unknown>[] = []
      await messaging.subscribe(`${topic}.${group}.dlq`, { group: 'dlq' }, (m) => {
        dead.push(m)
      })
      // one key: the same partition on Kafka, so the next message waits behind the poison one
      const poison = await messaging.publish(topic, { poison: true }, { key: 'k' })
      await messaging.publish(topic, { n: 1 }, { key: 'k' })

      const calls: number[] = []
      let deadLettered = false
      let handledAfter = false
      for (let round = 1; round <= 6 && !(deadLettered && handledAfter); round++) {
        const run = await instance([topic, group, store], (line) => line.startsWith('HANDLED'), 120_000)
        for (const line of run.lines) {
          if (line.startsWith('CALL ')) calls.push(Number(line.slice(5)))
          if (line === `DEAD-LETTERED ${poison.id}`) deadLettered = true
          if (line.startsWith('HANDLED')) handledAfter = true
        }
        console.log(`[poison-crash] round ${round}: ${run.signal ?? run.code} — ${run.lines.join(' | ')}`)
      }
      expect(calls, 'handler calls, one per crashing delivery, counted across processes').toEqual([1, 2, 3])
      expect(deadLettered, 'dead-lettered by the instance after the third crash').toBe(true)
      expect(handledAfter, 'the message after it was handled').toBe(true)
      const deadline = Date.now() + 30_000
      while (dead.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      await new Promise((r) => setTimeout(r, 1_000))
      expect(
        dead.map((m) => m.id),
        'exactly one dead letter',
      ).toEqual([poison.id])
      expect(dead[0]?.deadLetter).toMatchObject({ reason: 'handler-failed', attempts: 3, topic, group })
    } finally {
      await messaging.close()
    }
  },
  600_000,
)
