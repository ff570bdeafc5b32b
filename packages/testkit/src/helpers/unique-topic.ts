import { randomUUID } from 'node:crypto'

/** A topic name no other test (or run) uses: `<prefix>-<uuid>`, valid on every transport. */
export function uniqueTopic(prefix = 't'): string {
  return `${prefix}-${randomUUID()}`
}
