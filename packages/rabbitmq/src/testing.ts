/**
 * @msgkit/rabbitmq/testing — the probe the contract suite (@msgkit/testkit) uses to act like the
 * outside world: a foreign amqplib producer, queue depths, a broker restart. Test code only.
 */
import { spawn } from 'node:child_process'
import type { Headers } from '@msgkit/core'
import { parseBrokerUrl, sleep } from '@msgkit/core'
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib'
import { createNaming } from './naming.js'

export interface RabbitmqProbeOptions {
  /** the broker under test, e.g. amqp://guest:guest@127.0.0.1:5672 */
  url: string
  /** the transport's `prefix` config, if the tests set one */
  prefix?: string
  /** command that restarts the broker and exits once it is back, e.g. ['scripts/brokers/rabbitmq.sh', 'restart'] */
  restartCommand?: readonly string[]
  /** working directory of the restart command */
  cwd?: string
}

/** Structurally the testkit's ContractProbe, plus `close()`. */
export interface RabbitmqProbe {
  publishRaw(topic: string, body: Uint8Array, options?: { headers?: Headers; key?: string }): Promise<void>
  restartBroker?(): Promise<void>
  pendingCount(topic: string, group: string): Promise<number>
  badConnections: ReadonlyArray<{ name: string; config: string | Record<string, unknown>; secret?: string }>
  /** close the probe's own connection */
  close(): Promise<void>
}

/** A probe for the RabbitMQ at `options.url`. */
export function createRabbitmqProbe(options: RabbitmqProbeOptions): RabbitmqProbe {
  const naming = createNaming(options.prefix ?? '')
  let connecting: Promise<{ connection: ChannelModel; channel: ConfirmChannel }> | undefined

  const session = (): Promise<{ connection: ChannelModel; channel: ConfirmChannel }> => {
    connecting ??= (async () => {
      const connection = await amqp.connect(options.url)
      connection.on('error', () => {})
      connection.on('close', () => {
        connecting = undefined
      })
      const channel = await connection.createConfirmChannel()
      channel.on('error', () => {})
      channel.on('close', () => {
        connecting = undefined
      })
      return { connection, channel }
    })()
    connecting.catch(() => {
      connecting = undefined
    })
    return connecting
  }

  const parsed = parseBrokerUrl(options.url)
  const host = parsed.hosts[0]?.host ?? '127.0.0.1'
  const port = parsed.hosts[0]?.port ?? 5672
  const wrongPassword = 'wrong-Pa55word-for-msgkit-lc6'

  const probe: RabbitmqProbe = {
    async publishRaw(topic, body, publishOptions = {}) {
      const { channel } = await session()
      const exchange = naming.exchange(topic)
      // a foreign producer declares the exchange it publishes to, the same way msgkit does
      await channel.assertExchange(exchange, 'topic', { durable: true })
      await new Promise<void>((resolve, reject) => {
        channel.publish(
          exchange,
          topic,
          Buffer.from(body),
          // plain AMQP: no message-id, no msgkit headers. AMQP has no message key, so `key` is not sent.
          { persistent: true, headers: { ...publishOptions.headers } },
          (error: unknown) => (error ? reject(error) : resolve()),
        )
      })
    },

    async pendingCount(topic, group) {
      const { connection } = await session()
      // checkQueue on a missing queue closes the channel: use a throwaway one
      const channel = await connection.createChannel()
      channel.on('error', () => {})
      try {
        const reply = await channel.checkQueue(naming.groupQueue(topic, group))
        return reply.messageCount
      } finally {
        await channel.close().catch(() => {})
      }
    },

    badConnections: [
      { name: 'dead port', config: `amqp://guest:guest@${host}:1` },
      {
        name: 'wrong password',
        config: `amqp://guest:${wrongPassword}@${host}:${port}`,
        secret: wrongPassword,
      },
    ],

    async close() {
      const pending = connecting
      connecting = undefined
      const s = await pending?.catch(() => undefined)
      await s?.connection.close().catch(() => {})
    },
  }

  const command = options.restartCommand
  if (command && command.length > 0) {
    probe.restartBroker = async () => {
      // our own connection dies with the broker; open a fresh one afterwards
      await probe.close()
      await run(command, options.cwd)
      // the script returns once the node is ready; make sure AMQP is accepted too
      const deadline = Date.now() + 60_000
      for (;;) {
        try {
          await session()
          return
        } catch (error) {
          if (Date.now() > deadline) throw error
          await sleep(200)
        }
      }
    }
  }
  return probe
}

function run(command: readonly string[], cwd: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = command as [string, ...string[]]
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code === 0) resolve()
      else reject(new Error(`${command.join(' ')} exited with ${code}:\n${output.slice(-2000)}`))
    })
  })
}
