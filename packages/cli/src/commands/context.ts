/** What every command gets: the global options, where to print, and the signal that Ctrl-C aborts. */
import type { GlobalOptions } from '../connect.js'
import type { Output } from '../output.js'

export interface CommandContext {
  options: GlobalOptions
  output: Output
  /** aborted by SIGINT / SIGTERM: stop, summarize, exit */
  signal: AbortSignal
  /** standard input, for bodies and the purge prompt */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
}
