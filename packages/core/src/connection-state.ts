/**
 * The Messaging's view of its transport's connection: the `TransportContext.emit` that turns
 * transport events into state (for `health()`), log lines and public events.
 */
import type { HealthReport } from './api.js'
import { type createEmitter, describeError } from './events.js'
import type { Logger } from './logger.js'
import type { TransportEvent } from './spi.js'

export interface ConnectionState {
  readonly status: HealthReport['status']
  readonly lastError: string | undefined
  /** the transport's `context.emit` */
  emit(event: TransportEvent): void
  /** the first connect succeeded */
  up(): void
  /** the Messaging closed: ignore whatever the transport still reports */
  closed(): void
}

/** Creates the connection state of one Messaging. */
export function createConnectionState(
  transport: string,
  logger: Logger,
  emitter: ReturnType<typeof createEmitter>,
): ConnectionState {
  let status: HealthReport['status'] = 'connecting'
  let lastError: string | undefined
  return {
    get status() {
      return status
    },
    get lastError() {
      return lastError
    },
    up() {
      if (status !== 'closed') status = 'up'
    },
    closed() {
      status = 'closed'
    },
    emit(event) {
      switch (event.type) {
        case 'connected':
          if (status === 'closed') return
          status = 'up'
          logger.info({ transport }, 'connected')
          emitter.emit('connected', { transport })
          return
        case 'disconnected':
          if (status === 'closed') return
          status = 'down'
          if (event.error) lastError = describeError(event.error).message
          logger.warn(
            { transport, err: event.error ? describeError(event.error) : undefined },
            'disconnected',
          )
          emitter.emit('disconnected', { transport, error: event.error })
          return
        case 'reconnecting':
          if (status === 'closed') return
          status = 'connecting'
          logger.info({ transport, attempt: event.attempt, delayMs: event.delayMs }, 'reconnecting')
          emitter.emit('reconnecting', {
            transport,
            attempt: event.attempt,
            delayMs: event.delayMs,
            error: event.error,
          })
          return
        case 'error':
          lastError = describeError(event.error).message
          logger.error({ transport, err: describeError(event.error) }, 'transport error')
          emitter.emit('error', { error: event.error })
          return
      }
    },
  }
}
