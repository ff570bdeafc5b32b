/**
 * pnpm bench [memory|rabbitmq|kafka|activemq|sqs|all|soak] [--smoke]
 *
 * Raw clients, msgkit (and peers) side by side in one run; tables on stdout, progress on stderr.
 * A full run merges its results into bench/results/latest.json and regenerates docs/performance.md.
 * `--smoke` (pnpm bench:smoke): a few hundred messages per cell, one round, nothing written: it only
 * proves every bench still works. A bench whose broker is not running fails (exit code 1) and says
 * how to start it; none is skipped silently.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BenchModule, BrokerUnreachableError, envInt, type Settings } from './harness.js'
import { environmentLine, renderPlan } from './report.js'
import { record, regenerate } from './results.js'
import { type PlanResult, runPlan } from './runner.js'

const here = dirname(fileURLToPath(import.meta.url))
/** every bench there is, in run order; activemq and sqs join once their files exist */
const KNOWN = ['memory', 'rabbitmq', 'kafka', 'activemq', 'sqs']
const available = KNOWN.filter((name) => existsSync(join(here, `${name}.ts`)))

const argv = process.argv.slice(2).filter((a) => a !== '--')
const smoke = argv.includes('--smoke')
const names = argv.filter((a) => !a.startsWith('--'))
const which = names.length === 0 ? [smoke ? 'all' : 'memory'] : names
const selected = which.flatMap((w) => (w === 'all' ? available : [w]))
const unknown = selected.filter((n) => n !== 'soak' && !available.includes(n))
if (unknown.length > 0) {
  console.error(
    `bench: no bench called ${unknown.join(', ')} (there are: ${available.join(', ')}, all, soak${
      KNOWN.filter((k) => !available.includes(k)).length > 0
        ? `; not written yet: ${KNOWN.filter((k) => !available.includes(k)).join(', ')}`
        : ''
    })`,
  )
  process.exit(2)
}
if (smoke) {
  const missing = KNOWN.filter((k) => !available.includes(k))
  if (missing.length > 0 && which.includes('all'))
    console.error(
      `bench: no bench file yet for ${missing.join(', ')} (bench/<name>.ts); not part of this smoke`,
    )
}

/** The newest modification time of the .ts files under `dir` (0 when there are none). */
function newest(dir: string): number {
  if (!existsSync(dir)) return 0
  let t = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) t = Math.max(t, newest(path))
    else if (entry.name.endsWith('.ts')) t = Math.max(t, statSync(path).mtimeMs)
  }
  return t
}

// the benches measure msgkit's build (see runner.ts): build it when a package's dist is older than its src
if (process.env.BENCH_SOURCE !== '1') {
  const packages = join(here, '..', 'packages')
  const stale = readdirSync(packages).filter((p) => {
    const dist = join(packages, p, 'dist', 'index.js')
    const src = join(packages, p, 'src')
    return existsSync(src) && (!existsSync(dist) || statSync(dist).mtimeMs < newest(src))
  })
  if (stale.length > 0) {
    console.error(`  … building msgkit first (pnpm build): dist is older than src in ${stale.join(', ')}`)
    const build = spawnSync('pnpm', ['build'], {
      cwd: join(here, '..'),
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    const missing = stale.filter((p) => !existsSync(join(packages, p, 'dist', 'index.js')))
    if (build.status !== 0 && missing.length > 0) {
      console.error(
        `bench: pnpm build failed and ${missing.join(', ')} has no dist: fix it, or use BENCH_SOURCE=1`,
      )
      process.exit(1)
    }
    if (build.status !== 0)
      console.error('  … pnpm build reported errors (type errors?); measuring what it emitted')
  }
}

const settings: Settings = {
  smoke,
  rounds: smoke ? 1 : envInt('BENCH_ROUNDS', 5),
  bytes: envInt('BENCH_BODY_BYTES', 1024),
  ...(process.env.BENCH_MESSAGES ? { messages: envInt('BENCH_MESSAGES', 1) } : {}),
}
console.log(`msgkit bench${smoke ? ' (smoke)' : ''}: ${selected.join(', ')}; ${environmentLine()}\n`)

const results: PlanResult[] = []
const failures: string[] = []
for (const name of selected) {
  try {
    const mod = (await import(`./${name}.ts`)) as { bench: BenchModule }
    // one soak is long enough
    const these = name === 'soak' ? { ...settings, rounds: 1 } : settings
    const plan = await mod.bench.plan(these)
    const result = await runPlan(name, plan, these)
    results.push(result)
    console.log(`${renderPlan(result)}\n`)
  } catch (error) {
    failures.push(name)
    if (error instanceof BrokerUnreachableError)
      console.error(`\n✗ ${name}: FAILED, broker not reachable. ${error.message}\n`)
    else console.error(`\n✗ ${name}: FAILED:`, error, '\n')
  }
}
if (!smoke && results.some((r) => r.module !== 'soak')) {
  record(results.filter((r) => r.module !== 'soak'))
  console.error('  … wrote bench/results/latest.json, docs/performance.md, docs/performance-ratios.svg')
} else if (!smoke && results.some((r) => r.module === 'soak')) {
  regenerate()
  console.error('  … wrote bench/results/soak.json and docs/performance.md')
}
if (failures.length > 0)
  console.error(`bench: ${failures.length} of ${selected.length} failed: ${failures.join(', ')}`)
else if (smoke) console.error(`bench: smoke passed (${selected.join(', ')})`)
process.exit(failures.length > 0 ? 1 : 0)
