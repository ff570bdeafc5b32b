/** Broker URL parsing: syntax only; each transport maps the parts onto its own config. */
import { ErrorCodes, MsgkitError } from './errors.js'
import type { ParsedUrl } from './spi.js'

const URL_SHAPE = /^([a-z][a-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$/i

/** Replaces the password in anything that looks like `scheme://user:pass@` with `***`. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]*@/gi, '$1***@')
}

function decode(part: string, what: string, redacted: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw new MsgkitError(
      ErrorCodes.URL_INVALID,
      `Malformed ${what} in URL ${redacted}: bad percent-encoding.`,
    )
  }
}

/** Splits a broker URL; throws MSGKIT_URL_INVALID with the password redacted. */
export function parseBrokerUrl(input: string): ParsedUrl {
  const href = input.trim()
  const redacted = redactUrl(href)
  const m = URL_SHAPE.exec(href)
  if (!m) {
    throw new MsgkitError(
      ErrorCodes.URL_INVALID,
      `Malformed broker URL ${JSON.stringify(redacted)}: expected scheme://[user:password@]host[:port][,host[:port]…][/path][?option=value], e.g. amqp://localhost or kafka://localhost:9092.`,
    )
  }
  const [, scheme = '', userinfo, hostPart = '', path = '', query = ''] = m
  const parsed: ParsedUrl = {
    scheme: scheme.toLowerCase(),
    hosts: [],
    path: decode(path, 'path', redacted),
    params: {},
    href,
    redacted,
  }
  if (userinfo !== undefined) {
    const i = userinfo.indexOf(':')
    parsed.username = decode(i < 0 ? userinfo : userinfo.slice(0, i), 'user name', redacted)
    if (i >= 0) parsed.password = decode(userinfo.slice(i + 1), 'password', redacted)
  }
  if (hostPart !== '') {
    for (const item of hostPart.split(',')) {
      const hm = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(item)
      const port = hm?.[2] === undefined ? undefined : Number(hm[2])
      if (!hm || (port !== undefined && (port < 1 || port > 65535))) {
        throw new MsgkitError(
          ErrorCodes.URL_INVALID,
          `Malformed host ${JSON.stringify(item)} in broker URL ${JSON.stringify(redacted)}: expected host or host:port (port 1-65535).`,
        )
      }
      parsed.hosts.push(port === undefined ? { host: hm[1] ?? '' } : { host: hm[1] ?? '', port })
    }
  }
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const k = decode((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' '), 'query', redacted)
    const v = eq < 0 ? 'true' : decode(pair.slice(eq + 1).replace(/\+/g, ' '), 'query', redacted)
    parsed.params[k] = v
  }
  return parsed
}

/** `a.b=1` style params → nested objects ({ a: { b: '1' } }); values stay strings for the schema to coerce. */
export function nestParams(params: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(params)) {
    const path = k.split('.')
    let node = out
    for (let i = 0; i < path.length - 1; i++) {
      const seg = path[i] ?? ''
      const next = node[seg]
      if (typeof next !== 'object' || next === null) node[seg] = {}
      node = node[seg] as Record<string, unknown>
    }
    node[path[path.length - 1] ?? ''] = v
  }
  return out
}
