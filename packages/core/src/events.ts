import type { EventName, MessagingEvents } from './api.js'
import type { Logger } from './logger.js'

/** A tiny typed emitter whose listeners can never break the caller. */
export function createEmitter(logger: Logger) {
  const listeners = new Map<EventName, Set<(payload: never) => void>>()
  return {
    on<E extends EventName>(event: E, listener: (payload: MessagingEvents[E]) => void): () => void {
      let set = listeners.get(event)
      if (!set) {
        set = new Set()
        listeners.set(event, set)
      }
      set.add(listener as (payload: never) => void)
      return () => set?.delete(listener as (payload: never) => void)
    },
    emit<E extends EventName>(event: E, payload: MessagingEvents[E]): void {
      const set = listeners.get(event)
      if (!set) return
      for (const l of [...set]) {
        try {
          ;(l as (p: MessagingEvents[E]) => void)(payload)
        } catch (error) {
          // a throwing listener must not break consumption (contract case DG-10)
          logger.warn({ event, err: describeError(error) }, 'msgkit event listener threw; ignored')
        }
      }
    },
  }
}

/** A log-safe summary of an error. */
export function describeError(error: unknown): { name: string; message: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string'
      ? { name: error.name, message: error.message, code }
      : { name: error.name, message: error.message }
  }
  return { name: typeof error, message: String(error) }
}
