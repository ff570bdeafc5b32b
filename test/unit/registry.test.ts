// Keeps core's transport registry true: every adapter package in this repo is registered under its
// own name and schemes, and exports a TransportDefinition that says the same.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isTransportDefinition, loadTransport, transportRegistry } from '@msgkit/core'
import { describe, expect, it } from 'vitest'

const packagesDir = join(import.meta.dirname, '..', '..', 'packages')
const adapters = readdirSync(packagesDir)
  .filter((d) => !['core', 'testkit', 'cli'].includes(d) && existsSync(join(packagesDir, d, 'package.json')))
  .map((d) => ({
    dir: d,
    name: JSON.parse(readFileSync(join(packagesDir, d, 'package.json'), 'utf8')).name as string,
  }))

describe('transport registry', () => {
  it('knows every adapter package in the repository', () => {
    const registered = Object.values(transportRegistry).map((e) => e.packageName)
    for (const a of adapters) expect(registered).toContain(a.name)
  })

  for (const [name, entry] of Object.entries(transportRegistry)) {
    const inRepo = entry.packageName ? adapters.find((a) => a.name === entry.packageName) : undefined
    if (!entry.builtin && !inRepo) continue // a planned adapter: its missing-package error is tested in core
    it(`${name}: loads a definition with the same name and schemes`, async () => {
      const definition = await loadTransport(name)
      expect(isTransportDefinition(definition)).toBe(true)
      expect(definition.name).toBe(name)
      expect([...definition.schemes].sort()).toEqual([...entry.schemes].sort())
    })
  }
})
