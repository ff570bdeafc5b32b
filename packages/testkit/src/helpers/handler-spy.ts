import type { Handler, HandlerContext, Message } from '@msgkit/core'

/** Options for the spy's waits. */
export interface SpyWaitOptions {
  /** give up after this many ms (default 5_000) */
  timeoutMs?: number
}

/** A handler that records every message it is called with, and waits on them. */
export interface HandlerSpy<T> {
  /** pass this to `messaging.subscribe` */
  readonly handler: Handler<T>
  /** every call so far, in call order (a retried message appears once per attempt) */
  readonly messages: ReadonlyArray<Message<T>>
  /** the first recorded message matching `predicate`; resolves at once if one was already seen */
  waitForMessage(predicate: (message: Message<T>) => boolean, options?: SpyWaitOptions): Promise<Message<T>>
  /** resolves once at least `count` calls were recorded, with the recorded messages */
  waitForCount(count: number, options?: SpyWaitOptions): Promise<ReadonlyArray<Message<T>>>
  /** forget what was recorded (pending waits keep waiting for new messages) */
  clear(): void
}

interface Waiter {
  check(): void
}

/**
 * Create a handler spy. The message is recorded before `implementation` runs, so a call that
 * throws (and is retried) is recorded too; the implementation's result is the handler's result.
 */
export function createHandlerSpy<T = unknown>(implementation?: Handler<T>): HandlerSpy<T> {
  const messages: Message<T>[] = []
  const waiters = new Set<Waiter>()

  const notify = (): void => {
    for (const waiter of [...waiters]) waiter.check()
  }

  const wait = <R>(find: () => R | undefined, what: string, options: SpyWaitOptions): Promise<R> => {
    const timeoutMs = options.timeoutMs ?? 5_000
    return new Promise<R>((resolve, reject) => {
      const waiter: Waiter = {
        check: () => {
          let found: R | undefined
          try {
            found = find()
          } catch (error) {
            // a throwing predicate fails its own wait, never the handler being spied on
            waiters.delete(waiter)
            clearTimeout(timer)
            reject(error)
            return
          }
          if (found === undefined) return
          waiters.delete(waiter)
          clearTimeout(timer)
          resolve(found)
        },
      }
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        reject(new Error(`HandlerSpy: ${what} not seen within ${timeoutMs} ms (${messages.length} recorded)`))
      }, timeoutMs)
      waiters.add(waiter)
      waiter.check()
    })
  }

  const handler: Handler<T> = (message: Message<T>, context: HandlerContext) => {
    messages.push(message)
    notify()
    return implementation?.(message, context)
  }

  return {
    handler,
    get messages() {
      return messages
    },
    waitForMessage: (predicate, options = {}) =>
      wait(() => messages.find(predicate), 'a matching message', options),
    waitForCount: (count, options = {}) =>
      wait(() => (messages.length >= count ? [...messages] : undefined), `${count} messages`, options),
    clear: () => {
      messages.length = 0
    },
  }
}
