import { afterEach, describe } from 'vitest'
import type { ContractSuiteOptions } from '../probe.js'
import { delayCases } from './delay.js'
import { deliveryCases } from './delivery.js'
import { flowControlCases } from './flow-control.js'
import { groupCases } from './groups.js'
import { lifecycleCases } from './lifecycle.js'
import { orderingCases } from './ordering.js'
import { restartCases } from './restart.js'
import { roundTripCases } from './round-trip.js'
import { createSuiteKit } from './support.js'

/**
 * Define the msgkit contract suite (shared/CONTRACT-CASES.md) for one transport, as vitest tests.
 * Call it at the top level of a test file. Cases run one after another; RS-1 runs last.
 */
export function runContractSuite(options: ContractSuiteOptions): void {
  describe.sequential(`msgkit contract: ${options.name}`, () => {
    const kit = createSuiteKit(options)
    afterEach(() => kit.cleanup(), 30_000)

    lifecycleCases(kit)
    roundTripCases(kit)
    deliveryCases(kit)
    orderingCases(kit)
    groupCases(kit)
    flowControlCases(kit)
    delayCases(kit)
    restartCases(kit)
  })
}
