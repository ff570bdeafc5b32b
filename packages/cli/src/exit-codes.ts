/** What `msgkit` exits with. Stable: scripts may branch on them (README "Exit codes"). */
import { ErrorCodes, isMsgkitError } from '@msgkit/core'

export const ExitCodes = {
  /** done */
  ok: 0,
  /** something unexpected (a bug): the message says what; please report it */
  internal: 1,
  /** the command line is wrong: unknown command or option, a missing or invalid argument or name */
  usage: 2,
  /** no broker URL, an invalid URL or config, an unknown transport, an adapter package not installed */
  config: 3,
  /** the broker could not be reached, or refused the credentials */
  connection: 4,
  /** the transport cannot do this (MSGKIT_CAPABILITY_UNSUPPORTED) */
  unsupported: 5,
  /** the broker refused or timed out an operation (publish timeout, unroutable, too large, …) */
  failed: 6,
  /** finished, but left something undone that you asked for (dead letters left behind, no round trip) */
  partial: 7,
  /** you answered no at a confirmation prompt */
  declined: 8,
  /** interrupted (Ctrl-C, SIGTERM) before the end; what was done is summarized */
  interrupted: 130,
} as const

export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes]

/** The exit code for an error that ended a command. */
export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode
  if (!isMsgkitError(error)) return ExitCodes.internal
  switch (error.code) {
    case ErrorCodes.INVALID_ARGUMENT:
      return ExitCodes.usage
    case ErrorCodes.CONFIG_INVALID:
    case ErrorCodes.URL_INVALID:
    case ErrorCodes.TRANSPORT_UNKNOWN:
    case ErrorCodes.TRANSPORT_MISSING:
      return ExitCodes.config
    case ErrorCodes.CONNECTION_FAILED:
    case ErrorCodes.AUTH_FAILED:
      return ExitCodes.connection
    case ErrorCodes.CAPABILITY_UNSUPPORTED:
      return ExitCodes.unsupported
    default:
      return ExitCodes.failed
  }
}

/** An error of the command line itself (bad usage, no URL): its own code word and exit code. */
export class CliError extends Error {
  override name = 'CliError'
  constructor(
    readonly code: 'MSGKIT_CLI_USAGE' | 'MSGKIT_CLI_NO_URL' | 'MSGKIT_CLI_DECLINED' | 'MSGKIT_CLI_INPUT',
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message)
  }
}

/** A usage error (exit 2). */
export const usage = (message: string): CliError => new CliError('MSGKIT_CLI_USAGE', message, ExitCodes.usage)
