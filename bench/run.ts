/** pnpm bench [memory] — prints throughput and the msgkit/raw ratio measured in the same run. */
import { benchMemory } from './memory.js'

const which = process.argv[2] ?? 'memory'
if (which !== 'memory') {
  console.error(`unknown bench "${which}" (known: memory)`)
  process.exit(2)
}
console.log(`bench ${which}: node ${process.version}, ${new Date().toISOString()}`)
const [raw, msgkit] = await benchMemory(Number(process.env.BENCH_MESSAGES ?? 50_000))
for (const r of [raw, msgkit])
  if (r)
    console.log(
      `  ${r.name.padEnd(48)} ${String(r.perSecond).padStart(8)} msg/s  (${r.messages} in ${r.ms.toFixed(0)} ms)`,
    )
if (raw && msgkit) console.log(`  ratio msgkit / raw: ${(msgkit.perSecond / raw.perSecond).toFixed(2)}`)
