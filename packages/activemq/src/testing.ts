/**
 * Test helpers for the ActiveMQ transport (`@msgkit/activemq/testing`): the contract-suite probe,
 * which acts like the outside world — a foreign STOMP producer (plain frames, no msgkit headers,
 * through the driver, not the mapping), queue depths by browsing, a broker restart command.
 * Needs @msgkit/testkit (an optional peer dependency). Never imported by production code.
 */
import { randomUUID } from 'node:crypto'
import { parseBrokerUrl, withTimeout } from '@msgkit/core'
import { type ContractProbe, runCommand } from '@msgkit/testkit'
import { activemqConfigFromUrl, activemqConfigSchema, endpointsOf, stompOptions } from './config.js'
import { openStomp, type StompConnection } from './driver.js'
import { activemqTransport } from './index.js'
import { groupQueue, topicDestination } from './topology.js'

export interface ActivemqProbeOptions {
  /** the broker under test, e.g. stomp://msgkit:msgkit@127.0.0.1:61613 */
  url: string
  /** argv that restarts the broker and exits once it is back (scripts/brokers/activemq.sh restart), in `cwd` */
  restartCommand?: readonly string[]
  cwd?: string
}

export interface ActivemqProbe extends ContractProbe {
  /** messages in a group's queue, unacked ones included (a queue browser sees both) */
  pendingCount(topic: string, group: string): Promise<number>
}

const MiB = 1024 * 1024

/** A probe for the ActiveMQ at `options.url`: a connection of its own per call, so a restart costs it nothing. */
export function createActivemqProbe(options: ActivemqProbeOptions): ActivemqProbe {
  const config = activemqConfigSchema.parse(activemqConfigFromUrl(parseBrokerUrl(options.url)))
  const using = async <T>(work: (connection: StompConnection) => Promise<T>): Promise<T> => {
    const connection = await openStomp(stompOptions(config, 0))
    return work(connection).finally(() => connection.close(1_000))
  }
  const { host, port } = endpointsOf(config)[0] ?? { host: '127.0.0.1', port: 61613 }
  const wrong = 'wrong-Pa55code-for-msgkit-lc6'

  const probe: ActivemqProbe = {
    publishRaw: (topic, body, publishOptions) =>
      using(async (connection) => {
        // a foreign producer: its own headers only (JMSXGroupID for a key), persistent, content-length
        const headers: Record<string, string> = { ...publishOptions?.headers }
        if (publishOptions?.key !== undefined) headers.JMSXGroupID = publishOptions.key
        Object.assign(headers, { destination: topicDestination(topic), persistent: 'true' })
        await connection.request('SEND', headers, body)
      }),

    pendingCount: (topic, group) =>
      using(async (browser) => {
        let count = 0
        const id = `msgkit-browse-${randomUUID()}`
        const ended = new Promise<void>((resolve) =>
          browser.listen(id, (frame) => (frame.headers.browser === 'end' ? resolve() : void count++)),
        )
        const destination = groupQueue(topic, group)
        await browser.request('SUBSCRIBE', { id, destination, browser: 'true', ack: 'auto' })
        await withTimeout(ended, 10_000, () => new Error(`browsing ${destination} did not end`))
        return count
      }),

    // past the broker (the test instance's maxDataLength is 64 MiB; a header line up to 10,240 bytes)
    // but over msgkit's maxMessageBytes 16 MiB and, with the dead-letter envelope, maxHeaderBytes 10,240
    rawOversize: { bodyBytes: 17 * MiB, headerValueBytes: 10_000 },

    // the definition object is passed so core need not resolve @msgkit/activemq by name
    badConnections: [
      { name: 'dead port', config: { transport: activemqTransport, url: `stomp://${host}:1` } },
      {
        name: 'wrong passcode',
        config: {
          transport: activemqTransport,
          url: `stomp://${config.login ?? 'msgkit'}:${wrong}@${host}:${port}`,
        },
        secret: wrong,
      },
    ],
  }
  const command = options.restartCommand
  if (command?.length)
    probe.restartBroker = () => runCommand(command, { cwd: options.cwd, timeoutMs: 180_000 })
  return probe
}
