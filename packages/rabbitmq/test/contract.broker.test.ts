/** The msgkit contract suite against a real RabbitMQ (started by scripts/brokers/rabbitmq.sh). */
import { fileURLToPath } from 'node:url'
import { createMessaging } from '@msgkit/core'
import { runContractSuite } from '@msgkit/testkit'
import { afterAll } from 'vitest'
import { createRabbitmqProbe } from '../src/testing.js'

const brokerUrl = process.env.MSGKIT_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
// every case makes new quorum queues: let them vanish 10 minutes after their last consumer left,
// so that repeated runs do not pile thousands of them up on a shared broker
const url = `${brokerUrl}${brokerUrl.includes('?') ? '&' : '?'}queueExpiresMs=600000`
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

// another broker (docker compose, a private node) brings its own restart command
const restartCommand = process.env.MSGKIT_RABBITMQ_RESTART?.split(' ').filter(Boolean) ?? [
  'scripts/brokers/rabbitmq.sh',
  'restart',
]

const probe = createRabbitmqProbe({ url: brokerUrl, restartCommand, cwd: repoRoot })
afterAll(() => probe.close())

runContractSuite({
  name: 'rabbitmq',
  createMessaging: (options) => createMessaging(url, options),
  probe,
})
