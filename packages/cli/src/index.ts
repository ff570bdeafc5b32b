/**
 * @msgkit/cli — the `msgkit` command line. Use it from a shell (`msgkit --help`), or run it from
 * code (`await run(['health', '--json'])` resolves with the exit code).
 * @packageDocumentation
 */
export { type ExitCode, ExitCodes, exitCodeOf } from './exit-codes.js'
export { type RunOptions, run } from './program.js'
