/** A TCP proxy in front of the broker, so tests can cut, refuse or freeze connections at will. */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'

export interface TcpProxy {
  readonly port: number
  /** destroy every proxied connection (like a network cut or a broker crash) */
  cut(): void
  /** refuse new connections (closes the listener) until `open()` */
  refuse(): Promise<void>
  open(): Promise<void>
  /** stop forwarding bytes but keep the sockets (a frozen broker) until `thaw()` */
  freeze(): void
  thaw(): void
  /** connections accepted so far */
  readonly accepted: number
  close(): Promise<void>
}

/** Starts a proxy to `target` on `port` (default: any free port) on 127.0.0.1. */
export async function startTcpProxy(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>()
  let frozen = false
  let accepted = 0
  let server: Server

  let listening = false
  const listen = (): Promise<void> =>
    new Promise((resolve) => {
      if (listening) return resolve()
      listening = true
      server = createServer((client) => {
        accepted += 1
        const upstream = tcpConnect(target.port, target.host)
        const pair: [Socket, Socket] = [client, upstream]
        pairs.add(pair)
        const end = (): void => {
          pairs.delete(pair)
          client.destroy()
          upstream.destroy()
        }
        client.on('error', end).on('close', end)
        upstream.on('error', end).on('close', end)
        client.on('data', (d) => {
          if (!frozen) upstream.write(d)
        })
        upstream.on('data', (d) => {
          if (!frozen) client.write(d)
        })
      })
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as { port: number }).port
        resolve()
      })
    })

  const closeServer = (): Promise<void> => {
    if (!listening) return Promise.resolve()
    listening = false
    return new Promise((resolve) => server.close(() => resolve()))
  }

  const cutAll = (): void => {
    for (const [a, b] of pairs) {
      a.destroy()
      b.destroy()
    }
    pairs.clear()
  }

  await listen()
  return {
    get port() {
      return port
    },
    get accepted() {
      return accepted
    },
    cut: cutAll,
    async refuse() {
      const closing = closeServer()
      cutAll()
      await closing
    },
    open: listen,
    freeze() {
      frozen = true
    },
    thaw() {
      frozen = false
    },
    async close() {
      const closing = closeServer()
      cutAll()
      await closing
    },
  }
}
