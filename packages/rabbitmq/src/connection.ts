/**
 * One AMQP connection that comes back by itself. amqplib 2.3 has a `recovery` option, but we
 * keep our own small loop: it rotates through several hosts, tells a refused login apart from
 * an unreachable broker on the first connect, and restores channels and consumers before it
 * reports `connected` — all in one place that also owns the state every waiter looks at.
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { backoffDelay, ErrorCodes, MsgkitError, type TransportContext } from '@msgkit/core'
import amqp, { type ChannelModel, type Options } from 'amqplib'
import { type RabbitmqTransportConfig, tlsOptions } from './config.js'
import { connectError, errorText, scrub } from './errors.js'

type State = 'idle' | 'connecting' | 'up' | 'reconnecting' | 'closed'

interface Waiter {
  resolve(connection: ChannelModel): void
  reject(error: unknown): void
}

export interface ConnectionManager {
  /** the live connection, or undefined while down */
  readonly current: ChannelModel | undefined
  /** increases with every new connection; channels from an older one are dead */
  readonly generation: number
  readonly closed: boolean
  /** secret values to scrub from any text */
  readonly secrets: readonly string[]
  /** `amqp://user@host:port/vhost`: where we connect, without the password */
  readonly where: string
  /** first connect: fails fast with MSGKIT_CONNECTION_FAILED / MSGKIT_AUTH_FAILED */
  connect(): Promise<void>
  /** the connection once it is up; rejects with MSGKIT_CLOSED, or `onTimeout()` at `deadline` */
  waitUp(deadline: number | undefined, onTimeout: () => MsgkitError): Promise<ChannelModel>
  /** run after every reconnect, before `connected` is reported (restore consumers) */
  onRestore(hook: (connection: ChannelModel) => Promise<void>): void
  close(): Promise<void>
}

/** Closes a connection politely, but not forever: a frozen broker never answers close-ok. */
async function closeModel(model: ChannelModel, withinMs = 3_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), withinMs)
  })
  const timedOut = await Promise.race([
    model.close().then(
      () => false,
      () => false,
    ),
    gaveUp,
  ])
  clearTimeout(timer)
  if (timedOut) (model.connection as unknown as { stream?: { destroy(): void } }).stream?.destroy()
}

export function createConnectionManager(
  config: RabbitmqTransportConfig,
  ctx: TransportContext,
): ConnectionManager {
  const tls = tlsOptions(config)
  const protocol = tls ? 'amqps' : 'amqp'
  const defaultPort = tls ? 5671 : 5672
  const secrets = [
    config.password,
    typeof config.tls === 'object' ? (config.tls.passphrase ?? '') : '',
  ].filter((s) => s.length > 0)
  const vhostPath = config.vhost === '/' ? '' : encodeURIComponent(config.vhost)
  const hostLabel = (i: number): string => {
    const h = config.hosts[i] ?? { host: 'localhost' }
    return `${h.host}:${h.port ?? defaultPort}`
  }
  const whereAt = (hosts: string): string =>
    `${protocol}://${encodeURIComponent(config.username)}@${hosts}/${vhostPath}`
  const where = whereAt(config.hosts.map((_, i) => hostLabel(i)).join(','))
  const reconnectBackoff = {
    initialMs: config.reconnect.initialDelayMs,
    maxMs: config.reconnect.maxDelayMs,
    multiplier: config.reconnect.multiplier,
    jitter: config.reconnect.jitter,
  }
  const connectionName = config.connectionName ?? `msgkit@${hostname()}:${process.pid}`

  const socketOptions: Record<string, unknown> = {
    timeout: config.connectTimeoutMs,
    noDelay: true, // confirms are latency-bound: no Nagle
    keepAlive: true,
    clientProperties: { connection_name: connectionName, product: 'msgkit' },
  }
  if (tls) {
    const read = (
      inline: string | Buffer | undefined,
      file: string | undefined,
    ): string | Buffer | undefined => inline ?? (file ? readFileSync(file) : undefined)
    const ca = read(tls.ca, tls.caFile)
    const cert = read(tls.cert, tls.certFile)
    const key = read(tls.key, tls.keyFile)
    if (ca) socketOptions.ca = [ca]
    if (cert) socketOptions.cert = cert
    if (key) socketOptions.key = key
    if (tls.passphrase) socketOptions.passphrase = tls.passphrase
    if (tls.servername) socketOptions.servername = tls.servername
    socketOptions.rejectUnauthorized = tls.rejectUnauthorized
  }

  let state: State = 'idle'
  let connection: ChannelModel | undefined
  let generation = 0
  let hostIndex = 0
  let attempt = 0
  let timer: NodeJS.Timeout | undefined
  const waiters = new Set<Waiter>()
  const restoreHooks: Array<(connection: ChannelModel) => Promise<void>> = []

  const openOne = async (index: number): Promise<ChannelModel> => {
    const h = config.hosts[index] ?? { host: 'localhost' }
    const options: Options.Connect = {
      protocol,
      hostname: h.host,
      port: h.port ?? defaultPort,
      username: config.username,
      password: config.password,
      vhost: config.vhost,
      heartbeat: config.heartbeat,
    }
    if (config.frameMax !== undefined) options.frameMax = config.frameMax
    try {
      return await amqp.connect(options, socketOptions)
    } catch (error) {
      throw connectError(error, whereAt(hostLabel(index)), config.username, secrets)
    }
  }

  const wakeWaiters = (model: ChannelModel): void => {
    for (const w of [...waiters]) w.resolve(model)
  }

  const adopt = (model: ChannelModel): void => {
    generation += 1
    connection = model
    model.on('error', (error: unknown) => {
      // always followed by 'close'; logged there
      ctx.logger.debug({ err: scrub(errorText(error), secrets) }, 'rabbitmq connection error')
    })
    model.on('blocked', (reason: unknown) => {
      ctx.logger.warn(
        { reason: String(reason) },
        'rabbitmq blocked this connection (resource alarm): publishes wait until it clears',
      )
    })
    model.on('unblocked', () => ctx.logger.info({}, 'rabbitmq unblocked this connection'))
    model.on('close', (error?: unknown) => onLost(model, error))
  }

  const sanitized = (error: unknown): Error | undefined =>
    error === undefined ? undefined : new Error(scrub(errorText(error), secrets))

  const onLost = (model: ChannelModel, error: unknown): void => {
    if (model !== connection) return
    connection = undefined
    if (state === 'closed') return
    state = 'reconnecting'
    attempt = 0
    ctx.emit({ type: 'disconnected', ...(error === undefined ? {} : { error: sanitized(error) }) })
    scheduleReconnect(error)
  }

  const scheduleReconnect = (error: unknown): void => {
    if (state === 'closed' || timer) return
    attempt += 1
    const delayMs = backoffDelay(attempt, reconnectBackoff)
    ctx.emit({
      type: 'reconnecting',
      attempt,
      delayMs,
      ...(error === undefined ? {} : { error: sanitized(error) }),
    })
    timer = setTimeout(() => {
      timer = undefined
      void reconnect()
    }, delayMs)
  }

  const reconnect = async (): Promise<void> => {
    if (state === 'closed') return
    // one host per attempt, moving on after each failure (a cluster node may be gone for good)
    const index = hostIndex
    let model: ChannelModel
    try {
      model = await openOne(index)
    } catch (error) {
      hostIndex = (hostIndex + 1) % config.hosts.length
      ctx.logger.debug({ attempt, err: errorText(error) }, 'rabbitmq reconnect attempt failed')
      scheduleReconnect(error)
      return
    }
    if ((state as State) === 'closed') {
      await closeModel(model)
      return
    }
    adopt(model)
    state = 'up'
    const gen = generation
    wakeWaiters(model)
    for (const hook of restoreHooks) {
      try {
        await hook(model)
      } catch (error) {
        ctx.emit({ type: 'error', error })
      }
      if (gen !== generation) return // lost again while restoring; the next round restores
    }
    ctx.logger.info({ where, attempts: attempt }, 'rabbitmq reconnected')
    attempt = 0
    ctx.emit({ type: 'connected' })
  }

  return {
    get current() {
      return connection
    },
    get generation() {
      return generation
    },
    get closed() {
      return state === 'closed'
    },
    secrets,
    where,

    async connect() {
      if (state === 'closed') throw new MsgkitError(ErrorCodes.CLOSED, 'This RabbitMQ transport is closed.')
      if (state !== 'idle') return
      state = 'connecting'
      let firstError: MsgkitError | undefined
      for (let i = 0; i < config.hosts.length; i++) {
        try {
          const model = await openOne(i)
          if ((state as State) === 'closed') {
            await closeModel(model)
            throw new MsgkitError(ErrorCodes.CLOSED, 'This RabbitMQ transport was closed while connecting.')
          }
          hostIndex = i
          adopt(model)
          state = 'up'
          ctx.emit({ type: 'connected' })
          return
        } catch (error) {
          if (error instanceof MsgkitError && error.code === ErrorCodes.CLOSED) throw error
          firstError ??= error as MsgkitError
          // a refused login will be refused by every node of the cluster
          if (error instanceof MsgkitError && error.code === ErrorCodes.AUTH_FAILED) break
        }
      }
      state = 'idle'
      throw (
        firstError ??
        new MsgkitError(ErrorCodes.CONNECTION_FAILED, `Could not connect to RabbitMQ at ${where}.`)
      )
    },

    waitUp(deadline, onTimeout) {
      if (state === 'closed')
        return Promise.reject(new MsgkitError(ErrorCodes.CLOSED, 'This RabbitMQ transport is closed.'))
      if (connection && state === 'up') return Promise.resolve(connection)
      return new Promise<ChannelModel>((resolve, reject) => {
        let t: NodeJS.Timeout | undefined
        const waiter: Waiter = {
          resolve(model) {
            clearTimeout(t)
            waiters.delete(waiter)
            resolve(model)
          },
          reject(error) {
            clearTimeout(t)
            waiters.delete(waiter)
            reject(error)
          },
        }
        waiters.add(waiter)
        if (deadline !== undefined)
          t = setTimeout(() => waiter.reject(onTimeout()), Math.max(0, deadline - Date.now()))
      })
    },

    onRestore(hook) {
      restoreHooks.push(hook)
    },

    async close() {
      if (state === 'closed') return
      state = 'closed'
      clearTimeout(timer)
      timer = undefined
      const error = new MsgkitError(ErrorCodes.CLOSED, 'This RabbitMQ transport is closed.')
      for (const w of [...waiters]) w.reject(error)
      const model = connection
      connection = undefined
      if (model) await closeModel(model)
    },
  }
}
