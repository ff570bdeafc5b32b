/**
 * Names and declarations. Fan-out on: a topic is an SNS topic, a group a queue subscribed to it (raw
 * delivery, a policy that lets the topic send). Fan-out off: a topic is one queue, owned by one group.
 * Queues carry tags naming the msgkit topic and group they stand for: a second group on a fan-out-off
 * topic, or two msgkit names on one AWS name (`a.b`, `a_b`), fail loudly instead of sharing a queue.
 */
import { createHash } from 'node:crypto'
import * as SNS from '@aws-sdk/client-sns'
import * as SQS from '@aws-sdk/client-sqs'
import { ErrorCodes, MsgkitError } from '@msgkit/core'
import { createDeclarations } from '@msgkit/core/adapter'
import type { SqsTransportConfig } from './config.js'
import { isNotFound } from './errors.js'
import type { SqsSession } from './transport.js'

/** AWS names: `.` → `_`, prefix in front, `.fifo` behind; too long: cut, plus 8 hex of the msgkit name. */
export function createNaming(config: Pick<SqsTransportConfig, 'prefix' | 'fifo' | 'fanout'>) {
  const suffix = config.fifo ? '.fifo' : ''
  const fit = (readable: string, max: number, logical: string): string => {
    const room = max - suffix.length
    const hash = createHash('sha256').update(logical).digest('hex').slice(0, 8)
    return (readable.length <= room ? readable : `${readable.slice(0, room - 9)}-${hash}`) + suffix
  }
  const aws = (topic: string): string => config.prefix + topic.replace(/\./g, '_')
  const topicName = (topic: string): string => fit(aws(topic), config.fanout ? 256 : 80, topic)
  return {
    /** the SNS topic (fan-out on) or the queue (fan-out off) a topic is published to */
    topic: topicName,
    /** the queue a group of a topic consumes from */
    queue: (topic: string, group: string): string =>
      config.fanout ? fit(`${aws(topic)}-${group}`, 80, `${topic}\n${group}`) : topicName(topic),
  }
}
export type Naming = ReturnType<typeof createNaming>
export type GroupQueue = { url: string; arn: string }
export type Topology = ReturnType<typeof createTopology>

/** Whether what `ask` asks for exists: it answered, or it failed with not-found. */
const found = (ask: Promise<unknown>): Promise<boolean> =>
  ask.then(() => true).catch((error: unknown) => (isNotFound(error) ? false : Promise.reject(error)))

export function createTopology(config: SqsTransportConfig) {
  const naming = createNaming(config)
  const other = createNaming({ ...config, fifo: !config.fifo })
  /** topics by name, groups by `<topic>\n<group>` */
  const declared = createDeclarations()
  /** topics seen with a subscription, until when */
  const routable = new Map<string, number>()

  /** The queue `QueueName` (created when missing), claimed for `tags`; another owner is a loud error. */
  const openQueue = async (s: SqsSession, QueueName: string, tags: Record<string, string>) => {
    const known = await s.sqs.send(new SQS.GetQueueUrlCommand({ QueueName })).catch((error: unknown) => {
      if (!isNotFound(error)) throw error
    })
    const Attributes: Record<string, string> = config.fifo ? { FifoQueue: 'true' } : {}
    if (!known?.QueueUrl)
      return (await s.sqs.send(new SQS.CreateQueueCommand({ QueueName, Attributes, tags }))).QueueUrl
    const QueueUrl = known.QueueUrl
    const { Tags = {} } = await s.sqs.send(new SQS.ListQueueTagsCommand({ QueueUrl }))
    const [topic, group] = [Tags['msgkit-topic'], Tags['msgkit-group']]
    if (topic !== undefined && topic !== tags['msgkit-topic'])
      throw new MsgkitError(
        ErrorCodes.INVALID_ARGUMENT,
        `Queue ${QueueName} stands for msgkit topic ${topic}, not ${tags['msgkit-topic']}: both map onto one AWS name (dots become underscores). Rename one.`,
      )
    if (group !== undefined && tags['msgkit-group'] !== undefined && group !== tags['msgkit-group'])
      throw new MsgkitError(
        ErrorCodes.CAPABILITY_UNSUPPORTED,
        `Queue ${QueueName} belongs to group ${group}: with fanout off a topic has one group, so ${tags['msgkit-group']} cannot share it. Use fanout: true (SNS) for several groups.`,
      )
    const missing = Object.fromEntries(Object.entries(tags).filter(([k]) => Tags[k] === undefined))
    if (Object.keys(missing).length > 0)
      await s.sqs.send(new SQS.TagQueueCommand({ QueueUrl, Tags: missing }))
    return QueueUrl
  }

  /** The topic's ARN or queue URL; the same topic of the other kind (FIFO / standard) would miss messages. */
  const openTopic = async (s: SqsSession, topic: string): Promise<string> => {
    let target: string | undefined
    let twin: boolean
    if (config.fanout) {
      const Attributes = config.fifo ? { FifoTopic: 'true' } : undefined
      target = (await s.sns.send(new SNS.CreateTopicCommand({ Name: naming.topic(topic), Attributes })))
        .TopicArn
      const TopicArn = `${target?.slice(0, target.lastIndexOf(':') + 1)}${other.topic(topic)}`
      twin = await found(s.sns.send(new SNS.GetTopicAttributesCommand({ TopicArn })))
    } else {
      target = await openQueue(s, naming.topic(topic), { 'msgkit-topic': topic })
      twin = await found(s.sqs.send(new SQS.GetQueueUrlCommand({ QueueName: other.topic(topic) })))
    }
    if (!twin) return target as string
    throw new MsgkitError(
      ErrorCodes.CONFIG_INVALID,
      `Topic ${topic} exists as ${other.topic(topic)}, but this transport has fifo: ${config.fifo}: producers and consumers would miss each other. Configure every service of a topic alike, or delete the other one.`,
    )
  }

  /** The SNS topic ARN (fan-out on) or queue URL (off) that `topic` is published to. */
  const ensureTopic = (s: SqsSession, topic: string): Promise<string> =>
    declared.once(topic, () => openTopic(s, topic))

  const openGroup = async (s: SqsSession, topic: string, group: string): Promise<GroupQueue> => {
    const target = await ensureTopic(s, topic)
    const tags = { 'msgkit-topic': topic, 'msgkit-group': group }
    const QueueUrl = (await openQueue(s, naming.queue(topic, group), tags)) as string
    const AttributeNames = ['QueueArn', 'Policy', 'RedrivePolicy'] as SQS.QueueAttributeName[]
    const { Attributes: has = {} } = await s.sqs.send(
      new SQS.GetQueueAttributesCommand({ QueueUrl, AttributeNames }),
    )
    const arn = has.QueueArn as string
    const wanted: Record<string, string> = {}
    if (config.fanout && !has.Policy?.includes(target)) wanted.Policy = snsMaySend(arn, target)
    // the crash safety net: what SQS delivered this often without msgkit settling it leaves the queue
    if (config.maxReceiveCount > 0 && !topic.endsWith('.dlq')) {
      const deadLetterTargetArn = (await ensureGroup(s, `${topic}.${group}.dlq`, 'dlq')).arn
      const redrive = JSON.stringify({ deadLetterTargetArn, maxReceiveCount: config.maxReceiveCount })
      if (has.RedrivePolicy !== redrive) wanted.RedrivePolicy = redrive
    }
    if (Object.keys(wanted).length > 0)
      await s.sqs.send(new SQS.SetQueueAttributesCommand({ QueueUrl, Attributes: wanted }))
    if (config.fanout) {
      const Attributes = { RawMessageDelivery: 'true' }
      await s.sns.send(
        new SNS.SubscribeCommand({ TopicArn: target, Protocol: 'sqs', Endpoint: arn, Attributes }),
      )
      routable.set(topic, Date.now() + config.routableCacheMs)
    }
    return { url: QueueUrl, arn }
  }

  /** The group's queue, with all around it (topic, subscription, policies). */
  const ensureGroup = (s: SqsSession, topic: string, group: string): Promise<GroupQueue> =>
    declared.once(`${topic}\n${group}`, () => openGroup(s, topic, group))

  return {
    naming,
    ensureTopic,
    ensureGroup,
    /** Forget `topic` (and all its groups, or one): it was deleted behind our back. */
    forget(topic: string, group?: string): void {
      routable.delete(topic)
      const prefix = `${topic}\n`
      declared.forget((key) => key === topic || key === prefix + group || (!group && key.startsWith(prefix)))
    },
    /** Fan-out on: does the topic have a subscription? A yes is remembered for `routableCacheMs`. */
    async hasSubscribers(s: SqsSession, topic: string): Promise<boolean> {
      if ((routable.get(topic) ?? 0) > Date.now()) return true
      const TopicArn = await ensureTopic(s, topic)
      const { Subscriptions = [] } = await s.sns.send(new SNS.ListSubscriptionsByTopicCommand({ TopicArn }))
      if (Subscriptions.length > 0) routable.set(topic, Date.now() + config.routableCacheMs)
      return Subscriptions.length > 0
    },
  }
}

/** The queue policy that lets one SNS topic deliver into the queue (AWS drops deliveries without it). */
function snsMaySend(queueArn: string, topicArn: string): string {
  const Condition = { ArnEquals: { 'aws:SourceArn': topicArn } }
  const Principal = { Service: 'sns.amazonaws.com' }
  const Statement = [{ Effect: 'Allow', Principal, Action: 'sqs:SendMessage', Resource: queueArn, Condition }]
  return JSON.stringify({ Version: '2012-10-17', Statement })
}
