/**
 * The msgkit contract suite against a real ActiveMQ (started by scripts/brokers/activemq.sh). The
 * transport-level cases cut connections through a TCP proxy in front of the STOMP port.
 */
import { fileURLToPath } from 'node:url'
import { createMessaging, parseBrokerUrl } from '@msgkit/core'
import { runContractSuite, tcpFaults } from '@msgkit/testkit'
import { afterAll } from 'vitest'
import { activemqTransport } from '../src/index.js'
import { createActivemqProbe } from '../src/testing.js'

const url = process.env.MSGKIT_ACTIVEMQ_URL ?? 'stomp://msgkit:msgkit@127.0.0.1:61613'
const broker = parseBrokerUrl(url)
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
const credentials = broker.username === undefined ? '' : `${broker.username}:${broker.password ?? ''}@`

// another broker (docker compose, a remote one) brings its own restart command
const restartCommand = process.env.MSGKIT_ACTIVEMQ_RESTART?.split(' ').filter(Boolean) ?? [
  'scripts/brokers/activemq.sh',
  'restart',
]
const probe = createActivemqProbe({ url, restartCommand, cwd: repoRoot })
const faults = tcpFaults({
  target: { host: broker.hosts[0]?.host ?? '127.0.0.1', port: broker.hosts[0]?.port ?? 61613 },
  createMessaging: (endpoint, options) =>
    createMessaging(
      { transport: activemqTransport, url: `stomp://${credentials}${endpoint.host}:${endpoint.port}` },
      options,
    ),
})
afterAll(async () => {
  await faults.close()
})

runContractSuite({
  name: 'activemq',
  // the definition object: core's registry maps stomp:// to @msgkit/activemq once it is installed beside core
  createMessaging: (options) => createMessaging({ transport: activemqTransport, url }, options),
  probe,
  faults,
})
