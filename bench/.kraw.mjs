import { randomUUID } from 'node:crypto'
import { Kafka, logLevel } from 'kafkajs'
const kafka = new Kafka({ clientId: 'x', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING })
const admin = kafka.admin(); await admin.connect()
const topic = `kraw-${randomUUID()}`
await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 }); await producer.connect()
const body = { pad: 'x'.repeat(1000) }
const mode = process.env.MODE ?? 'plain'
const rec = () => {
  const value = Buffer.from(JSON.stringify(body))
  if (mode === 'plain') return { value }
  if (mode === 'header') return { value, headers: { 'msgkit-id': randomUUID() } }
  if (mode === 'ts') return { value, timestamp: String(Date.now()) }
  return { value, headers: { 'msgkit-id': randomUUID() }, timestamp: String(Date.now()) }
}
const run = async (n) => {
  const c0 = process.cpuUsage(); const t = performance.now()
  for (let i = 0; i < n; i += 500) await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages: Array.from({ length: 500 }, rec) }] })
  const c = process.cpuUsage(c0)
  return `${mode} ${Math.round(n / (performance.now() - t) * 1000)} msg/s ${((c.user + c.system) / n).toFixed(1)} µs/msg`
}
await run(5000); console.log(await run(30000))
await producer.disconnect(); await admin.deleteTopics({ topics: [topic] }); await admin.disconnect()
