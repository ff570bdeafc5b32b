/**
 * Test helpers for the memory transport (`@msgkit/core/testing`); never imported by production code.
 */

import { uuidv7 } from './ids.js'
import { getMemoryBroker, memoryQueueName } from './memory/broker.js'
import { createMessaging } from './messaging.js'
import type { Headers } from './spi.js'

/** The contract-suite probe for `memory://<brokerName>` (shape of @msgkit/testkit's ContractProbe). */
export function createMemoryProbe(brokerName: string) {
  const broker = getMemoryBroker(brokerName)
  const stopped = `${brokerName}-stopped`
  const locked = `${brokerName}-locked`
  getMemoryBroker(stopped).stop()
  getMemoryBroker(locked).password = 'correct-horse-battery-staple'
  return {
    async publishRaw(
      topic: string,
      body: Uint8Array,
      options: { headers?: Headers; key?: string } = {},
    ): Promise<void> {
      const message = {
        id: uuidv7(),
        topic,
        headers: { ...(options.headers ?? {}) },
        body: Uint8Array.from(body),
        timestamp: Date.now(),
      }
      broker.publish(topic, options.key === undefined ? message : { ...message, key: options.key })
    },
    async restartBroker(): Promise<void> {
      await broker.restart(1_000)
    },
    async pendingCount(topic: string, group: string): Promise<number> {
      return broker.pending(memoryQueueName({ topic }, group))
    },
    // the memory broker itself takes anything; msgkit's defaults are 4 MiB bodies, 64 KiB headers
    rawOversize: { bodyBytes: 4 * 1024 * 1024 + 64 * 1024, headerValueBytes: 64 * 1024 + 1024 },
    badConnections: [
      { name: 'stopped broker', config: `memory://${stopped}` },
      {
        name: 'wrong password',
        config: `memory://user:wrong-secret-123@${locked}`,
        secret: 'wrong-secret-123',
      },
    ],
  }
}

/**
 * Fault injection for the contract suite (shape of @msgkit/testkit's FaultInjection): `cut` stops
 * the memory broker `brokerName` (every connection to it drops, its queues stay), `restore` starts it.
 */
export function createMemoryFaults(brokerName: string) {
  const broker = getMemoryBroker(brokerName)
  return {
    createMessaging: (options?: Parameters<typeof createMessaging>[1]) =>
      createMessaging(`memory://${brokerName}`, options),
    async cut(): Promise<void> {
      broker.stop()
    },
    async restore(): Promise<void> {
      broker.start()
    },
  }
}
