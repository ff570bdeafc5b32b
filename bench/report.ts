/** Markdown tables for a plan's results (stdout; docs/performance.md is built from latest.json). */
import { format, type Summary } from './harness.js'
import type { PlanResult, ScenarioResult } from './runner.js'

const range = (s: Summary | undefined, unit = ''): string =>
  s ? `${format(s.median)}${unit} (${format(s.min)} – ${format(s.max)})` : '—'

/** The environment line every result starts with. */
export function environmentLine(): string {
  return `node ${process.version}, ${process.platform}/${process.arch}, ${new Date().toISOString()}`
}

/** One scenario: variants (msg/s, latency, RSS) and the per-round ratios. */
export function renderScenario(result: ScenarioResult): string {
  const { scenario } = result
  const lines: string[] = [
    `#### ${scenario.id}: ${scenario.title}`,
    '',
    `${result.rounds} round${result.rounds === 1 ? '' : 's'}, ${scenario.messages.toLocaleString('en-US')} messages per cell; load average ${result.load.before.toFixed(2)} before / ${result.load.after.toFixed(2)} after`,
    '',
  ]
  const latency = result.variants.some((v) => v.p99Ms)
  const toFirst = result.variants.some((v) => v.toFirstMs)
  const cpu = result.variants.some((v) => v.cpuUsPerMsg)
  lines.push(
    `| variant | msg/s median (min – max)${latency ? ' | p50 ms | p99 ms' : ''}${toFirst ? ' | start → first ms' : ''}${cpu ? ' | CPU µs/msg' : ''} | peak RSS MB |`,
    `|---|--:${latency ? '|--:|--:' : ''}${toFirst ? '|--:' : ''}${cpu ? '|--:' : ''}|--:|`,
  )
  for (const v of result.variants) {
    lines.push(
      `| ${v.label} | ${range(v.msgsPerSec)}${latency ? ` | ${range(v.p50Ms)} | ${range(v.p99Ms)}` : ''}${toFirst ? ` | ${range(v.toFirstMs)}` : ''}${cpu ? ` | ${range(v.cpuUsPerMsg)}` : ''} | ${range(v.rssMb)} |`,
    )
  }
  if (result.comparisons.length > 0) {
    lines.push('', '| ratio (per round, then median) | median | min – max |', '|---|--:|--:|')
    for (const c of result.comparisons.filter((x) => Number.isFinite(x.median)))
      lines.push(`| ${c.label} | **${c.median.toFixed(2)}** | ${c.min.toFixed(2)} – ${c.max.toFixed(2)} |`)
  }
  const notes = result.variants.filter((v) => v.note)
  if (notes.length > 0) {
    lines.push('')
    for (const v of notes) lines.push(`- *${v.label}*: ${v.note}`)
  }
  return lines.join('\n')
}

/** A whole plan: title, details, every scenario. */
export function renderPlan(result: PlanResult): string {
  const { plan, load } = result
  const lines = [
    `### ${plan.name}: ${plan.title}${result.settings.smoke ? ' (smoke run: proves the bench works, measures nothing)' : ''}`,
    '',
    `${environmentLine()}, ${load.cpus} CPUs, load average ${load.before.toFixed(2)} before / ${load.after.toFixed(2)} after`,
    '',
    ...plan.details.map((d) => `- ${d}`),
    '',
  ]
  for (const s of result.scenarios) lines.push(renderScenario(s), '')
  lines.push('<sub>a ratio > 1 means msgkit is faster (for RSS and latency: larger)</sub>')
  return lines.join('\n')
}
