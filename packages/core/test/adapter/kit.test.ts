/**
 * The adapter kit against a real TCP peer: a tiny line protocol where the "broker" answers each
 * `SEND <n>` with `OK <n>`. The supervisor reconnects across hosts, the outbox waits through the
 * outage until each message's deadline, and every send settles exactly once.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createDeadlineTimer,
  createDelivery,
  createOutbox,
  createSupervisor,
  type ErrorTable,
} from '../../src/adapter/index.js'
import { ErrorCodes, MsgkitError, silentLogger, type TransportEvent } from '../../src/index.js'

interface Peer {
  port: number
  sockets: Set<Socket>
  /** answer SENDs (false: swallow them, like a frozen broker) */
  answering: boolean
  /** when set, answer only these */
  answerOnly?: Set<string>
  /** refuse the login */
  refuseLogin: boolean
  received: string[]
  stop(): Promise<void>
  start(): Promise<void>
}

async function startPeer(port = 0): Promise<Peer> {
  let server: Server | undefined
  const peer: Peer = {
    port,
    sockets: new Set(),
    answering: true,
    refuseLogin: false,
    received: [],
    async start() {
      const created = createServer((socket) => {
        peer.sockets.add(socket)
        socket.on('close', () => peer.sockets.delete(socket))
        socket.on('error', () => {})
        let buffer = ''
        socket.on('data', (d) => {
          buffer += d.toString()
          for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
            const line = buffer.slice(0, nl)
            buffer = buffer.slice(nl + 1)
            if (line.startsWith('LOGIN')) socket.write(peer.refuseLogin ? 'DENIED\n' : 'WELCOME\n')
            else if (line.startsWith('SEND ')) {
              peer.received.push(line.slice(5))
              const name = line.slice(5)
              if (peer.answering && (peer.answerOnly?.has(name) ?? true)) socket.write(`OK ${name}\n`)
            }
          }
        })
      })
      server = created
      await new Promise<void>((resolve) => created.listen(peer.port, '127.0.0.1', () => resolve()))
      peer.port = (created.address() as { port: number }).port
    },
    async stop() {
      const s = server
      server = undefined
      for (const socket of peer.sockets) socket.destroy()
      await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()))
    },
  }
  await peer.start()
  return peer
}

class LoginRefused extends Error {}

/** A session: one socket speaking the line protocol, with a confirm table. */
interface Session {
  socket: Socket
  confirms: Map<string, () => void>
}

const errors: ErrorTable = {
  classify(error) {
    if (error instanceof LoginRefused) return 'auth'
    return 'connection'
  },
  toError(error, context) {
    if (error instanceof LoginRefused)
      return new MsgkitError(ErrorCodes.AUTH_FAILED, `login refused at ${context.endpoint}`)
    return new MsgkitError(
      ErrorCodes.CONNECTION_FAILED,
      `${context.endpoint ?? ''}: ${(error as Error).message}`,
      { retriable: true },
    )
  },
}

function kit(
  ports: number[],
  events: TransportEvent[] = [],
  batching: {
    maxInFlight?: number
    maxBatchMessages?: number
    confirmEach?: boolean
    /** sees each batch as the outbox hands it to flush */
    onFlush?: (wires: string[]) => void
  } = {},
) {
  const supervisor = createSupervisor<Session>({
    name: 'line',
    context: {
      logger: silentLogger,
      emit: (e) => events.push(e),
      secrets: [],
      scrub: (t) => t,
    },
    errors,
    backoff: { initialMs: 20, maxMs: 100, jitter: 0 },
    driver: {
      endpoints: ports.map((p) => `127.0.0.1:${p}`),
      open: (index) =>
        new Promise<Session>((resolve, reject) => {
          const socket = tcpConnect(ports[index] as number, '127.0.0.1')
          const session: Session = { socket, confirms: new Map() }
          let buffer = ''
          let welcomed = false
          socket.on('error', (e) => {
            if (!welcomed) reject(e)
          })
          socket.on('close', () => {
            if (welcomed) supervisor.lost(session, new Error('socket closed'))
          })
          socket.on('connect', () => socket.write('LOGIN\n'))
          socket.on('data', (d) => {
            buffer += d.toString()
            for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
              const line = buffer.slice(0, nl)
              buffer = buffer.slice(nl + 1)
              if (line === 'WELCOME') {
                welcomed = true
                resolve(session)
              } else if (line === 'DENIED') {
                socket.destroy()
                reject(new LoginRefused('denied'))
              } else if (line.startsWith('OK ')) {
                const id = line.slice(3)
                session.confirms.get(id)?.()
                session.confirms.delete(id)
              }
            }
          })
        }),
      close: async (session) => {
        session.socket.destroy()
      },
    },
  })
  const outbox = createOutbox<Session, string>({
    name: 'line',
    supervisor,
    errors,
    maxInFlight: batching.maxInFlight,
    maxBatchMessages: batching.maxBatchMessages,
    flush: (session, batch, confirmed) =>
      new Promise((resolve, reject) => {
        batching.onFlush?.(batch.map((e) => e.wire))
        let left = batch.length
        const onClose = (): void => reject(new Error('connection lost mid-batch'))
        session.socket.once('close', onClose)
        for (const [i, entry] of batch.entries()) {
          session.confirms.set(entry.wire, () => {
            if (batching.confirmEach) confirmed(i)
            left -= 1
            if (left === 0) {
              session.socket.off('close', onClose)
              resolve(undefined)
            }
          })
          session.socket.write(`SEND ${entry.wire}\n`)
        }
      }),
  })
  return { supervisor, outbox }
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

/** A peer, a kit connected to it, both closed after the test. */
async function connectedKit(events: TransportEvent[] = [], batching: Parameters<typeof kit>[2] = {}) {
  const peer = await startPeer()
  const { supervisor, outbox } = kit([peer.port], events, batching)
  cleanups.push(
    () => supervisor.close(),
    () => peer.stop(),
  )
  await supervisor.connect()
  return { peer, supervisor, outbox }
}

describe('adapter kit', () => {
  it('connects, sends in batches, and every send settles once', async () => {
    const { peer, outbox } = await connectedKit()
    const sends = Array.from({ length: 200 }, (_, i) =>
      outbox.send('t', [{ wire: `m${i}`, bytes: 1 }], Date.now() + 5_000),
    )
    await Promise.all(sends)
    expect(peer.received.length).toBe(200)
    expect(new Set(peer.received).size).toBe(200)
    await outbox.close()
  })

  it('hands a lone send to flush in the turn it was made; sends from the promise jobs of one turn share a batch', async () => {
    const order: string[] = []
    const flushed: string[][] = []
    const { outbox } = await connectedKit([], {
      onFlush: (wires) => {
        order.push('flush')
        flushed.push(wires)
      },
    })
    const deadline = Date.now() + 5_000
    // from a timer, with an immediate queued first: flushed before it, not one I/O turn later
    const lone = await new Promise<Promise<void>>((resolve) =>
      setTimeout(() => {
        setImmediate(() => order.push('immediate'))
        resolve(outbox.send('t', [{ wire: 'lone', bytes: 1 }], deadline))
      }, 0),
    )
    await lone
    expect(order).toEqual(['flush', 'immediate'])
    // callers woken together (two promise jobs of one turn) go out as one batch
    const sends = await Promise.all(
      ['a', 'b'].map((wire) =>
        Promise.resolve().then(() => outbox.send('t', [{ wire, bytes: 1 }], deadline)),
      ),
    )
    await Promise.all(sends)
    expect(flushed).toEqual([['lone'], ['a', 'b']])
    await outbox.close()
  })

  it('waits through an outage until the deadline: resolves after the reconnect, or times out', async () => {
    const events: TransportEvent[] = []
    const { peer, supervisor, outbox } = await connectedKit(events)
    await peer.stop()
    await new Promise((r) => setTimeout(r, 50))
    expect(supervisor.state).not.toBe('up')
    const patient = outbox.send('t', [{ wire: 'patient', bytes: 1 }], Date.now() + 10_000)
    const hasty = outbox.send('t', [{ wire: 'hasty', bytes: 1 }], Date.now() + 300)
    await expect(hasty).rejects.toMatchObject({ code: ErrorCodes.PUBLISH_TIMEOUT })
    await peer.start()
    await patient
    expect(peer.received).toContain('patient')
    expect(events.map((e) => e.type)).toContain('disconnected')
    expect(events.map((e) => e.type)).toContain('reconnecting')
    expect(events.at(-1)?.type).toBe('connected')
    await outbox.close()
  })

  it('several batches on the wire lost with the connection go out again in publish order', async () => {
    const { peer, outbox } = await connectedKit([], { maxInFlight: 4, maxBatchMessages: 5 })
    peer.answering = false
    const names = Array.from({ length: 30 }, (_, i) => `m${i}`)
    const sends = names.map((name) => outbox.send('t', [{ wire: name, bytes: 1 }], Date.now() + 10_000))
    // four batches of five on the wire, unanswered; the rest queued
    await new Promise((r) => setTimeout(r, 100))
    expect(peer.received).toEqual(names.slice(0, 20))
    peer.received.length = 0
    peer.answering = true
    for (const socket of peer.sockets) socket.destroy()
    await Promise.all(sends)
    expect(peer.received).toEqual(names)
    await outbox.close()
  })

  it('an entry confirmed on its own settles before its batch and is not sent again when the batch is lost', async () => {
    const { peer, outbox } = await connectedKit([], { maxBatchMessages: 5, confirmEach: true })
    peer.answerOnly = new Set(['m0', 'm1'])
    const names = ['m0', 'm1', 'm2', 'm3', 'm4']
    const sends = names.map((name) => outbox.send('t', [{ wire: name, bytes: 1 }], Date.now() + 10_000))
    // m0 and m1 are confirmed while m2..m4 wait in the same batch
    await Promise.all(sends.slice(0, 2))
    peer.received.length = 0
    peer.answerOnly = undefined
    for (const socket of peer.sockets) socket.destroy()
    await Promise.all(sends)
    expect(peer.received).toEqual(['m2', 'm3', 'm4'])
    await outbox.close()
  })

  it('a frozen broker: the send rejects at its deadline, and close() settles what is on the wire', async () => {
    const { peer, outbox } = await connectedKit()
    peer.answering = false
    await expect(outbox.send('t', [{ wire: 'x', bytes: 1 }], Date.now() + 200)).rejects.toMatchObject({
      code: ErrorCodes.PUBLISH_TIMEOUT,
    })
    const stuck = outbox.send('t', [{ wire: 'y', bytes: 1 }], Date.now() + 60_000)
    await new Promise((r) => setTimeout(r, 50))
    await outbox.close(100)
    await expect(stuck).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
    await expect(outbox.send('t', [{ wire: 'z', bytes: 1 }], Date.now() + 1_000)).rejects.toMatchObject({
      code: ErrorCodes.CLOSED,
    })
  })

  it('a send whose prepare throws rejects with that error and queues nothing', async () => {
    const { peer, outbox } = await connectedKit()
    const refusal = new Error('too large')
    const prepare = (name: string) => {
      if (name === 'bad') throw refusal
      return { wire: name, bytes: 1 }
    }
    await expect(outbox.send('t', ['good-1', 'bad'], Date.now() + 5_000, prepare)).rejects.toBe(refusal)
    await outbox.send('t', ['good-2'], Date.now() + 5_000, prepare)
    expect(peer.received, 'nothing of the refused send went out').toEqual(['good-2'])
  })

  it('first connect across hosts: a refused login wins over a dead port, and each host is named', async () => {
    const dead = await startPeer()
    const deadPort = dead.port
    await dead.stop()
    const refusing = await startPeer()
    refusing.refuseLogin = true
    cleanups.push(() => refusing.stop())
    const a = kit([deadPort, refusing.port])
    await expect(a.supervisor.connect()).rejects.toMatchObject({ code: ErrorCodes.AUTH_FAILED })
    const b = kit([refusing.port, deadPort])
    await expect(b.supervisor.connect()).rejects.toMatchObject({ code: ErrorCodes.AUTH_FAILED })
    const c = kit([deadPort, deadPort])
    const error = await c.supervisor.connect().catch((e: MsgkitError) => e)
    expect(error).toMatchObject({ code: ErrorCodes.CONNECTION_FAILED, retriable: true })
    expect((error as MsgkitError).message).toContain(`127.0.0.1:${deadPort}`)
  })

  it('fails over to the next host after a loss and runs restore hooks before connected', async () => {
    const first = await startPeer()
    const second = await startPeer()
    cleanups.push(
      () => first.stop(),
      () => second.stop(),
    )
    const events: TransportEvent[] = []
    const { supervisor } = kit([first.port, second.port], events)
    cleanups.push(() => supervisor.close())
    const restored: number[] = []
    supervisor.onRestore(async () => {
      restored.push(supervisor.generation)
    })
    await supervisor.connect()
    await first.stop()
    while (supervisor.state === 'up') await new Promise((r) => setTimeout(r, 5))
    const session = await supervisor.waitUp(Date.now() + 5_000, () => new Error('not up') as MsgkitError)
    expect(session.socket.remotePort).toBe(second.port)
    await new Promise((r) => setTimeout(r, 50))
    expect(restored).toEqual([2])
    expect(events.at(-1)?.type).toBe('connected')
  })

  it('perform() retries an operation across a reconnect', async () => {
    const { supervisor } = await connectedKit()
    let calls = 0
    const result = supervisor.perform({ operation: 'declare' }, Date.now() + 5_000, async (s) => {
      calls += 1
      if (calls === 1) {
        s.socket.destroy()
        throw new Error('socket closed')
      }
      return 'done'
    })
    await expect(result).resolves.toBe('done')
    expect(calls).toBe(2)
  })
})

describe('delivery wrapper', () => {
  it('settles once, and not at all once its session is gone', async () => {
    const calls: string[] = []
    let valid = true
    const message = {
      id: '1',
      topic: 't',
      headers: {},
      body: new Uint8Array(),
      timestamp: 0,
      redelivered: false,
    }
    const d = createDelivery(message, {
      ack: () => void calls.push('ack'),
      nack: (requeue) => void calls.push(`nack:${requeue}`),
      valid: () => valid,
    })
    await d.ack()
    await d.ack()
    await d.nack()
    expect(calls).toEqual(['ack'])
    const e = createDelivery(message, {
      ack: () => void calls.push('ack2'),
      nack: () => void calls.push('nack2'),
      valid: () => valid,
    })
    valid = false
    await e.ack()
    expect(calls).toEqual(['ack'])
  })
})

describe('deadline timer', () => {
  it('fires in deadline order with one timer, skips cancelled ones', async () => {
    const timer = createDeadlineTimer()
    const fired: number[] = []
    const now = Date.now()
    const handles = [30, 10, 20, 5].map((ms) => timer.schedule(now + ms, () => fired.push(ms)))
    handles[2]?.cancel()
    await new Promise((r) => setTimeout(r, 60))
    expect(fired).toEqual([5, 10, 30])
    expect(timer.size).toBe(0)
  })

  it('takes deadlines beyond setTimeout range without spinning', async () => {
    const timer = createDeadlineTimer()
    let fired = false
    const handle = timer.schedule(Number.MAX_SAFE_INTEGER, () => {
      fired = true
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(fired).toBe(false)
    handle.cancel()
    timer.clear()
  })
})
