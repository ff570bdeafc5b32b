// Runs the real `msgkit` executable (src/bin.ts through tsx, or dist/bin.js when MSGKIT_CLI_BIN says
// so) as a child process, the way a user's shell does, and collects its output and exit code.
import { spawn } from 'node:child_process'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..')
export const seedModule = join(import.meta.dirname, 'memory-seed.ts')

export interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  env?: Record<string, string | undefined>
  /** written to standard input, then closed (default: nothing, closed) */
  input?: string
  /** modules loaded before the CLI in the same process (e.g. a memory broker seed) */
  preload?: string[]
  timeoutMs?: number
  /** called with the child once it runs (to send it a signal) */
  onSpawn?(child: import('node:child_process').ChildProcess): void
}

/** `msgkit ...args`, resolving once it exited. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const bin = process.env.MSGKIT_CLI_BIN
  const nodeArgs = bin
    ? [bin]
    : [
        '--conditions=@msgkit/source',
        '--import',
        'tsx',
        ...(options.preload ?? []).flatMap((p) => ['--import', p]),
        join(root, 'src', 'bin.ts'),
      ]
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, MSGKIT_URL: undefined, ...options.env }
    const child = spawn(process.execPath, [...nodeArgs, ...args], {
      cwd: root,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(
          `msgkit ${args.join(' ')} did not exit within ${options.timeoutMs ?? 30_000} ms\n${stdout}\n${stderr}`,
        ),
      )
    }, options.timeoutMs ?? 30_000)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
    options.onSpawn?.(child)
    child.stdin.end(options.input ?? '')
  })
}

/** The JSON lines of an output. */
export const jsonLines = (text: string): unknown[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as unknown)
