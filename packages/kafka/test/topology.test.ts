/**
 * The topology's guard around kafkajs's admin (kafkajs#461): metadata calls one at a time, and the
 * TypeError kafkajs throws for a topic missing from its metadata classified as transient. The admin
 * here only records calls: what the broker says is covered by the broker tests.
 */
import { silentLogger } from '@msgkit/core'
import { type Admin, Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { kafkaConfigSchema } from '../src/config.js'
import { createKafkaErrors } from '../src/errors.js'
import { createTopology } from '../src/topology.js'

const config = kafkaConfigSchema.parse({ brokers: ['127.0.0.1:1'] })
const topologyOf = () => createTopology(new Kafka({ brokers: config.brokers }), config, silentLogger)

describe('kafka topology', () => {
  it('runs the admin metadata calls of concurrent topics one at a time', async () => {
    let running = 0
    let most = 0
    const call = async <T>(value: T): Promise<T> => {
      running += 1
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 5))
      running -= 1
      return value
    }
    const admin = {
      createTopics: () => call(true),
      fetchTopicOffsets: () => call([{ partition: 0 }, { partition: 1 }]),
    } as unknown as Admin
    const topology = topologyOf()
    const counts = await Promise.all(['a', 'b', 'c', 'd'].map((t) => topology.ensureTopic(admin, t)))
    expect(counts).toEqual([2, 2, 2, 2])
    expect(most).toBe(1)
  })

  it("kafkajs's TypeError for a topic not in its metadata yet is transient, and the next try succeeds", async () => {
    let calls = 0
    const admin = {
      createTopics: async () => true,
      fetchTopicOffsets: async () => {
        calls += 1
        if (calls === 1) throw new TypeError("Cannot destructure property 'partitions' of 'high.pop(...)'")
        return [{ partition: 0 }]
      },
    } as unknown as Admin
    const topology = topologyOf()
    const failure = await topology.ensureTopic(admin, 'fresh').catch((e: unknown) => e)
    expect(createKafkaErrors((t) => t).classify(failure)).toBe('transient')
    expect(await topology.ensureTopic(admin, 'fresh')).toBe(1)
  })
})
