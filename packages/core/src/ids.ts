import { randomBytes } from 'node:crypto'

let lastMs = 0
let seq = 0

// one randomBytes call per 256 ids instead of one per id (ids are made on every publish)
const POOL_IDS = 256
let pool = Buffer.alloc(0)
let poolOffset = 0

function random16(): Buffer {
  if (poolOffset + 16 > pool.length) {
    pool = randomBytes(16 * POOL_IDS)
    poolOffset = 0
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + 16))
  poolOffset += 16
  return out
}

/** A UUID v7 (RFC 9562): time-ordered, random. Monotonic within this process. */
export function uuidv7(): string {
  let ms = Date.now()
  if (ms <= lastMs) {
    ms = lastMs
    seq = (seq + 1) & 0xfff
    if (seq === 0) ms = ++lastMs
  } else {
    seq = random16().readUInt16BE(0) & 0x7ff
  }
  lastMs = ms
  const b = random16()
  b.writeUIntBE(ms, 0, 6)
  b[6] = 0x70 | (seq >> 8)
  b[7] = seq & 0xff
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
