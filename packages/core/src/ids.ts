import { randomBytes } from 'node:crypto'

let lastMs = 0
let seq = 0

// random bytes come from a pool refilled every 256 ids (ids are made on every publish), kept as
// hex text too: an id's random tail is two slices of it, its time prefix is built once per
// millisecond — a handful of string joins per id, no Buffer
const POOL_BYTES = 16 * 256
let pool = randomBytes(POOL_BYTES)
let poolHex = pool.toString('hex')
let poolOffset = 0
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
/** `xxxxxxxx-xxxx-` of the millisecond `prefixMs` */
let prefix = ''
let prefixMs = -1

function refill(): void {
  pool = randomBytes(POOL_BYTES)
  poolHex = pool.toString('hex')
  poolOffset = 0
}

function randomByte(): number {
  if (poolOffset >= POOL_BYTES) refill()
  return pool[poolOffset++] as number
}

/** A UUID v7 (RFC 9562): time-ordered, random. Monotonic within this process. */
export function uuidv7(): string {
  let ms = Date.now()
  if (ms <= lastMs) {
    ms = lastMs
    seq = (seq + 1) & 0xfff
    if (seq === 0) ms = ++lastMs
  } else {
    seq = ((randomByte() << 8) | randomByte()) & 0x7ff
  }
  lastMs = ms
  if (ms !== prefixMs) {
    const high = Math.floor(ms / 0x1_0000_0000)
    prefix = `${HEX[(high >>> 8) & 0xff]}${HEX[high & 0xff]}${HEX[(ms >>> 24) & 0xff]}${HEX[(ms >>> 16) & 0xff]}-${HEX[(ms >>> 8) & 0xff]}${HEX[ms & 0xff]}-`
    prefixMs = ms
  }
  // 8 random bytes: the first carries the variant (10xxxxxx), the other 7 come as hex
  if (poolOffset + 8 > POOL_BYTES) refill()
  const at = poolOffset
  poolOffset += 8
  const variant = HEX[((pool[at] as number) & 0x3f) | 0x80] as string
  return `${prefix}${HEX[0x70 | (seq >> 8)]}${HEX[seq & 0xff]}-${variant}${poolHex.slice(2 * at + 2, 2 * at + 4)}-${poolHex.slice(2 * at + 4, 2 * at + 16)}`
}

/** The epoch milliseconds of the last `uuidv7()` (what its first 48 bits encode). */
export function lastUuidv7Ms(): number {
  return lastMs
}

const DASHES = [8, 13, 18, 23]

/**
 * The epoch milliseconds a UUID v7 encodes, or undefined when `id` is not a UUID v7 (asked on
 * every publish and delivery of some brokers: the shape is checked by position, no regex).
 */
export function uuidv7Time(id: string): number | undefined {
  if (id.length !== 36 || id.charCodeAt(14) !== 0x37) return undefined
  for (const dash of DASHES) if (id.charCodeAt(dash) !== 0x2d) return undefined
  const variant = id.charCodeAt(19) | 0x20 // 8, 9, a or b
  if (variant !== 0x38 && variant !== 0x39 && variant !== 0x61 && variant !== 0x62) return undefined
  // Number('0x…') rejects any non-hex digit (parseInt would stop at it)
  const high = Number(`0x${id.slice(0, 8)}`)
  const low = Number(`0x${id.slice(9, 13)}`)
  return Number.isNaN(high) || Number.isNaN(low) ? undefined : high * 0x1_0000 + low
}
