/**
 * Pid files of the example's long-running service, so `stop` can find what `start` (or anyone)
 * started. A pid file is written only once the service consumes, so it doubles as its ready file:
 * `<run dir>/<service>.<pid>.pid` exists ⇔ that process is up and its groups exist.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** MAIL_RUN_DIR, else `examples/mail/.run` wherever the command is run from. */
export function runDir(): string {
  return process.env.MAIL_RUN_DIR ?? fileURLToPath(new URL('../.run', import.meta.url))
}

export function pidFile(service: string, pid: number, dir = runDir()): string {
  return join(dir, `${service}.${pid}.pid`)
}

/** Writes this process's pid file (atomically: a reader never sees it half written) and removes it on exit. */
export function writeOwnPidFile(service: string): string {
  const dir = runDir()
  mkdirSync(dir, { recursive: true })
  const file = pidFile(service, process.pid, dir)
  writeFileSync(`${file}.tmp`, `${process.pid}\n`)
  renameSync(`${file}.tmp`, file)
  process.once('exit', () => rmSync(file, { force: true }))
  return file
}

/** The pids named by `<service>.<pid>.pid` files in the run dir, with their files. */
export function pidFiles(service: string, dir = runDir()): Array<{ pid: number; file: string }> {
  if (!existsSync(dir)) return []
  const name = new RegExp(`^${service.replace(/[.-]/g, '\\$&')}\\.(\\d+)\\.pid$`)
  return readdirSync(dir).flatMap((f) => {
    const m = name.exec(f)
    return m ? [{ pid: Number(m[1]), file: join(dir, f) }] : []
  })
}

/** Linux and friends show processes in /proc; elsewhere only `kill -0` can tell. */
const hasProc = existsSync('/proc/self/stat')

/**
 * True while `pid` runs (a zombie waiting to be reaped counts as gone) and, where /proc shows it,
 * is one of ours (its command line names `service`): a pid reused by another program is not stopped.
 */
export function isRunning(pid: number, service: string): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  if (!hasProc) return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if (state === 'Z' || state === 'X') return false
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(service)
  } catch {
    return false
  }
}
