// Promise helpers over raw stompit 1.0 for the probes in ../ (not the adapter's driver: that one is
// written on the adapter kit). Everything here talks to a real broker.
import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import stompit from 'stompit'

export { sleep }

export const STOMP_HOST = process.env.ACTIVEMQ_HOST ?? '127.0.0.1'
export const STOMP_PORT = Number(process.env.ACTIVEMQ_STOMP_PORT ?? 61613)
export const LOGIN = process.env.ACTIVEMQ_USER ?? 'msgkit'
export const PASSCODE = process.env.ACTIVEMQ_PASSWORD ?? 'msgkit'

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 16)
export const uid = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`
export const ms = (t0) => Math.round((performance.now() - t0) * 10) / 10

/**
 * Connects and waits for CONNECTED. Resolves { client, pending }: `pending` is the set of receipt
 * rejecters, so that an ERROR frame or a dropped socket rejects every outstanding receipt
 * (stompit itself never calls a receipt callback again once the client is destroyed).
 */
export function connect({
  port = STOMP_PORT,
  host = STOMP_HOST,
  login = LOGIN,
  passcode = PASSCODE,
  anonymous = false,
  noDelay = true,
  heartbeat = '0,0',
  timeout = 3000,
  extraHeaders = {},
} = {}) {
  return new Promise((resolve, reject) => {
    const connectHeaders = { host: 'localhost', 'heart-beat': heartbeat, ...extraHeaders }
    if (!anonymous) Object.assign(connectHeaders, { login, passcode })
    const client = stompit.connect({ host, port, timeout, connectHeaders }, (err) => {
      if (err) return reject(err)
      resolve(client)
    })
    client.on('socket-connect', () => {
      if (noDelay) client.getTransportSocket().setNoDelay(true)
    })
    client.pending = new Set()
    client.errors = []
    client.on('error', (e) => {
      client.errors.push(e)
      for (const p of client.pending) p(e)
      client.pending.clear()
    })
    client.getTransportSocket().on('close', () => {
      const e = new Error('socket closed')
      for (const p of client.pending) p(e)
      client.pending.clear()
    })
  })
}

/** SEND with a receipt; resolves when the RECEIPT arrives. */
export function send(client, headers, body = '') {
  return new Promise((resolve, reject) => {
    let rejecter
    const frame = client.send(
      { ...headers },
      {
        onReceipt: () => {
          client.pending.delete(rejecter)
          resolve()
        },
      },
    )
    rejecter = reject
    client.pending.add(rejecter)
    frame.write(body)
    frame.end()
  })
}

/** Any frame (SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, BEGIN, COMMIT) with a receipt. */
export function frameWithReceipt(client, command, headers) {
  return new Promise((resolve, reject) => {
    let rejecter
    const frame = client.sendFrame(
      command,
      { ...headers },
      {
        onReceipt: () => {
          client.pending.delete(rejecter)
          resolve()
        },
      },
    )
    rejecter = reject
    client.pending.add(rejecter)
    frame.end()
  })
}

/** Reads a MESSAGE frame's body fully into a Buffer. */
export function readBody(message) {
  return new Promise((resolve, reject) => {
    const chunks = []
    message.on('data', (c) => chunks.push(c))
    message.on('end', () => resolve(Buffer.concat(chunks)))
    message.on('error', reject)
  })
}

/**
 * SUBSCRIBE; `onMessage(msg, headers, body)` is called after the body was read fully (read at once,
 * so that stompit keeps parsing: an unread body stops every later frame on the connection).
 * Returns the stompit subscription.
 */
export function subscribe(client, headers, onMessage) {
  return client.subscribe({ ...headers }, (err, message) => {
    if (err) return
    readBody(message).then(
      (body) => onMessage(message, message.headers, body),
      () => {},
    )
  })
}

/**
 * Like `subscribe`, but resolves when the broker's RECEIPT for the SUBSCRIBE arrived (stompit's own
 * subscribe() cannot ask for one): registers the listener with setImplicitSubscription, then sends
 * the frame itself.
 */
export async function subscribeWithReceipt(client, headers, onMessage) {
  const id = headers.id ?? uid('sub')
  const ackMode = headers.ack ?? 'auto'
  const sub = client.setImplicitSubscription(id, ackMode, (err, message) => {
    if (err) return
    readBody(message).then(
      (body) => onMessage(message, message.headers, body),
      () => {},
    )
  })
  await frameWithReceipt(client, 'SUBSCRIBE', { ...headers, id, ack: ackMode })
  return sub
}

/** SUBSCRIBE with a receipt (the queue exists once the receipt arrives), then UNSUBSCRIBE with one. */
export async function provisionQueue(client, destination) {
  const id = uid('prov')
  await frameWithReceipt(client, 'SUBSCRIBE', { id, destination, ack: 'client-individual' })
  await frameWithReceipt(client, 'UNSUBSCRIBE', { id })
  delete client._subscriptions[id]
}

export const ack = (client, message, receipt = false) =>
  receipt
    ? frameWithReceipt(client, 'ACK', { id: message.headers.ack })
    : client.sendFrame('ACK', { id: message.headers.ack }).end()

export const nack = (client, message, receipt = false) =>
  receipt
    ? frameWithReceipt(client, 'NACK', { id: message.headers.ack })
    : client.sendFrame('NACK', { id: message.headers.ack }).end()

/** DISCONNECT with its receipt, bounded; destroys the socket on timeout. */
export async function disconnect(client, timeoutMs = 3000) {
  if (!client) return
  await Promise.race([
    new Promise((resolve) => client.disconnect(() => resolve())),
    sleep(timeoutMs).then(() => client.destroy()),
  ]).catch(() => {})
}

/** Drains a queue: reads and acks whatever is there until `idleMs` pass without a message. */
export async function drain(client, destination, idleMs = 500) {
  let n = 0
  let last = performance.now()
  const sub = subscribe(client, { destination, ack: 'auto' }, () => {
    n++
    last = performance.now()
  })
  while (performance.now() - last < idleMs) await sleep(50)
  sub.unsubscribe()
  return n
}

/** Waits until `cond()` is true or `timeoutMs` passes; resolves to whether it became true. */
export async function waitFor(cond, timeoutMs, stepMs = 10) {
  const t0 = performance.now()
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) return false
    await sleep(stepMs)
  }
  return true
}

export const log = (section, fact, data) =>
  console.log(`[${section}] ${fact}${data === undefined ? '' : ` ${JSON.stringify(data)}`}`)
