/** Any pino-style logger: (object, message) or (message). */
export interface Logger {
  debug(obj: object | string, msg?: string): void
  info(obj: object | string, msg?: string): void
  warn(obj: object | string, msg?: string): void
  error(obj: object | string, msg?: string): void
}

const noop = (): void => {}

/** The default: says nothing. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

/** Wraps a user logger so a throwing logger never breaks message handling. */
export function safeLogger(logger: Logger | undefined): Logger {
  if (!logger) return silentLogger
  const wrap =
    (level: keyof Logger) =>
    (obj: object | string, msg?: string): void => {
      try {
        logger[level](obj, msg)
      } catch {
        // a broken logger must not break the consumer (contract case DG-10)
      }
    }
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') }
}
