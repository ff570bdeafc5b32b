/** Shared plumbing of the SQS real-server tests: the URL under test and cleanup of a run's resources. */
import {
  DeleteTopicCommand,
  ListTopicsCommand,
  type ListTopicsCommandOutput,
  SNSClient,
} from '@aws-sdk/client-sns'
import { DeleteQueueCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs'
import { parseBrokerUrl } from '@msgkit/core'
import { sqsConfigSchema, sqsFromUrl } from '../src/config.js'

// the SDK's one-time notice on Node 20 (docs/brokers/sqs.md); moto takes any credentials
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
process.env.AWS_ACCESS_KEY_ID ??= 'test'
process.env.AWS_SECRET_ACCESS_KEY ??= 'test'

/** The server under test (scripts/brokers/sqs.sh), as pnpm test:brokers passes it. */
export const baseUrl = process.env.MSGKIT_URL?.startsWith('sqs:')
  ? process.env.MSGKIT_URL
  : 'sqs://us-east-1?endpoint=http://127.0.0.1:4566'

/** `baseUrl` with more query parameters and, optionally, another endpoint (a fault proxy). */
export function urlWith(query: string, endpoint?: { host: string; port: number }): string {
  const u = new URL(baseUrl.replace(/^sqs:/, 'http:'))
  for (const [k, v] of new URLSearchParams(query)) u.searchParams.set(k, v)
  if (endpoint) u.searchParams.set('endpoint', `http://${endpoint.host}:${endpoint.port}`)
  return u.toString().replace(/^http:/, 'sqs:')
}

/** The parsed config of a URL (for the probe, which talks to the same server with the raw SDK). */
export const configOf = (url: string) => sqsConfigSchema.parse(sqsFromUrl(parseBrokerUrl(url)))

/** host and port of the server. */
export function serverOf(url = baseUrl): { host: string; port: number } {
  const endpoint = new URL(configOf(url).endpoint ?? 'http://127.0.0.1:4566')
  return { host: endpoint.hostname, port: Number(endpoint.port || 80) }
}

/** A prefix for one run's queues and topics, so that they can be deleted afterwards. */
export const runPrefix = (label: string): string => `${label}${Date.now().toString(36)}-`

/** Deletes every queue and topic whose name starts with `prefix` (best effort). */
export async function deleteResources(url: string, prefix: string): Promise<void> {
  const config = configOf(url)
  const client = {
    region: config.region ?? 'us-east-1',
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  }
  const sqs = new SQSClient(client)
  const sns = new SNSClient(client)
  try {
    let NextToken: string | undefined
    do {
      const page = await sqs.send(
        new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 1000, NextToken }),
      )
      await Promise.all(
        (page.QueueUrls ?? []).map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))),
      )
      NextToken = page.NextToken
    } while (NextToken)
    NextToken = undefined
    do {
      const page: ListTopicsCommandOutput = await sns.send(new ListTopicsCommand({ NextToken }))
      const ours = (page.Topics ?? []).filter((t) => t.TopicArn?.split(':').pop()?.startsWith(prefix))
      await Promise.all(ours.map(({ TopicArn }) => sns.send(new DeleteTopicCommand({ TopicArn }))))
      NextToken = page.NextToken
    } while (NextToken)
  } catch (error) {
    console.warn(`[sqs tests] cleanup of ${prefix}* failed: ${String(error)}`)
  } finally {
    sqs.destroy()
    sns.destroy()
  }
}
