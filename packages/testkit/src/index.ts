/** @msgkit/testkit: the contract suite every transport passes, and helpers for your own tests. */
export { runContractSuite } from './contract/run-contract-suite.js'
export { type RunCommandOptions, runCommand, waitUntilReady } from './faults/commands.js'
export { type TcpFaultsOptions, tcpFaults } from './faults/tcp-faults.js'
export { startTcpProxy, type TcpProxy } from './faults/tcp-proxy.js'
export { createHandlerSpy, type HandlerSpy, type SpyWaitOptions } from './helpers/handler-spy.js'
export { uniqueTopic } from './helpers/unique-topic.js'
export { type WaitForOptions, waitFor } from './helpers/wait-for.js'
export type { ContractProbe, ContractSuiteOptions, FaultInjection } from './probe.js'
