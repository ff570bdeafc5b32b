/**
 * @msgkit/sqs/testing — the contract suite's probe: a foreign producer on the raw SDK (SNS Publish, or
 * SendMessage with fan-out off), queue depths, a server restart. Test code only; needs @msgkit/testkit.
 */
import { randomUUID } from 'node:crypto'
import * as SNS from '@aws-sdk/client-sns'
import * as SQS from '@aws-sdk/client-sqs'
import { type ContractProbe, runCommand, waitUntilReady } from '@msgkit/testkit'
import { clientOptions, type SqsTransportConfig, sqsConfigSchema } from './config.js'
import { sqsTransport } from './index.js'
import { MAX_HEADER_BYTES, maxBodyBytes, SNS_MAX_BYTES, SQS_MAX_BYTES } from './mapping.js'
import { createNaming } from './topology.js'

const COUNTS = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] as const
const SECRET = 'probe-secret-4711'

export interface SqsProbe extends ContractProbe {
  pendingCount(topic: string, group: string): Promise<number>
  close(): Promise<void>
}

/** A probe for the endpoint of `options.config`; `restartCommand` (argv, run in `cwd`) restarts the server. */
export function createSqsProbe(options: {
  config: Partial<SqsTransportConfig>
  restartCommand?: readonly string[]
  cwd?: string
}): SqsProbe {
  const config = sqsConfigSchema.parse(options.config)
  const naming = createNaming(config)
  const client = { region: 'us-east-1', ...clientOptions(config) }
  const [sqs, sns] = [new SQS.SQSClient(client), new SNS.SNSClient(client)]
  const url = async (QueueName: string) =>
    (await sqs.send(new SQS.GetQueueUrlCommand({ QueueName }))).QueueUrl
  const limit = config.fanout ? SNS_MAX_BYTES : SQS_MAX_BYTES
  const dead = 'sqs://AKIDPROBE:%s@us-east-1?endpoint=http://127.0.0.1:1'

  const probe: SqsProbe = {
    // a foreign producer: the raw SDK, String attributes, nothing of msgkit's; on FIFO its key is the group id
    async publishRaw(topic, body, publish) {
      const Message = Buffer.from(body).toString('utf8')
      const headers = Object.entries(publish?.headers ?? {})
      const MessageAttributes = Object.fromEntries(
        headers.map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
      )
      const ids = { MessageGroupId: publish?.key ?? 'foreign', MessageDeduplicationId: randomUUID() }
      const input = { MessageAttributes, ...(config.fifo ? ids : {}) }
      if (!config.fanout) {
        const QueueUrl = await url(naming.topic(topic))
        await sqs.send(new SQS.SendMessageCommand({ ...input, QueueUrl, MessageBody: Message }))
        return
      }
      const Attributes = config.fifo ? { FifoTopic: 'true' } : undefined
      const { TopicArn } = await sns.send(
        new SNS.CreateTopicCommand({ Name: naming.topic(topic), Attributes }),
      )
      await sns.send(new SNS.PublishCommand({ ...input, TopicArn, Message }))
    },
    // visible + in flight: what the group has not settled yet
    async pendingCount(topic, group) {
      const input = { QueueUrl: await url(naming.queue(topic, group)), AttributeNames: [...COUNTS] }
      const { Attributes = {} } = await sqs.send(new SQS.GetQueueAttributesCommand(input))
      return COUNTS.reduce((n, name) => n + Number(Attributes[name] ?? 0), 0)
    },
    // within what AWS takes (moto counts neither attributes nor UTF-8 bytes), over msgkit's own limits
    rawOversize: { bodyBytes: maxBodyBytes(limit) + 10_000, headerValueBytes: MAX_HEADER_BYTES + 8_000 },
    // moto takes any credentials and checks no signature: wrong ones cannot fail here (AWS: MSGKIT_AUTH_FAILED)
    badConnections: [
      {
        name: 'dead port',
        config: { transport: sqsTransport, url: dead.replace('%s', SECRET) },
        secret: SECRET,
      },
      {
        name: 'unknown host',
        config: { transport: sqsTransport, url: 'sqs://x?endpoint=http://no-such-host.invalid' },
      },
    ],
    async close() {
      sqs.destroy()
      sns.destroy()
    },
  }
  const command = options.restartCommand
  if (command?.length)
    probe.restartBroker = async () => {
      await runCommand(command, { cwd: options.cwd, timeoutMs: 180_000 })
      await waitUntilReady(
        () => sqs.send(new SQS.ListQueuesCommand({ MaxResults: 1 })),
        'SQS answering',
        60_000,
      )
    }
  return probe
}
