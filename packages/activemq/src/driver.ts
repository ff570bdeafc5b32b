/**
 * The STOMP driver: the only file that knows stompit (unreleased since 2020; a swap to @stomp/stompjs
 * rewrites this file only). One connection with what stompit lacks: TCP no-delay (Nagle: ~44 ms per
 * receipted SEND), a deadline on the whole CONNECT, receipts that always settle (an ERROR frame or a
 * lost socket rejects each pending one, the refused frame apart), bodies read at once (an unread body
 * stops stompit's parser), and errors without stompit's `connectArgs` (they hold the passcode).
 */
import type { Socket } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { withTimeout } from '@msgkit/core'
import stompit from 'stompit'

export type FrameHeaders = Record<string, string>
export interface InboundFrame {
  headers: FrameHeaders
  body: Buffer
}

/** What went wrong, for the error table: `refused` = an ERROR frame answered CONNECT (credentials). */
export type StompFailure = 'unreachable' | 'timeout' | 'refused' | 'lost' | 'error-frame'

/** A driver failure. `message` is the socket's or the broker's text, never a credential. */
export class StompError extends Error {
  override name = 'StompError'
  constructor(
    readonly failure: StompFailure,
    message: string,
    /** the socket's errno code (ECONNREFUSED, …), when there is one */
    readonly code?: string,
  ) {
    super(message)
  }
}

export interface StompOptions {
  host: string
  port: number
  /** stomp+ssl; undefined = plain TCP */
  tls?: ConnectionOptions
  login?: string
  passcode?: string
  /** the CONNECT frame's `host` header */
  vhost: string
  /** heart-beat both ways; 0 = none */
  heartbeatMs: number
  /** TCP connect + CONNECTED frame within this */
  connectTimeoutMs: number
}

export interface StompConnection {
  readonly closed: boolean
  /** Sends a frame with a receipt; resolves on its RECEIPT, rejects with a StompError otherwise. */
  request(command: string, headers: FrameHeaders, body?: Uint8Array): Promise<void>
  /** Sends a frame without a receipt (ACK, BEGIN, …); a no-op once closed. */
  post(command: string, headers: FrameHeaders, body?: Uint8Array): void
  /** Routes the MESSAGE frames of subscription `id` (register before sending its SUBSCRIBE). */
  listen(id: string, onMessage: (frame: InboundFrame) => void): void
  unlisten(id: string): void
  /** Called once when the connection ends, whoever ended it. */
  onClose(listener: (error: StompError) => void): void
  /** DISCONNECT (the broker takes back what is unacked), bounded by `timeoutMs`; never throws. */
  close(timeoutMs: number): Promise<void>
}

/** The stompit Client as used here (its typings miss the internals we rely on). */
interface Client {
  on(event: string, listener: (...args: never[]) => void): void
  destroy(error?: Error): void
  getTransportSocket(): Socket
  /** stompit's frame writer; `_destination` is where it writes each chunk (the socket) */
  _output?: { _destination?: Pick<Socket, 'write'> }
  sendFrame(
    command: string,
    headers: FrameHeaders,
    options?: { onReceipt(): void },
  ): { end(b?: Buffer): void }
  setImplicitSubscription(id: string, ack: string, listener: (error: unknown, message: Message) => void): void
  setCommandHandler(command: string, handler: (frame: { headers: FrameHeaders }) => void): void
  createApplicationError(message: string): Error
  disconnect(): void
  _subscriptions: Record<string, unknown>
}
type Message = {
  headers: Record<string, string | number>
  on(event: string, f: (chunk: Buffer) => void): void
}

/**
 * stompit writes a frame as three socket writes (command and headers, body, NUL) and waits for each
 * one's callback before the next: with no-delay, three syscalls and three TCP segments per frame,
 * a third of the client's CPU per message and as many packets for the broker to read. This stands
 * in as the destination of stompit's frame writer: the socket is corked on the first chunk of an I/O
 * turn and uncorked on the next (one write for all the turn's frames, acks and heart-beats, in
 * order), and a chunk's callback comes on the next tick, or after 'drain' when the socket is backed
 * up (stompit then waits, as it would on the socket itself).
 */
function batchedWrites(socket: Socket): Pick<Socket, 'write'> {
  let corked = false
  const uncork = (): void => {
    corked = false
    socket.uncork()
  }
  const write = (
    chunk: string | Uint8Array,
    encoding?: BufferEncoding | ((error?: Error | null) => void),
    callback?: (error?: Error | null) => void,
  ): boolean => {
    const done = typeof encoding === 'function' ? encoding : callback
    if (!corked) {
      corked = true
      socket.cork()
      setImmediate(uncork)
    }
    // a failed write ends the connection through the socket's 'error' and 'close'
    const room = socket.write(chunk, typeof encoding === 'string' ? encoding : 'utf8')
    if (done) {
      if (room) process.nextTick(done)
      else socket.once('drain', () => done())
    }
    return room
  }
  return { write: write as Socket['write'] }
}

/** stompit's parser limits (1 KiB lines, 64 headers by default) would refuse frames ActiveMQ delivers. */
const PARSER_LIMITS = { maxLineLength: 1024 * 1024, maxHeaders: 4096 }

/** Opens one connection and resolves once the broker answered CONNECTED. */
export async function openStomp(options: StompOptions): Promise<StompConnection> {
  const { host, port, login, passcode, heartbeatMs: hb, connectTimeoutMs: ms } = options
  const connectHeaders: FrameHeaders = { host: options.vhost, 'heart-beat': `${hb},${hb}` }
  if (login !== undefined) Object.assign(connectHeaders, { login, passcode: passcode ?? '' })
  const tls = options.tls ? { ...options.tls, ssl: true } : {}
  // 1 MiB of socket buffer before a corked turn of frames (batchedWrites) makes stompit wait for 'drain'
  const socketOptions = { writableHighWaterMark: 1024 * 1024 }
  const settings = { ...tls, ...PARSER_LIMITS, ...socketOptions, host, port, connectHeaders, timeout: ms }
  let client: Client | undefined
  const connected = new Promise<Client>((resolve, reject) => {
    const c = stompit.connect(
      settings as unknown as stompit.connect.ConnectOptions,
      (error: (Error & { code?: string; isApplicationError?(): boolean }) | null) => {
        // the flags are right only now (stompit re-flags the error a tick later); keep only the text
        const failure = error?.isApplicationError?.() ? 'refused' : 'unreachable'
        if (error) reject(new StompError(failure, String(error.message), error.code))
        else resolve(c)
      },
    ) as unknown as Client
    c.on('error', () => {}) // a late socket error must never be unhandled
    c.on('socket-connect', () => {
      const socket = c.getTransportSocket()
      socket.setNoDelay(true)
      if (c._output && typeof c._output._destination?.write === 'function')
        c._output._destination = batchedWrites(socket)
    })
    client = c
  })
  try {
    const timeout = () => new StompError('timeout', `no CONNECTED frame within ${ms} ms`)
    return wrap(await withTimeout(connected, ms, timeout))
  } catch (error) {
    client?.destroy()
    throw error
  }
}

function wrap(client: Client): StompConnection {
  const pending = new Map<string, (error: StompError) => void>()
  const listeners = new Set<(error: StompError) => void>()
  let closed = false
  /** the receipt of the frame the broker refused with an ERROR frame, and what it said */
  let refused: { receipt?: string; message: string } | undefined

  const shutdown = (error: StompError): void => {
    if (closed) return
    closed = true
    for (const [id, reject] of pending)
      reject(id === refused?.receipt ? new StompError('error-frame', refused.message) : error)
    pending.clear()
    for (const listener of listeners) listener(error)
  }
  const lost = (text: string): StompError =>
    new StompError('lost', refused ? `the broker sent an ERROR frame (${refused.message})` : text)

  client.setCommandHandler('ERROR', (frame) => {
    // the broker answers frames in order, and a frame it cannot even parse (a header or body over
    // its limits) gets an ERROR without `receipt-id`: then it is the oldest frame still unanswered
    const receipt = frame.headers['receipt-id'] ?? pending.keys().next().value
    refused = { receipt, message: frame.headers.message ?? 'ERROR frame' }
    client.destroy(client.createApplicationError(refused.message))
  })
  client.on('error', (error: Error) => shutdown(lost(error.message)))
  const ended = () => shutdown(lost('the connection was closed'))
  client.on('end', ended)
  client.getTransportSocket().on('close', ended)

  const frame = (command: string, headers: FrameHeaders, body?: Uint8Array, onReceipt?: () => void) => {
    const h = { ...headers }
    if (body) h['content-length'] = String(body.byteLength) // binary-safe: a NUL would end the body
    const out = client.sendFrame(command, h, onReceipt ? { onReceipt } : undefined)
    out.end(body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : undefined)
    return h.receipt
  }

  return {
    get closed() {
      return closed
    },
    request(command, headers, body) {
      if (closed) return Promise.reject(lost('the connection is closed'))
      return new Promise((resolve, reject) => {
        const receipt = String(frame(command, headers, body, () => pending.delete(receipt) && resolve()))
        pending.set(receipt, reject)
      })
    },
    post(command, headers, body) {
      if (!closed) frame(command, headers, body)
    },
    listen(id, onMessage) {
      client.setImplicitSubscription(id, 'client-individual', (error, message) => {
        if (error || !message) return
        const chunks: Buffer[] = []
        message.on('data', (chunk) => chunks.push(chunk))
        message.on('error', () => {})
        message.on('end', () => {
          const headers = Object.fromEntries(Object.entries(message.headers).map(([n, v]) => [n, String(v)]))
          onMessage({ headers, body: Buffer.concat(chunks) })
        })
      })
    },
    unlisten(id) {
      delete client._subscriptions[id]
    },
    onClose(listener) {
      listeners.add(listener)
    },
    async close(timeoutMs) {
      if (closed) return
      const gone = new Promise<void>((resolve) => listeners.add(() => resolve()))
      client.disconnect()
      await withTimeout(gone, timeoutMs, () => new Error('no DISCONNECT receipt')).catch(() =>
        client.destroy(),
      )
    },
  }
}
