/**
 * The memory transport under another name, with `change` laid over each instance: how core's tests
 * give a transport members (or declarations) of their choosing without a broker.
 */
import { memoryTransport, type Transport, type TransportDefinition } from '../../src/index.js'

export type MemoryConfig = Parameters<typeof memoryTransport.create>[0]

export function memoryVariant(
  name: string,
  change: (inner: Transport) => Partial<Transport>,
): TransportDefinition<MemoryConfig> {
  return {
    ...memoryTransport,
    name,
    schemes: [],
    create(config, context): Transport {
      const inner = memoryTransport.create(config, context)
      return { ...inner, name, ...change(inner) }
    },
  }
}
