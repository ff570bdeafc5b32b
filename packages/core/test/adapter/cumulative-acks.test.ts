/**
 * Cumulative acks against a recording "channel" that checks what RabbitMQ would: a `multiple` ack
 * must end on an outstanding tag and must not cover an unfinished delivery; nothing is settled twice.
 */
import { describe, expect, it } from 'vitest'
import { createCumulativeAcks } from '../../src/adapter/index.js'

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function channel(maxHeld?: number) {
  const outstanding = new Set<number>()
  const finished = new Set<number>()
  const frames: string[] = []
  const settle = (tag: number): void => {
    if (!outstanding.has(tag)) throw new Error(`PRECONDITION_FAILED - unknown delivery tag ${tag}`)
    outstanding.delete(tag)
  }
  const acks = createCumulativeAcks({
    start: 1,
    ackUpTo(tag) {
      frames.push(`ack ${tag} multiple`)
      if (!outstanding.has(tag)) throw new Error(`PRECONDITION_FAILED - unknown delivery tag ${tag}`)
      for (const t of [...outstanding]) {
        if (t > tag) continue
        if (!finished.has(t)) throw new Error(`acked past unfinished delivery ${t}`)
        outstanding.delete(t)
      }
    },
    ackOne(tag) {
      frames.push(`ack ${tag}`)
      settle(tag)
    },
    nackOne(tag, requeue) {
      frames.push(`nack ${tag}${requeue ? ' requeue' : ''}`)
      settle(tag)
    },
    ...(maxHeld ? { maxHeld } : {}),
  })
  const deliver = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const tag = outstanding.size + finished.size + 1
      outstanding.add(tag)
      acks.add(tag)
    }
  }
  const ack = (tag: number): void => {
    finished.add(tag)
    acks.ack(tag)
  }
  const nack = (tag: number, requeue = true): void => {
    finished.add(tag)
    acks.nack(tag, requeue)
  }
  return { acks, frames, outstanding, deliver, ack, nack }
}

describe('cumulative acks', () => {
  it('ack the finished prefix with one multiple ack per I/O turn', async () => {
    const c = channel()
    c.deliver(5)
    for (const tag of [1, 2, 3, 4, 5]) c.ack(tag)
    expect(c.frames).toEqual([])
    await turn()
    expect(c.frames).toEqual(['ack 5 multiple'])
    expect(c.outstanding.size).toBe(0)
  })

  it('never ack past a delivery still being handled; the rest follows once it is done', async () => {
    const c = channel()
    c.deliver(6)
    for (const tag of [1, 2, 4, 5, 6]) c.ack(tag)
    await turn()
    expect(c.frames).toEqual(['ack 2 multiple'])
    expect([...c.outstanding]).toEqual([3, 4, 5, 6])
    c.ack(3)
    await turn()
    expect(c.frames).toEqual(['ack 2 multiple', 'ack 6 multiple'])
    expect(c.outstanding.size).toBe(0)
  })

  it('send nacks at once and never end a multiple ack on a tag settled alone', async () => {
    const c = channel()
    c.deliver(4)
    c.ack(1)
    c.ack(2)
    c.nack(3)
    expect(c.frames).toEqual(['nack 3 requeue'])
    await turn()
    // tag 3 is no longer outstanding: the multiple ack ends on 2
    expect(c.frames).toEqual(['nack 3 requeue', 'ack 2 multiple'])
    c.ack(4)
    await turn()
    expect(c.frames.at(-1)).toBe('ack 4 multiple')
    expect(c.outstanding.size).toBe(0)
  })

  it('ack finished deliveries alone once too many wait behind a slow one', async () => {
    const c = channel(4)
    c.deliver(6)
    for (const tag of [2, 3, 4]) c.ack(tag)
    await turn()
    expect(c.frames).toEqual([])
    c.ack(5)
    expect(c.frames).toEqual(['ack 2', 'ack 3', 'ack 4', 'ack 5'])
    c.ack(1)
    c.ack(6)
    await turn()
    // 2–5 went alone: the multiple ack ends on 6 and covers 1
    expect(c.frames.slice(4)).toEqual(['ack 6 multiple'])
    expect(c.outstanding.size).toBe(0)
  })

  it('flush also acks what finished behind an unfinished delivery (handled is never handed back)', async () => {
    const c = channel()
    c.deliver(4)
    c.ack(1)
    c.ack(3)
    c.ack(4)
    c.acks.flush()
    // 2 is still being handled: 1 goes cumulatively, 3 and 4 alone; only 2 goes back at close
    expect(c.frames).toEqual(['ack 1 multiple', 'ack 3', 'ack 4'])
    expect([...c.outstanding]).toEqual([2])
  })

  it('flush sends what is due at once; after close nothing goes out', async () => {
    const c = channel()
    c.deliver(3)
    c.ack(1)
    c.acks.flush()
    expect(c.frames).toEqual(['ack 1 multiple'])
    c.acks.close()
    c.ack(2)
    c.nack(3)
    await turn()
    expect(c.frames).toEqual(['ack 1 multiple'])
  })

  it('ignore a channel that throws (it is closing: the broker takes the messages back)', async () => {
    const acks = createCumulativeAcks({
      start: 1,
      ackUpTo() {
        throw new Error('Channel closed')
      },
      ackOne() {
        throw new Error('Channel closed')
      },
      nackOne() {
        throw new Error('Channel closed')
      },
    })
    acks.add(1)
    acks.add(2)
    acks.ack(1)
    expect(() => acks.nack(2, true)).not.toThrow()
    await turn()
    expect(() => acks.flush()).not.toThrow()
  })
})
