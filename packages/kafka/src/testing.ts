/**
 * Test helpers for the Kafka transport (`@msgkit/kafka/testing`): the contract-suite probe, which
 * acts like the outside world (a plain kafkajs producer and admin, a broker restart command).
 * Needs @msgkit/testkit (an optional peer dependency). Never imported by production code.
 */
import { type ContractProbe, runCommand } from '@msgkit/testkit'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import { kafkaTransport } from './index.js'

export interface KafkaProbeOptions {
  /** bootstrap brokers of the broker under test, e.g. ['127.0.0.1:9092'] */
  brokers: string[]
  /** command (argv) that restarts the broker and exits once it accepts connections again */
  restartCommand?: readonly string[]
  /** working directory for restartCommand */
  cwd?: string
}

export interface KafkaProbe extends ContractProbe {
  pendingCount(topic: string, group: string): Promise<number>
  /** disconnect the probe's own clients */
  close(): Promise<void>
}

/** A probe on a plain kafkajs producer and admin. */
export function createKafkaProbe(options: KafkaProbeOptions): KafkaProbe {
  const kafka = new Kafka({ clientId: 'msgkit-probe', brokers: options.brokers, logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  const admin = kafka.admin()
  let connected: Promise<unknown> | undefined
  const connect = (): Promise<unknown> => {
    connected ??= Promise.all([producer.connect(), admin.connect()]).catch((error: unknown) => {
      connected = undefined
      throw error
    })
    return connected
  }
  const command = options.restartCommand

  const probe: KafkaProbe = {
    async publishRaw(topic, body, opts = {}) {
      await connect()
      const headers = { ...(opts.headers ?? {}) }
      await producer.send({
        topic,
        acks: -1,
        messages: [{ key: opts.key ?? null, value: Buffer.from(body), headers }],
      })
    },

    async pendingCount(topic, group) {
      await connect()
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
      let pending = 0
      for (const end of await admin.fetchTopicOffsets(topic)) {
        const c = Number(committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? -1)
        pending += Number(end.high) - (c >= 0 ? c : Number(end.low))
      }
      return pending
    },

    // past the broker (message.max.bytes 1,048,588 by default) but over msgkit's limits (issue 8)
    rawOversize: { bodyBytes: 1_048_300, headerValueBytes: 100_000 },

    // the definition object is passed so core need not resolve @msgkit/kafka by name
    badConnections: [
      { name: 'dead port', config: { transport: kafkaTransport, url: 'kafka://127.0.0.1:1' } },
      {
        name: 'unresolvable host',
        config: { transport: kafkaTransport, url: 'kafka://no-such-host.invalid:9092' },
      },
      {
        name: 'SASL credentials against a listener without SASL',
        config: { transport: kafkaTransport, url: `kafka://msgkit:probe-secret-4711@${options.brokers[0]}` },
        secret: 'probe-secret-4711',
      },
    ],

    async close() {
      await Promise.allSettled([producer.disconnect(), admin.disconnect()])
      connected = undefined
    },
  }
  if (command?.length) {
    probe.restartBroker = async () => {
      // the probe's own connections die with the broker; it reconnects lazily afterwards
      await probe.close()
      await runCommand(command, { cwd: options.cwd, timeoutMs: 180_000 })
    }
  }
  return probe
}
