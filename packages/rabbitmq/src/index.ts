/**
 * @msgkit/rabbitmq — the msgkit transport for RabbitMQ (AMQP 0-9-1, amqplib), selected by
 * `amqp://` / `amqps://` URLs or `{ transport: 'rabbitmq' }`.
 * @packageDocumentation
 */
import type { TransportDefinition } from '@msgkit/core'
import {
  type RabbitmqTransportConfig,
  rabbitmqConfigSchema,
  rabbitmqFromUrl,
  secretFields,
} from './config.js'
import { createRabbitmqTransport } from './transport.js'

export type { RabbitmqTlsOptions, RabbitmqTransportConfig } from './config.js'
export { rabbitmqConfigSchema, rabbitmqFromUrl } from './config.js'
export { bindingKey, createNaming, delayBucket, type Naming } from './topology.js'
export { createRabbitmqTransport, rabbitmqCapabilities } from './transport.js'

/** The RabbitMQ transport definition; core loads it for `amqp://` and `amqps://` URLs. */
export const rabbitmqTransport: TransportDefinition<RabbitmqTransportConfig> = {
  name: 'rabbitmq',
  schemes: ['amqp', 'amqps'],
  configSchema: rabbitmqConfigSchema,
  secretFields,
  fromUrl: rabbitmqFromUrl,
  create: createRabbitmqTransport,
}

export default rabbitmqTransport
