/**
 * pnpm bench [memory|kafka|rabbitmq|all] — throughput of raw clients and msgkit side by side in
 * one run, and the msgkit/raw ratios. Environment: BENCH_ROUNDS, BENCH_MESSAGES, BENCH_BODY_BYTES,
 * BENCH_KAFKA_BROKERS, BENCH_AMQP_URL (see README.md).
 */
import { type BenchDefinition, BrokerUnreachableError, runBench } from './harness.js'
import { kafkaBench } from './kafka.js'
import { memoryBench } from './memory.js'
import { rabbitmqBench } from './rabbitmq.js'
import { environmentLine, renderResult } from './report.js'

const benches: Record<string, () => Promise<BenchDefinition>> = {
  memory: memoryBench,
  kafka: kafkaBench,
  rabbitmq: rabbitmqBench,
}

const which = process.argv[2] ?? 'memory'
if (which !== 'all' && !(which in benches)) {
  console.error(`unknown bench "${which}" (known: ${Object.keys(benches).join(', ')}, all)`)
  process.exit(2)
}
const names = which === 'all' ? Object.keys(benches) : [which]
console.log(`msgkit bench: ${names.join(', ')}; ${environmentLine()}\n`)

let failed = false
for (const name of names) {
  try {
    const definition = await benches[name]!()
    const result = await runBench(definition)
    console.log(`${renderResult(result)}\n`)
  } catch (error) {
    failed = true
    if (error instanceof BrokerUnreachableError) console.error(`\n${name}: skipped. ${error.message}\n`)
    else console.error(`\n${name}: failed:`, error, '\n')
  }
}
process.exit(failed ? 1 : 0)
