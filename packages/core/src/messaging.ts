/**
 * createMessaging: the public entry point. Resolves the config, creates and connects the
 * transport, and ties the publish side (publishing.ts), the subscribe side (subscriptions.ts) and
 * the connection state (connection-state.ts) together under one lifecycle.
 */
import type { CloseOptions, Messaging, MessagingOptions } from './api.js'
import { type Codec, jsonCodec } from './codec.js'
import { type MessagingConfig, resolveConfig, scrubSecrets } from './config.js'
import { createConnectionState } from './connection-state.js'
import { createDeliveryCounter, markMemoryDefault } from './delivery-count.js'
import { ErrorCodes, isMsgkitError, MsgkitError } from './errors.js'
import { createEmitter, describeError } from './events.js'
import { createMemoryIdempotencyStore } from './idempotency.js'
import { safeLogger } from './logger.js'
import { createPublishing } from './publishing.js'
import type { ModuleLoader } from './registry.js'
import type { Transport } from './spi.js'
import { createSubscriptions } from './subscriptions.js'
import { loadOtelApi } from './telemetry/otel-api.js'
import { suppressingDriver } from './telemetry/suppressing-driver.js'
import { createTelemetry, type Telemetry, telemetryOff } from './telemetry/telemetry.js'
import { withTimeout } from './timeout.js'

const DEFAULT_PUBLISH_TIMEOUT = 30_000
const CONNECT_TIMEOUT = 30_000

/** Creates a Messaging instance from a broker URL or a config object, connected and ready. */
export async function createMessaging(
  config: string | MessagingConfig,
  options: MessagingOptions & { loadModule?: ModuleLoader } = {},
): Promise<Messaging> {
  const { loadModule, ...extra } = options
  const resolved = await resolveConfig(config, extra, loadModule)
  const logger = safeLogger(resolved.options.logger)
  const codec: Codec = resolved.options.codec ?? jsonCodec
  const publishTimeout = resolved.options.publish?.timeoutMs ?? DEFAULT_PUBLISH_TIMEOUT
  const idempotencyStore =
    resolved.options.idempotencyStore ?? markMemoryDefault(createMemoryIdempotencyStore())
  const emitter = createEmitter(logger)
  const name = resolved.definition.name
  const secrets = resolved.secrets
  const connection = createConnectionState(name, logger, emitter)
  // the OpenTelemetry API is an optional peer: imported here, once per process, if installed
  const telemetryOptions = resolved.options.telemetry
  const otel = telemetryOptions === false ? undefined : await loadOtelApi(logger, loadModule)
  let telemetry: Telemetry = telemetryOff
  let connectedOnce = false

  const driverTransport: Transport = resolved.definition.create(resolved.transportConfig as never, {
    logger,
    emit: (event) =>
      telemetry.outside(() => {
        if (event.type === 'connected' && connectedOnce) telemetry.connected(false)
        connection.emit(event)
      }),
    secrets,
    scrub: (text) => scrubSecrets(text, secrets),
  })
  if (otel) telemetry = createTelemetry(otel, driverTransport, telemetryOptions || {})
  const transport = otel ? suppressingDriver(driverTransport, telemetry) : driverTransport

  try {
    await withTimeout(
      transport.connect(),
      CONNECT_TIMEOUT,
      () =>
        new MsgkitError(
          ErrorCodes.CONNECTION_FAILED,
          `Connecting to the ${transport.name} broker took longer than ${CONNECT_TIMEOUT} ms. Is it running and reachable?`,
          { retriable: true },
        ),
    )
  } catch (error) {
    await transport.close().catch(() => {})
    if (isMsgkitError(error)) throw error
    throw new MsgkitError(
      ErrorCodes.CONNECTION_FAILED,
      scrubSecrets(
        `Could not connect to the ${transport.name} broker: ${describeError(error).message}. Check that it is running and that the URL/credentials are right.`,
        secrets,
      ),
      { retriable: true },
    )
  }
  connection.up()
  connectedOnce = true
  telemetry.connected(true)

  let closed = false
  let closing: Promise<void> | undefined
  const isClosed = (): boolean => closed
  const publishing = createPublishing({
    transport,
    codec,
    logger,
    emit: emitter.emit,
    timeoutMs: publishTimeout,
    unroutable: resolved.options.publish?.unroutable ?? 'warn',
    isClosed,
    telemetry,
  })
  const subscriptions = createSubscriptions({
    transport,
    logger,
    codec,
    idempotencyStore,
    deliveryCounter: createDeliveryCounter(idempotencyStore),
    emit: emitter.emit,
    publishTimeoutMs: publishTimeout,
    isClosed,
    telemetry,
  })
  const root = publishing.producer()

  const messaging: Messaging = {
    transport,
    capabilities: transport.capabilities,
    publish: root.publish,
    publishBatch: root.publishBatch,
    subscribe: subscriptions.subscribe,
    consume: subscriptions.consume,
    provision: subscriptions.provision,
    producer: publishing.producer,
    health() {
      return {
        status: closed ? 'closed' : connection.status,
        transport: transport.name,
        subscriptions: subscriptions.size,
        ...(connection.lastError ? { lastError: connection.lastError } : {}),
      }
    },
    on: emitter.on,
    close(closeOptions?: CloseOptions) {
      if (closing) return closing
      closed = true
      closing = (async () => {
        await subscriptions.close(closeOptions)
        await publishing.close()
        try {
          await transport.close()
        } catch (error) {
          logger.warn({ err: describeError(error) }, 'closing the transport failed')
        }
        connection.closed()
      })()
      return closing
    },
  }
  return messaging
}
