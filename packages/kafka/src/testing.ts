/**
 * Test helpers for the Kafka transport (`@msgkit/kafka/testing`): the contract-suite probe.
 * Never imported by production code.
 */
import { execFile } from 'node:child_process'
import type { Headers } from '@msgkit/core'
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

/** The probe shape of @msgkit/testkit's ContractProbe (kept structural: no testkit dependency here). */
export interface KafkaProbe {
  publishRaw(topic: string, body: Uint8Array, options?: { headers?: Headers; key?: string }): Promise<void>
  restartBroker?(): Promise<void>
  pendingCount(topic: string, group: string): Promise<number>
  badConnections: ReadonlyArray<{ name: string; config: string | Record<string, unknown>; secret?: string }>
  /** disconnect the probe's own clients */
  close(): Promise<void>
}

/** A probe that acts like the outside world: a plain kafkajs producer, an admin, a restart command. */
export function createKafkaProbe(options: KafkaProbeOptions): KafkaProbe {
  const kafka = new Kafka({ clientId: 'msgkit-probe', brokers: options.brokers, logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  const admin = kafka.admin()
  let connected: Promise<void> | undefined
  const connect = (): Promise<void> => {
    connected ??= Promise.all([producer.connect(), admin.connect()]).then(
      () => undefined,
      (error: unknown) => {
        connected = undefined
        throw error
      },
    )
    return connected
  }

  const probe: KafkaProbe = {
    async publishRaw(topic, body, opts = {}) {
      await connect()
      await producer.send({
        topic,
        acks: -1,
        messages: [{ key: opts.key ?? null, value: Buffer.from(body), headers: { ...(opts.headers ?? {}) } }],
      })
    },

    async pendingCount(topic, group) {
      await connect()
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
      const ends = await admin.fetchTopicOffsets(topic)
      let pending = 0
      for (const end of ends) {
        const c = Number(committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? -1)
        pending += Number(end.high) - (c >= 0 ? c : Number(end.low))
      }
      return pending
    },

    // the definition object is passed so core need not resolve @msgkit/kafka by name
    badConnections: [
      { name: 'dead port', config: { transport: kafkaTransport, url: 'kafka://127.0.0.1:1' } },
      {
        name: 'unresolvable host',
        config: { transport: kafkaTransport, url: 'kafka://no-such-host.invalid:9092' },
      },
      {
        name: 'SASL credentials against a listener without SASL',
        config: {
          transport: kafkaTransport,
          url: `kafka://msgkit:probe-secret-4711@${options.brokers[0] ?? '127.0.0.1:9092'}`,
        },
        secret: 'probe-secret-4711',
      },
    ],

    async close() {
      await Promise.allSettled([producer.disconnect(), admin.disconnect()])
      connected = undefined
    },
  }

  const command = options.restartCommand
  if (command && command.length > 0) {
    probe.restartBroker = async () => {
      // the probe's own connections die with the broker; reconnect lazily afterwards
      await probe.close()
      await new Promise<void>((resolve, reject) => {
        execFile(
          command[0]!,
          command.slice(1),
          { cwd: options.cwd, timeout: 180_000 },
          (error, stdout, stderr) => {
            if (error) reject(new Error(`broker restart failed: ${error.message}\n${stdout}\n${stderr}`))
            else resolve()
          },
        )
      })
    }
  }
  return probe
}
