/**
 * @msgkit/activemq — the msgkit transport for ActiveMQ Classic over STOMP 1.2, on the adapter kit.
 * Selected by `stomp://host:61613[,host:61613]` / `stomp+ssl://…` URLs or `{ transport: 'activemq' }`.
 * @packageDocumentation
 */
import type { TransportDefinition } from '@msgkit/core'
import {
  type ActivemqTransportConfig,
  activemqConfigFromUrl,
  activemqConfigSchema,
  activemqSecretFields,
} from './config.js'
import { createActivemqTransport } from './transport.js'

/** The ActiveMQ transport definition core loads by name (`activemq`) or URL scheme (`stomp://`). */
export const activemqTransport: TransportDefinition<ActivemqTransportConfig> = {
  name: 'activemq',
  schemes: ['stomp', 'stomp+ssl'],
  configSchema: activemqConfigSchema,
  secretFields: activemqSecretFields,
  fromUrl: activemqConfigFromUrl,
  create: createActivemqTransport,
}

export default activemqTransport

export {
  type ActivemqTransportConfig,
  type ActivemqTransportOptions,
  activemqConfigFromUrl,
  activemqConfigSchema,
} from './config.js'
export { activemqCapabilities, createActivemqTransport } from './transport.js'
