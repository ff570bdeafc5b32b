/**
 * `pnpm … start | stop | status`: MailService in the background, the way a process manager runs it.
 *
 * - start: launches `node src/mail-service.ts` itself (no pnpm or shell in front of it, so its pid
 *   is the service's own), logs to `<run dir>/mail-service.log`, and returns only once the service
 *   consumes (its pid file exists) — or fails with its log when it does not come up.
 * - stop: SIGTERM to every mail-service named by a pid file, waits until each has exited (it
 *   finishes the mails it is sending; events not yet handled stay in its group for the next start),
 *   SIGKILL after MAIL_STOP_TIMEOUT_S, then prints the end of the log. Nothing is left running.
 * - status: lists the running ones; exit code 0 running, 3 stopped.
 *
 * The run dir is MAIL_RUN_DIR, else examples/mail/.run (see pid-files.ts).
 */
import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isRunning, pidFile, pidFiles, runDir } from './pid-files.js'

const SERVICE = 'mail-service'
const command = process.argv[2] ?? ''
const STOP_COMMAND = 'pnpm --filter @msgkit/example-mail stop'
const startTimeoutMs = seconds('MAIL_START_TIMEOUT_S', 60)
const stopTimeoutMs = seconds('MAIL_STOP_TIMEOUT_S', 30)

function seconds(variable: string, fallback: number): number {
  const value = Number(process.env[variable] ?? fallback)
  if (!Number.isFinite(value) || value <= 0) {
    fail(`${variable} must be a positive number of seconds, not "${process.env[variable]}"`)
  }
  return value * 1000
}

function say(text: string): void {
  console.log(`[${SERVICE}:${command}] ${text}`)
}

function fail(text: string, ...hints: string[]): never {
  process.stderr.write(`[${SERVICE}:${command}] ERROR: ${text}\n`)
  for (const hint of hints) process.stderr.write(`[${SERVICE}:${command}]   try: ${hint}\n`)
  process.exit(1)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const logFile = (): string => join(runDir(), `${SERVICE}.log`)

function printLogTail(lines: number): void {
  const file = logFile()
  if (!existsSync(file)) return
  const text = readFileSync(file, 'utf8').trimEnd().split('\n')
  say(`--- ${text.length > lines ? `last ${lines} lines of ` : ''}${file} ---`)
  for (const line of text.slice(-lines)) console.log(`  ${line}`)
}

function running(): number[] {
  return pidFiles(SERVICE)
    .filter(({ pid, file }) => {
      if (isRunning(pid, SERVICE)) return true
      rmSync(file, { force: true })
      say(`removed the pid file of pid ${pid}, which is gone (killed -9 or crashed)`)
      return false
    })
    .map(({ pid }) => pid)
}

async function start(): Promise<void> {
  const target = process.env.MSGKIT_URL ?? ''
  if (target === '' || target.startsWith('memory:')) {
    fail(
      'MSGKIT_URL is not set to a real broker: MailService in the background on the in-process memory broker would never see an event',
      'export MSGKIT_URL=amqp://guest:guest@127.0.0.1:5672 (or kafka://127.0.0.1:9092), then start again',
      'pnpm demo runs all three services in one process on the memory broker',
    )
  }
  const up = running()
  if (up.length > 0) {
    say(`already running (pid ${up.join(', ')}); stop it with: ${STOP_COMMAND}`)
    return
  }
  const dir = runDir()
  mkdirSync(dir, { recursive: true })
  const log = openSync(logFile(), 'w')
  const script = fileURLToPath(new URL('./mail-service.ts', import.meta.url))
  const began = Date.now()
  // detached: its own session, so it outlives this command and its terminal; the same node flags
  // this command runs with (the tsx loader and the workspace source condition)
  const child = spawn(process.execPath, [...process.execArgv, script], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, MAIL_RUN_DIR: dir },
  })
  closeSync(log)
  const pid = child.pid
  if (pid === undefined) fail(`could not launch ${process.execPath} ${script}`)
  let exitCode: number | null | undefined
  child.once('exit', (code, signal) => {
    exitCode = code ?? (signal ? 128 : 1)
  })
  child.unref()
  say(`launched (pid ${pid}); waiting until it consumes (up to ${startTimeoutMs / 1000} s) …`)

  const ready = pidFile(SERVICE, pid, dir)
  let nextNote = Date.now() + 5_000
  while (!existsSync(ready)) {
    if (exitCode !== undefined) {
      printLogTail(30)
      fail(
        `${SERVICE} exited (code ${exitCode}) before it was ready; its log is above`,
        `is the broker at MSGKIT_URL up? pnpm brokers:start rabbitmq (or kafka)`,
        `check MSGKIT_URL, now ${target.replace(/\/\/[^@/]*@/, '//***@')}`,
      )
    }
    if (Date.now() - began > startTimeoutMs) {
      child.kill('SIGKILL')
      printLogTail(30)
      fail(
        `${SERVICE} was not ready within ${startTimeoutMs / 1000} s (killed it); its log is above`,
        'is the broker reachable from here? is it overloaded?',
        'raise MAIL_START_TIMEOUT_S on a slow machine',
      )
    }
    if (Date.now() > nextNote) {
      say(`still waiting (${((Date.now() - began) / 1000).toFixed(0)} s) …`)
      nextNote += 5_000
    }
    await sleep(50)
  }
  say(`running in the background (pid ${pid}), ready after ${Date.now() - began} ms`)
  say(`log: ${logFile()}`)
  say(`stop it with: ${STOP_COMMAND}`)
  // our end of the child's handle must not keep it attached: leave at once
  process.exit(0)
}

async function stopOne(pid: number): Promise<boolean> {
  const began = Date.now()
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return true // gone meanwhile
  }
  while (isRunning(pid, SERVICE)) {
    if (Date.now() - began > stopTimeoutMs) {
      say(
        `pid ${pid} did not stop within ${stopTimeoutMs / 1000} s: SIGKILL (its unfinished events are redelivered at the next start)`,
      )
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // exited just now
      }
      const killed = Date.now()
      while (isRunning(pid, SERVICE) && Date.now() - killed < 5_000) await sleep(50)
      break
    }
    await sleep(50)
  }
  if (isRunning(pid, SERVICE)) return false
  rmSync(pidFile(SERVICE, pid), { force: true }) // the service removes it itself unless killed
  say(`stopped pid ${pid} in ${Date.now() - began} ms`)
  return true
}

async function stop(): Promise<void> {
  const pids = running()
  if (pids.length === 0) {
    say(`not running (no live pid file in ${runDir()})`)
    return
  }
  const results = await Promise.all(pids.map(stopOne))
  printLogTail(40)
  const left = pids.filter((_, i) => !results[i])
  if (left.length > 0) fail(`could not stop pid ${left.join(', ')}`, `kill -9 ${left.join(' ')}`)
}

function status(): void {
  const pids = running()
  if (pids.length === 0) {
    say('stopped')
    process.exit(3)
  }
  say(`running (pid ${pids.join(', ')}); log: ${logFile()}`)
}

if (command === 'start') await start()
else if (command === 'stop') await stop()
else if (command === 'status') status()
else {
  process.stderr.write('usage: background.ts start|stop|status\n')
  process.exit(2)
}
