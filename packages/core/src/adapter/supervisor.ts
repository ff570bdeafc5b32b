/**
 * The connection supervisor: one state machine per transport that opens a session (a connection,
 * a client, whatever the broker calls it), notices when it is lost, reconnects with core's
 * backoff across the configured hosts, restores what lived on the old session (channels,
 * topology, consumers) and reports every change through `TransportContext.emit`.
 *
 * An adapter gives it a driver (open one session to one host, close one) and its error table, and
 * tells it when a session died (`lost`). Everything else — waiting for the session with a deadline,
 * retrying an operation across a reconnect, the close path — is here, once.
 */
import type { BackoffOptions } from '../api.js'
import { ErrorCodes, MsgkitError } from '../errors.js'
import { describeError } from '../events.js'
import { backoffDelay, sleep } from '../retry.js'
import type { TransportContext } from '../spi.js'
import { withTimeout } from '../timeout.js'
import { createDeadlineTimer } from './deadlines.js'
import {
  closedError,
  connectFailure,
  type ErrorTable,
  type FailureKind,
  failureKind,
  finalError,
} from './errors.js'

export type SupervisorState = 'idle' | 'connecting' | 'up' | 'down' | 'closed'

/** What the adapter provides: how to open and close one session. */
export interface SessionDriver<S> {
  /** Host labels (`host:port`, no credentials), tried in order; one entry when the client balances itself. */
  readonly endpoints: readonly string[]
  /** Open a session to `endpoints[index]`: one attempt, throw on failure (classified by the error table). */
  open(index: number): Promise<S>
  /**
   * Give up an `open` after this long (default: wait for it), with a retriable
   * MSGKIT_CONNECTION_FAILED that names the endpoint; a session that opens later is closed.
   */
  readonly openTimeoutMs?: number
  /** Close a session politely but within a bound; never throws. */
  close(session: S): Promise<void>
}

export interface SupervisorOptions<S> {
  /** transport name for texts and events */
  name: string
  context: TransportContext
  driver: SessionDriver<S>
  errors: ErrorTable
  /** reconnect backoff (default 100 ms doubling to 2 s, 20 % jitter) */
  backoff?: BackoffOptions
}

/** A restore hook runs after every reconnect, before `connected` is reported. */
export type RestoreHook<S> = (session: S) => Promise<void>

export interface Supervisor<S> {
  readonly state: SupervisorState
  /** the live session, or undefined while not up */
  readonly session: S | undefined
  /** increases with every new session; anything from an older one is dead */
  readonly generation: number
  /** the endpoint label (`host:port`) of the live session, or undefined while not up */
  readonly endpoint: string | undefined
  /**
   * First connect: tries each endpoint once, in order. Rejects with MSGKIT_AUTH_FAILED when any host
   * refused the credentials, else MSGKIT_CONNECTION_FAILED naming what each host said.
   */
  connect(): Promise<S>
  /** The session once up; rejects with MSGKIT_CLOSED on close, or `onTimeout()` at `deadline`. */
  waitUp(deadline: number, onTimeout: () => MsgkitError): Promise<S>
  /**
   * The adapter saw `session` die (socket closed, heartbeat missed, a request failed with a
   * `connection` error). Ignored for an older session; starts the reconnect loop otherwise.
   */
  lost(session: S, error?: unknown): void
  /** Run `hook` after every reconnect (not after the first connect); returns an unregister function. */
  onRestore(hook: RestoreHook<S>): () => void
  /**
   * Run `operation` on a live session until it succeeds or `deadline` passes: a `connection` failure
   * marks the session lost and waits for the next one, a `transient` one backs off; `auth` and
   * `fatal` reject at once with the error table's error.
   */
  perform<T>(
    what: { operation: string; topic?: string; onTimeout?: (lastProblem: unknown) => MsgkitError },
    deadline: number,
    operation: (session: S) => Promise<T>,
  ): Promise<T>
  /**
   * The adapter saw the broker answer again while the supervisor waits to reconnect (a consumer
   * fetched, a client reconnected on its own): try the reconnect now instead of after the backoff.
   */
  poke(): void
  /** Stop reconnecting, reject waiters with MSGKIT_CLOSED, close the session. Idempotent. */
  close(): Promise<void>
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 2_000, multiplier: 2, jitter: 0.2 }
/** backoff of `perform` between transient failures */
const PERFORM_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 1_000, multiplier: 2, jitter: 0.2 }

interface Waiter<S> {
  resolve(session: S): void
  reject(error: unknown): void
}

/** Creates a supervisor (not connected yet). */
export function createSupervisor<S>(options: SupervisorOptions<S>): Supervisor<S> {
  const { name, context, driver, errors } = options
  const backoff = options.backoff ?? DEFAULT_BACKOFF
  const deadlines = createDeadlineTimer()
  const hooks = new Set<RestoreHook<S>>()
  const waiters = new Set<Waiter<S>>()
  let state: SupervisorState = 'idle'
  let session: S | undefined
  let generation = 0
  let endpoint = 0
  let attempt = 0
  let timer: NodeJS.Timeout | undefined
  let connecting: Promise<S> | undefined

  const emit: TransportContext['emit'] = (event) => {
    try {
      context.emit(event)
    } catch {
      // core's listeners are its own business
    }
  }
  /** errors reported in events carry no secrets */
  const clean = (error: unknown): Error => {
    const text = describeError(error).message
    return new Error(context.scrub ? context.scrub(text) : text)
  }

  /** One `driver.open`, bounded by `openTimeoutMs`. */
  const open = (index: number): Promise<S> => {
    const opening = driver.open(index)
    const ms = driver.openTimeoutMs
    if (ms === undefined) return opening
    const label = driver.endpoints[index] ?? ''
    const timeout = () =>
      new MsgkitError(
        ErrorCodes.CONNECTION_FAILED,
        `${name}: no answer from ${label} within ${ms} ms. Is the broker running and reachable there?`,
        { retriable: true, details: { transport: name, endpoint: label } },
      )
    return withTimeout(opening, ms, timeout).catch((error: unknown) => {
      // one that opens after all is not wanted any more
      void opening.then(
        (s) => driver.close(s),
        () => {},
      )
      throw error
    })
  }

  const adopt = (s: S): void => {
    generation += 1
    session = s
    state = 'up'
    for (const w of [...waiters]) w.resolve(s)
  }

  const scheduleReconnect = (error: unknown): void => {
    if (state === 'closed' || timer) return
    attempt += 1
    const delayMs = backoffDelay(attempt, backoff)
    emit({ type: 'reconnecting', attempt, delayMs, ...(error === undefined ? {} : { error: clean(error) }) })
    timer = setTimeout(() => {
      timer = undefined
      void reconnect()
    }, delayMs)
  }

  const reconnect = async (): Promise<void> => {
    if (state === 'closed') return
    const index = endpoint
    let s: S
    try {
      s = await open(index)
    } catch (error) {
      // one host per attempt, moving on after each failure: a cluster node may be gone for good
      endpoint = (endpoint + 1) % driver.endpoints.length
      context.logger.debug(
        { transport: name, attempt, endpoint: driver.endpoints[index], err: clean(error).message },
        'reconnect attempt failed',
      )
      if (failureKind(errors, error) === 'auth') {
        // credentials do not fix themselves, but an operator may: keep trying, loudly
        emit({
          type: 'error',
          error: finalError(errors, error, {
            operation: 'reconnect',
            endpoint: driver.endpoints[index] ?? '',
          }),
        })
      }
      scheduleReconnect(error)
      return
    }
    if ((state as SupervisorState) === 'closed') {
      await driver.close(s)
      return
    }
    adopt(s)
    const gen = generation
    for (const hook of [...hooks]) {
      try {
        await hook(s)
      } catch (error) {
        emit({ type: 'error', error })
      }
      if (gen !== generation || state !== 'up') return // lost again while restoring: the next round restores
    }
    context.logger.info(
      { transport: name, endpoint: driver.endpoints[endpoint], attempts: attempt },
      'reconnected',
    )
    attempt = 0
    emit({ type: 'connected' })
  }

  const supervisor: Supervisor<S> = {
    get state() {
      return state
    },
    get session() {
      return state === 'up' ? session : undefined
    },
    get generation() {
      return generation
    },
    get endpoint() {
      return state === 'up' ? driver.endpoints[endpoint] : undefined
    },

    connect() {
      if (state === 'closed') return Promise.reject(closedError(name))
      if (state === 'up' && session !== undefined) return Promise.resolve(session)
      connecting ??= (async () => {
        state = 'connecting'
        const failures: Array<{ endpoint: string; error: MsgkitError; kind: FailureKind }> = []
        for (let i = 0; i < driver.endpoints.length; i++) {
          const label = driver.endpoints[i] ?? ''
          let s: S
          try {
            s = await open(i)
          } catch (error) {
            if ((state as SupervisorState) === 'closed') throw closedError(name)
            failures.push({
              endpoint: label,
              kind: failureKind(errors, error),
              error: finalError(errors, error, { operation: 'connect', endpoint: label }),
            })
            continue
          }
          if ((state as SupervisorState) === 'closed') {
            await driver.close(s)
            throw closedError(name)
          }
          endpoint = i
          adopt(s)
          emit({ type: 'connected' })
          return s
        }
        state = 'idle'
        throw connectFailure(name, failures)
      })().finally(() => {
        connecting = undefined
      })
      return connecting
    },

    waitUp(deadline, onTimeout) {
      if (state === 'closed') return Promise.reject(closedError(name))
      if (state === 'up' && session !== undefined) return Promise.resolve(session)
      return new Promise<S>((resolve, reject) => {
        const handle = deadlines.schedule(deadline, () => waiter.reject(onTimeout()))
        const waiter: Waiter<S> = {
          resolve(s) {
            handle.cancel()
            waiters.delete(waiter)
            resolve(s)
          },
          reject(error) {
            handle.cancel()
            waiters.delete(waiter)
            reject(error)
          },
        }
        waiters.add(waiter)
      })
    },

    lost(s, error) {
      if (state === 'closed' || s !== session || state !== 'up') return
      session = undefined
      state = 'down'
      attempt = 0
      emit({ type: 'disconnected', ...(error === undefined ? {} : { error: clean(error) }) })
      void driver.close(s)
      scheduleReconnect(error)
    },

    onRestore(hook) {
      hooks.add(hook)
      return () => hooks.delete(hook)
    },

    poke() {
      if (state !== 'down' || !timer) return
      clearTimeout(timer)
      timer = undefined
      void reconnect()
    },

    async perform(what, deadline, operation) {
      let failures = 0
      let last: unknown
      const timedOut = (): MsgkitError =>
        what.onTimeout?.(last) ??
        new MsgkitError(
          ErrorCodes.TRANSPORT_ERROR,
          `${name}: could not ${what.operation}${what.topic ? ` ${what.topic}` : ''} before the deadline: the broker stayed unreachable${last === undefined ? '' : ` (last problem: ${clean(last).message})`}.`,
          {
            retriable: true,
            details: { operation: what.operation, ...(what.topic ? { topic: what.topic } : {}) },
          },
        )
      for (;;) {
        if (state === 'closed') throw closedError(name)
        if (Date.now() >= deadline) throw timedOut()
        const s = await supervisor.waitUp(deadline, timedOut)
        try {
          return await operation(s)
        } catch (error) {
          last = error
          const kind = failureKind(errors, error)
          if (kind === 'connection') {
            supervisor.lost(s, error)
            continue
          }
          if (kind !== 'transient')
            throw finalError(errors, error, {
              operation: what.operation,
              ...(what.topic === undefined ? {} : { topic: what.topic }),
            })
          failures += 1
          const delay = backoffDelay(failures, PERFORM_BACKOFF)
          if (Date.now() + delay >= deadline) throw timedOut()
          await sleep(delay)
        }
      }
    },

    async close() {
      if (state === 'closed') return
      state = 'closed'
      clearTimeout(timer)
      timer = undefined
      const error = closedError(name)
      for (const w of [...waiters]) w.reject(error)
      deadlines.clear()
      if (connecting) await connecting.catch(() => {})
      const s = session
      session = undefined
      if (s !== undefined) await driver.close(s)
    },
  }
  return supervisor
}
