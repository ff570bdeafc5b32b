/** `msgkit provision <topic…> --group G…`: make every (topic, group) pair's storage exist (deploy step). */
import { connect } from '../connect.js'
import { type ExitCode, ExitCodes } from '../exit-codes.js'
import type { CommandContext } from './context.js'

export async function provision(topics: string[], groups: string[], ctx: CommandContext): Promise<ExitCode> {
  const { output } = ctx
  const { messaging } = await connect(ctx.options)
  const done: Array<{ topic: string; group: string }> = []
  try {
    for (const topic of topics)
      for (const group of groups) {
        if (ctx.signal.aborted) return ExitCodes.interrupted
        await messaging.provision(topic, group)
        done.push({ topic, group })
        output.line(`provisioned group ${group} on ${topic}`)
      }
    output.record({ provisioned: done })
    return ExitCodes.ok
  } finally {
    await messaging.close({ timeoutMs: 5_000 })
  }
}
