/**
 * The stream ledger: only the done prefix of an owned stream is committed, a rebalance revokes,
 * a stream handed back unconsumed continues (nothing handed out twice), a given-back delivery goes
 * out again while its stream is ours.
 */
import { describe, expect, it } from 'vitest'
import { createStreamLedger } from '../../src/adapter/index.js'
import { sleep } from '../../src/index.js'

type P = { topic: string; partition: number }
const p0: P = { topic: 't', partition: 0 }
const p1: P = { topic: 't', partition: 1 }

function ledgerWithLog(options: { requeueDelayMs?: number } = {}) {
  const commits: Array<Array<[number, number]>> = []
  const ledger = createStreamLedger<P>({
    key: (p) => `${p.topic}/${p.partition}`,
    async commit(positions) {
      commits.push(positions.map(({ stream, position }) => [stream.partition, position]))
    },
    ...options,
  })
  return { ledger, commits }
}

describe('stream ledger', () => {
  it('commits only the done prefix of each owned stream, in the background', async () => {
    const { ledger, commits } = ledgerWithLog()
    expect(ledger.assign([p0, p1])).toEqual([])
    const lease = ledger.lease(p0, 10)
    if (!lease) throw new Error('p0 is ours')
    const a = lease.take(10, () => {})
    const b = lease.take(11, () => {})
    expect(lease.handedOut(10)).toBe(true)
    expect(lease.handedOut(12)).toBe(false)
    b.ack()
    await sleep(5)
    expect(commits).toEqual([])
    a.ack()
    await sleep(5)
    expect(commits).toEqual([[[0, 12]]])
    // markers after the last record count as done
    expect(lease.skipTo(14)).toBe(true)
    expect(lease.skipTo(3)).toBe(false)
    await sleep(5)
    expect(commits.at(-1)).toEqual([[0, 15]])
    expect(ledger.lease({ topic: 't', partition: 7 }, 0)).toBeUndefined()
    ledger.close()
  })

  it('a revoked stream hands out and commits nothing more; handed back unconsumed, it continues', async () => {
    const { ledger, commits } = ledgerWithLog()
    ledger.assign([p0])
    const lease = ledger.lease(p0, 0) ?? expect.fail('ours')
    const first = lease.take(0, () => {})
    lease.take(1, () => {})
    ledger.assign([p1])
    expect(lease.valid).toBe(false)
    first.ack()
    await sleep(5)
    expect(commits).toEqual([])
    // back again: nobody committed in between (position 0), so the bookkeeping continues
    expect(ledger.assign([p0, p1])).toEqual([p0])
    ledger.resume(p0, 0)
    const again = ledger.lease(p0, 0) ?? expect.fail('ours')
    expect(again.handedOut(1)).toBe(true)
    await sleep(5)
    expect(commits).toEqual([[[0, 1]]])
    ledger.close()
  })

  it('a stream handed back after someone else consumed it starts over at the fetched position', async () => {
    const { ledger, commits } = ledgerWithLog()
    ledger.assign([p0])
    const lease = ledger.lease(p0, 0) ?? expect.fail('ours')
    const old = lease.take(0, () => {})
    ledger.revokeAll()
    expect(ledger.assign([p0])).toEqual([p0])
    // no resume known: the first lease decides by where it fetched from (50: another member moved on)
    const fresh = ledger.lease(p0, 50) ?? expect.fail('ours')
    expect(lease.valid).toBe(false)
    expect(fresh.handedOut(50)).toBe(false)
    fresh.take(50, () => {}).ack()
    old.ack() // of the old bookkeeping: commits nothing
    await sleep(5)
    expect(commits).toEqual([[[0, 51]]])
    ledger.close()
  })

  it('a given-back delivery goes out again after the delay once there is room, while the stream is ours', async () => {
    const { ledger, commits } = ledgerWithLog({ requeueDelayMs: 10 })
    let room = 0
    const gated = createStreamLedger<P>({
      key: (p) => String(p.partition),
      commit: async () => {},
      requeueDelayMs: 10,
      room: async () => {
        room += 1
      },
    })
    gated.assign([p0])
    const g = gated.lease(p0, 0) ?? expect.fail('ours')
    let gatedAgain = 0
    void g.take(0, () => (gatedAgain += 1)).nack(true)
    ledger.assign([p0])
    const lease = ledger.lease(p0, 0) ?? expect.fail('ours')
    let again = 0
    void lease.take(0, () => (again += 1)).nack(true)
    expect(lease.handedOut(0)).toBe(false)
    await sleep(40)
    expect([again, gatedAgain, room]).toEqual([1, 1, 1])
    // taken again and acked: committed
    lease.take(0, () => {}).ack()
    await sleep(5)
    expect(commits).toEqual([[[0, 1]]])
    // given back, then revoked: not handed out again
    const revoked = ledger.lease(p0, 1) ?? expect.fail('ours')
    void revoked.take(1, () => (again += 1)).nack(true)
    ledger.revokeAll()
    await sleep(40)
    expect(again).toBe(1)
    ledger.close()
    gated.close()
  })
})
