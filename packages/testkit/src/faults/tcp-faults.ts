/** Fault injection over TCP: a Messaging whose connections go through a proxy the suite can cut. */
import type { Messaging, MessagingOptions } from '@msgkit/core'
import type { FaultInjection } from '../probe.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

export interface TcpFaultsOptions {
  /** the broker's real address */
  target: { host: string; port: number }
  /** a port for the proxy (default: any free one); fixed where the broker advertises it (Kafka) */
  port?: number
  /** a Messaging connected to the broker through `endpoint` (the proxy) instead of `target` */
  createMessaging(endpoint: { host: string; port: number }, options?: MessagingOptions): Promise<Messaging>
}

/** A FaultInjection backed by a TCP proxy; `close()` stops the proxy. */
export function tcpFaults(options: TcpFaultsOptions): FaultInjection & { close(): Promise<void> } {
  let proxy: Promise<TcpProxy> | undefined
  const started = (): Promise<TcpProxy> => {
    proxy ??= startTcpProxy(options.target, options.port)
    return proxy
  }
  return {
    async createMessaging(messagingOptions) {
      const p = await started()
      return options.createMessaging({ host: '127.0.0.1', port: p.port }, messagingOptions)
    },
    async cut() {
      await (await started()).refuse()
    },
    async restore() {
      await (await started()).open()
    },
    async close() {
      const p = proxy
      proxy = undefined
      await (await p)?.close()
    },
  }
}
