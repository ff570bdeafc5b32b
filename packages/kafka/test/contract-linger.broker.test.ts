/**
 * The config matrix: the publish-side contract cases again with `linger=5` (batches wait 5 ms for
 * more sends), the one producer setting users really choose between throughput and latency.
 */
import { createMessaging } from '@msgkit/core'
import { runContractSuite, tcpFaults } from '@msgkit/testkit'
import { afterAll } from 'vitest'
import { createKafkaProbe } from '../src/testing.js'
import { brokersOf, deleteTopicsCreatedSince, topicsNow } from './broker-helpers.js'

const base = process.env.MSGKIT_KAFKA_URL ?? 'kafka://127.0.0.1:9092'
const url = `${base}${base.includes('?') ? '&' : '?'}linger=5`
const proxied = Number(process.env.MSGKIT_KAFKA_PROXIED_PORT ?? 19092)

const probe = createKafkaProbe({ brokers: brokersOf(base) })
const faults = tcpFaults({
  target: { host: '127.0.0.1', port: proxied },
  port: proxied + 1,
  createMessaging: (endpoint, options) =>
    createMessaging(`kafka://${endpoint.host}:${endpoint.port}?linger=5`, options),
})
const topicsBefore = await topicsNow(base)
afterAll(async () => {
  await probe.close()
  await faults.close()
  await deleteTopicsCreatedSince(base, topicsBefore)
})

runContractSuite({
  name: 'kafka, linger=5',
  createMessaging: (options) => createMessaging(url, options),
  probe,
  faults,
  only: ['LC-3', 'RT-1', 'RT-5', 'DG-1', 'DG-2', 'OR-1', 'SP-4'],
})
