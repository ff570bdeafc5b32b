/** `msgkit tail <topic|pattern>`: print messages as they arrive, as a temporary group by default. */
import { randomBytes } from 'node:crypto'
import { definePattern, ErrorCodes, type Message, MsgkitError, type Subscription } from '@msgkit/core'
import { connect } from '../connect.js'
import { type ExitCode, ExitCodes, usage } from '../exit-codes.js'
import { bodyForJson, bodyForPeople, when } from '../output.js'
import type { CommandContext } from './context.js'

export interface TailOptions {
  group?: string
  fromStart?: boolean
  limit?: number
}

/** A printable message; dead letters carry their envelope too. */
export function messageRecord(m: Message<unknown>) {
  return {
    id: m.id,
    topic: m.topic,
    ...(m.key === undefined ? {} : { key: m.key }),
    headers: m.headers,
    timestamp: m.timestamp,
    attempt: m.attempt,
    redelivered: m.redelivered,
    ...(m.deadLetter ? { deadLetter: m.deadLetter } : {}),
    body: bodyForJson(m.body),
  }
}

function printForPeople(m: Message<unknown>, line: (text: string) => void): void {
  const key = m.key === undefined ? '' : `  key=${m.key}`
  const again = m.redelivered ? ' (redelivered)' : ''
  line(`── ${m.topic}  id=${m.id}${key}  attempt=${m.attempt}${again}  ${when(m.timestamp)}`)
  const headers = Object.entries(m.headers)
  if (headers.length > 0)
    line(`   headers: ${headers.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`)
  if (m.deadLetter) {
    const dl = m.deadLetter
    line(
      `   dead letter: ${dl.reason} after ${dl.attempts} attempt(s) in group ${dl.group}: ${dl.errorName}: ${dl.errorMessage}`,
    )
  }
  line(`   ${bodyForPeople(m.body)}`)
}

export async function tail(target: string, options: TailOptions, ctx: CommandContext): Promise<ExitCode> {
  const { output } = ctx
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1))
    throw usage('--limit must be a positive integer.')
  const isPattern = /[*>]/.test(target)
  const { messaging } = await connect(ctx.options)
  let subscription: Subscription | undefined
  try {
    const temporary = options.group === undefined
    if (temporary && !messaging.capabilities.temporaryGroups)
      throw new MsgkitError(
        ErrorCodes.CAPABILITY_UNSUPPORTED,
        `The ${messaging.transport.name} transport has no temporary groups, so tail cannot read without a group of its own that stays. Pass --group <a-name-of-your-own> (it joins that group and acks what it prints; delete the group with the broker's tools afterwards).`,
        { details: { transport: messaging.transport.name, capability: 'temporaryGroups' } },
      )
    const group = options.group ?? `msgkit-tail-${randomBytes(4).toString('hex')}`
    let seen = 0
    let reachedLimit!: () => void
    const limitReached = new Promise<void>((resolve) => (reachedLimit = resolve))
    let closing!: () => void
    const closingStarted = new Promise<void>((resolve) => (closing = resolve))
    subscription = await messaging.subscribe(
      isPattern ? definePattern(target) : target,
      {
        group,
        ...(temporary ? { temporary: true } : {}),
        ...(options.fromStart ? { fromStart: true } : {}),
        retry: false,
        deadLetter: false,
      },
      async (m, { signal }) => {
        if (options.limit !== undefined && seen >= options.limit) {
          // past --limit (a race with close): never acked, back to the broker when close gives up on it
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
        }
        seen += 1
        output.record(messageRecord(m))
        if (!output.json) printForPeople(m, (text) => output.line(text))
        if (seen === options.limit) {
          reachedLimit()
          await closingStarted // intake stops before this one is acked: nothing past --limit is taken
        }
      },
    )
    output.note(
      temporary
        ? `tailing ${target} as temporary group ${group} (removed on exit); Ctrl-C to stop`
        : `tailing ${target} as a member of group ${group}: messages printed are acked (taken from that group); Ctrl-C to stop`,
    )
    const aborted = new Promise<void>((resolve) =>
      ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
    )
    // an in-process broker (memory://) holds no socket open: keep the process alive while tailing
    const keepAlive = setInterval(() => {}, 60_000)
    await Promise.race([aborted, limitReached]).finally(() => clearInterval(keepAlive))
    const closed = subscription.close({ timeoutMs: 5_000 })
    closing()
    await closed
    output.note(`${seen} message(s) shown.`)
    return ExitCodes.ok
  } finally {
    await messaging.close({ timeoutMs: 5_000 })
  }
}
