/**
 * One cell: one variant of one scenario, in a process of its own (started by runner.ts), so its
 * peak RSS and heap are its own. Prints one `BENCH-CELL {json}` line and exits.
 *
 *   node --conditions=@msgkit/source --import tsx cell.ts <module> <scenario/variant> '<args json>'
 */
import { type BenchModule, type CellArgs, type CellResult, percentile, perSecond } from './harness.js'

const [moduleName, key, argsJson] = process.argv.slice(2)
const mod = (await import(`./${moduleName}.ts`)) as { bench: BenchModule }
const cell = mod.bench.cells[key ?? '']
if (!cell) {
  console.error(
    `cell.ts: ${moduleName} has no cell "${key}" (known: ${Object.keys(mod.bench.cells).join(', ')})`,
  )
  process.exit(2)
}
const measured = await cell(JSON.parse(argsJson ?? '{}') as CellArgs)
const result: CellResult = {
  msgsPerSec: perSecond(measured.messages, measured.ms),
  rssMb: process.resourceUsage().maxRSS / 1024,
}
if (measured.latencies && measured.latencies.length > 0) {
  result.p50Ms = percentile(measured.latencies, 50)
  result.p99Ms = percentile(measured.latencies, 99)
}
if (measured.toFirstMs !== undefined && Number.isFinite(measured.toFirstMs))
  result.toFirstMs = measured.toFirstMs
if (measured.cpuMs !== undefined && Number.isFinite(measured.cpuMs))
  result.cpuUsPerMsg = (measured.cpuMs * 1000) / measured.messages
if (measured.extra) result.extra = measured.extra
process.stdout.write(`BENCH-CELL ${JSON.stringify(result)}\n`)
// whatever a client library left open (timers, sockets) must not keep the cell alive
process.exit(0)
