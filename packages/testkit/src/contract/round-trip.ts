/** RT: what goes in comes out — id, key, headers, timestamp, body bytes — and nothing else. */
import { randomUUID } from 'node:crypto'
import { ContentTypes, ErrorCodes, NonRetryableError, WireHeaders, wireHeaderBytes } from '@msgkit/core'
import { expect } from 'vitest'
import { createHandlerSpy } from '../helpers/handler-spy.js'
import {
  CASE_MS,
  expectBytes,
  expectExactly,
  expectRejectsWithCode,
  expectUnsupported,
  expectUserHeaders,
  QUIET_MS,
  randomPayload,
  report,
  type SuiteKit,
  sleep,
  subscribeDeadLetters,
  WAIT_MS,
} from './support.js'

const MiB = 1024 * 1024
/** Above this a max-size body is not sent (too slow for a 2-minute suite); 1 MiB is sent instead. */
const LARGEST_SENT = 16 * MiB
/** Above this the over-limit buffer is not even allocated. */
const LARGEST_ALLOCATED = 256 * MiB

export function roundTripCases(kit: SuiteKit): void {
  kit.describe('round trip', () => {
    kit.it(
      'RT-1 round trip of id, key, headers, timestamp, body',
      async () => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const spy = createHandlerSpy()
        await messaging.subscribe(topic, { group: kit.group('rt1') }, spy.handler)

        const id = randomUUID()
        const key = `key-${randomUUID()}`
        const headers = { 'x-request-id': 'req-1', tenant: 'acme', tenantId: '42', user_name: 'Ada Lovelace' }
        const body = randomPayload(512)
        const before = Date.now()
        const receipt = await messaging.publish(topic, body, { id, key, headers })
        const after = Date.now()
        expect(receipt).toMatchObject({ id, topic })

        const message = await spy.waitForMessage((m) => m.id === id, { timeoutMs: WAIT_MS })
        expect(message.topic).toBe(topic)
        expect(message.key).toBe(key)
        expectUserHeaders(message, headers, 'RT-1')
        expectBytes(message.body, body, 'RT-1')
        expect(message.timestamp, 'timestamp set by the producer (epoch ms)').toBeGreaterThanOrEqual(before)
        expect(message.timestamp, 'timestamp set by the producer (epoch ms)').toBeLessThanOrEqual(after)
        expect(message.attempt).toBe(1)
        expect(message.redelivered).toBe(false)
        expect(message.deadLetter).toBeUndefined()

        // strings stay strings, objects come back as equal objects; default ids are unique
        const value = { a: 1, nested: { b: [1, 'two', null] }, flag: true }
        const text = await messaging.publish(topic, 'hello, msgkit')
        const json = await messaging.publish(topic, value)
        expect(text.id).toBeTruthy()
        expect(new Set([id, text.id, json.id]).size, 'ids are unique').toBe(3)
        const textMessage = await spy.waitForMessage((m) => m.id === text.id, { timeoutMs: WAIT_MS })
        const jsonMessage = await spy.waitForMessage((m) => m.id === json.id, { timeoutMs: WAIT_MS })
        expect(textMessage.body).toBe('hello, msgkit')
        expect(jsonMessage.body).toEqual(value)
        expect(textMessage.key).toBeUndefined()
        expectUserHeaders(textMessage, {}, 'RT-1 no headers')
      },
      CASE_MS,
    )

    kit.it(
      'RT-2 64 KiB random binary body (0x00, 0xFF, invalid UTF-8): sha256 equal',
      async () => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const spy = createHandlerSpy()
        await messaging.subscribe(topic, { group: kit.group('rt2') }, spy.handler)
        const body = randomPayload(64 * 1024)
        // make sure the nasty bytes are there, not just likely
        body.set(
          [0x00, 0xff, 0xc3, 0x28, 0x80, 0xed, 0xa0, 0x80, 0xf8, 0x88, 0x80, 0x80, 0x80, 0xfe, 0x00],
          0,
        )
        body.set([0xef, 0xbb, 0xbf, 0x00, 0xff], 32 * 1024)
        body[body.length - 1] = 0xc3 // truncated multi-byte sequence at the end
        const receipt = await messaging.publish(topic, body)
        const message = await spy.waitForMessage((m) => m.id === receipt.id, { timeoutMs: WAIT_MS })
        expectBytes(message.body, body, 'RT-2')
      },
      CASE_MS,
    )

    kit.it(
      'RT-3 emoji, CJK, RTL, combining marks in body and header values: exact match',
      async () => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const spy = createHandlerSpy()
        await messaging.subscribe(topic, { group: kit.group('rt3') }, spy.handler)
        // NFD on purpose: a transport must not normalise (é as e + U+0301, Å as A + U+030A)
        const text =
          '😀 👩‍👩‍👧‍👦 🇰🇷 漢字 かな 한글 مرحبا שלום e\u0301 A\u030a \u200f\u200d \ud83e\udd80 \u202ertl\u202c'
        const headers = {
          greeting: text,
          'x-cjk': '東京 서울',
          'x-rtl': 'עברית العربية',
          'x-combining': 'n\u0303o\u0308',
        }
        const receipt = await messaging.publish(topic, text, { headers, key: '키-🔑' })
        const object = await messaging.publish(topic, { text }, { headers })
        const message = await spy.waitForMessage((m) => m.id === receipt.id, { timeoutMs: WAIT_MS })
        const objectMessage = await spy.waitForMessage((m) => m.id === object.id, { timeoutMs: WAIT_MS })
        expect(message.body).toBe(text)
        expect(message.key).toBe('키-🔑')
        expectUserHeaders(message, headers, 'RT-3')
        expect(objectMessage.body).toEqual({ text })
        expectUserHeaders(objectMessage, headers, 'RT-3 object body')
      },
      CASE_MS,
    )

    kit.it(
      'RT-4 empty body, empty header value: delivered as sent',
      async () => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const spy = createHandlerSpy()
        await messaging.subscribe(topic, { group: kit.group('rt4') }, spy.handler)
        const headers = { 'x-empty': '', 'x-full': 'yes' }
        const bytes = await messaging.publish(topic, new Uint8Array(0), { headers })
        const text = await messaging.publish(topic, '', { headers: { 'x-empty': '' } })
        const bytesMessage = await spy.waitForMessage((m) => m.id === bytes.id, { timeoutMs: WAIT_MS })
        const textMessage = await spy.waitForMessage((m) => m.id === text.id, { timeoutMs: WAIT_MS })
        expectBytes(bytesMessage.body, new Uint8Array(0), 'RT-4 empty bytes')
        expectUserHeaders(bytesMessage, headers, 'RT-4')
        expect(textMessage.body).toBe('')
        expectUserHeaders(textMessage, { 'x-empty': '' }, 'RT-4 empty string')
      },
      CASE_MS,
    )

    kit.it(
      'RT-5 body and headers at their limits arrive intact; one byte over rejects with MSGKIT_MESSAGE_TOO_LARGE [maxMessageBytes]',
      async (t) => {
        const messaging = await kit.open()
        const { maxMessageBytes, maxHeaderBytes } = messaging.capabilities
        expect(maxMessageBytes, 'capabilities.maxMessageBytes').toBeGreaterThan(0)
        const topic = kit.topic()
        const spy = createHandlerSpy()
        await messaging.subscribe(topic, { group: kit.group('rt5') }, spy.handler)

        const size = maxMessageBytes > LARGEST_SENT ? MiB : maxMessageBytes
        if (size !== maxMessageBytes) {
          await report(t, `maxMessageBytes ${maxMessageBytes} > 16 MiB: sent 1 MiB instead of the maximum`)
        }
        const body = randomPayload(size)
        const receipt = await messaging.publish(topic, body, { timeoutMs: 60_000 })
        const message = await spy.waitForMessage((m) => m.id === receipt.id, { timeoutMs: 45_000 })
        expectBytes(message.body, body, `RT-5 body of ${size} bytes`)

        if (maxMessageBytes + 1 <= LARGEST_ALLOCATED) {
          const tooLarge = new Uint8Array(maxMessageBytes + 1)
          await expectRejectsWithCode(
            messaging.publish(topic, tooLarge),
            ErrorCodes.MESSAGE_TOO_LARGE,
            'publish of maxMessageBytes + 1 bytes',
          )
        } else {
          await report(
            t,
            `maxMessageBytes ${maxMessageBytes}: over-limit body too large to allocate, not sent`,
          )
        }
        // headers exactly at maxHeaderBytes as core counts them (names + values, msgkit's own included)
        const id = randomUUID()
        const base = wireHeaderBytes({
          id,
          headers: { big: '', [WireHeaders.contentType]: ContentTypes.text },
          body: new Uint8Array(0),
          timestamp: 0,
        })
        const fits = 'h'.repeat(Math.max(0, maxHeaderBytes - base))
        const atLimit = await messaging.publish(topic, 'small', {
          id,
          headers: { big: fits },
          timeoutMs: 60_000,
        })
        const withHeaders = await spy.waitForMessage((m) => m.id === atLimit.id, { timeoutMs: 45_000 })
        expect(withHeaders.headers.big?.length, 'header at the limit arrives whole').toBe(fits.length)
        await expectRejectsWithCode(
          messaging.publish(topic, 'small', { id: randomUUID(), headers: { big: `${fits}h` } }),
          ErrorCodes.MESSAGE_TOO_LARGE,
          'publish with headers one byte over maxHeaderBytes',
        )
        await report(
          t,
          `headers of ${maxHeaderBytes} bytes (as counted) arrived whole; one more byte refused`,
        )
        // rejected before the wire: nothing else arrives
        await sleep(QUIET_MS)
        expect(spy.messages.map((m) => m.id)).toEqual([receipt.id, atLimit.id])
      },
      120_000,
    )

    kit.it(
      'RT-6 broker-internal headers are not leaked into user headers; retries surface as attempt',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        const headers = { 'x-app': 'rt6', 'trace-id': 'abc-123' }
        const spy = createHandlerSpy((message) => {
          if (message.attempt === 1) throw new Error('RT-6: fail once')
        })
        await messaging.subscribe(
          topic,
          { group: kit.group('rt6'), retry: { attempts: 3, backoff: { initialMs: 50, jitter: 0 } } },
          spy.handler,
        )
        const receipt = await messaging.publish(topic, 'rt-6', { headers })
        await spy.waitForCount(2, { timeoutMs: WAIT_MS })
        const [first, second] = spy.messages
        expect(first?.id).toBe(receipt.id)
        expect(second?.id).toBe(receipt.id)
        expect([first?.attempt, second?.attempt]).toEqual([1, 2])
        expectUserHeaders(first!, headers, 'RT-6 first delivery')
        expectUserHeaders(second!, headers, 'RT-6 retry')

        if (!messaging.capabilities.deadLetter) {
          await report(t, 'deadLetter off: dead-letter headers not checked')
          return
        }
        // dead-lettering is where brokers add the most (x-death, x-first-death-*, JMSX*)
        const dlTopic = kit.topic()
        const group = kit.group('rt6dl')
        const dead = await subscribeDeadLetters(messaging, dlTopic, group)
        await messaging.subscribe(dlTopic, { group, deadLetter: true }, () => {
          throw new NonRetryableError('RT-6: dead-letter me')
        })
        const deadReceipt = await messaging.publish(dlTopic, 'rt-6 dead', { headers })
        const deadMessage = await dead.waitForMessage((m) => m.id === deadReceipt.id, { timeoutMs: WAIT_MS })
        expectUserHeaders(deadMessage, headers, 'RT-6 dead letter')
        expect(deadMessage.deadLetter, 'dead-letter facts are surfaced as message.deadLetter').toBeDefined()
      },
      CASE_MS,
    )

    kit.it(
      'RT-7 two topics: each subscriber only gets its own',
      async () => {
        const messaging = await kit.open()
        const topics = [kit.topic(), kit.topic()] as const
        const received: Array<Array<{ id: string; topic: string }>> = [[], []]
        for (const [index, topic] of topics.entries()) {
          await messaging.subscribe(topic, { group: kit.group(`rt7-${index}`) }, (message) => {
            received[index]!.push({ id: message.id, topic: message.topic })
          })
        }
        const sent: string[][] = [[], []]
        for (let i = 0; i < 5; i++) {
          for (const [index, topic] of topics.entries())
            sent[index]!.push((await messaging.publish(topic, { i })).id)
        }
        const deadline = Date.now() + WAIT_MS
        while (Date.now() < deadline && received.some((list, index) => list.length < sent[index]!.length))
          await sleep(25)
        await sleep(QUIET_MS)
        for (const [index, topic] of topics.entries()) {
          expectExactly(
            received[index]!.map((r) => r.id),
            sent[index]!,
            `subscriber of topic ${index + 1}`,
          )
          expect(received[index]!.every((r) => r.topic === topic)).toBe(true)
        }
      },
      CASE_MS,
    )

    kit.it(
      'RT-8 publish to a topic no group was provisioned for: rejects with MSGKIT_UNROUTABLE (reject) or warns (warn) where the broker can tell [unroutable]',
      async (t) => {
        const messaging = await kit.open()
        const topic = kit.topic()
        if (!messaging.capabilities.unroutable) {
          await expectUnsupported(
            t,
            'unroutable',
            messaging.publish(topic, 'nobody listens', { unroutable: 'reject' }),
            "publish with unroutable: 'reject'",
          )
          return
        }
        await expectRejectsWithCode(
          messaging.publish(topic, 'nobody listens', { unroutable: 'reject' }),
          ErrorCodes.UNROUTABLE,
          "publish with unroutable: 'reject' to a topic without groups",
        )
        const warned: string[] = []
        messaging.on('unroutable', (event) => warned.push(...event.ids))
        const receipt = await messaging.publish(topic, 'still nobody', { unroutable: 'warn' })
        expect(warned, "unroutable: 'warn' emits the event with the message id").toEqual([receipt.id])
        // once a group exists, the same publish is routable
        const group = kit.group('rt8')
        await messaging.provision(topic, group)
        const spy = createHandlerSpy()
        await messaging.subscribe(topic, { group }, spy.handler)
        const routed = await messaging.publish(topic, 'someone listens', { unroutable: 'reject' })
        await spy.waitForMessage((m) => m.id === routed.id, { timeoutMs: WAIT_MS })
        expect(warned, 'no warning for a routable message').toEqual([receipt.id])
      },
      CASE_MS,
    )
  })
}
