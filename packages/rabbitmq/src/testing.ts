/**
 * @msgkit/rabbitmq/testing — the probe the contract suite (@msgkit/testkit) uses to act like the
 * outside world: a foreign AMQP producer, queue depths, a broker restart. Test code only; needs
 * @msgkit/testkit (an optional peer dependency).
 */
import { parseBrokerUrl } from '@msgkit/core'
import { type ContractProbe, runCommand, waitUntilReady } from '@msgkit/testkit'
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib'
import { createNaming } from './topology.js'

export interface RabbitmqProbeOptions {
  /** the broker under test, e.g. amqp://guest:guest@127.0.0.1:5672, and the transport's `prefix` if set */
  url: string
  prefix?: string
  /** argv that restarts the broker and exits once it is back (scripts/brokers/rabbitmq.sh restart), in `cwd` */
  restartCommand?: readonly string[]
  cwd?: string
}

export interface RabbitmqProbe extends ContractProbe {
  pendingCount(topic: string, group: string): Promise<number>
  /** close the probe's own connection */
  close(): Promise<void>
}

/** A probe for the RabbitMQ at `options.url`. */
export function createRabbitmqProbe(options: RabbitmqProbeOptions): RabbitmqProbe {
  const naming = createNaming(options.prefix ?? '')
  let connecting: Promise<ChannelModel> | undefined
  const connection = (): Promise<ChannelModel> => {
    connecting ??= amqp.connect(options.url).then((model) => {
      model.on('error', () => {})
      model.on('close', () => (connecting = undefined))
      return model
    })
    connecting.catch(() => (connecting = undefined))
    return connecting
  }
  /** `work` on a throwaway channel: a failed check or a refused publish closes only that one */
  const onChannel = async <T>(work: (ch: ConfirmChannel) => Promise<T>): Promise<T> => {
    const ch = await (await connection()).createConfirmChannel()
    ch.on('error', () => {})
    return work(ch).finally(() => ch.close().catch(() => {}))
  }
  const { host = '127.0.0.1', port = 5672 } = parseBrokerUrl(options.url).hosts[0] ?? {}
  const wrong = 'wrong-Pa55word-for-msgkit-lc6'

  const probe: RabbitmqProbe = {
    publishRaw: (topic, body, publishOptions) =>
      onChannel(async (ch) => {
        // a foreign producer: plain AMQP, no message-id, no msgkit headers, no key (AMQP has none);
        // it declares the exchange it publishes to as msgkit does
        const exchange = naming.exchange(topic)
        await ch.assertExchange(exchange, 'topic', { durable: true })
        ch.publish(exchange, topic, Buffer.from(body), {
          persistent: true,
          headers: { ...publishOptions?.headers },
        })
        await ch.waitForConfirms()
      }),

    // ready messages: AMQP's queue.declare-ok does not count unacked ones
    pendingCount: (topic, group) =>
      onChannel(async (ch) => (await ch.checkQueue(naming.groupQueue(topic, group))).messageCount),

    // past the broker (max_message_size 128 MiB; amqplib sends a header table up to 64 KiB, RabbitMQ
    // takes one up to frame_max, 128 KiB) but over msgkit's maxMessageBytes 16 MiB, maxHeaderBytes 60 KiB
    rawOversize: { bodyBytes: 17 * 1024 * 1024, headerValueBytes: 65_000 },

    badConnections: [
      { name: 'dead port', config: `amqp://guest:guest@${host}:1` },
      { name: 'wrong password', config: `amqp://guest:${wrong}@${host}:${port}`, secret: wrong },
    ],

    async close() {
      const pending = connecting
      connecting = undefined
      await (await pending?.catch(() => undefined))?.close().catch(() => {})
    },
  }

  const command = options.restartCommand
  if (command?.length) {
    probe.restartBroker = async () => {
      await probe.close() // our own connection dies with the broker; a fresh one afterwards
      await runCommand(command, { cwd: options.cwd, timeoutMs: 180_000 })
      await waitUntilReady(() => connection(), 'RabbitMQ accepting AMQP connections', 60_000)
    }
  }
  return probe
}
