/**
 * The open subscriptions of one transport: every adapter keeps them to close them with the
 * transport, refuses new ones once it closes, and must not leak one whose start finished after
 * close() began (it is closed at once, and its subscribe rejects with MSGKIT_CLOSED).
 */
import type { TransportSubscription } from '../spi.js'
import { closedError } from './errors.js'

export interface SubscriptionSet {
  /**
   * Runs `start` and keeps the subscription it resolves to until that is closed. Rejects with
   * MSGKIT_CLOSED once the set is closed, also when the start finishes after that.
   */
  add(start: () => Promise<TransportSubscription>): Promise<TransportSubscription>
  /** Close every subscription, those still starting once they have started (or failed). Idempotent. */
  close(): Promise<void>
}

/** Creates the subscription set of the transport called `name` (for error texts). */
export function createSubscriptionSet(name: string): SubscriptionSet {
  const open = new Set<Promise<TransportSubscription>>()
  let closing: Promise<void> | undefined
  return {
    async add(start) {
      if (closing) throw closedError(name)
      const started = start()
      open.add(started)
      const subscription = await started.catch((error: unknown) => {
        open.delete(started)
        throw error
      })
      if (closing) {
        await closing
        throw closedError(name)
      }
      return {
        stop: () => subscription.stop(),
        close() {
          open.delete(started)
          return subscription.close()
        },
      }
    },
    close() {
      closing ??= Promise.allSettled([...open].map(async (started) => (await started).close())).then(() => {})
      return closing
    },
  }
}
