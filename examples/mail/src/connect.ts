import { createMessaging, type Logger, type Messaging } from '@msgkit/core'
import { writeOwnPidFile } from './pid-files.js'

/** One line per log record on stderr, quiet below `info`. */
export function consoleLogger(service: string): Logger {
  const line =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      const text = typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`
      process.stderr.write(`[${service}] ${level} ${text}\n`)
    }
  return { debug: () => {}, info: () => {}, warn: line('warn'), error: line('error') }
}

/** Connects to MSGKIT_URL (default: the built-in memory broker). */
export async function connect(service: string): Promise<Messaging> {
  return createMessaging(process.env.MSGKIT_URL ?? 'memory://mail-demo', { logger: consoleLogger(service) })
}

/**
 * Runs `start` and closes cleanly on Ctrl-C / SIGTERM. With `pidFile`, a long-running service
 * writes `<run dir>/<service>.<pid>.pid` once `start` resolved (its ready signal, see pid-files.ts)
 * and removes it when it exits, so `pnpm … stop` finds it however it was started.
 */
export function runAsProcess(
  service: string,
  start: () => Promise<{ close(): Promise<void> }>,
  options: { pidFile?: boolean } = {},
): void {
  start().then(
    (running) => {
      const stop = (): void => {
        process.stderr.write(`[${service}] stopping…\n`)
        running.close().then(
          () => process.exit(0),
          () => process.exit(1),
        )
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
      if (options.pidFile) writeOwnPidFile(service)
    },
    (error: unknown) => {
      process.stderr.write(`[${service}] failed to start: ${(error as Error).message}\n`)
      process.exit(1)
    },
  )
}

export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url.endsWith(process.argv[1].replace(/\\/g, '/'))
}
