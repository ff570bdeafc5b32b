/** Which package implements which transport, and lazy loading of it. */
import { ErrorCodes, MsgkitError } from './errors.js'
import { memoryTransport } from './memory/definition.js'
import type { TransportDefinition } from './spi.js'

interface RegistryEntry {
  /** npm package exporting the TransportDefinition as default */
  packageName?: string
  builtin?: TransportDefinition<never>
  schemes: readonly string[]
}

/** Transport name → where it lives. Kept in sync with the packages by test/unit/registry.test.ts. */
export const transportRegistry: Readonly<Record<string, RegistryEntry>> = {
  memory: { builtin: memoryTransport as TransportDefinition<never>, schemes: ['memory'] },
  kafka: { packageName: '@msgkit/kafka', schemes: ['kafka'] },
  rabbitmq: { packageName: '@msgkit/rabbitmq', schemes: ['amqp', 'amqps'] },
  activemq: { packageName: '@msgkit/activemq', schemes: ['stomp', 'stomp+ssl'] },
  sqs: { packageName: '@msgkit/sqs', schemes: ['sqs'] },
}

/** Transport name for a URL scheme, or undefined. */
export function transportForScheme(scheme: string): string | undefined {
  for (const [name, entry] of Object.entries(transportRegistry)) {
    if (entry.schemes.includes(scheme)) return name
  }
  return undefined
}

export type ModuleLoader = (specifier: string) => Promise<unknown>

const defaultLoader: ModuleLoader = (specifier) => import(specifier)

function isModuleNotFound(error: unknown, packageName: string): boolean {
  const e = error as { code?: string; message?: string }
  return (
    (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') &&
    typeof e.message === 'string' &&
    e.message.includes(packageName)
  )
}

/** Loads a transport definition by name; a missing package is an error naming it. */
export async function loadTransport(
  name: string,
  load: ModuleLoader = defaultLoader,
): Promise<TransportDefinition> {
  const entry = transportRegistry[name]
  if (!entry) {
    throw new MsgkitError(
      ErrorCodes.TRANSPORT_UNKNOWN,
      `Unknown transport "${name}". Known transports: ${Object.keys(transportRegistry).join(', ')}; or pass a TransportDefinition object as \`transport\`.`,
    )
  }
  if (entry.builtin) return entry.builtin as TransportDefinition
  const packageName = entry.packageName ?? ''
  let mod: unknown
  try {
    mod = await load(packageName)
  } catch (cause) {
    if (isModuleNotFound(cause, packageName)) {
      throw new MsgkitError(
        ErrorCodes.TRANSPORT_MISSING,
        `The ${name} transport needs the package ${packageName}, which is not installed. Install it next to @msgkit/core: pnpm add ${packageName} (or npm install ${packageName}).`,
        { cause, details: { transport: name, packageName } },
      )
    }
    throw new MsgkitError(
      ErrorCodes.TRANSPORT_MISSING,
      `Loading ${packageName} for the ${name} transport failed: ${(cause as Error)?.message}`,
      {
        cause,
        details: { transport: name, packageName },
      },
    )
  }
  const definition = (mod as { default?: unknown }).default ?? mod
  if (!isTransportDefinition(definition)) {
    throw new MsgkitError(
      ErrorCodes.TRANSPORT_MISSING,
      `${packageName} does not export a msgkit TransportDefinition as its default export; is its version compatible with @msgkit/core?`,
    )
  }
  return definition
}

/** Duck-type check for a TransportDefinition. */
export function isTransportDefinition(value: unknown): value is TransportDefinition {
  const v = value as Partial<TransportDefinition> | null
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.name === 'string' &&
    typeof v.create === 'function' &&
    typeof v.configSchema?.safeParse === 'function'
  )
}
