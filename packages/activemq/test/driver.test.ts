/**
 * The STOMP driver's write path against a real TCP peer that parses STOMP frames: frames written in
 * one turn go out together (batchedWrites), so what must hold is that none is lost, cut or
 * reordered, and that every receipt settles, also when the socket backs up past its buffer.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { openStomp } from '../src/driver.js'

interface Frame {
  command: string
  headers: Record<string, string>
  body: Buffer
}

/** A STOMP peer: CONNECTED for CONNECT, RECEIPT for every frame that asks for one; keeps what it parsed. */
async function startPeer() {
  const frames: Frame[] = []
  let reads = 0
  const server: Server = createServer((socket: Socket) => {
    let buffer = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      reads += 1
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        while (buffer[0] === 0x0a) buffer = buffer.subarray(1) // heart-beats between frames
        const end = buffer.indexOf('\n\n')
        if (end < 0) return
        const [command = '', ...lines] = buffer.subarray(0, end).toString('utf8').split('\n')
        const headers = Object.fromEntries(
          lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
        )
        const start = end + 2
        const length =
          headers['content-length'] === undefined
            ? buffer.indexOf(0, start) - start
            : Number(headers['content-length'])
        if (length < 0 || buffer.length < start + length + 1) return
        frames.push({ command, headers, body: Buffer.from(buffer.subarray(start, start + length)) })
        buffer = buffer.subarray(start + length + 1)
        if (command === 'CONNECT') socket.write('CONNECTED\nversion:1.0\n\n\0')
        else if (headers.receipt !== undefined) socket.write(`RECEIPT\nreceipt-id:${headers.receipt}\n\n\0`)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as { port: number }).port
  return {
    port,
    frames,
    reads: () => reads,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('STOMP driver writes', () => {
  it('frames sent in one turn arrive whole and in order, every receipt settles, past the socket buffer too', async () => {
    const peer = await startPeer()
    cleanups.push(peer.stop)
    const connection = await openStomp({
      host: '127.0.0.1',
      port: peer.port,
      vhost: 'localhost',
      heartbeatMs: 0,
      connectTimeoutMs: 5_000,
    })
    cleanups.push(() => connection.close(1_000))
    // 300 × 10 KiB = 3 MiB in one turn: three times the 1 MiB socket buffer before 'drain'
    const body = (i: number) => new Uint8Array(10 * 1024).fill(i % 251)
    const sent = Array.from({ length: 300 }, (_, i) =>
      connection.request('SEND', { destination: '/queue/q', n: String(i) }, body(i)),
    )
    for (let i = 0; i < 50; i++) connection.post('ACK', { id: `a${i}` }) // frames without a body or receipt
    await Promise.all(sent)
    const sends = peer.frames.filter((f) => f.command === 'SEND')
    expect(sends.map((f) => f.headers.n)).toEqual(Array.from({ length: 300 }, (_, i) => String(i)))
    for (const [i, f] of sends.entries()) expect(Buffer.compare(f.body, Buffer.from(body(i)))).toBe(0)
    await expect.poll(() => peer.frames.filter((f) => f.command === 'ACK').length).toBe(50)
    // informational: how many reads the peer needed for 350 frames (one write per frame was 3 × 350)
    console.log(`[driver] ${peer.frames.length} frames arrived in ${peer.reads()} reads`)
  })
})
