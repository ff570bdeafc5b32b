/**
 * @msgkit/kafka — the msgkit transport for Apache Kafka, on kafkajs and the adapter kit.
 * Selected by `kafka://host:port[,host:port]` URLs or `{ transport: 'kafka', brokers: [...] }`.
 * @packageDocumentation
 */
import type { TransportDefinition } from '@msgkit/core'
import {
  type KafkaTransportConfig,
  kafkaConfigFromUrl,
  kafkaConfigSchema,
  kafkaSecretFields,
} from './config.js'
import { createKafkaTransport } from './transport.js'

/** The Kafka transport definition core loads by name (`kafka`) or URL scheme (`kafka://`). */
export const kafkaTransport: TransportDefinition<KafkaTransportConfig> = {
  name: 'kafka',
  schemes: ['kafka'],
  configSchema: kafkaConfigSchema,
  secretFields: kafkaSecretFields,
  fromUrl: kafkaConfigFromUrl,
  create: createKafkaTransport,
}

export default kafkaTransport

export {
  KAFKA_DEFAULT_MESSAGE_MAX_BYTES,
  type KafkaTransportConfig,
  type KafkaTransportOptions,
  kafkaConfigFromUrl,
  kafkaConfigSchema,
} from './config.js'
export { createKafkaTransport, kafkaCapabilities } from './transport.js'
