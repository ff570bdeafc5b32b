#!/usr/bin/env node
/** The `msgkit` executable: Ctrl-C / SIGTERM abort the running command (twice: exit at once). */
import { ExitCodes } from './exit-codes.js'
import { run } from './program.js'

const controller = new AbortController()
const stop = (): void => {
  if (controller.signal.aborted) process.exit(ExitCodes.interrupted)
  controller.abort()
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

run(process.argv.slice(2), { signal: controller.signal }).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(
      `msgkit: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    )
    process.exitCode = ExitCodes.internal
  },
)
