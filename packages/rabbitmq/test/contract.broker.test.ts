/**
 * The msgkit contract suite against a real RabbitMQ (started by scripts/brokers/rabbitmq.sh), once
 * per queue type users choose between: quorum (the default; counts deliveries) and classic (only a
 * redelivered flag, so core counts). The transport-level cases cut connections through a TCP proxy.
 */
import { fileURLToPath } from 'node:url'
import { createMessaging, parseBrokerUrl } from '@msgkit/core'
import { runContractSuite, tcpFaults } from '@msgkit/testkit'
import { afterAll } from 'vitest'
import { AMQPLIB_TABLE_BYTES, encodedHeaderBytes } from '../src/mapping.js'
import { createRabbitmqProbe } from '../src/testing.js'
import { publishRawFrames } from './support/raw-publish.js'

const brokerUrl = process.env.MSGKIT_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const broker = parseBrokerUrl(brokerUrl)
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
// another broker (docker compose, a private node) brings its own restart command
const restartCommand = process.env.MSGKIT_RABBITMQ_RESTART?.split(' ').filter(Boolean) ?? [
  'scripts/brokers/rabbitmq.sh',
  'restart',
]

/** The broker URL at `endpoint`, with the transport options of one run. */
function urlAt(endpoint: { host: string; port: number } | undefined, query: string): string {
  const hosts = endpoint
    ? `${endpoint.host}:${endpoint.port}`
    : broker.hosts.map((h) => `${h.host}:${h.port ?? 5672}`).join(',')
  const credentials =
    broker.username === undefined
      ? ''
      : `${encodeURIComponent(broker.username)}:${encodeURIComponent(broker.password ?? '')}@`
  return `${broker.scheme}://${credentials}${hosts}/${encodeURIComponent(broker.path)}?${query}`
}

const shipped = createRabbitmqProbe({ url: brokerUrl, restartCommand, cwd: repoRoot })
afterAll(() => shipped.close())
// past amqplib's 64 KiB header buffer, as other AMQP clients can go (issue 8: a 100,000-byte header)
const probe: typeof shipped = {
  ...shipped,
  rawOversize: { ...shipped.rawOversize, headerValueBytes: 100_000 },
  publishRaw: (topic, body, options) =>
    options?.headers && encodedHeaderBytes(options.headers) > AMQPLIB_TABLE_BYTES
      ? publishRawFrames(brokerUrl, topic, topic, body, options.headers)
      : shipped.publishRaw(topic, body, options),
}

for (const queueType of ['quorum', 'classic'] as const) {
  // every case makes new queues: let them vanish 10 minutes after their last consumer left,
  // so that repeated runs do not pile thousands of them up on a shared broker
  const query = `queueExpiresMs=600000&queueType=${queueType}`
  const faults = tcpFaults({
    target: { host: broker.hosts[0]?.host ?? '127.0.0.1', port: broker.hosts[0]?.port ?? 5672 },
    createMessaging: (endpoint, options) => createMessaging(urlAt(endpoint, query), options),
  })
  afterAll(() => faults.close())

  runContractSuite({
    name: `rabbitmq ${queueType} queues`,
    createMessaging: (options) => createMessaging(urlAt(undefined, query), options),
    probe,
    faults,
  })
}
