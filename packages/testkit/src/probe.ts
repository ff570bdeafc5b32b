import type { Headers, Messaging, MessagingOptions } from '@msgkit/core'

/**
 * What a transport's test setup gives the contract suite besides a Messaging factory:
 * ways to act like the outside world (a foreign producer, a broker restart).
 */
export interface ContractProbe {
  /** Publish bytes as a foreign producer would: the raw client, no msgkit headers at all. */
  publishRaw(topic: string, body: Uint8Array, options?: { headers?: Headers; key?: string }): Promise<void>
  /**
   * Restart the broker process (or, where that is impossible, cut every connection) and resolve
   * once the broker accepts connections again. Absent = the RS-1 case asserts nothing and is
   * reported as not applicable for this transport.
   */
  restartBroker?(): Promise<void>
  /** Messages waiting (not yet acked) in a group's storage; used to check "source drained". */
  pendingCount?(topic: string, group: string): Promise<number>
  /** Connection settings that must fail fast: a dead port, wrong credentials. */
  badConnections: ReadonlyArray<{
    name: string
    config: string | Record<string, unknown>
    /** a secret in the config that must not appear in the error text */
    secret?: string
  }>
}

export interface ContractSuiteOptions {
  /** shown in test names */
  name: string
  /** A fresh, connected Messaging on the transport under test. The suite closes what it creates. */
  createMessaging(options?: MessagingOptions): Promise<Messaging>
  probe: ContractProbe
}
