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
  /**
   * Sizes a foreign producer can get past the broker that are over msgkit's own limits (so their
   * dead letter, with msgkit's envelope, cannot be published as is): a body over
   * `maxMessageBytes`, a header value over `maxHeaderBytes`. Used by DG-11; without it DG-11 fails.
   */
  rawOversize?: { bodyBytes?: number; headerValueBytes?: number }
  /** Connection settings that must fail fast: a dead port, wrong credentials. */
  badConnections: ReadonlyArray<{
    name: string
    config: string | Record<string, unknown>
    /** a secret in the config that must not appear in the error text */
    secret?: string
  }>
}

/**
 * The network between a transport and its broker, for the cases that cut it (SP-2, SP-4, SP-5):
 * a Messaging created here connects through a point the suite can cut and restore.
 */
export interface FaultInjection {
  /** a fresh, connected Messaging whose connections go through the fault point */
  createMessaging(options?: MessagingOptions): Promise<Messaging>
  /** drop every connection through the fault point and refuse new ones until `restore()` */
  cut(): Promise<void>
  /** accept connections again */
  restore(): Promise<void>
}

export interface ContractSuiteOptions {
  /** shown in test names */
  name: string
  /** A fresh, connected Messaging on the transport under test. The suite closes what it creates. */
  createMessaging(options?: MessagingOptions): Promise<Messaging>
  probe: ContractProbe
  /** Cut and restore connections. Absent = the cases that need it fail (they are never skipped silently). */
  faults?: FaultInjection
  /** Run only these case ids (e.g. ['DG-1', 'SP-4']); default: all. */
  only?: readonly string[]
}
