/** Shared plumbing of the contract suite: opening and closing Messaging, topics, assertions. */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import {
  type Capabilities,
  ErrorCodes,
  type Headers,
  isMsgkitError,
  type Message,
  type Messaging,
  type MessagingOptions,
  type Topic,
} from '@msgkit/core'
import { expect, type TestContext } from 'vitest'
import { createHandlerSpy, type HandlerSpy } from '../helpers/handler-spy.js'
import { waitFor } from '../helpers/wait-for.js'
import type { ContractSuiteOptions } from '../probe.js'

/** Generous caps: polling waits end as soon as the condition holds, so these only bound a failure. */
export let WAIT_MS = 20_000
export let LONG_WAIT_MS = 45_000

/**
 * Shorter failure bounds, for running cases that are expected to fail (the mutant check) against
 * an in-process transport. Affects this module instance only (vitest isolates test files).
 */
export function setContractWaits(waits: { waitMs: number; longWaitMs: number }): void {
  WAIT_MS = waits.waitMs
  LONG_WAIT_MS = waits.longWaitMs
}
/** Per-case vitest timeout (the waits inside are shorter). */
export const CASE_MS = 60_000
/** "Quiet window": nothing more may arrive during it. */
export const QUIET_MS = 750

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** One contract case: an id from CONTRACT-CASES (`DG-1`), its title, its body. */
export interface ContractCase {
  id: string
  family: string
  title: string
  timeoutMs: number
  /** set: the case is skipped visibly, with this reason in its name */
  skip?: string
  run(t: TestContext): Promise<void>
}

type CaseBody = (t: TestContext) => Promise<void> | void
interface CaseDefiner {
  (title: string, run: CaseBody, timeoutMs?: number): void
  /** a case that cannot run here (the reason is in its title), listed so it is never silently absent */
  skip(title: string, run: CaseBody, timeoutMs?: number): void
}

/** What each family's file receives to define its cases. */
export interface SuiteKit {
  options: ContractSuiteOptions
  /** a fresh Messaging, closed after the current test */
  open(options?: MessagingOptions): Promise<Messaging>
  /** a fresh Messaging through the fault point (`options.faults`); fails when there is none */
  openFaulty(options?: MessagingOptions): Promise<Messaging>
  /** `t-<uuid>`: a topic no other test or run uses */
  topic(): string
  /** a group name unique to this test */
  group(label: string): string
  /** groups the cases defined inside `define` under a family name */
  describe(family: string, define: () => void): void
  /** defines a case; its id is the title's first word (`DG-1 …`) */
  it: CaseDefiner
  /** every case defined so far */
  readonly cases: ReadonlyArray<ContractCase>
}

/** Builds the kit and the afterEach cleanup that closes whatever a test opened. */
export function createSuiteKit(options: ContractSuiteOptions): SuiteKit & { cleanup(): Promise<void> } {
  let opened: Messaging[] = []
  const cases: ContractCase[] = []
  let family = ''
  const define = (title: string, run: CaseBody, timeoutMs: number | undefined, skip?: string): void => {
    const id = title.split(' ')[0] ?? title
    const entry: ContractCase = {
      id,
      family,
      title,
      timeoutMs: timeoutMs ?? CASE_MS,
      run: async (t) => {
        await run(t)
      },
    }
    if (skip !== undefined) entry.skip = skip
    cases.push(entry)
  }
  const it = ((title: string, run: CaseBody, timeoutMs?: number) =>
    define(title, run, timeoutMs)) as CaseDefiner
  it.skip = (title, run, timeoutMs) => define(title, run, timeoutMs, title)
  return {
    options,
    cases,
    it,
    describe(name, defineCases) {
      const outer = family
      family = name
      try {
        defineCases()
      } finally {
        family = outer
      }
    },
    async open(messagingOptions) {
      const messaging = await options.createMessaging(messagingOptions)
      opened.push(messaging)
      return messaging
    },
    async openFaulty(messagingOptions) {
      const faults = options.faults
      if (!faults) {
        throw new Error(
          'this case cuts the connection between transport and broker: pass `faults` to runContractSuite (e.g. tcpFaults from @msgkit/testkit)',
        )
      }
      const messaging = await faults.createMessaging(messagingOptions)
      opened.push(messaging)
      return messaging
    },
    topic: () => `t-${randomUUID()}`,
    group: (label) => `g-${label}-${randomUUID().slice(0, 8)}`,
    async cleanup() {
      const toClose = opened
      opened = []
      const failures: string[] = []
      await Promise.all(
        toClose.map(async (messaging) => {
          const outcome = await settleWithin(messaging.close({ timeoutMs: 2_000 }), 15_000)
          if (outcome.status === 'timeout') failures.push('close() did not settle within 15 s')
          else if (outcome.status === 'rejected')
            failures.push(`close() rejected: ${describeError(outcome.reason)}`)
        }),
      )
      if (failures.length > 0) throw new Error(`cleanup: ${failures.join('; ')}`)
    },
  }
}

type Settled<T> =
  | { status: 'fulfilled'; value: T; ms: number }
  | { status: 'rejected'; reason: unknown; ms: number }
  | { status: 'timeout'; ms: number }

/** Settle a promise, or report that it did not settle within `ms` (never hangs the test). */
export async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<Settled<T>> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms)
  })
  try {
    const outcome = await Promise.race([
      promise.then(
        (value) => ({ status: 'fulfilled' as const, value }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      ),
      timeout,
    ])
    const elapsed = performance.now() - started
    return outcome === 'timeout' ? { status: 'timeout', ms: elapsed } : { ...outcome, ms: elapsed }
  } finally {
    clearTimeout(timer)
  }
}

/** Assert `promise` rejects with a MsgkitError of `code` within `withinMs`; returns the error. */
export async function expectRejectsWithCode(
  promise: Promise<unknown>,
  code: string,
  what: string,
  withinMs = 10_000,
): Promise<unknown> {
  const outcome = await settleWithin(promise, withinMs)
  if (outcome.status === 'timeout') throw new Error(`${what}: did not settle within ${withinMs} ms`)
  if (outcome.status === 'fulfilled') {
    // close what we were given by mistake so it does not leak
    const value = outcome.value as { close?: () => Promise<unknown> } | undefined
    await value?.close?.().catch(() => {})
    throw new Error(`${what}: expected a rejection with ${code}, but it resolved`)
  }
  const reason = outcome.reason
  expect(isMsgkitError(reason), `${what}: rejection is a MsgkitError (got ${describeError(reason)})`).toBe(
    true,
  )
  expect((reason as { code: string }).code, `${what}: error code`).toBe(code)
  return reason
}

/** A capability that is off must fail loudly: the call that needs it rejects with CAPABILITY_UNSUPPORTED. */
export async function expectUnsupported(
  t: TestContext,
  capability: keyof Capabilities,
  call: Promise<unknown>,
  what: string,
): Promise<void> {
  await expectRejectsWithCode(
    call,
    ErrorCodes.CAPABILITY_UNSUPPORTED,
    `${what} (capability ${capability} off)`,
  )
  await report(
    t,
    `capability ${capability} is off: asserted ${what} rejects with MSGKIT_CAPABILITY_UNSUPPORTED`,
  )
}

/**
 * Gate of a [persistence] case: true when persistence is on; when off, asserts
 * provision(topic, group) fails loudly and returns false (the case ends there).
 */
export async function persistenceOn(
  t: TestContext,
  messaging: Messaging,
  topic: string,
  group: string,
): Promise<boolean> {
  if (messaging.capabilities.persistence) return true
  await expectUnsupported(t, 'persistence', messaging.provision(topic, group), 'provision(topic, group)')
  return false
}

/**
 * Gate of an [orderedKeys] case: true when orderedKeys is on; when off, asserts an ordered
 * subscription fails loudly and returns false (the case ends there).
 */
export async function orderedKeysOn(
  t: TestContext,
  messaging: Messaging,
  topic: string,
  group: string,
): Promise<boolean> {
  if (messaging.capabilities.orderedKeys) return true
  await expectUnsupported(
    t,
    'orderedKeys',
    messaging.subscribe(topic, { group, ordered: true, concurrency: 4 }, () => {}),
    'subscribe with ordered: true',
  )
  return false
}

/**
 * Gate of a [deadLetter] case: with deadLetter on, a spy on the group's dead letters
 * (see {@link subscribeDeadLetters}); off, asserts subscribing with deadLetter: true fails
 * loudly and returns undefined (the case ends there).
 */
export async function deadLetterSpy(
  t: TestContext,
  messaging: Messaging,
  topic: string | Topic,
  group: string,
): Promise<HandlerSpy<unknown> | undefined> {
  if (!messaging.capabilities.deadLetter) {
    await expectUnsupported(
      t,
      'deadLetter',
      messaging.subscribe(topic, { group, deadLetter: true }, () => {}),
      'subscribe with deadLetter: true',
    )
    return undefined
  }
  return subscribeDeadLetters(messaging, typeof topic === 'string' ? topic : topic.name, group)
}

/** A spy subscribed to where `group`'s dead letters of `topic` go: `<topic>.<group>.dlq`. */
export async function subscribeDeadLetters(
  messaging: Messaging,
  topic: string,
  group: string,
): Promise<HandlerSpy<unknown>> {
  const dead = createHandlerSpy()
  await messaging.subscribe(`${topic}.${group}.dlq`, { group: 'dlq' }, dead.handler)
  return dead
}

/** Print and attach a note to the test (duplicates, counts, which branch of a gated case ran). */
export async function report(t: TestContext, message: string): Promise<void> {
  console.log(`[msgkit contract] ${t.task.name}: ${message}`)
  await t.annotate(message, 'notice')
}

/** One-line description of an unknown error. */
export function describeError(error: unknown): string {
  if (isMsgkitError(error)) return `${error.name} ${error.code}: ${error.message}`
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

export const utf8 = new TextEncoder()

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export function randomPayload(size: number): Uint8Array {
  return new Uint8Array(randomBytes(size))
}

/** Byte-equality of a received body with the bytes sent; the body must be a Uint8Array. */
export function expectBytes(received: unknown, sent: Uint8Array, what: string): void {
  expect(received instanceof Uint8Array, `${what}: body is a Uint8Array`).toBe(true)
  const bytes = received as Uint8Array
  expect(bytes.byteLength, `${what}: body length`).toBe(sent.byteLength)
  expect(sha256(bytes), `${what}: body sha256`).toBe(sha256(sent))
}

/**
 * The bytes a foreign producer sent, compared with a body however core chose to surface it:
 * bytes as bytes, text as text, JSON as its value.
 */
export function sameContent(received: unknown, sent: Uint8Array): boolean {
  if (received instanceof Uint8Array) return sha256(received) === sha256(sent)
  const text = new TextDecoder().decode(sent)
  if (typeof received === 'string') return received === text
  try {
    return isDeepStrictEqual(received, JSON.parse(text))
  } catch {
    return false
  }
}

/** Header names a broker or msgkit keeps for itself; none may reach `message.headers`. */
const INTERNAL_HEADER = [
  /^msgkit-/i,
  /^x-death$/i,
  /^x-delivery-count$/i,
  /^x-first-death-/i,
  /^x-last-death-/i,
  /^x-received-from$/i,
  /^x-delay$/i,
  /^x-retry/i,
  /^JMS/i,
  /^AMQ_/i,
  /^_AMQ/i,
  /^(message-id|destination|subscription|ack|redelivered|expires|priority|persistent|receipt|content-length)$/i,
  /^(ApproximateReceiveCount|ApproximateFirstReceiveTimestamp|SentTimestamp|SenderId)$/i,
  /^(MessageGroupId|MessageDeduplicationId|SequenceNumber|AWSTraceHeader)$/i,
]

/** Names in `headers` that belong to the broker or to msgkit, not to the user. */
export function internalHeaderNames(headers: Headers): string[] {
  return Object.keys(headers).filter((name) => INTERNAL_HEADER.some((pattern) => pattern.test(name)))
}

/** Check a received message carries exactly the user's headers and nothing internal. */
export function expectUserHeaders(message: Message<unknown>, sent: Headers, what: string): void {
  expect(internalHeaderNames(message.headers), `${what}: broker/msgkit headers leaked`).toEqual([])
  expect(message.headers, `${what}: headers`).toEqual(sent)
}

/** `received` holds exactly `sent`, each once (order aside): no loss, no duplicate, nothing foreign. */
export function expectExactly(
  received: ReadonlyArray<string>,
  sent: ReadonlyArray<string>,
  what: string,
): void {
  expect([...received].sort(), `${what}: received ids, each once`).toEqual([...sent].sort())
}

/** Count of ids seen more than once, and the set of distinct ids. */
export function countDuplicates(ids: Iterable<string>): { unique: Set<string>; duplicates: number } {
  const unique = new Set<string>()
  let duplicates = 0
  for (const id of ids) {
    if (unique.has(id)) duplicates++
    else unique.add(id)
  }
  return { unique, duplicates }
}

/** Ids of `expected` not in `received`, for readable failures. */
function missing(expected: Iterable<string>, received: Set<string>): string[] {
  return [...expected].filter((id) => !received.has(id))
}

/** Wait until every id in `expected` was received; fails listing a few missing ones. */
export async function waitForIds(
  received: () => Iterable<string>,
  expected: ReadonlyArray<string>,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<void> {
  await waitFor(
    () => {
      const seen = new Set(received())
      const absent = missing(expected, seen)
      if (absent.length > 0)
        throw new Error(`${absent.length}/${expected.length} missing, e.g. ${absent.slice(0, 3)}`)
      return true
    },
    { timeoutMs, intervalMs: 25, message: what },
  )
}

/**
 * Attach handlers at once (a promise awaited later must not count as an unhandled rejection)
 * and settle like Promise.allSettled does.
 */
export function reflect<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return promise.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason }),
  )
}

/** Run `count` tasks with at most `parallel` of them at once. */
export async function inParallel<T>(
  count: number,
  parallel: number,
  task: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++
      results[index] = await task(index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker))
  return results
}

/**
 * After a test's consumers are done, nothing may be left for the group: the probe's
 * pendingCount when given; otherwise (with persistence) a new member of the group gets nothing.
 */
export async function expectGroupDrained(
  kit: SuiteKit,
  t: TestContext,
  topic: string,
  group: string,
  ignoreIds: ReadonlySet<string> = new Set(),
): Promise<void> {
  const pendingCount = kit.options.probe.pendingCount
  if (pendingCount) {
    await waitFor(async () => (await pendingCount(topic, group)) === 0, {
      timeoutMs: WAIT_MS,
      message: `pendingCount(${topic}, ${group}) to reach 0`,
    })
    return
  }
  const messaging = await kit.open()
  if (!messaging.capabilities.persistence) {
    await report(t, 'drain not checked: no probe.pendingCount and no persistence')
    return
  }
  const seen: string[] = []
  await messaging.subscribe(topic, { group }, (message) => {
    if (!ignoreIds.has(message.id)) seen.push(message.id)
  })
  await sleep(QUIET_MS * 2)
  expect(seen, `a new member of group ${group} got messages that should have been acked`).toEqual([])
}

/** Count live I/O handles and timers, to see that closing released them. */
export function liveHandleCount(): number {
  const kinds = new Set([
    'TCPSocketWrap',
    'TCPWrap',
    'TLSWrap',
    'PipeWrap',
    'UDPWrap',
    'Timeout',
    'Immediate',
  ])
  return process.getActiveResourcesInfo().filter((kind) => kinds.has(kind)).length
}

/** Wait until sockets/timers are back to `before`: closing must release what it opened. */
export async function expectHandlesReleased(before: number, what: string): Promise<void> {
  try {
    await waitFor(() => liveHandleCount() <= before, { timeoutMs: 10_000 })
  } catch {
    throw new Error(
      `${what}: ${liveHandleCount()} live sockets/timers, ${before} before (${process.getActiveResourcesInfo().join(', ')})`,
    )
  }
}

/** Record process-level unhandled rejections / uncaught exceptions while `body` runs. */
export async function watchProcessErrors<T>(body: (errors: unknown[]) => Promise<T>): Promise<T> {
  const errors: unknown[] = []
  const onError = (error: unknown): void => {
    errors.push(error)
  }
  process.on('unhandledRejection', onError)
  process.on('uncaughtException', onError)
  try {
    return await body(errors)
  } finally {
    process.off('unhandledRejection', onError)
    process.off('uncaughtException', onError)
  }
}
