/**
 * Its own module, not messaging.ts: its signature names the Telemetry type, whose declarations
 * import @opentelemetry/api (an optional peer); nothing reachable from the package's entry may.
 */
import type { BrowseRequest, OutgoingMessage, SendOptions, Transport, TransportMessage } from '../spi.js'
import type { Telemetry } from './telemetry.js'

/**
 * The transport with every call into it made under suppressed tracing: whatever the driver does
 * from there (sends, consumer loops, reconnects) inherits the suppression, so its own
 * OpenTelemetry instrumentation records nothing and does not overwrite the creation context core
 * wrote into the headers. msgkit's spans are the ones users see.
 */
export function suppressingDriver(transport: Transport, telemetry: Telemetry): Transport {
  return {
    get name() {
      return transport.name
    },
    get capabilities() {
      return transport.capabilities
    },
    get telemetry() {
      return transport.telemetry
    },
    get keepsDeadlines() {
      return transport.keepsDeadlines
    },
    // not a call into the driver: nothing to suppress (without it, RabbitMQ's window was lost under tracing)
    ...(transport.defaultPrefetch
      ? { defaultPrefetch: (concurrency: number) => transport.defaultPrefetch?.(concurrency) as number }
      : {}),
    connect: () => telemetry.driver(() => transport.connect()),
    send: (topic, messages, options) => telemetry.driver(() => transport.send(topic, messages, options)),
    provision: (topic, group) => telemetry.driver(() => transport.provision(topic, group)),
    subscribe: (request, onDelivery) => telemetry.driver(() => transport.subscribe(request, onDelivery)),
    close: () => telemetry.driver(() => transport.close()),
    // the optional operator members, only where the transport has them (their absence means "unsupported")
    ...(transport.sendToGroup
      ? {
          sendToGroup: (topic: string, group: string, messages: OutgoingMessage[], options: SendOptions) =>
            telemetry.driver(() => transport.sendToGroup?.(topic, group, messages, options) as Promise<void>),
        }
      : {}),
    ...(transport.browse
      ? {
          browse: (request: BrowseRequest, onMessage: (message: TransportMessage) => void) =>
            telemetry.driver(() => transport.browse?.(request, onMessage) as Promise<void>),
        }
      : {}),
  }
}
