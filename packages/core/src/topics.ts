import type { Schema, Topic, TopicPattern } from './api.js'
import type { Codec } from './codec.js'
import { assertPattern, assertTopicName } from './names.js'

/**
 * A typed topic. With a zod schema the body type is inferred and checked on publish and consume;
 * without one, give the type as a parameter: `defineTopic<OrderCompleted>('orders.completed')`.
 */
export function defineTopic<T = unknown>(
  name: string,
  schema?: Schema<T>,
  options: { codec?: Codec } = {},
): Topic<T> {
  assertTopicName(name)
  return Object.freeze({
    kind: 'topic' as const,
    name,
    ...(schema ? { schema } : {}),
    ...(options.codec ? { codec: options.codec } : {}),
  })
}

/** A typed pattern subscription target: `*` matches one dot-separated segment, a trailing `>` one or more. */
export function definePattern<T = unknown>(
  pattern: string,
  schema?: Schema<T>,
  options: { codec?: Codec } = {},
): TopicPattern<T> {
  assertPattern(pattern)
  return Object.freeze({
    kind: 'pattern' as const,
    pattern,
    ...(schema ? { schema } : {}),
    ...(options.codec ? { codec: options.codec } : {}),
  })
}

/** One line naming each failed field of a schema check: `path: message; …`. */
export function describeSchemaIssues(
  error: Extract<ReturnType<Schema<unknown>['safeParse']>, { success: false }>['error'],
): string {
  return (
    error.issues?.map((i) => `${(i.path ?? []).join('.') || '(root)'}: ${i.message}`).join('; ') ??
    error.message ??
    'invalid'
  )
}
