/**
 * An idempotency store kept in a JSON file: what a service's shared store (Redis, SQL) is to its
 * instances, for processes of one test on one machine. Every write is synced and renamed into
 * place before it returns, so a process killed right after counting a delivery has counted it.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import type { IdempotencyStore } from '@msgkit/core'

interface State {
  handled: Record<string, number>
  deliveries: Record<string, { n: number; expires: number }>
}

export function createFileStore(path: string): IdempotencyStore {
  const read = (): State => {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as State
    } catch {
      return { handled: {}, deliveries: {} }
    }
  }
  const write = (state: State): void => {
    const tmp = `${path}.${process.pid}.tmp`
    const fd = openSync(tmp, 'w')
    try {
      writeSync(fd, JSON.stringify(state))
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  }
  return {
    async has(key) {
      const expires = read().handled[key]
      return expires !== undefined && expires > Date.now()
    },
    async add(key, ttlMs) {
      const state = read()
      state.handled[key] = Date.now() + ttlMs
      write(state)
    },
    async countDelivery(key, atLeast, ttlMs) {
      const state = read()
      const entry = state.deliveries[key]
      const before = entry && entry.expires > Date.now() ? entry.n : 0
      const n = Math.max(before + 1, atLeast)
      state.deliveries[key] = { n, expires: Date.now() + ttlMs }
      write(state)
      return n
    },
    async forgetDeliveries(key) {
      const state = read()
      delete state.deliveries[key]
      write(state)
    },
  }
}
