/** Topic, group and pattern names: one rule set that every broker can carry. */
import { ErrorCodes, MsgkitError } from './errors.js'

// Kafka's topic alphabet is the strictest of our brokers; `,` `*` `>` would mean something to ActiveMQ.
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/
const PATTERN_SEGMENT = /^([A-Za-z0-9_-]+|\*|>)$/

/** Throws MSGKIT_INVALID_ARGUMENT unless `name` is a valid topic name. */
export function assertTopicName(name: string, what = 'topic'): void {
  if (typeof name !== 'string' || !NAME.test(name) || name.includes('..') || name.endsWith('.')) {
    throw new MsgkitError(
      ErrorCodes.INVALID_ARGUMENT,
      `Invalid ${what} name ${JSON.stringify(name)}: use 1-200 characters from A-Z a-z 0-9 . _ - (no leading/trailing dot, no "..").`,
    )
  }
}

const GROUP = /^[A-Za-z0-9_-]{1,100}$/

/**
 * Throws MSGKIT_INVALID_ARGUMENT unless `name` is a valid group name. No dots: brokers name a group's
 * queue `<topic>.<group>`, which is only unambiguous when the group is one segment.
 */
export function assertGroupName(name: string): void {
  if (typeof name !== 'string' || !GROUP.test(name)) {
    throw new MsgkitError(
      ErrorCodes.INVALID_ARGUMENT,
      `Invalid group name ${JSON.stringify(name)}: use 1-100 characters from A-Z a-z 0-9 _ - (no dots).`,
    )
  }
}

/** Throws unless `pattern` uses `*` (one segment) and an optional trailing `>` (one or more segments). */
export function assertPattern(pattern: string): void {
  const segments = typeof pattern === 'string' ? pattern.split('.') : []
  const ok =
    segments.length > 0 &&
    pattern.length <= 200 &&
    segments.every((s, i) => PATTERN_SEGMENT.test(s) && (s !== '>' || i === segments.length - 1)) &&
    segments.some((s) => s === '*' || s === '>')
  if (!ok) {
    throw new MsgkitError(
      ErrorCodes.INVALID_ARGUMENT,
      `Invalid topic pattern ${JSON.stringify(pattern)}: dot-separated segments; "*" matches one segment, a trailing ">" one or more.`,
    )
  }
}

/** Compiles a msgkit pattern into a RegExp over whole topic names. */
export function patternToRegExp(pattern: string): RegExp {
  const parts = pattern.split('.').map((s) => {
    if (s === '*') return '[^.]+'
    if (s === '>') return '[^.]+(?:\\.[^.]+)*'
    return s.replace(/[-]/g, '\\-')
  })
  // dead-letter topics are not part of a pattern unless the pattern names them explicitly
  const guard = pattern.endsWith('.dlq') ? '' : '(?!.*\\.dlq$)'
  return new RegExp(`^${guard}${parts.join('\\.')}$`)
}

/** The dead-letter topic of a (topic, group) pair. */
export function deadLetterTopicOf(topic: string, group: string): string {
  return `${topic}.${group}.dlq`
}

/** The group that holds a dead-letter topic's messages until someone reads them. */
export const DEAD_LETTER_GROUP = 'dlq'
