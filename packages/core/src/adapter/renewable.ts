/**
 * A renewable client: one client of a session (a kafkajs admin or producer, an AMQP channel) that is
 * replaced when it went bad while the session lives — a stale cache, a sequence to restart — without
 * giving up the session. The call that saw the failure renews it and rethrows, so the kit's retry
 * (`perform`, the outbox) runs it again on the new client; the replaced one is closed at the next
 * renewal or with the session, since other calls may still be running on it.
 */

export interface RenewableOptions<C> {
  /** A new client, not connected yet. */
  create(): C
  /** Connect it; reject when that failed (it is then closed). */
  connect(client: C): Promise<void>
  /** Close a client; may reject (ignored). */
  close(client: C): Promise<void>
  /** Whether a failure of a call means the client must be replaced. */
  renewOn(error: unknown): boolean
}

export interface Renewable<C> {
  /** the client now (connecting, connected, or failed to connect) */
  readonly current: Promise<C>
  /**
   * Runs `work` on the current client. When it fails and `renewOn(error)` says so, the client is
   * replaced (once, however many calls on it fail) before the error is rethrown.
   */
  use<T>(work: (client: C) => Promise<T>): Promise<T>
  /** Close every client; nothing is renewed any more. Never rejects. */
  close(): Promise<void>
}

/** Creates a renewable client, connecting the first one now. */
export function createRenewable<C>(options: RenewableOptions<C>): Renewable<C> {
  const open = (): Promise<C> => {
    const client = options.create()
    const connected = options.connect(client).then(
      () => client,
      (error: unknown) => {
        void options.close(client).catch(() => {})
        throw error
      },
    )
    connected.catch(() => {}) // whoever uses it sees the error
    return connected
  }
  const close = (client: Promise<C>): Promise<void> => client.then((c) => options.close(c)).catch(() => {})
  // the live client last; the one before may still have calls running on it
  const clients = [open()]
  let closed = false
  return {
    get current() {
      return clients.at(-1) as Promise<C>
    },
    async use(work) {
      const client = clients.at(-1) as Promise<C>
      try {
        return await work(await client)
      } catch (error) {
        if (!closed && client === clients.at(-1) && options.renewOn(error)) {
          if (clients.length > 1) void close(clients.shift() as Promise<C>)
          clients.push(open())
        }
        throw error
      }
    },
    async close() {
      closed = true
      await Promise.all(clients.map(close))
    },
  }
}
