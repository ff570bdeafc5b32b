/**
 * Loading `@opentelemetry/api`, an optional peer dependency: once, lazily, with a dynamic import
 * at the first createMessaging. Nothing imports it statically (the `import type` below is erased),
 * so without it installed core loads and runs exactly as before.
 */
import type * as OtelApiModule from '@opentelemetry/api'
import type { Logger } from '../logger.js'
import type { ModuleLoader } from '../registry.js'

export type OtelApi = typeof OtelApiModule

export const OTEL_API = '@opentelemetry/api'

let shared: Promise<OtelApi | undefined> | undefined

function isMissing(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined
  return (
    (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') &&
    typeof e.message === 'string' &&
    e.message.includes(OTEL_API)
  )
}

async function load(loader: ModuleLoader, logger: Logger): Promise<OtelApi | undefined> {
  let mod: unknown
  try {
    mod = await loader(OTEL_API)
  } catch (error) {
    // not installed: the normal case for users who do not trace; say nothing
    if (!isMissing(error))
      logger.warn(
        { err: { message: (error as Error)?.message } },
        `loading ${OTEL_API} failed; msgkit records no traces or metrics`,
      )
    return undefined
  }
  // the namespace, not `default`: the API's ESM build exports only { context, trace, … } as default
  const ns = mod as Partial<OtelApi> & { default?: Partial<OtelApi> }
  const api = typeof ns.createContextKey === 'function' ? ns : (ns.default ?? ns)
  if (
    typeof api?.trace?.getTracerProvider !== 'function' ||
    typeof api.context?.with !== 'function' ||
    typeof api.createContextKey !== 'function'
  ) {
    logger.warn(
      {},
      `${OTEL_API} does not look like the OpenTelemetry API 1.x; msgkit records no traces or metrics`,
    )
    return undefined
  }
  return api as OtelApi
}

/**
 * The OpenTelemetry API, or undefined when it is not installed. The default loader's answer is
 * kept for the process (one import, ever); a custom loader (tests) is asked each time.
 */
export function loadOtelApi(logger: Logger, loader?: ModuleLoader): Promise<OtelApi | undefined> {
  if (loader) return load(loader, logger)
  shared ??= load((specifier) => import(specifier), logger)
  return shared
}
