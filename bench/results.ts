/**
 * bench/results/latest.json (one entry per transport and scenario, merged across runs: a run of one
 * transport replaces that transport's entries) and what is generated from it: docs/performance.md
 * and its chart, docs/performance-ratios.svg.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type CellResult, format, summarise } from './harness.js'
import type { PlanResult, ScenarioResult, VariantResult } from './runner.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
export const LATEST = join(here, 'results', 'latest.json')
const DOC = join(root, 'docs', 'performance.md')
const CHART = join(root, 'docs', 'performance-ratios.svg')
const ANALYSIS = join(here, 'ANALYSIS.md')
const SOAK = join(here, 'results', 'soak.json')

/** The medians of one variant. */
export interface Figures {
  msgsPerSec: number
  p50Ms?: number
  p99Ms?: number
  rssMb: number
  toFirstMs?: number
  /** CPU time of the client process per message while the clock ran */
  cpuUsPerMsg?: number
  extra?: Record<string, number>
}

export interface Entry {
  transport: string
  scenario: string
  title: string
  kind: 'throughput' | 'latency'
  messages: number
  bytes: number
  msgkit: Figures
  raw: Figures
  /** median over rounds of msgkit ÷ raw msg/s */
  ratio: number
  /** latency scenarios: median over rounds of msgkit − raw (ms) */
  addedMs?: { p50: number; p99: number }
  /** every other variant (raw-wire, ceiling, peers), by id */
  variants: Record<string, Figures & { label: string; role: string; note?: string }>
  comparisons: Array<{ label: string; median: number; min: number; max: number }>
  rounds: number
  load: { before: number; after: number }
  ranAt: string
}

export interface Latest {
  updatedAt: string
  machine: Record<string, string | number>
  transports: Record<string, { title: string; details: string[]; ranAt: string }>
  entries: Entry[]
}

const figures = (v: VariantResult): Figures => {
  const f: Figures = { msgsPerSec: v.msgsPerSec.median, rssMb: v.rssMb.median }
  if (v.p50Ms) f.p50Ms = v.p50Ms.median
  if (v.p99Ms) f.p99Ms = v.p99Ms.median
  if (v.toFirstMs) f.toFirstMs = v.toFirstMs.median
  if (v.cpuUsPerMsg) f.cpuUsPerMsg = v.cpuUsPerMsg.median
  const extras = v.cells.map((c) => c.extra).filter((e): e is Record<string, number> => e !== undefined)
  if (extras.length > 0) {
    f.extra = {}
    for (const k of Object.keys(extras[0]!)) f.extra[k] = summarise(extras.map((e) => e[k]!)).median
  }
  return f
}

/** Median over rounds of f(msgkit cell, raw cell). */
const perRound = (
  msgkit: VariantResult,
  raw: VariantResult,
  f: (a: CellResult, b: CellResult) => number | undefined,
): number => {
  const values: number[] = []
  for (let i = 0; i < Math.min(msgkit.cells.length, raw.cells.length); i++) {
    const v = f(msgkit.cells[i]!, raw.cells[i]!)
    if (v !== undefined && Number.isFinite(v)) values.push(v)
  }
  return summarise(values).median
}

function entryOf(module: string, s: ScenarioResult, ranAt: string): Entry | undefined {
  const msgkit = s.variants.find((v) => v.id === s.scenario.primary.msgkit)
  const raw = s.variants.find((v) => v.id === s.scenario.primary.raw)
  if (!msgkit || !raw) return undefined
  const entry: Entry = {
    transport: module,
    scenario: s.scenario.id,
    title: s.scenario.title,
    kind: s.scenario.kind,
    messages: s.scenario.messages,
    bytes: s.scenario.bytes,
    msgkit: figures(msgkit),
    raw: figures(raw),
    ratio: perRound(msgkit, raw, (a, b) => a.msgsPerSec / b.msgsPerSec),
    variants: {},
    // a comparison without samples (a metric that scenario does not measure) is left out
    comparisons: s.comparisons
      .filter((c) => Number.isFinite(c.median))
      .map((c) => ({ label: c.label, median: c.median, min: c.min, max: c.max })),
    rounds: s.rounds,
    load: s.load,
    ranAt,
  }
  if (s.scenario.kind === 'latency')
    entry.addedMs = {
      p50: perRound(msgkit, raw, (a, b) => (a.p50Ms ?? Number.NaN) - (b.p50Ms ?? Number.NaN)),
      p99: perRound(msgkit, raw, (a, b) => (a.p99Ms ?? Number.NaN) - (b.p99Ms ?? Number.NaN)),
    }
  for (const v of s.variants) {
    if (v === msgkit || v === raw) continue
    entry.variants[v.id] = {
      ...figures(v),
      label: v.label,
      role: v.role,
      ...(v.note ? { note: v.note } : {}),
    }
  }
  return entry
}

function machine(): Record<string, string | number> {
  let os = `${process.platform} ${release()}`
  try {
    const pretty = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]
    if (pretty) os = `${pretty} (kernel ${release()})`
  } catch {}
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    os,
    node: process.version,
    loadAverageAtWrite: Number(loadavg()[0]!.toFixed(2)),
  }
}

/** Merges a run into latest.json (its transport's entries replace the old ones) and regenerates the docs. */
export function record(results: PlanResult[]): Latest {
  const latest: Latest = existsSync(LATEST)
    ? (JSON.parse(readFileSync(LATEST, 'utf8')) as Latest)
    : { updatedAt: '', machine: {}, transports: {}, entries: [] }
  for (const result of results) {
    const entries = result.scenarios
      .map((s) => entryOf(result.module, s, result.startedAt))
      .filter((e): e is Entry => e !== undefined)
    // a re-run scenario keeps its place on the page; a new one goes after the others
    const fresh = new Map(entries.map((e) => [e.scenario, e]))
    latest.entries = latest.entries.map((e) => {
      const replacement = e.transport === result.module ? fresh.get(e.scenario) : undefined
      if (replacement) fresh.delete(e.scenario)
      return replacement ?? e
    })
    latest.entries.push(...fresh.values())
    latest.transports[result.module] = {
      title: result.plan.title,
      details: result.plan.details,
      ranAt: result.startedAt,
    }
  }
  const order = ['memory', 'rabbitmq', 'kafka', 'activemq', 'sqs']
  latest.entries.sort(
    (a, b) => (order.indexOf(a.transport) + 1 || 99) - (order.indexOf(b.transport) + 1 || 99),
  )
  latest.updatedAt = new Date().toISOString()
  latest.machine = machine()
  writeFileSync(LATEST, `${JSON.stringify(latest, null, 2)}\n`)
  regenerate()
  return latest
}

/** docs/performance.md and its chart from latest.json (and soak.json, when a soak ran). */
export function regenerate(): void {
  if (!existsSync(LATEST)) return
  const latest = JSON.parse(readFileSync(LATEST, 'utf8')) as Latest
  writeFileSync(CHART, chart(latest))
  writeFileSync(DOC, page(latest))
}

// ---- targets (issue 14): reported, never asserted ---------------------------------------------

interface Verdict {
  target: string
  value: string
  met: boolean | undefined
}

function verdicts(e: Entry, all: Entry[]): Verdict[] {
  const out: Verdict[] = []
  const rss = e.msgkit.rssMb / e.raw.rssMb
  if (e.kind === 'latency' && e.addedMs) {
    out.push({
      target: 'added p99 ≤ 1 ms',
      value: `${e.addedMs.p99 >= 0 ? '+' : ''}${e.addedMs.p99.toFixed(2)} ms`,
      met: e.addedMs.p99 <= 1,
    })
  } else if (e.transport === 'memory') {
    const ceiling = e.variants.ceiling
    if (ceiling)
      out.push({
        target: '≥ 0.8 of the bare JSON loop',
        value: (e.msgkit.msgsPerSec / ceiling.msgsPerSec).toFixed(2),
        met: e.msgkit.msgsPerSec / ceiling.msgsPerSec >= 0.8,
      })
    if (e.scenario === 'e2e-bytes')
      out.push({
        target: '≥ 500k msg/s',
        value: format(e.msgkit.msgsPerSec),
        met: e.msgkit.msgsPerSec >= 500_000,
      })
    if (e.scenario.startsWith('scale-')) {
      const first = all.find((x) => x.transport === 'memory' && x.scenario === 'scale-10k')
      if (first && first !== e) {
        const f = e.msgkit.msgsPerSec / first.msgkit.msgsPerSec
        out.push({ target: 'flat in N (≥ 0.9 of 10k)', value: f.toFixed(2), met: f >= 0.9 })
      }
    }
  } else {
    out.push({ target: 'msgkit / raw ≥ 0.95', value: e.ratio.toFixed(2), met: e.ratio >= 0.95 })
  }
  if (e.scenario !== 'soak')
    out.push({ target: 'peak RSS ≤ 1.2× raw', value: `${rss.toFixed(2)}×`, met: rss <= 1.2 })
  return out
}

// ---- docs/performance.md -----------------------------------------------------------------------

const mark = (met: boolean | undefined): string => (met === undefined ? '' : met ? '✅' : '❌')

function page(latest: Latest): string {
  const m = latest.machine
  const lines: string[] = [
    '# Performance',
    '',
    '<!-- generated by `pnpm bench` (bench/results.ts) from bench/results/latest.json; edit bench/ANALYSIS.md instead -->',
    '',
    'msgkit is measured against the raw client it runs on, side by side in one run, on the same',
    'broker, with the same guarantees (persistent, confirmed publishing; acknowledged consumption).',
    'Every variant of every round runs in its own process, the order rotates per round, and a ratio',
    'is taken inside a round and then the median over the rounds. The variants of a latency scenario',
    'run at the same time (each at the stated rate), so a stall of the broker or the machine lands on',
    'all of them. Absolute figures describe this machine only; compare ratios. How to run it:',
    '[bench/README.md](../bench/README.md).',
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB RAM, ${m.os}, Node ${m.node}. The brokers`,
    'run on the same host and share its two cores with the bench (and, on the day, with other',
    'engineers running broker test suites: see the load average per scenario).',
    '',
    `Last updated ${latest.updatedAt}.`,
    '',
    '![msgkit ÷ raw per scenario](performance-ratios.svg)',
    '',
    '## Summary',
    '',
    '| transport | scenario | msgkit | raw | msgkit ÷ raw | target | value | met |',
    '|---|---|--:|--:|--:|---|--:|:-:|',
  ]
  for (const e of latest.entries) {
    const vs = verdicts(e, latest.entries)
    const first = vs[0]
    const fig = (f: Figures) =>
      e.kind === 'latency' ? `p99 ${format(f.p99Ms)} ms` : `${format(f.msgsPerSec)} msg/s`
    lines.push(
      `| ${e.transport} | ${e.scenario} | ${fig(e.msgkit)} | ${fig(e.raw)} | ${e.kind === 'latency' ? '—' : e.ratio.toFixed(2)} | ${first?.target ?? ''} | ${first?.value ?? ''} | ${mark(first?.met)} |`,
    )
    for (const v of vs.slice(1)) lines.push(`| | | | | | ${v.target} | ${v.value} | ${mark(v.met)} |`)
  }
  const order = ['memory', 'rabbitmq', 'kafka', 'activemq', 'sqs']
  const rank = (name: string): number => order.indexOf(name) + 1 || 99
  for (const [name, t] of Object.entries(latest.transports).sort(([a], [b]) => rank(a) - rank(b))) {
    lines.push('', `## ${name}: ${t.title}`, '', `Ran ${t.ranAt}.`, '')
    for (const d of t.details) lines.push(`- ${d}`)
    for (const e of latest.entries.filter((x) => x.transport === name)) {
      lines.push(
        '',
        `### ${e.scenario}: ${e.title}`,
        '',
        `${e.rounds} round(s), ${e.messages.toLocaleString('en-US')} messages per cell, ${e.bytes}-byte bodies; load average ${e.load.before.toFixed(2)} before / ${e.load.after.toFixed(2)} after.`,
        '',
        '| variant | msg/s | p50 ms | p99 ms | start → first ms | CPU µs/msg | peak RSS MB |',
        '|---|--:|--:|--:|--:|--:|--:|',
      )
      const row = (label: string, f: Figures) =>
        `| ${label} | ${format(f.msgsPerSec)} | ${format(f.p50Ms)} | ${format(f.p99Ms)} | ${format(f.toFirstMs)} | ${format(f.cpuUsPerMsg)} | ${format(f.rssMb)} |`
      lines.push(row('**msgkit**', e.msgkit), row('**raw**', e.raw))
      for (const v of Object.values(e.variants)) lines.push(row(v.label, v))
      if (e.comparisons.length > 0) {
        lines.push('', '| ratio (per round, then median) | median | min – max |', '|---|--:|--:|')
        for (const c of e.comparisons.filter((x) => typeof x.median === 'number'))
          lines.push(
            `| ${c.label} | **${c.median.toFixed(2)}** | ${c.min.toFixed(2)} – ${c.max.toFixed(2)} |`,
          )
      }
      const notes = Object.values(e.variants).filter((v) => v.note)
      if (notes.length > 0) {
        lines.push('')
        for (const v of notes) lines.push(`- *${v.label}*: ${v.note}`)
      }
    }
  }
  if (existsSync(SOAK)) lines.push('', ...soakSection(JSON.parse(readFileSync(SOAK, 'utf8')) as Soak))
  if (existsSync(ANALYSIS)) lines.push('', readFileSync(ANALYSIS, 'utf8').trim())
  return `${lines.join('\n')}\n`
}

interface Soak {
  ranAt: string
  url: string
  seconds: number
  rate: number
  bytes: number
  heapAfterGcMb: { secondMinute: number; lastMinute: number; growthPct: number }
  counts: Record<string, number>
  latencyMs: { p50: number; p99: number }
  peakRssMb: number
  samples: Array<{ at: number; heapMb: number; rssMb: number }>
}

function soakSection(s: Soak): string[] {
  const g = s.heapAfterGcMb
  const every = Math.max(1, Math.round(s.samples.length / 12))
  return [
    `## Soak (\`pnpm bench soak\`): ${s.seconds} s at ${s.rate.toLocaleString('en-US')} msg/s on ${s.url}`,
    '',
    `Ran ${s.ranAt}; ${s.bytes}-byte JSON; 5 % of the messages fail once (retried), 0.1 % always (dead-lettered after 3 attempts); the dead-letter topic is consumed.`,
    '',
    `Heap after a full GC: ${g.secondMinute.toFixed(1)} MB in the second minute, ${g.lastMinute.toFixed(1)} MB in the last one: **${g.growthPct >= 0 ? '+' : ''}${g.growthPct.toFixed(1)} %** (target: within 10 %) ${Math.abs(g.growthPct) <= 10 ? '✅' : '❌'}. Peak RSS ${s.peakRssMb.toFixed(0)} MB; publish→handler p50 ${s.latencyMs.p50.toFixed(2)} ms, p99 ${s.latencyMs.p99.toFixed(2)} ms.`,
    '',
    `Counts: ${Object.entries(s.counts)
      .map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`)
      .join(', ')}.`,
    '',
    '| s | heap after GC MB | RSS MB |',
    '|--:|--:|--:|',
    ...s.samples
      .filter((_, i) => i % every === 0 || i === s.samples.length - 1)
      .map((x) => `| ${x.at.toFixed(0)} | ${x.heapMb.toFixed(1)} | ${x.rssMb.toFixed(0)} |`),
  ]
}

// ---- the chart -----------------------------------------------------------------------------------

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Horizontal bars: msgkit ÷ raw per throughput scenario (and the raw-wire and peer lines), 0.95 marked. */
function chart(latest: Latest): string {
  const rows: Array<{ label: string; bars: Array<{ value: number; color: string; name: string }> }> = []
  for (const e of latest.entries) {
    if (e.kind !== 'throughput') continue
    const bars = [{ value: e.ratio, color: '#2b6cb0', name: 'msgkit ÷ raw' }]
    const wire = Object.values(e.variants).find((v) => v.role === 'raw-wire')
    if (wire)
      bars.push({
        value: wire.msgsPerSec / e.raw.msgsPerSec,
        color: '#a0aec0',
        name: 'raw, msgkit wire format ÷ raw',
      })
    for (const p of Object.values(e.variants).filter((v) => v.role === 'peer'))
      bars.push({
        value: p.msgsPerSec / e.raw.msgsPerSec,
        color: '#dd6b20',
        name: `${p.label.split(':')[0]} ÷ raw`,
      })
    const ceiling = Object.values(e.variants).find((v) => v.role === 'ceiling')
    if (ceiling)
      bars.push({
        value: e.msgkit.msgsPerSec / ceiling.msgsPerSec,
        color: '#38a169',
        name: 'msgkit ÷ bare JSON loop',
      })
    rows.push({ label: `${e.transport} ${e.scenario}`, bars })
  }
  const barH = 12
  const gap = 10
  const left = 190
  const width = 760
  const plotW = width - left - 60
  const max = Math.max(1.5, ...rows.flatMap((r) => r.bars.map((b) => Math.min(b.value, 3))))
  const x = (v: number): number => left + (Math.min(v, max) / max) * plotW
  let y = 40
  const parts: string[] = []
  for (const row of rows) {
    const h = row.bars.length * barH
    parts.push(
      `<text x="${left - 8}" y="${y + h / 2 + 4}" text-anchor="end" font-size="12">${xml(row.label)}</text>`,
    )
    row.bars.forEach((b, i) => {
      const by = y + i * barH
      parts.push(
        `<rect x="${left}" y="${by}" width="${Math.max(1, x(b.value) - left).toFixed(1)}" height="${barH - 2}" fill="${b.color}"><title>${xml(b.name)}: ${b.value.toFixed(2)}</title></rect>`,
        `<text x="${(x(b.value) + 4).toFixed(1)}" y="${by + barH - 3}" font-size="10">${b.value.toFixed(2)}</text>`,
      )
    })
    y += h + gap
  }
  const legendItems = [
    ['#2b6cb0', 'msgkit ÷ raw'],
    ['#a0aec0', "raw with msgkit's wire format ÷ raw"],
    ['#dd6b20', 'peer library ÷ raw'],
    ['#38a169', 'msgkit ÷ bare JSON loop (memory)'],
    ['#e53e3e', 'target 0.95'],
  ]
  const height = y + 30 + legendItems.length * 14
  const grid = [0, 0.5, 0.95, 1, 1.5, 2, 2.5, 3]
    .filter((g) => g <= max)
    .map(
      (g) =>
        `<line x1="${x(g)}" y1="30" x2="${x(g)}" y2="${y}" stroke="${g === 0.95 ? '#e53e3e' : '#e2e8f0'}" stroke-dasharray="${g === 0.95 ? '4 3' : ''}"/><text x="${x(g)}" y="${y + 14}" font-size="10" text-anchor="middle">${g}</text>`,
    )
  const legend = legendItems.map(
    ([c, t], i) =>
      `<rect x="${left}" y="${y + 24 + i * 14}" width="10" height="10" fill="${c}"/><text x="${left + 16}" y="${y + 33 + i * 14}" font-size="10">${xml(t!)}</text>`,
  )
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img">
<title>msgkit throughput as a share of the raw client's, per broker and scenario</title>
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="20" font-size="14" font-weight="bold">msgkit ÷ raw client, msg/s (median of per-round ratios; ${xml(String(latest.machine.cores))} cores, ${xml(latest.updatedAt.slice(0, 10))})</text>
${grid.join('\n')}
${parts.join('\n')}
${legend.join('\n')}
</svg>
`
}
