/** Prints a bench result as Markdown tables (paste-able into bench/README.md). */
import { type BenchResult, format } from './harness.js'

const pct = (n: number): string => `${n >= 0 ? '+' : ''}${(n * 100).toFixed(0)}%`

/** The environment line every table starts with. */
export function environmentLine(): string {
  return `node ${process.version}, ${process.platform}/${process.arch}, ${new Date().toISOString()}`
}

/** Markdown for one bench: variants (median, min–max, spread) and msgkit/raw ratios. */
export function renderResult(result: BenchResult): string {
  const { definition } = result
  const lines: string[] = []
  lines.push(`### ${definition.name}: ${definition.title}`, '')
  const { load } = result
  lines.push(
    `${environmentLine()}, ${load.cpus} CPUs, load average ${load.before.toFixed(2)} before / ${load.after.toFixed(2)} after; ${definition.rounds} round${definition.rounds === 1 ? '' : 's'} after a warm-up`,
    '',
  )
  for (const d of definition.details) lines.push(`- ${d}`)
  lines.push('', '| variant | median | min – max | spread |', '|---|--:|--:|--:|')
  for (const m of result.metrics) {
    const unit = m.unit ?? 'msg/s'
    const spread = m.median > 0 ? (m.max - m.min) / m.median : Number.NaN
    lines.push(
      `| ${m.label} | ${format(m.median)} ${unit} | ${format(m.min)} – ${format(m.max)} | ${Number.isFinite(spread) ? pct(spread).replace('+', '') : '—'} |`,
    )
  }
  if (result.ratios.length > 0) {
    lines.push('', '| ratio (per round, then median) | median | min – max |', '|---|--:|--:|')
    for (const r of result.ratios)
      lines.push(`| ${r.label} | **${r.median.toFixed(2)}** | ${r.min.toFixed(2)} – ${r.max.toFixed(2)} |`)
  }
  lines.push('', '<sub>spread = (max − min) / median across rounds; a ratio > 1 means msgkit is faster</sub>')
  return lines.join('\n')
}
