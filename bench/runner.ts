/**
 * The parent side: runs a plan's scenarios round by round, every variant in a fresh child process
 * (cell.ts), the order rotated per round (a latency scenario's variants run at the same time);
 * then medians and per-round ratios.
 */
import { spawn } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type CellArgs,
  type CellResult,
  type Comparison,
  type Plan,
  progress,
  type Scenario,
  type Settings,
  type Summary,
  summarise,
  type Variant,
} from './harness.js'

const here = dirname(fileURLToPath(import.meta.url))
/** A cell that takes longer than this is stuck. */
const CELL_TIMEOUT_MS = 15 * 60_000

export interface VariantResult extends Variant {
  cells: CellResult[]
  msgsPerSec: Summary
  p50Ms?: Summary
  p99Ms?: Summary
  rssMb: Summary
  toFirstMs?: Summary
  cpuUsPerMsg?: Summary
}

export interface ComparisonResult extends Comparison, Summary {}

export interface ScenarioResult {
  scenario: Scenario
  rounds: number
  variants: VariantResult[]
  comparisons: ComparisonResult[]
  /** 1-minute load average before and after the scenario */
  load: { before: number; after: number }
}

export interface PlanResult {
  module: string
  plan: Plan
  settings: Settings
  scenarios: ScenarioResult[]
  load: { before: number; after: number; cpus: number }
  startedAt: string
}

/** Runs one cell in a child process and returns what it measured. */
export function runCell(module: string, key: string, args: CellArgs): Promise<CellResult> {
  return new Promise((resolve, reject) => {
    // msgkit runs from its build (dist): tsx transforms with esbuild's keepNames, which wraps every
    // function it creates in __name(): that alone doubled msgkit's CPU per message on memory://.
    // BENCH_SOURCE=1 runs the TypeScript sources instead (quicker to iterate, slower to measure).
    const source = process.env.BENCH_SOURCE === '1' ? ['--conditions=@msgkit/source'] : []
    const child = spawn(
      process.execPath,
      [...source, '--import', 'tsx', '--expose-gc', 'cell.ts', module, key, JSON.stringify(args)],
      { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), CELL_TIMEOUT_MS)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const line = out.split('\n').find((l) => l.startsWith('BENCH-CELL '))
      if (code === 0 && line) return resolve(JSON.parse(line.slice('BENCH-CELL '.length)) as CellResult)
      reject(
        new Error(
          `${module} ${key} failed (${signal ? `killed by ${signal}${signal === 'SIGKILL' ? `, over ${CELL_TIMEOUT_MS / 60_000} min` : ''}` : `exit code ${code}`}); its error is above.${out.trim() ? ` Output: ${out.trim().slice(-500)}` : ''}`,
        ),
      )
    })
  })
}

const metric = (cell: CellResult, of: Comparison['of'] = 'msgsPerSec'): number | undefined => cell[of]

/** Runs every scenario of a plan; cleans up in the end, also after a failure. */
export async function runPlan(module: string, plan: Plan, settings: Settings): Promise<PlanResult> {
  const loadBefore = loadavg()[0]!
  const startedAt = new Date().toISOString()
  const scenarios: ScenarioResult[] = []
  try {
    // BENCH_SCENARIOS=publish,latency runs only those
    const only = process.env.BENCH_SCENARIOS?.split(',').filter(Boolean)
    for (const scenario of plan.scenarios) {
      if (only && !only.includes(scenario.id)) continue
      scenarios.push(await runScenario(module, plan, scenario, settings))
    }
  } finally {
    progress(`${plan.name}: cleaning up`)
    await plan.cleanup()
  }
  return {
    module,
    plan,
    settings,
    scenarios,
    load: { before: loadBefore, after: loadavg()[0]!, cpus: cpus().length },
    startedAt,
  }
}

async function runScenario(
  module: string,
  plan: Plan,
  scenario: Scenario,
  settings: Settings,
): Promise<ScenarioResult> {
  const before = loadavg()[0]!
  const rounds: Array<Record<string, CellResult>> = []
  for (let r = 0; r < settings.rounds; r++) {
    const label = `r${r + 1}`
    const order = scenario.variants.map((_, i) => scenario.variants[(i + r) % scenario.variants.length]!)
    const values: Record<string, CellResult> = {}
    const cell = async (variant: Variant, args: Record<string, unknown>): Promise<void> => {
      try {
        values[variant.id] = await runCell(module, `${scenario.id}/${variant.id}`, {
          messages: scenario.messages,
          warmup: warmupOf(scenario, settings),
          bytes: scenario.bytes,
          ...args,
        })
      } finally {
        await scenario.done?.(variant.id, label)
      }
      const c = values[variant.id]!
      progress(
        `    ${variant.id}: ${Math.round(c.msgsPerSec).toLocaleString('en-US')} msg/s${c.p99Ms === undefined ? '' : `, p50 ${c.p50Ms?.toFixed(2)} ms, p99 ${c.p99Ms.toFixed(2)} ms`}, peak RSS ${c.rssMb.toFixed(0)} MB`,
      )
    }
    if (scenario.kind === 'latency') {
      // at a fixed, moderate rate the variants run at the same time: a stall of the broker or the
      // machine (tens of ms, a few per minute here) then lands on all of them, not on whichever ran
      const prepared: Array<[Variant, Record<string, unknown>]> = []
      for (const variant of order)
        prepared.push([variant, (await scenario.prepare?.(variant.id, label)) ?? {}])
      progress(
        `${plan.name} ${scenario.id} ${label}/${settings.rounds}: ${order.map((v) => v.id).join(' + ')} at the same time (${scenario.messages} messages each)`,
      )
      const outcomes = await Promise.allSettled(prepared.map(([variant, args]) => cell(variant, args)))
      for (const o of outcomes) if (o.status === 'rejected') throw o.reason
    } else {
      for (const variant of order) {
        const args = (await scenario.prepare?.(variant.id, label)) ?? {}
        progress(
          `${plan.name} ${scenario.id} ${label}/${settings.rounds}: ${variant.id} (${scenario.messages} messages)`,
        )
        await cell(variant, args)
      }
    }
    rounds.push(values)
  }
  const summaryOf = (id: string, of: keyof CellResult): Summary | undefined => {
    const samples = rounds.map((v) => v[id]?.[of]).filter((n): n is number => n !== undefined)
    return samples.length > 0 ? summarise(samples) : undefined
  }
  const variants: VariantResult[] = scenario.variants.map((v) => {
    const result: VariantResult = {
      ...v,
      cells: rounds.map((r) => r[v.id]!).filter(Boolean),
      msgsPerSec: summaryOf(v.id, 'msgsPerSec')!,
      rssMb: summaryOf(v.id, 'rssMb')!,
    }
    for (const of of ['p50Ms', 'p99Ms', 'toFirstMs', 'cpuUsPerMsg'] as const) {
      const s = summaryOf(v.id, of)
      if (s) result[of] = s
    }
    return result
  })
  const comparisons = scenario.comparisons.map((c) => ({
    ...c,
    ...summarise(
      rounds
        .map((v) => {
          const a = v[c.a] && metric(v[c.a]!, c.of)
          const b = v[c.b] && metric(v[c.b]!, c.of)
          return a !== undefined && b !== undefined && b > 0 ? a / b : undefined
        })
        .filter((n): n is number => n !== undefined),
    ),
  }))
  return { scenario, rounds: rounds.length, variants, comparisons, load: { before, after: loadavg()[0]! } }
}

function warmupOf(scenario: Scenario, settings: Settings): number {
  if (settings.smoke) return Math.min(50, Math.floor(scenario.messages / 4))
  return scenario.warmup ?? Math.min(2_000, Math.floor(scenario.messages / 5))
}
