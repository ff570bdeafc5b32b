/** The SQS transport's config: zod schema, defaults, the `sqs://` URL mapping, the SDK client options. */
import { nestParams, type ParsedUrl } from '@msgkit/core'
import { intSchema as int } from '@msgkit/core/adapter'
import { z } from 'zod'

const flag = z.union([z.boolean(), z.stringbool()])
const text = z.string().min(1)
const staticCredentials = z.strictObject({
  accessKeyId: text,
  secretAccessKey: text,
  sessionToken: text.optional(),
})
const prefix = z.string().regex(/^[A-Za-z0-9_-]{0,40}$/, 'up to 40 of A-Z a-z 0-9 _ -')

/** Everything the SQS transport accepts (docs/brokers/sqs.md explains each option). */
export const sqsConfigSchema = z.strictObject({
  /** absent: the SDK's default chain (AWS_REGION, ~/.aws/config) */
  region: z.optional(z.string().regex(/^[a-z0-9-]+$/, 'an AWS region such as eu-west-1')),
  /** every SQS and SNS call goes there (moto, LocalStack, a VPC endpoint) */
  endpoint: z.url({ protocol: /^https?$/ }).optional(),
  /** absent: the SDK's default provider chain (env, profile, SSO, instance role) */
  credentials: staticCredentials.optional(),
  prefix: prefix.default(''),
  /** FIFO topics and queues: key → MessageGroupId, msgkit id → deduplication id */
  fifo: flag.default(false),
  /** on: topic = SNS topic, group = a queue subscribed to it; off: topic = one queue, one group */
  fanout: flag.default(true),
  visibilityTimeoutSeconds: int(1, 43_200).default(30),
  /** long-poll wait: longer = fewer empty receives, but close() waits for an open poll */
  waitTimeSeconds: int(1, 20).default(10),
  /** receives at once per subscription while messages flow (idle: one long poll) */
  maxReceives: int(1, 32).default(4),
  /** redrive to the group's dead-letter queue after this many receives (0: no redrive policy) */
  maxReceiveCount: int(0, 1_000).default(100),
  /** per request; long polls get the wait time on top */
  requestTimeoutMs: int(500, 120_000).default(10_000),
  provisionTimeoutMs: int(1_000, 600_000).default(30_000),
  /** how long a topic seen with a subscription counts as routable (0: ask every time) */
  routableCacheMs: int(0, 3_600_000).default(30_000),
})

export type SqsTransportConfig = z.infer<typeof sqsConfigSchema>

/** Config paths whose values never appear in errors or logs. */
export const secretFields = ['credentials.secretAccessKey', 'credentials.sessionToken'] as const

/** `sqs://[accessKeyId:secretAccessKey@]<region>?endpoint=http://127.0.0.1:4566&fifo=true…` → config. */
export function sqsFromUrl(url: ParsedUrl): Record<string, unknown> {
  const out = nestParams(url.params)
  if (url.hosts[0]?.host) out.region = url.hosts[0].host
  if (url.username !== undefined || url.password !== undefined) {
    const given = (out.credentials ?? {}) as Record<string, unknown>
    out.credentials = { ...given, accessKeyId: url.username ?? '', secretAccessKey: url.password ?? '' }
  }
  return out
}

/** Options for both SDK clients: few, short SDK retries (the kit's deadlines decide); a timeout that throws. */
export function clientOptions(config: SqsTransportConfig) {
  const { region, endpoint, credentials } = config
  return {
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 2,
    // without throwOnRequestTimeout the SDK only warns, and a frozen request hangs for ever
    requestHandler: { requestTimeout: config.requestTimeoutMs, throwOnRequestTimeout: true },
  }
}

/** `host:port` of the endpoint (or the regional one), for texts and telemetry. */
export function endpointLabel(config: SqsTransportConfig): string {
  if (!config.endpoint) return `sqs.${config.region ?? '<default region>'}.amazonaws.com`
  return new URL(config.endpoint).host
}
