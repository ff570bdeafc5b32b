/** Shared plumbing of the Kafka real-broker tests. */
import { parseBrokerUrl } from '@msgkit/core'
import { Kafka, logLevel } from 'kafkajs'

/** host:port list of a kafka:// URL. */
export function brokersOf(url: string): string[] {
  return parseBrokerUrl(url).hosts.map((h) => `${h.host}:${h.port ?? 9092}`)
}

/** A plain kafkajs client of the tests (the outside world), silent. */
export function testClient(url: string, clientId: string): Kafka {
  return new Kafka({ clientId, brokers: brokersOf(url), logLevel: logLevel.NOTHING })
}

const adminFor = (url: string) => testClient(url, 'msgkit-test-cleanup').admin()

/** Topic names on the broker right now. */
export async function topicsNow(url: string): Promise<Set<string>> {
  const admin = adminFor(url)
  try {
    await admin.connect()
    return new Set(await admin.listTopics())
  } finally {
    await admin.disconnect()
  }
}

/** Deletes the test topics (`t-<uuid>…`, `k-<uuid>…`) that did not exist before. */
export async function deleteTopicsCreatedSince(url: string, before: ReadonlySet<string>): Promise<void> {
  const admin = adminFor(url)
  try {
    await admin.connect()
    const created = (await admin.listTopics()).filter((t) => !before.has(t) && /^[tk]-[0-9a-f]{8}-/.test(t))
    for (let i = 0; i < created.length; i += 100) {
      await admin.deleteTopics({ topics: created.slice(i, i + 100), timeout: 30_000 }).catch(() => {})
    }
  } catch {
    // cleanup is best effort
  } finally {
    await admin.disconnect().catch(() => {})
  }
}
