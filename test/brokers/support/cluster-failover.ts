/**
 * The leader-kill scenario of test/brokers/*-cluster-failover.test.ts, the same for every broker:
 * a producer publishes confirmed messages at a steady rate, a group of two members (two Messaging
 * instances) consumes; the node leading the topic's partitions / the queue is SIGKILLed mid-stream,
 * brought back, then a second, different node is killed. What it measures and the tests assert:
 * every confirmed publish is consumed, no publish rejects (each one's deadline outlasts the
 * election), both members go on consuming through the same subscriptions, duplicates only around
 * the kills; and the time from each kill to the first confirmed publish and first consumed message.
 *
 * The cluster is driven by the broker's cluster script (`kill <n>`, `revive <n>`, `leader …`).
 */
import { randomUUID } from 'node:crypto'
import { createMessaging, type Logger, type Messaging, type Subscription } from '@msgkit/core'
import { runCommand, waitFor } from '@msgkit/testkit'

/** Publishes issued per second, one at a time (not awaited: they wait through an election together). */
const RATE_PER_S = 50
/** Each publish's deadline: far longer than an election (~10 s on Kafka's defaults). */
export const PUBLISH_TIMEOUT_MS = 90_000
/** Steady publishing before the first kill, after each recovery, after the revive. */
const STEADY_MS = 3_000
/** A duplicate is "explained" when its message was published within this window around a kill. */
const DUPLICATE_WINDOW_BEFORE_MS = 10_000
const DUPLICATE_WINDOW_AFTER_MS = 5_000
/** A kill not recovered from within this long fails the test. */
const RECOVERY_TIMEOUT_MS = 60_000

/** What the scenario needs from one broker's cluster. */
export interface ClusterUnderTest {
  /** `kafka`, `rabbitmq`: for texts */
  name: string
  /** path of the cluster script (kill / revive) */
  script: string
  /** the producer's URL and each member's (RabbitMQ: the members start on different nodes) */
  urls: { producer: string; members: [string, string] }
  /** before anything connects (Kafka: create the topic with its replica placement) */
  prepare(topic: string, group: string): Promise<void>
  /** the node number (1-3) leading the topic's partitions / the group's queue */
  leader(topic: string, group: string): Promise<number>
  /** after a revive: until the revived node holds copies again (a second kill must leave a majority) */
  settled(topic: string, group: string): Promise<void>
  /** delete the topic / queue (best effort) */
  cleanup(topic: string, group: string): Promise<void>
}

interface Publish {
  n: number
  issuedAt: number
  confirmedAt?: number
  error?: unknown
}

interface Consumed {
  n: number
  member: number
  at: number
}

interface TimedEvent {
  at: number
  who: string
  type: 'disconnected' | 'reconnecting' | 'connected' | 'error' | 'reconnected-to'
  detail?: string
}

export interface KillReport {
  node: number
  /** why this node: the leader, or another one when the leader was the node killed before */
  role: string
  killAt: number
  /** from the kill to the first confirmed publish issued after it */
  firstConfirmMs: number
  /** from the kill to the first consumed message issued after it */
  firstConsumeMs: number
  /** publishes issued between the kill and the first confirmation: they waited and resolved */
  waited: number
  /** the longest a publish issued after the kill waited for its confirmation */
  longestWaitMs: number
}

export interface FailoverReport {
  broker: string
  topic: string
  issued: number
  confirmed: number
  rejected: Array<{ n: number; error: string }>
  lost: number[]
  duplicates: number
  unexplainedDuplicates: number[]
  perMember: [number, number]
  /** messages each member consumed that were published after the last recovery */
  perMemberAfterLastKill: [number, number]
  kills: KillReport[]
  reviveMs: number[]
  events: TimedEvent[]
  durationMs: number
}

/** The first rejection's error, for a failure message. */
const rejection = (publishes: Publish[]): string => {
  const p = publishes.find((x) => x.error !== undefined)
  if (!p) return ''
  const e = p.error as { code?: string; message?: string }
  return ` First rejection (#${p.n}, after ${secs(Date.now() - p.issuedAt)}): ${e.code ?? ''} ${e.message ?? String(e)}.`
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`

/** A logger that keeps the supervisor's "reconnected" lines (they name the host it reached). */
function endpointLogger(who: string, events: TimedEvent[]): Logger {
  const line =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      if (msg === 'reconnected' && typeof obj === 'object') {
        const { endpoint, attempts } = obj as { endpoint?: string; attempts?: number }
        events.push({
          at: Date.now(),
          who,
          type: 'reconnected-to',
          detail: `${endpoint} (${attempts} attempt(s))`,
        })
      } else if (level === 'error') {
        events.push({
          at: Date.now(),
          who,
          type: 'error',
          detail: `${msg ?? ''} ${JSON.stringify(obj)}`.slice(0, 300),
        })
      }
    }
  return { debug: () => {}, info: line('info'), warn: line('warn'), error: line('error') }
}

/** Runs the scenario; returns what happened (the test asserts on it). */
export async function runFailoverScenario(
  cluster: ClusterUnderTest,
  log: (text: string) => void,
): Promise<FailoverReport> {
  const started = Date.now()
  const topic = `failover-${randomUUID().slice(0, 8)}`
  const group = `g${randomUUID().slice(0, 8)}`
  const events: TimedEvent[] = []
  const publishes: Publish[] = []
  const consumed: Consumed[] = []
  const opened: Messaging[] = []
  const subscriptions: Subscription[] = []
  const kills: KillReport[] = []
  const reviveMs: number[] = []
  const dead = new Set<number>()
  let publishing = true
  let publisher: Promise<void> | undefined

  const open = async (who: string, url: string): Promise<Messaging> => {
    const messaging = await createMessaging(url, {
      logger: endpointLogger(who, events),
      publish: { timeoutMs: PUBLISH_TIMEOUT_MS },
    })
    opened.push(messaging)
    for (const type of ['disconnected', 'reconnecting', 'connected'] as const)
      messaging.on(type, (e) => {
        const error = (e as { error?: unknown }).error
        events.push({
          at: Date.now(),
          who,
          type,
          ...(error ? { detail: String((error as Error).message ?? error) } : {}),
        })
      })
    messaging.on('error', (e) =>
      events.push({
        at: Date.now(),
        who,
        type: 'error',
        detail: String((e.error as Error)?.message ?? e.error),
      }),
    )
    return messaging
  }

  const script = (...args: string[]) => runCommand(['bash', cluster.script, ...args], { timeoutMs: 180_000 })

  const kill = async (node: number, role: string): Promise<void> => {
    await script('kill', String(node))
    // from when the script returns: the node is dead by then (the script waits for the process to
    // go); publishes issued earlier may have reached it alive. Recovery times err short by at most
    // the few ms between the SIGKILL and the script's exit.
    const killAt = Date.now()
    dead.add(node)
    log(`killed node ${node} (${role}) at +${secs(killAt - started)}`)
    // recovered: a publish issued after the kill confirmed, and such a message consumed
    const after = () => publishes.filter((p) => p.issuedAt >= killAt)
    await waitFor(
      () => {
        const ns = new Set(after().map((p) => p.n))
        return after().some((p) => p.confirmedAt !== undefined) && consumed.some((c) => ns.has(c.n))
      },
      { timeoutMs: RECOVERY_TIMEOUT_MS, intervalMs: 50, message: `recovery after killing node ${node}` },
    ).catch((error: unknown) => {
      const issued = after()
      const ns = new Set(issued.map((p) => p.n))
      const recent = events.filter((e) => e.at >= killAt - 2_000).slice(0, 30)
      throw new Error(
        `${(error as Error).message}: of ${issued.length} publishes issued since, ${issued.filter((p) => p.confirmedAt !== undefined).length} confirmed, ${issued.filter((p) => p.error !== undefined).length} rejected, ${consumed.filter((c) => ns.has(c.n)).length} consumed (${consumed.length} consumed in all).${rejection(issued)} Events since the kill:\n${recent.map((e) => `  +${secs(e.at - killAt)} ${e.who} ${e.type} ${e.detail ?? ''}`).join('\n')}`,
      )
    })
    const issuedAfter = after()
    const firstConfirm = Math.min(
      ...issuedAfter.flatMap((p) => (p.confirmedAt === undefined ? [] : [p.confirmedAt])),
    )
    const ns = new Set(issuedAfter.map((p) => p.n))
    const firstConsume = Math.min(...consumed.filter((c) => ns.has(c.n)).map((c) => c.at))
    kills.push({
      node,
      role,
      killAt,
      firstConfirmMs: firstConfirm - killAt,
      firstConsumeMs: firstConsume - killAt,
      waited: issuedAfter.filter((p) => p.issuedAt < firstConfirm).length,
      longestWaitMs: 0, // filled in at the end, once every publish settled
    })
    log(
      `node ${node}: first confirmed publish ${secs(firstConfirm - killAt)} after the kill, first consumed ${secs(firstConsume - killAt)}`,
    )
  }

  const revive = async (node: number): Promise<void> => {
    const t0 = Date.now()
    await script('revive', String(node))
    dead.delete(node)
    reviveMs.push(Date.now() - t0)
    log(`revived node ${node} in ${secs(Date.now() - t0)}`)
  }

  try {
    await cluster.prepare(topic, group)
    const producer = await open('producer', cluster.urls.producer)
    // the producer declares first: on RabbitMQ the queue's leader is the node it is connected to
    await producer.provision(topic, group)
    for (const [i, url] of cluster.urls.members.entries()) {
      const member = await open(`member${i + 1}`, url)
      subscriptions.push(
        // no dead-letter topic: the handler never fails, and it would be one more replicated queue/topic
        await member.subscribe<{ n: number }>(topic, { group, deadLetter: false }, (message) => {
          consumed.push({ n: message.body.n, member: i, at: Date.now() })
        }),
      )
    }
    log(`topic ${topic}, group ${group}: producer and 2 members up after ${secs(Date.now() - started)}`)

    publisher = (async () => {
      const interval = 1000 / RATE_PER_S
      const t0 = Date.now()
      for (let n = 0; publishing; n++) {
        const p: Publish = { n, issuedAt: Date.now() }
        publishes.push(p)
        producer.publish(topic, { n }).then(
          () => {
            p.confirmedAt = Date.now()
          },
          (error: unknown) => {
            p.error = error
          },
        )
        const next = t0 + (n + 1) * interval
        await sleep(Math.max(0, next - Date.now()))
      }
    })()

    await waitFor(() => new Set(consumed.map((c) => c.member)).size === 2 && consumed.length >= 50, {
      timeoutMs: 60_000,
      message: 'both members consuming',
    })
    await sleep(STEADY_MS)

    const first = await cluster.leader(topic, group)
    await kill(first, 'the leader')
    await sleep(STEADY_MS)
    await revive(first)
    await cluster.settled(topic, group)
    await sleep(STEADY_MS)

    const leaderNow = await cluster.leader(topic, group)
    const second = leaderNow !== first ? leaderNow : ([1, 2, 3].find((n) => n !== first) as number)
    await kill(
      second,
      leaderNow !== first ? 'the new leader' : `a follower (the leader is node ${first} again)`,
    )
    await sleep(STEADY_MS)
    publishing = false
    await publisher

    // every publish settles (confirmed, or rejected at its deadline); every confirmed one is consumed
    await waitFor(() => publishes.every((p) => p.confirmedAt !== undefined || p.error !== undefined), {
      timeoutMs: PUBLISH_TIMEOUT_MS + 10_000,
      message: 'every publish settled',
    })
    const confirmed = publishes.filter((p) => p.confirmedAt !== undefined)
    await waitFor(
      () => {
        const seen = new Set(consumed.map((c) => c.n))
        return confirmed.every((p) => seen.has(p.n))
      },
      { timeoutMs: 60_000, message: 'every confirmed message consumed' },
    ).catch(() => {}) // asserted by the test, with the missing numbers
    await sleep(1_000) // late redeliveries count as duplicates too
  } finally {
    publishing = false
    await publisher?.catch(() => {})
    await Promise.allSettled(subscriptions.map((s) => s.close({ timeoutMs: 5_000 })))
    await Promise.allSettled(opened.map((m) => m.close({ timeoutMs: 5_000 })))
    // leave the cluster whole for whatever runs next
    for (const node of [...dead]) await revive(node).catch((e: unknown) => log(`revive ${node} failed: ${e}`))
    await cluster.cleanup(topic, group).catch((e: unknown) => log(`cleanup failed: ${e}`))
  }

  const byN = new Map<number, number>()
  for (const c of consumed) byN.set(c.n, (byN.get(c.n) ?? 0) + 1)
  const issuedAt = new Map(publishes.map((p) => [p.n, p.issuedAt]))
  const duplicated = [...byN].filter(([, count]) => count > 1).map(([n]) => n)
  const explained = (n: number): boolean => {
    const at = issuedAt.get(n) ?? 0
    return kills.some(
      (k) =>
        at >= k.killAt - DUPLICATE_WINDOW_BEFORE_MS &&
        at <= k.killAt + Math.max(k.firstConfirmMs, k.firstConsumeMs) + DUPLICATE_WINDOW_AFTER_MS,
    )
  }
  for (const k of kills) {
    const waits = publishes.filter((p) => p.issuedAt >= k.killAt && p.confirmedAt !== undefined)
    k.longestWaitMs = Math.max(0, ...waits.map((p) => (p.confirmedAt as number) - p.issuedAt))
  }
  const lastKill = kills[kills.length - 1]
  const afterLast = (member: number) =>
    consumed.filter(
      (c) =>
        c.member === member &&
        lastKill !== undefined &&
        (issuedAt.get(c.n) ?? 0) >=
          lastKill.killAt + Math.max(lastKill.firstConfirmMs, lastKill.firstConsumeMs),
    ).length
  const seen = new Set(byN.keys())
  return {
    broker: cluster.name,
    topic,
    issued: publishes.length,
    confirmed: publishes.filter((p) => p.confirmedAt !== undefined).length,
    rejected: publishes
      .filter((p) => p.error !== undefined)
      .map((p) => ({ n: p.n, error: String((p.error as Error)?.message ?? p.error) })),
    lost: publishes.filter((p) => p.confirmedAt !== undefined && !seen.has(p.n)).map((p) => p.n),
    duplicates: [...byN.values()].reduce((sum, count) => sum + count - 1, 0),
    unexplainedDuplicates: duplicated.filter((n) => !explained(n)),
    perMember: [consumed.filter((c) => c.member === 0).length, consumed.filter((c) => c.member === 1).length],
    perMemberAfterLastKill: [afterLast(0), afterLast(1)],
    kills,
    reviveMs,
    events,
    durationMs: Date.now() - started,
  }
}

/** The report as lines for the test log (and for docs/brokers/*.md). */
export function describeReport(r: FailoverReport): string[] {
  const start = r.kills[0]?.killAt ?? 0
  const lines = [
    `${r.broker} cluster, topic ${r.topic}: ${r.issued} published at ${RATE_PER_S}/s, ${r.confirmed} confirmed, ${r.rejected.length} rejected, ${r.lost.length} lost, ${r.duplicates} duplicate deliveries; members consumed ${r.perMember.join(' + ')}`,
  ]
  for (const [i, k] of r.kills.entries()) {
    lines.push(
      `kill ${i + 1}: node ${k.node} (${k.role}): first confirmed publish after ${secs(k.firstConfirmMs)}, first consumed after ${secs(k.firstConsumeMs)}; ${k.waited} publishes issued meanwhile waited (longest ${secs(k.longestWaitMs)}) and resolved`,
    )
  }
  lines.push(`revive: ${r.reviveMs.map(secs).join(', ')}; scenario ${secs(r.durationMs)}`)
  const relevant = r.events.filter((e) => e.type !== 'reconnecting')
  const counts = new Map<string, number>()
  for (const e of r.events) counts.set(`${e.who} ${e.type}`, (counts.get(`${e.who} ${e.type}`) ?? 0) + 1)
  lines.push(`events: ${[...counts].map(([k, v]) => `${k} ×${v}`).join(', ')}`)
  for (const e of relevant.slice(0, 40))
    lines.push(`  +${secs(e.at - start)} ${e.who} ${e.type}${e.detail ? `: ${e.detail.slice(0, 160)}` : ''}`)
  return lines
}

/** `scheme://[user:pass@]h1,h2,h3[/…]` → the host list rotated by `by` (a member starting on another node). */
export function rotateHosts(url: string, by: number): string {
  const m = /^([a-z]+:\/\/(?:[^@/]*@)?)([^/?#]+)(.*)$/.exec(url)
  if (!m) return url
  const hosts = (m[2] as string).split(',')
  const k = by % hosts.length
  return `${m[1]}${[...hosts.slice(k), ...hosts.slice(0, k)].join(',')}${m[3]}`
}

/** How many hosts a URL names (a cluster test needs three). */
export function hostCount(url: string): number {
  const m = /^[a-z]+:\/\/(?:[^@/]*@)?([^/?#]+)/.exec(url)
  return m ? (m[1] as string).split(',').length : 0
}
