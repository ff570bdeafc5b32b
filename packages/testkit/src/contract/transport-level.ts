/**
 * SP: the transport itself, driven directly through `messaging.transport` with no core in between —
 * core retries in-process, checks sizes, bounds concurrency and buffers, and would hide a transport
 * that ignores prefetch, fails fast during an outage or forgets its consumers after a cut.
 */
import { randomUUID } from 'node:crypto'
import {
  type Delivery,
  ErrorCodes,
  type Headers,
  isMsgkitError,
  type Messaging,
  type OutgoingMessage,
  type Transport,
  type TransportSubscription,
} from '@msgkit/core'
import { expect } from 'vitest'
import { waitFor } from '../helpers/wait-for.js'
import {
  describeError,
  internalHeaderNames,
  LONG_WAIT_MS,
  QUIET_MS,
  report,
  type SuiteKit,
  settleWithin,
  sleep,
  utf8,
  WAIT_MS,
} from './support.js'

/** A message as core would hand it to a transport (no msgkit headers: the transport adds its own). */
function outgoing(body: string, headers: Headers = {}): OutgoingMessage {
  return { id: randomUUID(), headers: { ...headers }, body: utf8.encode(body), timestamp: Date.now() }
}

const deadlineIn = (ms: number): { deadline: number } => ({ deadline: Date.now() + ms })

/** A subscription that records every delivery and settles nothing by itself. */
async function record(
  transport: Transport,
  topic: string,
  group: string,
  prefetch: number,
): Promise<{ deliveries: Delivery[]; subscription: TransportSubscription }> {
  const deliveries: Delivery[] = []
  const subscription = await transport.subscribe({ topic, group, prefetch }, async (delivery) => {
    deliveries.push(delivery)
  })
  return { deliveries, subscription }
}

/** Headers of a delivery without the transport's own `msgkit-*` ones (core strips those). */
function foreignHeaders(delivery: Delivery): Headers {
  const out: Headers = {}
  for (const [name, value] of Object.entries(delivery.message.headers))
    if (!name.toLowerCase().startsWith('msgkit-')) out[name] = value
  return out
}

/** Sends and fails the case with the transport's error text when the send does not resolve. */
async function send(transport: Transport, topic: string, messages: OutgoingMessage[]): Promise<void> {
  const outcome = await settleWithin(transport.send(topic, messages, deadlineIn(30_000)), 40_000)
  if (outcome.status !== 'fulfilled')
    throw new Error(
      `transport.send to ${topic}: ${outcome.status === 'rejected' ? describeError(outcome.reason) : 'did not settle in 40 s'}`,
    )
}

async function expectQuiet(deliveries: Delivery[], count: number, what: string): Promise<void> {
  await sleep(QUIET_MS)
  expect(
    deliveries.map((d) => d.message.id),
    what,
  ).toHaveLength(count)
}

async function faultyTransport(kit: SuiteKit): Promise<{ messaging: Messaging; transport: Transport }> {
  const messaging = await kit.openFaulty()
  return { messaging, transport: messaging.transport }
}

export function transportCases(kit: SuiteKit): void {
  const faults = (): NonNullable<typeof kit.options.faults> => {
    const f = kit.options.faults
    if (!f) throw new Error('no fault injection: pass `faults` to runContractSuite')
    return f
  }

  kit.describe('transport', () => {
    kit.it(
      'SP-1 subscribe with prefetch 5, 50 messages, never ack: exactly 5 deliveries handed over',
      async () => {
        const { transport } = await kit.open()
        const topic = kit.topic()
        const group = kit.group('sp1')
        const { deliveries, subscription } = await record(transport, topic, group, 5)
        await send(
          transport,
          topic,
          Array.from({ length: 50 }, (_, i) => outgoing(`sp1-${i}`)),
        )
        await waitFor(() => deliveries.length >= 5, { timeoutMs: WAIT_MS, message: '5 deliveries' })
        await expectQuiet(deliveries, 5, 'deliveries handed over with prefetch 5 and no ack')
        // acking makes room for exactly as many more
        for (const d of deliveries.slice(0, 5)) await d.ack()
        await waitFor(() => deliveries.length >= 10, { timeoutMs: WAIT_MS, message: '5 more after 5 acks' })
        await expectQuiet(deliveries, 10, 'deliveries after acking the first 5')
        expect(new Set(deliveries.map((d) => d.message.id)).size, 'distinct messages').toBe(10)
        await subscription.close()
      },
    )

    kit.it(
      'SP-2 ack twice, nack after ack, ack after a cut: no throw, no double effect, nothing lost',
      async (t) => {
        const { transport } = await kit.open()
        const topic = kit.topic()
        const group = kit.group('sp2')
        const first = await record(transport, topic, group, 10)
        const sent = ['a', 'b', 'c'].map((body) => outgoing(body))
        await send(transport, topic, sent)
        await waitFor(() => first.deliveries.length >= 3, { timeoutMs: WAIT_MS, message: '3 deliveries' })
        const byBody = (body: string): Delivery =>
          first.deliveries.find((d) => new TextDecoder().decode(d.message.body) === body) as Delivery
        const [a, b, c] = [byBody('a'), byBody('b'), byBody('c')]
        await a.ack()
        await a.ack()
        await b.ack()
        await b.nack({ requeue: true })
        await expectQuiet(first.deliveries, 3, 'nothing redelivered after double ack / nack after ack')
        // c was never settled: closing gives it back, and only it
        await first.subscription.close()
        const second = await record(transport, topic, group, 10)
        await waitFor(() => second.deliveries.length >= 1, {
          timeoutMs: LONG_WAIT_MS,
          message: 'the unsettled message comes back to a new member',
        })
        await expectQuiet(second.deliveries, 1, 'only the unsettled message comes back')
        expect(second.deliveries[0]?.message.id).toBe(c.message.id)
        await second.deliveries[0]?.ack()
        await second.subscription.close()

        // a settle after the connection was cut: no throw; the message is not lost (it was acked, or comes back)
        const faulty = await faultyTransport(kit)
        // a topic of its own: a transport without fan-out takes one group per topic
        const cutTopic = kit.topic()
        const cutGroup = kit.group('sp2cut')
        const held = await record(faulty.transport, cutTopic, cutGroup, 10)
        const d = outgoing('d')
        await send(transport, cutTopic, [d])
        await waitFor(() => held.deliveries.length >= 1, { timeoutMs: WAIT_MS, message: 'd delivered' })
        await faults().cut()
        await sleep(300)
        await faults().restore()
        const settled = await settleWithin(held.deliveries[0]!.ack(), 10_000)
        expect(settled.status, 'ack after the cut settles without throwing').toBe('fulfilled')
        // the broker either took that ack (nothing more arrives) or redelivers d: ack the redelivery
        await sleep(QUIET_MS * 2)
        for (const again of held.deliveries.slice(1)) {
          expect(again.message.id, 'only d can come back').toBe(d.id)
          await again.ack()
        }
        await report(t, `after the cut d came back ${held.deliveries.length - 1} time(s)`)
        await held.subscription.close()
        const check = await record(transport, cutTopic, cutGroup, 10)
        await expectQuiet(check.deliveries, 0, 'nothing left for the group once d was acked')
        await check.subscription.close()
      },
      90_000,
    )

    kit.it(
      'SP-3 nack with requeue: the message comes back with redelivered or a higher attempt',
      async () => {
        const { transport } = await kit.open()
        const topic = kit.topic()
        const group = kit.group('sp3')
        const { deliveries, subscription } = await record(transport, topic, group, 10)
        const m = outgoing('sp3')
        await send(transport, topic, [m])
        await waitFor(() => deliveries.length >= 1, { timeoutMs: WAIT_MS, message: 'first delivery' })
        const firstDelivery = deliveries[0] as Delivery
        await firstDelivery.nack({ requeue: true })
        await waitFor(() => deliveries.length >= 2, {
          timeoutMs: WAIT_MS,
          message: 'the nacked message again',
        })
        const again = deliveries[1] as Delivery
        expect(again.message.id, 'same message').toBe(m.id)
        const shows =
          again.message.redelivered || (again.message.attempt ?? 1) > (firstDelivery.message.attempt ?? 1)
        expect(
          shows,
          `the redelivery shows (redelivered ${again.message.redelivered}, attempt ${again.message.attempt} after ${firstDelivery.message.attempt})`,
        ).toBe(true)
        await again.ack()
        await expectQuiet(deliveries, 2, 'no third delivery after the ack')
        await subscription.close()
      },
    )

    kit.it(
      'SP-4 send while the connection is cut: waits and resolves after the reconnect; with a short deadline rejects MSGKIT_PUBLISH_TIMEOUT',
      async (t) => {
        const direct = await kit.open()
        const topic = kit.topic()
        const received = await record(direct.transport, topic, kit.group('sp4'), 10)
        const { transport } = await faultyTransport(kit)
        await faults().cut()
        const patient = outgoing('patient')
        const cutAt = performance.now()
        const waiting = settleWithin(transport.send(topic, [patient], deadlineIn(10_000)), 20_000)
        await sleep(2_000)
        await faults().restore()
        const outcome = await waiting
        expect(
          outcome.status === 'rejected' ? describeError(outcome.reason) : outcome.status,
          'send with a 10 s deadline across a 2 s cut',
        ).toBe('fulfilled')
        await report(t, `send resolved ${Math.round(performance.now() - cutAt)} ms after the cut`)
        await waitFor(() => received.deliveries.some((d) => d.message.id === patient.id), {
          timeoutMs: WAIT_MS,
          message: 'the message sent during the cut is received',
        })

        await faults().cut()
        const started = performance.now()
        const hasty = await settleWithin(
          transport.send(topic, [outgoing('hasty')], deadlineIn(1_000)),
          10_000,
        )
        const took = performance.now() - started
        await faults().restore()
        expect(hasty.status, 'send with a 1 s deadline during a cut').toBe('rejected')
        const reason = (hasty as { reason?: unknown }).reason
        expect(isMsgkitError(reason) && reason.code, describeError(reason)).toBe(ErrorCodes.PUBLISH_TIMEOUT)
        expect(took, 'ms until the 1 s deadline rejected').toBeGreaterThanOrEqual(900)
        expect(took, 'ms until the 1 s deadline rejected').toBeLessThan(4_000)
        for (const d of received.deliveries) await d.ack()
        await received.subscription.close()
      },
      90_000,
    )

    kit.it(
      'SP-5 connection cut with an active subscription: deliveries resume without a new subscribe',
      async (t) => {
        const direct = await kit.open()
        const topic = kit.topic()
        const group = kit.group('sp5')
        const { transport } = await faultyTransport(kit)
        const got: string[] = []
        const subscription = await transport.subscribe({ topic, group, prefetch: 10 }, async (delivery) => {
          got.push(delivery.message.id)
          await delivery.ack()
        })
        const before = outgoing('before')
        await send(direct.transport, topic, [before])
        await waitFor(() => got.includes(before.id), {
          timeoutMs: WAIT_MS,
          message: 'a delivery before the cut',
        })
        await faults().cut()
        await sleep(500)
        await faults().restore()
        const restoredAt = performance.now()
        const after = outgoing('after')
        await send(direct.transport, topic, [after])
        await waitFor(() => got.includes(after.id), {
          timeoutMs: LONG_WAIT_MS,
          message: 'a delivery after the cut, on the same subscription',
        })
        await report(t, `first delivery ${Math.round(performance.now() - restoredAt)} ms after the restore`)
        await subscription.close()
      },
      90_000,
    )

    kit.it(
      'SP-6 no broker-internal header on any path: normal, redelivered, delayed, dead-letter topic',
      async (t) => {
        const { transport } = await kit.open()
        const topic = kit.topic()
        const group = kit.group('sp6')
        const headers = { 'x-app': 'sp6', tenant: 'acme' }
        const { deliveries, subscription } = await record(transport, topic, group, 10)
        const normal = outgoing('normal', headers)
        await send(transport, topic, [normal])
        await waitFor(() => deliveries.length >= 1, { timeoutMs: WAIT_MS, message: 'normal delivery' })
        const paths: Array<[string, Delivery]> = [['normal', deliveries[0] as Delivery]]
        await deliveries[0]?.nack({ requeue: true })
        await waitFor(() => deliveries.length >= 2, { timeoutMs: WAIT_MS, message: 'redelivery' })
        paths.push(['redelivered', deliveries[1] as Delivery])
        await deliveries[1]?.ack()
        if (transport.capabilities.delay) {
          const delayed = { ...outgoing('delayed', headers), delayMs: 500 }
          await send(transport, topic, [delayed])
          await waitFor(() => deliveries.length >= 3, { timeoutMs: WAIT_MS, message: 'delayed delivery' })
          paths.push(['delayed', deliveries[2] as Delivery])
          await deliveries[2]?.ack()
        } else await report(t, 'delay off: delayed path not checked')
        const dlTopic = `${topic}.${group}.dlq`
        const dead = await record(transport, dlTopic, 'dlq', 10)
        await send(transport, dlTopic, [outgoing('dead', headers)])
        await waitFor(() => dead.deliveries.length >= 1, {
          timeoutMs: WAIT_MS,
          message: 'dead-letter topic delivery',
        })
        paths.push(['dead-letter topic', dead.deliveries[0] as Delivery])
        for (const [path, delivery] of paths) {
          expect(internalHeaderNames(foreignHeaders(delivery)), `${path}: broker headers`).toEqual([])
          expect(foreignHeaders(delivery), `${path}: headers`).toEqual(headers)
        }
        await dead.deliveries[0]?.ack()
        await subscription.close()
        await dead.subscription.close()
      },
      90_000,
    )
  })
}
