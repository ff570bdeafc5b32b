/**
 * @msgkit/sqs — the msgkit transport for AWS SQS, with SNS fan-out (@aws-sdk/client-sqs,
 * @aws-sdk/client-sns), selected by `sqs://<region>?…` URLs or `{ transport: 'sqs' }`.
 * @packageDocumentation
 */
import type { TransportDefinition } from '@msgkit/core'
import { type SqsTransportConfig, secretFields, sqsConfigSchema, sqsFromUrl } from './config.js'
import { createSqsTransport } from './transport.js'

export type { SqsTransportConfig } from './config.js'
export { sqsConfigSchema, sqsFromUrl } from './config.js'
export { Attributes, MAX_HEADER_BYTES, SNS_MAX_BYTES, SQS_MAX_BYTES } from './mapping.js'
export { createNaming, type Naming } from './topology.js'
export { createSqsTransport, sqsCapabilities } from './transport.js'

/** The SQS transport definition; core loads it for `sqs://` URLs. */
export const sqsTransport: TransportDefinition<SqsTransportConfig> = {
  name: 'sqs',
  schemes: ['sqs'],
  configSchema: sqsConfigSchema,
  secretFields,
  fromUrl: sqsFromUrl,
  create: createSqsTransport,
}

export default sqsTransport
