/**
 * The msgkit contract suite against a real SQS/SNS-compatible server (moto, started by
 * scripts/brokers/sqs.sh): by default standard queues with SNS fan-out and FIFO queues with SNS FIFO
 * fan-out; the fan-out-off configurations on request (MSGKIT_SQS_CONFIGS). The transport-level cases
 * cut the HTTP connections through a TCP proxy in front of the server; RS-1 restarts it (sqs.sh
 * restart keeps state). Short visibility and wait times keep redeliveries, closes and idle polls
 * cheap on moto (~10 ms of server CPU a request).
 */
import { fileURLToPath } from 'node:url'
import { createMessaging } from '@msgkit/core'
import { runContractSuite, tcpFaults } from '@msgkit/testkit'
import { afterAll } from 'vitest'
import { sqsTransport } from '../src/index.js'
import { createSqsProbe } from '../src/testing.js'
import { configOf, deleteResources, runPrefix, serverOf, urlWith } from './broker-helpers.js'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
const restartCommand = process.env.MSGKIT_SQS_RESTART?.split(' ').filter(Boolean) ?? [
  'scripts/brokers/sqs.sh',
  'restart',
]
const TEST_TIMES = 'visibilityTimeoutSeconds=5&waitTimeSeconds=1'
/** the configurations users choose between; MSGKIT_SQS_CONFIGS=standard,fifo,fifo-sqs,standard-sqs picks */
const configs: Record<string, { name: string; query: string }> = {
  standard: { name: 'standard queues, SNS fan-out', query: 'fifo=false&fanout=true' },
  fifo: { name: 'FIFO queues, SNS FIFO fan-out', query: 'fifo=true&fanout=true' },
  // fan-out off: SP-2 subscribes a second group to one topic, which this configuration refuses by design
  'fifo-sqs': { name: 'FIFO queues, SQS only', query: 'fifo=true&fanout=false' },
  'standard-sqs': { name: 'standard queues, SQS only', query: 'fifo=false&fanout=false' },
}
const wanted = (process.env.MSGKIT_SQS_CONFIGS ?? 'standard,fifo').split(',').map((c) => c.trim())
const unknown = wanted.filter((c) => !(c in configs))
if (unknown.length > 0)
  throw new Error(
    `MSGKIT_SQS_CONFIGS: unknown ${unknown.join(', ')} (known: ${Object.keys(configs).join(', ')})`,
  )

for (const key of wanted) {
  const { name, query: options } = configs[key] as { name: string; query: string }
  const prefix = runPrefix('ct')
  const query = `${TEST_TIMES}&${options}&prefix=${prefix}`
  const url = urlWith(query)
  const probe = createSqsProbe({ config: configOf(url), restartCommand, cwd: repoRoot })
  const faults = tcpFaults({
    target: serverOf(url),
    createMessaging: (endpoint, messagingOptions) =>
      createMessaging({ transport: sqsTransport, url: urlWith(query, endpoint) }, messagingOptions),
  })
  afterAll(async () => {
    await faults.close()
    await probe.close()
    await deleteResources(url, prefix)
  }, 120_000)

  runContractSuite({
    name: `sqs ${name}`,
    createMessaging: (messagingOptions) =>
      createMessaging({ transport: sqsTransport, url }, messagingOptions),
    probe,
    faults,
    ...(process.env.MSGKIT_CONTRACT_ONLY ? { only: process.env.MSGKIT_CONTRACT_ONLY.split(',') } : {}),
  })
}
