/**
 * Proof that the suite can fail: run chosen cases against a deliberately broken transport (a
 * "mutant") and require each of them to fail. A case that passes against a mutant it is supposed to
 * catch is a case that cannot fail — the test says so.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { ContractSuiteOptions } from '../probe.js'
import { defineContractCases } from './run-contract-suite.js'
import { createSuiteKit, describeError, settleWithin } from './support.js'

export interface Mutant {
  /** what is broken, e.g. 'drops 1 in 50' */
  name: string
  /** the suite options for the broken transport */
  suite: ContractSuiteOptions
  /** case ids that must each fail against it */
  caughtBy: readonly string[]
}

/** Defines one vitest test per (mutant, case): the case must fail. */
export function runMutantCheck(mutants: readonly Mutant[]): void {
  for (const mutant of mutants) {
    describe.sequential(`mutant: ${mutant.name}`, () => {
      const kit = createSuiteKit(mutant.suite)
      afterEach(() => kit.cleanup().catch(() => {}), 30_000)
      const cases = defineContractCases(kit)
      for (const id of mutant.caughtBy) {
        const chosen = cases.filter((c) => c.id === id && c.skip === undefined)
        it(
          `is caught by ${id}`,
          async (t) => {
            expect(chosen.length, `case ${id} exists and runs`).toBeGreaterThan(0)
            const outcomes: string[] = []
            for (const c of chosen) {
              const outcome = await settleWithin(c.run(t), c.timeoutMs)
              outcomes.push(
                outcome.status === 'rejected'
                  ? `failed: ${describeError(outcome.reason).split('\n')[0]}`
                  : outcome.status === 'timeout'
                    ? 'failed: timed out'
                    : 'passed',
              )
            }
            t.annotate(`${mutant.name} × ${id}: ${outcomes.join(' | ')}`, 'notice')
            expect(
              outcomes.some((o) => o.startsWith('failed')),
              `${id} must fail against the mutant "${mutant.name}" (it ${outcomes.join(', ')})`,
            ).toBe(true)
          },
          Math.max(...chosen.map((c) => c.timeoutMs), 1_000) + 30_000,
        )
      }
    })
  }
}
