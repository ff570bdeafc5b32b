/**
 * The consumer slot: the one client-side consumer a subscription runs on (a Kafka group member, a
 * channel consumer), started through the restarter and replaced when it crashes, when the broker
 * cancels it, or when it no longer fits (a pattern matched new topics). After a reconnect a missing
 * consumer is started at once instead of at the restarter's next try. The adapter says how to
 * create, start and retire one; which consumer is current, and that a crash of an old one changes
 * nothing, is kept here.
 */
import type { BackoffOptions } from '../api.js'
import { bounded } from './bounded.js'
import { createRestarter } from './restarter.js'
import type { Supervisor } from './supervisor.js'

export interface ConsumerSlotOptions<C> {
  /** A new consumer, not started yet. */
  create(): C
  /**
   * Start it (connect, join, subscribe); reject when that failed. When `crashed` was reported for
   * it meanwhile, the start fails with that error.
   */
  start(consumer: C): Promise<void>
  /**
   * Let a consumer go, within a bound; never rejects. `replaced`: it ran and makes room for a new
   * one (or the slot closes); otherwise its start failed.
   */
  retire(consumer: C, replaced: boolean): Promise<void>
  /** Whether a (new) consumer is needed, given the current one (default: when there is none). */
  needed?(current: C | undefined): boolean
  /** Before each start, e.g. remove what a crashed consumer left behind; a throw fails the attempt. */
  prepare?(): Promise<void>
  /** false once the owner stopped: nothing is started any more */
  active(): boolean
  /** a missing consumer is started right after each reconnect of this supervisor */
  supervisor?: Supervisor<unknown>
  /** a failed background start (the next follows after the backoff), for the adapter's log */
  onFailure?(error: unknown, failures: number): void
  backoff?: BackoffOptions
}

export interface ConsumerSlot<C> {
  /** the consumer running (or starting) now */
  readonly current: C | undefined
  /** a start is under way or scheduled */
  readonly busy: boolean
  /** Start a consumer now if one is needed (rejects with the failure; no retry). */
  start(): Promise<void>
  /** `consumer` crashed: when it is the current one it is replaced in the background (true). */
  crashed(consumer: C, error: unknown): boolean
  /** Check `needed` again in the background (after the backoff), e.g. when the topic list grew. */
  refresh(): void
  /** Start nothing any more; resolves once the start under way finished. */
  stop(): Promise<void>
  /** Stop (waiting at most `waitMs` for the start under way), then retire the current consumer. */
  close(waitMs?: number): Promise<void>
}

/** Creates an empty slot. */
export function createConsumerSlot<C>(options: ConsumerSlotOptions<C>): ConsumerSlot<C> {
  const needed = options.needed ?? ((current: C | undefined) => current === undefined)
  let current: C | undefined
  let crash: { consumer: C; error: unknown } | undefined
  let closedWith: C | undefined

  const attempt = async (): Promise<void> => {
    if (!options.active() || !needed(current)) return
    const old = current
    if (old !== undefined) {
      current = undefined
      await options.retire(old, true)
    }
    await options.prepare?.()
    if (!options.active()) return
    const consumer = options.create()
    current = consumer
    try {
      await options.start(consumer)
      if (current !== consumer || !options.active())
        throw crash?.consumer === consumer
          ? crash.error
          : new Error('the subscription stopped while starting')
    } catch (error) {
      if (current === consumer) current = undefined
      // close() retired it already
      if (consumer !== closedWith) await options.retire(consumer, false)
      throw error
    }
  }

  const restarts = createRestarter({
    start: attempt,
    active: options.active,
    ...(options.onFailure ? { onFailure: options.onFailure } : {}),
    ...(options.backoff ? { backoff: options.backoff } : {}),
  })
  const unregister = options.supervisor?.onRestore(async () => {
    if (current === undefined && options.active()) restarts.run().catch(() => restarts.soon())
  })

  return {
    get current() {
      return current
    },
    get busy() {
      return restarts.busy
    },
    start: () => restarts.run(),
    crashed(consumer, error) {
      if (consumer !== current) return false
      current = undefined
      crash = { consumer, error }
      restarts.soon()
      return true
    },
    refresh: () => restarts.soon(),
    async stop() {
      await restarts.stop()
    },
    async close(waitMs = 2 ** 31 - 1) {
      unregister?.()
      await bounded(restarts.stop(), waitMs)
      closedWith = current
      current = undefined
      if (closedWith !== undefined) await options.retire(closedWith, true)
    },
  }
}
