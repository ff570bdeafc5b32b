#!/usr/bin/env node
// Raw stompit 1.0 ↔ ActiveMQ's own JMS client (test/interop/jms/JmsInterop.java over OpenWire):
// what a Java consumer sees of STOMP frames, and what a STOMP consumer sees of JMS messages.
//
//   node packages/activemq/scripts/probe-jms.mjs        (broker from scripts/brokers/activemq.sh)
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  connect,
  disconnect,
  log,
  provisionQueue,
  send,
  sleep,
  subscribe,
  uid,
  waitFor,
} from './lib/stomp.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..')
const runJms = (...args) => {
  const t0 = performance.now()
  const r = spawnSync('bash', [join(root, 'test/interop/jms/run-jms.sh'), ...args], { encoding: 'utf8' })
  const lines = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
  return { status: r.status, lines, stderr: r.stderr.trim(), ms: Math.round(performance.now() - t0) }
}
const b64 = (s) => Buffer.from(s).toString('base64')

// ---------------------------------------------------------------------------------------------
// STOMP → JMS
{
  const S = 'stomp→jms'
  const topic = uid('jmsin')
  const c = await connect()
  await provisionQueue(c, `/queue/Consumer.J.VirtualTopic.${topic}`)
  const bin = randomBytes(64 * 1024)
  const frames = [
    ['text, no content-length, ASCII+Korean', {}, Buffer.from('hello 안녕하세요')],
    ['text, no content-length, emoji', {}, Buffer.from('party 🎉')],
    ['content-length, UTF-8 with emoji', { 'content-length': null }, Buffer.from('party 🎉 안녕')],
    ['content-length, 64 KiB binary', { 'content-length': null }, bin],
    [
      'amq-msg-type:text + content-length',
      { 'amq-msg-type': 'text', 'content-length': null },
      Buffer.from('typed text'),
    ],
    [
      'headers',
      {
        'content-length': null,
        JMSXGroupID: 'customer-7',
        'msgkit-id': 'id-1',
        'msgkit-key': 'customer-7',
        'x-seq': '1',
        'my.dot': 'dot',
        'content-type': 'application/json',
        type: 'orders.created',
        'correlation-id': 'corr-9',
        'x-colon': 'a:b',
        'x-newline': 'l1\nl2',
        'x-korean': '안녕',
        'x-emoji': '🎉',
        'x-int-like': '42',
      },
      Buffer.from('{"a":1}'),
    ],
  ]
  for (const [label, h, body] of frames) {
    const headers = { destination: `/topic/VirtualTopic.${topic}`, persistent: 'true', 'x-label': label }
    for (const [k, v] of Object.entries(h)) headers[k] = v === null ? String(body.length) : v
    await send(c, headers, body)
  }
  await disconnect(c)
  const r = runJms(
    'consume',
    '--group',
    'J',
    '--topic',
    topic,
    '--count',
    String(frames.length),
    '--timeout-ms',
    '15000',
  )
  log(S, `JMS consumer exit ${r.status} in ${r.ms} ms${r.stderr ? ` (stderr: ${r.stderr})` : ''}`)
  for (const m of r.lines) {
    const label = m.properties['x-label']
    const sent = frames.find((f) => f[0] === label)?.[2]
    const got = m.bodyBase64 !== undefined ? Buffer.from(m.bodyBase64, 'base64') : undefined
    log(S, label, {
      type: m.type,
      bodyEqual: got ? got.equals(sent) : null,
      textError: m.textError,
      text: m.type === 'text' ? m.text : undefined,
      JMSXGroupID: m.JMSXGroupID,
      JMSType: m.JMSType,
      JMSCorrelationID: m.JMSCorrelationID,
      JMSRedelivered: m.JMSRedelivered,
      JMSXDeliveryCount: m.JMSXDeliveryCount,
      JMSDeliveryMode: m.JMSDeliveryMode,
      properties: label === 'headers' || label.startsWith('amq') ? m.properties : Object.keys(m.properties),
      propertyTypes: label === 'headers' ? m.propertyTypes : undefined,
    })
    if (label === 'headers')
      log(S, 'header x-emoji (🎉 = U+1F389) as a JMS property, UTF-16 code units', {
        codeUnits: [...(m.properties['x-emoji'] ?? '')].map((ch) => ch.codePointAt(0).toString(16)),
        equal: m.properties['x-emoji'] === '🎉',
      })
  }
  // JMSXDeliveryCount after a rollback (the JMS side's own redelivery)
  const c2 = await connect()
  const t2 = uid('jmsrb')
  await provisionQueue(c2, `/queue/Consumer.J.VirtualTopic.${t2}`)
  await send(
    c2,
    { destination: `/topic/VirtualTopic.${t2}`, persistent: 'true', 'content-length': '2' },
    'rb',
  )
  await disconnect(c2)
  const rb = runJms('consume', '--group', 'J', '--topic', t2, '--count', '1', '--rollback-first')
  log(
    S,
    'transacted JMS consumer, rollback then receive',
    rb.lines.map((m) => ({
      event: m.event,
      JMSRedelivered: m.JMSRedelivered,
      JMSXDeliveryCount: m.JMSXDeliveryCount,
    })),
  )
}

// ---------------------------------------------------------------------------------------------
// JMS → STOMP
{
  const S = 'jms→stomp'
  const topic = uid('jmsout')
  const c = await connect()
  await provisionQueue(c, `/queue/Consumer.S.VirtualTopic.${topic}`)
  const got = []
  subscribe(
    c,
    { destination: `/queue/Consumer.S.VirtualTopic.${topic}`, ack: 'client-individual' },
    (_m, h, body) => {
      got.push({ h, body })
      c.sendFrame('ACK', { id: h.ack }).end()
    },
  )
  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0xc3, 0x28])
  const r = runJms(
    'send',
    '--topic',
    topic,
    '--text',
    'hello 안녕 ✓',
    '--prop',
    'x-label=string:text-bmp',
    '--group',
    'key-1',
    '--text-base64',
    b64('party 🎉'),
    '--prop',
    'x-label=string:text-emoji',
    '--bytes-base64',
    bytes.toString('base64'),
    '--prop',
    'x-label=string:bytes-props',
    '--prop',
    'x-string=string:a:b\nc',
    '--prop',
    'x-int=int:42',
    '--prop',
    'x-long=long:9007199254740993',
    '--prop',
    'x-bool=boolean:true',
    '--prop',
    'x-double=double:1.5',
    '--prop',
    'x.dot=string:dot',
    '--prop',
    `x-emoji=string64:${b64('🎉 안녕')}`,
    '--group',
    'key-2',
    '--type',
    'orders.created',
    '--correlation-id',
    'corr-1',
  )
  log(S, `JMS producer exit ${r.status} in ${r.ms} ms${r.stderr ? ` (stderr: ${r.stderr})` : ''}`)
  await waitFor(() => got.length >= 3, 10000)
  await sleep(200)
  for (const { h, body } of got) {
    const utf8 = body.toString('utf8')
    log(S, h['x-label'], {
      headers: h,
      bodyHex: body.toString('hex'),
      bodyUtf8RoundTrips: Buffer.from(utf8, 'utf8').equals(body),
      bodyUtf8: utf8,
    })
    if (h['x-emoji'] !== undefined)
      log(S, 'JMS string property "🎉 안녕" as a STOMP header', {
        equal: h['x-emoji'] === '🎉 안녕',
        codePoints: [...h['x-emoji']].map((ch) => ch.codePointAt(0).toString(16)),
      })
  }
  await disconnect(c)
}
process.exit(0)
