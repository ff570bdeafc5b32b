/**
 * One connection state per transport, fed by what producers and consumers observe, reported to
 * core as connected / disconnected / reconnecting events. While down it probes the cluster so
 * "connected" is reported even when nothing is being published or consumed.
 */
import type { TransportEvent } from '@msgkit/core'

export interface ConnectionState {
  readonly up: boolean
  /** something failed because the broker is unreachable */
  down(error: unknown): void
  /** something succeeded against the broker */
  ok(): void
  /** stop probing; no more events */
  close(): void
}

export interface ConnectionStateOptions {
  emit(event: TransportEvent): void
  /** resolves when the cluster answers (one attempt) */
  probe(): Promise<void>
  /** first probe delay, doubled up to maxDelayMs */
  initialDelayMs?: number
  maxDelayMs?: number
}

export function createConnectionState(options: ConnectionStateOptions): ConnectionState {
  const initial = options.initialDelayMs ?? 250
  const max = options.maxDelayMs ?? 2_000
  let up = true
  let closed = false
  let probing = false
  let timer: NodeJS.Timeout | undefined
  let wake: (() => void) | undefined

  const emit = (event: TransportEvent): void => {
    try {
      options.emit(event)
    } catch {
      // core's listeners are its own business
    }
  }

  const probeLoop = async (): Promise<void> => {
    probing = true
    let attempt = 0
    let delay = initial
    while (!up && !closed) {
      attempt++
      emit({ type: 'reconnecting', attempt, delayMs: delay })
      await new Promise<void>((resolve) => {
        wake = resolve
        timer = setTimeout(resolve, delay)
      })
      wake = undefined
      if (up || closed) break
      try {
        await options.probe()
        state.ok()
      } catch {
        delay = Math.min(max, delay * 2)
      }
    }
    probing = false
  }

  const state: ConnectionState = {
    get up() {
      return up
    },
    down(error) {
      if (closed || !up) return
      up = false
      emit({ type: 'disconnected', error })
      if (!probing) void probeLoop()
    },
    ok() {
      if (closed || up) return
      up = true
      clearTimeout(timer)
      wake?.()
      emit({ type: 'connected' })
    },
    close() {
      closed = true
      clearTimeout(timer)
      wake?.()
    },
  }
  return state
}
