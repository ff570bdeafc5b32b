/**
 * The session of a broker spoken to over HTTP (SQS and SNS, any REST API): there is no connection
 * to lose, so the supervisor's session is a set of clients, and opening one asks one cheap question
 * to prove that the endpoint answers and takes the credentials. A refusal only a reachable service
 * that checked the signature gives (fatal by the error table: AccessDenied for a role without that
 * permission) still means up. A request that later fails with a network error marks the session lost
 * (`supervisor.lost`), and the reconnect opens fresh clients and asks again.
 */
import type { ErrorTable } from './errors.js'
import { failureKind } from './errors.js'
import type { SessionDriver } from './supervisor.js'

export interface HttpSessionOptions<S> {
  /** the endpoint's label (`host:port`, no credentials) */
  endpoint: string
  errors: ErrorTable
  /** new clients (they connect on their first request) */
  create(): S
  /** one cheap request on fresh clients (SQS: ListQueues with one result) */
  probe(session: S): Promise<unknown>
  /** release the clients (sockets, agents); never throws */
  destroy(session: S): void
}

/** A session driver for the supervisor: one endpoint, opened by `create` + `probe`. */
export function httpSessionDriver<S>(options: HttpSessionOptions<S>): SessionDriver<S> {
  const close = async (session: S): Promise<void> => options.destroy(session)
  return {
    endpoints: [options.endpoint],
    async open() {
      const session = options.create()
      const answer = await options.probe(session).then(
        () => undefined,
        (error: unknown) => ({ error }),
      )
      if (!answer || failureKind(options.errors, answer.error) === 'fatal') return session
      await close(session)
      throw answer.error
    },
    close,
  }
}
