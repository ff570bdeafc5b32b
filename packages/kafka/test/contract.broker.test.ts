/**
 * The msgkit contract suite against a real Kafka (started by scripts/brokers/kafka.sh).
 * Fault injection: the broker's PROXIED listener (127.0.0.1:19092) advertises 127.0.0.1:19093,
 * where tcpFaults' proxy listens, so a Messaging bootstrapped there only ever talks through it.
 */
import { fileURLToPath } from 'node:url'
import { createMessaging } from '@msgkit/core'
import { runContractSuite, tcpFaults } from '@msgkit/testkit'
import { afterAll } from 'vitest'
import { createKafkaProbe } from '../src/testing.js'
import { brokersOf, deleteTopicsCreatedSince, topicsNow } from './broker-helpers.js'

const url = process.env.MSGKIT_KAFKA_URL ?? 'kafka://127.0.0.1:9092'
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
const proxied = Number(process.env.MSGKIT_KAFKA_PROXIED_PORT ?? 19092)

const probe = createKafkaProbe({
  brokers: brokersOf(url),
  restartCommand: ['scripts/brokers/kafka.sh', 'restart'],
  cwd: repoRoot,
})
const faults = tcpFaults({
  target: { host: '127.0.0.1', port: proxied },
  port: proxied + 1,
  createMessaging: (endpoint, options) =>
    createMessaging(`kafka://${endpoint.host}:${endpoint.port}`, options),
})
const topicsBefore = await topicsNow(url)
afterAll(async () => {
  await probe.close()
  await faults.close()
  // the broker keeps its data between runs: drop this run's t-<uuid> topics
  await deleteTopicsCreatedSince(url, topicsBefore)
})

runContractSuite({
  name: 'kafka',
  // the URL selects the transport: core loads @msgkit/kafka by name, as in an application
  createMessaging: (options) => createMessaging(url, options),
  probe,
  faults,
})
