// A 3-node RabbitMQ cluster loses the node leading the group's quorum queue (SIGKILL) mid-stream,
// gets it back, then loses a second node: no confirmed publish is lost, publishes wait through the
// election and resolve, the group's two members go on consuming. Run by
// `pnpm test:brokers rabbitmq-cluster` (scripts/brokers/rabbitmq-cluster.sh; MSGKIT_URL names the
// three nodes); skipped against a single node.
//
// Where things sit: the producer and member 1 use the URL's host order (node 1 first), member 2 the
// order rotated by one (node 2 first). The producer declares the queue, so its leader is node 1
// (RabbitMQ places a new quorum queue's leader on the declaring client's node): the first kill takes
// the leader and the connections of the producer and member 1 with it; the kit's supervisor moves
// them to the next host.
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createMessaging, type Messaging } from '@msgkit/core'
import { runCommand, waitFor } from '@msgkit/testkit'
import { describe, expect, it } from 'vitest'
import { describeReport, hostCount, rotateHosts, runFailoverScenario } from './support/cluster-failover.js'

const url = process.env.MSGKIT_URL ?? ''
const repoRoot = join(import.meta.dirname, '..', '..')
const script =
  process.env.MSGKIT_CLUSTER_SCRIPT ?? join(repoRoot, 'scripts', 'brokers', 'rabbitmq-cluster.sh')
const isCluster = /^amqps?:/.test(url) && hostCount(url) >= 3
const log = (text: string) => console.log(`[rabbitmq-cluster] ${text}`)

/** The node number leading the group's quorum queue, from the cluster script. */
const leaderOf = async (queue: string): Promise<number> => {
  let out = ''
  const { spawnSync } = await import('node:child_process')
  await waitFor(
    () => {
      const r = spawnSync('bash', [script, 'leader', queue], { encoding: 'utf8' })
      out = r.stdout.trim()
      return r.status === 0 && /^[1-3]$/.test(out)
    },
    { timeoutMs: 60_000, intervalMs: 500, message: `a leader for queue ${queue}` },
  )
  return Number(out)
}

/** amqplib (@msgkit/rabbitmq's dependency), for cleaning up on whichever node answers. */
interface Connection {
  createChannel(): Promise<{
    deleteQueue(q: string): Promise<unknown>
    deleteExchange(x: string): Promise<unknown>
  }>
  close(): Promise<void>
}
async function cleanup(topic: string, group: string): Promise<void> {
  const amqp = createRequire(join(repoRoot, 'packages', 'rabbitmq', 'package.json'))('amqplib') as {
    connect(u: string): Promise<Connection>
  }
  const m = /^(amqps?:\/\/(?:[^@/]*@)?)([^/?#]+)(.*)$/.exec(url)
  for (const host of m?.[2]?.split(',') ?? []) {
    try {
      const connection = await amqp.connect(`${m?.[1]}${host}${m?.[3]}`)
      try {
        const channel = await connection.createChannel()
        await channel.deleteQueue(`${topic}.${group}`)
        await channel.deleteExchange(topic)
      } finally {
        await connection.close()
      }
      return
    } catch {
      // that node is down: the next one
    }
  }
}

describe.skipIf(!isCluster)('RabbitMQ cluster: failover', () => {
  // Seen on 3.10.8: a channel whose first publish to a quorum queue comes while the queue's leader
  // is dead (before the election, ~0.4 s) gets basic.nack for every later publish to that queue, for
  // as long as the channel lives; a new channel publishes fine. So a nack must not fail the publish
  // at once, and the retry must use a new channel.
  it('a producer on a surviving node publishing for the first time while the leader is dead: the publishes wait for the new leader and are consumed', async () => {
    const topic = `failover-first-${randomUUID().slice(0, 8)}`
    const group = `g${randomUUID().slice(0, 8)}`
    const opened: Messaging[] = []
    const open = async (u: string) => {
      const m = await createMessaging(u, { publish: { timeoutMs: 30_000 } })
      opened.push(m)
      return m
    }
    const got = new Set<number>()
    let killed = false
    try {
      // the queue is declared through node 1, so node 1 leads it; the producer sits on node 2 and
      // the consumer on node 3, and neither node goes down
      const declarer = await open(rotateHosts(url, 0))
      await declarer.provision(topic, group)
      const producer = await open(rotateHosts(url, 1))
      const consumer = await open(rotateHosts(url, 2))
      await consumer.subscribe<{ n: number }>(topic, { group, deadLetter: false }, (m) => {
        got.add(m.body.n)
      })
      await producer.publish(`${topic}-warm-up`, { n: -1 }).catch(() => {}) // its confirm channel is open
      expect(await leaderOf(`${topic}.${group}`)).toBe(1)
      await runCommand(['bash', script, 'kill', '1'])
      killed = true
      const t0 = Date.now()
      const outcomes = await Promise.allSettled(
        [0, 1, 2, 3, 4].map(async (n) => {
          await new Promise((r) => setTimeout(r, n * 100))
          await producer.publish(topic, { n })
          return Date.now() - t0
        }),
      )
      log(
        `first publishes while the leader is dead: ${outcomes.map((o) => (o.status === 'fulfilled' ? `confirmed after ${o.value} ms` : `rejected: ${(o.reason as Error).message}`)).join('; ')}`,
      )
      expect(
        outcomes
          .filter((o) => o.status === 'rejected')
          .map((o) => String((o as PromiseRejectedResult).reason)),
      ).toEqual([])
      await waitFor(() => got.size === 5, { timeoutMs: 30_000, message: 'the 5 messages consumed' })
    } finally {
      await Promise.allSettled(opened.map((m) => m.close({ timeoutMs: 5_000 })))
      if (killed) await runCommand(['bash', script, 'revive', '1'], { timeoutMs: 180_000 })
      await cleanup(topic, group)
    }
  }, 300_000)

  it('the quorum queue leader and then another node are SIGKILLed mid-stream: 0 confirmed messages lost, no publish rejected, both members resume', async () => {
    const report = await runFailoverScenario(
      {
        name: 'rabbitmq',
        script,
        urls: { producer: url, members: [url, rotateHosts(url, 1)] },
        prepare: async () => {},
        leader: (topic, group) => leaderOf(`${topic}.${group}`),
        // the revived node's queue member restarts as the node boots; a leader answering means the
        // queue has its majority again
        settled: async (topic, group) => {
          await leaderOf(`${topic}.${group}`)
        },
        cleanup,
      },
      log,
    )
    for (const line of describeReport(report)) log(line)

    expect(report.kills).toHaveLength(2)
    expect(report.kills[1]?.node).not.toBe(report.kills[0]?.node)
    expect(report.rejected).toEqual([])
    expect(report.lost).toEqual([])
    expect(report.confirmed).toBe(report.issued)
    expect(report.unexplainedDuplicates).toEqual([])
    expect(report.perMemberAfterLastKill[0]).toBeGreaterThan(0)
    expect(report.perMemberAfterLastKill[1]).toBeGreaterThan(0)
    // the first kill took node 1, where the producer and member 1 were connected: both report the
    // loss and reconnect to another host, which the supervisor logs
    const first = report.kills[0]
    expect(first?.node).toBe(1) // client-local leader placement: where the producer declared it
    const killedHost = url.replace(/^[a-z]+:\/\/(?:[^@/]*@)?/, '').split(/[,/?]/)[0]
    for (const who of ['producer', 'member1']) {
      const after = report.events.filter((e) => e.who === who && e.at >= (first?.killAt ?? 0) - 1_000)
      expect(after.some((e) => e.type === 'disconnected')).toBe(true)
      expect(after.some((e) => e.type === 'connected')).toBe(true)
      const moved = after.find((e) => e.type === 'reconnected-to')
      expect(moved?.detail).toBeDefined()
      expect(moved?.detail?.startsWith(`${killedHost} `)).toBe(false)
    }
  }, 600_000)
})
