import { afterEach, describe, it } from 'vitest'
import type { ContractSuiteOptions } from '../probe.js'
import { delayCases } from './delay.js'
import { deliveryCases } from './delivery.js'
import { flowControlCases } from './flow-control.js'
import { groupCases } from './groups.js'
import { lifecycleCases } from './lifecycle.js'
import { orderingCases } from './ordering.js'
import { restartCases } from './restart.js'
import { roundTripCases } from './round-trip.js'
import { type ContractCase, createSuiteKit, type SuiteKit } from './support.js'
import { tracingCases } from './tracing.js'
import { transportCases } from './transport-level.js'

/** Every case of the suite, in run order (RS-1 last), bound to `kit`. */
export function defineContractCases(kit: SuiteKit): ReadonlyArray<ContractCase> {
  lifecycleCases(kit)
  roundTripCases(kit)
  deliveryCases(kit)
  orderingCases(kit)
  groupCases(kit)
  flowControlCases(kit)
  delayCases(kit)
  transportCases(kit)
  tracingCases(kit)
  restartCases(kit)
  return kit.cases
}

/**
 * Define the msgkit contract suite (shared/CONTRACT-CASES.md, the list in this package's README)
 * for one transport, as vitest tests. Call it at the top level of a test file. Cases run one after
 * another; RS-1 runs last.
 */
export function runContractSuite(options: ContractSuiteOptions): void {
  describe.sequential(`msgkit contract: ${options.name}`, () => {
    const kit = createSuiteKit(options)
    afterEach(() => kit.cleanup(), 30_000)
    const cases = defineContractCases(kit)
    const unknown = (options.only ?? []).filter((id) => !cases.some((c) => c.id === id))
    if (unknown.length > 0)
      throw new Error(`runContractSuite: unknown case id(s) in only: ${unknown.join(', ')}`)
    const chosen = cases.filter((c) => !options.only || options.only.includes(c.id))
    const families = [...new Set(chosen.map((c) => c.family))]
    for (const family of families) {
      describe(family, () => {
        for (const c of chosen) {
          if (c.family !== family) continue
          if (c.skip !== undefined) it.skip(c.title, (t) => c.run(t), c.timeoutMs)
          else it(c.title, (t) => c.run(t), c.timeoutMs)
        }
      })
    }
  })
}
