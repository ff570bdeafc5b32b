/**
 * The OpenTelemetry SDK set up as a service sets it up (global tracer provider, async context
 * manager, W3C propagator) with a driver's own instrumentation registered: instrumentation-kafkajs
 * or instrumentation-amqplib, the way `registerInstrumentations` / NodeSDK install them. Used by
 * test/brokers/tracing.test.ts; lives here because these are @msgkit/core's dev dependencies (the
 * suppression under test is core's).
 */
import { createRequire } from 'node:module'
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { type Instrumentation, registerInstrumentations } from '@opentelemetry/instrumentation'
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib'
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'

export type Driver = 'kafkajs' | 'amqplib'

/** The instrumentation scope each driver instrumentation records under. */
export const DRIVER_SCOPES: Readonly<Record<Driver, string>> = {
  kafkajs: '@opentelemetry/instrumentation-kafkajs',
  amqplib: '@opentelemetry/instrumentation-amqplib',
}

export interface DriverTracing {
  provider: BasicTracerProvider
  spans(): ReadableSpan[]
  /** the driver module, loaded through `require` after the instrumentation hooked it (as the adapter sees it) */
  driver: unknown
  /** the driver instrumentation's own scope name */
  scope: string
  shutdown(): Promise<void>
}

/**
 * Registers the SDK globally and the instrumentation for `driver`, then loads the driver from the
 * adapter package at `adapterPackageJson`, so the adapter's later import gets the patched module.
 * Call it before the adapter loads its driver (before the first createMessaging on that broker).
 */
export function setUpDriverTracing(driver: Driver, adapterPackageJson: string): DriverTracing {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const ownContext = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const ownPropagator = propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  const ownTracer = trace.setGlobalTracerProvider(provider)
  if (!ownContext || !ownPropagator || !ownTracer)
    throw new Error('setUpDriverTracing: an OpenTelemetry global was already registered in this process')
  const instrumentation: Instrumentation =
    driver === 'kafkajs' ? new KafkaJsInstrumentation() : new AmqplibInstrumentation()
  const unregister = registerInstrumentations({
    instrumentations: [instrumentation],
    tracerProvider: provider,
  })
  const loaded = createRequire(adapterPackageJson)(driver)
  return {
    provider,
    spans: () => exporter.getFinishedSpans(),
    driver: loaded,
    scope: DRIVER_SCOPES[driver],
    async shutdown() {
      unregister()
      await provider.shutdown()
      trace.disable()
      propagation.disable()
      context.disable()
    },
  }
}
