/**
 * Waiting out a client's write buffer: a driver's publish returns false when its buffer is full
 * (Node streams, amqplib channels, stompit frames); the next write waits for `drain` — or for
 * `close`, after which waiting longer would hang (the failed writes report themselves).
 */

/** What `whenDrained` needs of an emitter (a Node stream, an amqplib channel). */
export interface DrainingEmitter {
  on(event: 'drain' | 'close', listener: () => void): unknown
  off(event: 'drain' | 'close', listener: () => void): unknown
}

/** Resolves once `emitter` emits `drain` or `close` (and stops listening). */
export function whenDrained(emitter: DrainingEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      emitter.off('drain', done)
      emitter.off('close', done)
      resolve()
    }
    emitter.on('drain', done)
    emitter.on('close', done)
  })
}
