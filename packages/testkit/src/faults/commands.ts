/** Running a broker's restart command from a test, bounded, with its output in the error. */
import { spawn } from 'node:child_process'

export interface RunCommandOptions {
  cwd?: string
  /** kill it and fail after this long (default 180 s) */
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
}

/** Runs `argv` to completion; rejects with the tail of its output when it fails or times out. */
export function runCommand(argv: readonly string[], options: RunCommandOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 180_000
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv as [string, ...string[]]
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-8_000)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${argv.join(' ')} did not finish within ${timeoutMs} ms:\n${output.slice(-2_000)}`))
    }, timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`${argv.join(' ')} could not start: ${error.message}`))
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else
        reject(
          new Error(
            `${argv.join(' ')} exited with ${code ?? signal}; its output ended with:\n${output.slice(-2_000)}`,
          ),
        )
    })
  })
}

/** Polls `ready` (a rejected or false result = not yet) until it holds; fails after `timeoutMs`. */
export async function waitUntilReady(
  ready: () => Promise<unknown>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if ((await ready()) !== false) return
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what} not ready within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`,
      )
    }
    await new Promise((r) => setTimeout(r, 200))
  }
}
