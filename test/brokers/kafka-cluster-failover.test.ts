// A 3-node Kafka cluster loses the leader of the topic's partitions (SIGKILL) mid-stream, gets it
// back, then loses a second node: no confirmed publish is lost, publishes wait through the
// election and resolve, the group's two members go on consuming. Run by
// `pnpm test:brokers kafka-cluster` (scripts/brokers/kafka-cluster.sh; MSGKIT_URL names the three
// nodes); skipped against a single broker.
//
// The topic is created here with both partitions on replicas [1, 2, 3]: one node leads every
// partition the producer writes to, so killing it stops all writes until Kafka fences it (its
// broker.session.timeout.ms, 9 s by default) and elects new leaders: the worst case, measured
// cleanly. Topics msgkit creates itself get the broker's default.replication.factor (checked too).
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createMessaging } from '@msgkit/core'
import { waitFor } from '@msgkit/testkit'
import { describe, expect, it } from 'vitest'
import { describeReport, hostCount, runFailoverScenario } from './support/cluster-failover.js'

const url = process.env.MSGKIT_URL ?? ''
const repoRoot = join(import.meta.dirname, '..', '..')
const script = process.env.MSGKIT_CLUSTER_SCRIPT ?? join(repoRoot, 'scripts', 'brokers', 'kafka-cluster.sh')
const isCluster = url.startsWith('kafka:') && hostCount(url) >= 3
const log = (text: string) => console.log(`[kafka-cluster] ${text}`)

/** The bits of kafkajs's admin used here (kafkajs is @msgkit/kafka's dependency, loaded from there). */
interface Admin {
  connect(): Promise<void>
  disconnect(): Promise<void>
  createTopics(o: {
    topics: Array<{ topic: string; replicaAssignment: Array<{ partition: number; replicas: number[] }> }>
    waitForLeaders: boolean
  }): Promise<boolean>
  fetchTopicMetadata(o: { topics: string[] }): Promise<{
    topics: Array<{
      name: string
      partitions: Array<{ partitionId: number; leader: number; replicas: number[]; isr: number[] }>
    }>
  }>
  deleteTopics(o: { topics: string[] }): Promise<void>
  deleteGroups(groups: string[]): Promise<unknown>
}

async function withAdmin<T>(work: (admin: Admin) => Promise<T>): Promise<T> {
  const { Kafka, logLevel } = createRequire(join(repoRoot, 'packages', 'kafka', 'package.json'))('kafkajs')
  const brokers = url
    .replace(/^kafka:\/\//, '')
    .split(/[/?]/)[0]
    ?.split(',') as string[]
  const admin: Admin = new Kafka({ clientId: 'failover-test', brokers, logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    return await work(admin)
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/** Every partition of `topics` has all three replicas in sync. */
const inSync = (topics: string[]) =>
  withAdmin(async (admin) => {
    const { topics: meta } = await admin.fetchTopicMetadata({ topics })
    return meta.every((t) => t.partitions.every((p) => p.isr.length === 3))
  })

const leaderOf = async (topic: string): Promise<number> => {
  let out = ''
  const { spawnSync } = await import('node:child_process')
  await waitFor(
    () => {
      const r = spawnSync('bash', [script, 'leader', topic, '0'], { encoding: 'utf8' })
      out = r.stdout.trim()
      return r.status === 0 && /^[1-3]$/.test(out)
    },
    { timeoutMs: 60_000, intervalMs: 500, message: `a leader for ${topic} partition 0` },
  )
  return Number(out)
}

describe.skipIf(!isCluster)('Kafka cluster: failover', () => {
  it('topics msgkit creates on the cluster get 3 replicas, all in sync', async () => {
    const topic = `failover-rf-${Date.now()}`
    const messaging = await createMessaging(url)
    try {
      await messaging.provision(topic, 'rf-check')
      const meta = await withAdmin((admin) => admin.fetchTopicMetadata({ topics: [topic] }))
      const partitions = meta.topics[0]?.partitions ?? []
      expect(partitions.length).toBeGreaterThan(0)
      for (const p of partitions) {
        expect(p.replicas).toHaveLength(3)
        expect(p.isr).toHaveLength(3)
      }
    } finally {
      await messaging.close()
      await withAdmin(async (admin) => {
        await admin.deleteGroups(['rf-check']).catch(() => {})
        await admin.deleteTopics({ topics: [topic] })
      }).catch(() => {})
    }
  })

  it('the leader node and then another one are SIGKILLed mid-stream: 0 confirmed messages lost, no publish rejected, both members resume', async () => {
    const report = await runFailoverScenario(
      {
        name: 'kafka',
        script,
        urls: { producer: url, members: [url, url] },
        async prepare(topic) {
          await withAdmin((admin) =>
            admin.createTopics({
              topics: [
                {
                  topic,
                  replicaAssignment: [
                    { partition: 0, replicas: [1, 2, 3] },
                    { partition: 1, replicas: [1, 2, 3] },
                  ],
                },
              ],
              waitForLeaders: true,
            }),
          )
        },
        leader: (topic) => leaderOf(topic),
        async settled(topic) {
          await waitFor(() => inSync([topic, '__consumer_offsets']), {
            timeoutMs: 90_000,
            intervalMs: 500,
            message: `every replica of ${topic} and __consumer_offsets back in sync`,
          })
        },
        cleanup: (topic, group) =>
          withAdmin(async (admin) => {
            await admin.deleteGroups([group]).catch(() => {})
            await admin.deleteTopics({ topics: [topic] })
          }),
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
    // the same two subscriptions consume after the second recovery: no resubscribe by the user
    expect(report.perMemberAfterLastKill[0]).toBeGreaterThan(0)
    expect(report.perMemberAfterLastKill[1]).toBeGreaterThan(0)
    // the outage is reported: the producer lost its session and got it back, after each kill
    for (const k of report.kills) {
      const producerEvents = report.events.filter((e) => e.who === 'producer' && e.at >= k.killAt)
      expect(producerEvents.some((e) => e.type === 'disconnected')).toBe(true)
      expect(producerEvents.some((e) => e.type === 'connected')).toBe(true)
    }
  }, 600_000)
})
