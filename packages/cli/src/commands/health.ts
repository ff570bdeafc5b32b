/** `msgkit health`: connect, report status and capabilities, time one publish → delivery round trip. */
import { randomBytes, randomUUID } from 'node:crypto'
import type { Capabilities, Messaging } from '@msgkit/core'
import { connect, shownUrl } from '../connect.js'
import { type ExitCode, ExitCodes, usage } from '../exit-codes.js'
import { bytes, duration } from '../output.js'
import type { CommandContext } from './context.js'

export interface HealthOptions {
  roundTrip: boolean
  timeout: number
}

/** The topic health checks publish to; one group per check (temporary where the broker has them). */
export const HEALTH_TOPIC = 'msgkit.health'

interface RoundTrip {
  ok: boolean
  topic: string
  group: string
  temporary: boolean
  /** publish until the broker confirmed, ms */
  confirmMs?: number
  /** publish until the message was delivered back, ms */
  deliveredMs?: number
  error?: string
}

async function roundTrip(messaging: Messaging, timeoutMs: number): Promise<RoundTrip> {
  const temporary = messaging.capabilities.temporaryGroups === true
  const group = temporary ? `msgkit-health-${randomBytes(4).toString('hex')}` : 'msgkit-health'
  const result: RoundTrip = { ok: false, topic: HEALTH_TOPIC, group, temporary }
  const probe = randomUUID()
  let delivered!: (at: number) => void
  const arrival = new Promise<number>((resolve) => (delivered = resolve))
  // a shared group where there are no temporary ones: other checks' messages are acked and ignored
  if (!temporary) await messaging.provision(HEALTH_TOPIC, group)
  const subscription = await messaging.subscribe(
    HEALTH_TOPIC,
    { group, retry: false, deadLetter: false, ...(temporary ? { temporary: true } : {}) },
    (m) => {
      if (m.id === probe) delivered(performance.now())
    },
  )
  let timer: NodeJS.Timeout | undefined
  try {
    const started = performance.now()
    await messaging.publish(HEALTH_TOPIC, { probe, at: Date.now() }, { id: probe, timeoutMs })
    result.confirmMs = performance.now() - started
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, timeoutMs - (result.confirmMs ?? 0)))
    })
    const at = await Promise.race([arrival, timedOut])
    if (at === undefined)
      result.error = `published and confirmed, but not delivered back within ${timeoutMs} ms`
    else {
      result.deliveredMs = at - started
      result.ok = true
    }
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error)
  } finally {
    clearTimeout(timer)
    await subscription.close({ timeoutMs: 5_000 })
  }
  return result
}

const yesNo = (v: boolean | undefined): string => (v ? 'yes' : 'no')

/** The capabilities in words, one line each. */
export function describeCapabilities(c: Capabilities): Array<[string, string]> {
  return [
    ['persistence', yesNo(c.persistence)],
    ['fan-out', yesNo(c.fanout)],
    ['ordered keys', c.orderedKeys === false ? 'no' : `per ${c.orderedKeys}`],
    ['delayed delivery', c.delay === false ? 'no' : `up to ${duration(c.delay.maxMs)}`],
    ['patterns', yesNo(c.patterns)],
    ['max message', bytes(c.maxMessageBytes)],
    ['max headers', bytes(c.maxHeaderBytes)],
    ['dead letters', yesNo(c.deadLetter)],
    ['delivery count', c.deliveryCount],
    ['unroutable detection', yesNo(c.unroutable)],
    ['temporary groups (tail)', yesNo(c.temporaryGroups)],
    ['replay (tail --from-start)', yesNo(c.replay)],
    ['send to one group (dlq redrive)', yesNo(c.sendToGroup)],
    [
      'browse (dlq list/show)',
      c.browse ? (c.browse === 'exact' ? 'yes' : 'yes, counts as a delivery') : 'no',
    ],
  ]
}

export async function health(options: HealthOptions, ctx: CommandContext): Promise<ExitCode> {
  const { output } = ctx
  if (!Number.isInteger(options.timeout) || options.timeout < 100)
    throw usage('--timeout must be at least 100 (ms).')
  const { messaging, url, connectMs } = await connect(ctx.options)
  try {
    const report = messaging.health()
    const trip = options.roundTrip ? await roundTrip(messaging, options.timeout) : undefined
    output.record({
      url: shownUrl(url),
      ...report,
      connectMs: Math.round(connectMs * 10) / 10,
      capabilities: messaging.capabilities,
      ...(trip ? { roundTrip: trip } : {}),
    })
    output.line(`url          ${shownUrl(url)}`)
    output.line(`transport    ${report.transport}`)
    output.line(`status       ${report.status} (connected in ${duration(connectMs)})`)
    if (report.lastError) output.line(`last error   ${report.lastError}`)
    if (trip) {
      const how = `topic ${trip.topic}, ${trip.temporary ? 'temporary group' : `group ${trip.group}`}`
      output.line(
        trip.ok
          ? `round trip   confirmed in ${duration(trip.confirmMs ?? 0)}, delivered in ${duration(trip.deliveredMs ?? 0)} (${how})`
          : `round trip   FAILED: ${trip.error} (${how})`,
      )
    }
    output.line('capabilities')
    for (const [name, value] of describeCapabilities(messaging.capabilities))
      output.line(`  ${name.padEnd(32)} ${value}`)
    if (report.status !== 'up') return ExitCodes.connection
    return trip && !trip.ok ? ExitCodes.failed : ExitCodes.ok
  } finally {
    await messaging.close({ timeoutMs: 5_000 })
  }
}
