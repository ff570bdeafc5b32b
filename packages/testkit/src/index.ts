/** @msgkit/testkit: the contract suite every transport passes, and helpers for your own tests. */
export { runContractSuite } from './contract/run-contract-suite.js'
export { createHandlerSpy, type HandlerSpy, type SpyWaitOptions } from './helpers/handler-spy.js'
export { uniqueTopic } from './helpers/unique-topic.js'
export { type WaitForOptions, waitFor } from './helpers/wait-for.js'
export type { ContractProbe, ContractSuiteOptions } from './probe.js'
