// The broker's listeners, configured with Kafka's syntax: `listeners=PLAINTEXT://:9092,SSL://0.0.0.0:9093`,
// `advertised.listeners` (what Metadata and FindCoordinator answer to a client that connected
// through that listener) and `listener.security.protocol.map` (a listener's name → its security
// protocol; the four protocol names map to themselves by default, so `SSL://...` needs no entry).
// Without `listeners`, the broker has one PLAINTEXT listener on --host/--port, as before.
import { ConfigError } from './config.ts'

export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number]

export interface ListenerSpec {
  /** Upper case, as Kafka normalises it (the `listener.name.<name lower case>.` prefix uses lower case). */
  readonly name: string
  readonly protocol: SecurityProtocol
  /** Where to bind ('' never: an empty host in the config means the broker's --host). */
  readonly host: string
  /** 0: an ephemeral port, known once bound. */
  readonly port: number
  /** What clients are told; undefined: the listen host (or `localhost` for a wildcard), and the bound port. */
  readonly advertised: { host: string; port: number } | undefined
}

const NAME = /^[A-Z0-9_]+$/

/** Parses `NAME://host:port` (host may be empty or an [IPv6] literal). */
function parseEndpoint(key: string, text: string): { name: string; host: string; port: number } {
  const m = /^([A-Za-z0-9_]+):\/\/(\[[0-9a-fA-F:.]+\]|[^:[\]/]*):(\d+)$/.exec(text.trim())
  if (m === null)
    throw new ConfigError(key, `${key}: "${text.trim()}" is not NAME://host:port (e.g. PLAINTEXT://:9092)`)
  const port = Number(m[3])
  if (port > 65535) throw new ConfigError(key, `${key}: port ${port} of ${m[1]} is not a port number`)
  return { name: m[1].toUpperCase(), host: m[2].replace(/^\[(.*)\]$/, '$1'), port }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

/** `listener.security.protocol.map`: NAME:PROTOCOL pairs, over the defaults. */
export function parseProtocolMap(value: string): Map<string, SecurityProtocol> {
  const key = 'listener.security.protocol.map'
  const map = new Map<string, SecurityProtocol>(SECURITY_PROTOCOLS.map((p) => [p, p]))
  for (const entry of splitList(value)) {
    const [name, protocol, ...rest] = entry.split(':')
    const upper = (protocol ?? '').toUpperCase()
    if (rest.length > 0 || !NAME.test(name.toUpperCase()) || !(SECURITY_PROTOCOLS as readonly string[]).includes(upper))
      throw new ConfigError(
        key,
        `${key}: "${entry}" is not NAME:PROTOCOL with PROTOCOL one of ${SECURITY_PROTOCOLS.join(', ')}`,
      )
    map.set(name.toUpperCase(), upper as SecurityProtocol)
  }
  return map
}

/**
 * The listeners of `listeners` (or one PLAINTEXT listener on defaultHost:defaultPort when it is
 * empty), with `advertised.listeners` applied. Names and ports must be unique; every advertised
 * name must be a listener.
 */
export function parseListeners(
  settings: { listeners: string; advertisedListeners: string; protocolMap: string },
  defaultHost: string,
  defaultPort: number,
): ListenerSpec[] {
  const protocols = parseProtocolMap(settings.protocolMap)
  const endpoints =
    settings.listeners.trim() === ''
      ? [{ name: 'PLAINTEXT', host: defaultHost, port: defaultPort }]
      : splitList(settings.listeners).map((l) => parseEndpoint('listeners', l))
  const advertised = new Map<string, { host: string; port: number }>()
  for (const a of splitList(settings.advertisedListeners)) {
    const e = parseEndpoint('advertised.listeners', a)
    if (!endpoints.some((l) => l.name === e.name))
      throw new ConfigError('advertised.listeners', `advertised.listeners names ${e.name}, which is not in listeners`)
    if (advertised.has(e.name))
      throw new ConfigError('advertised.listeners', `advertised.listeners names ${e.name} twice`)
    if (e.host === '') throw new ConfigError('advertised.listeners', `advertised.listeners: ${e.name} needs a host`)
    advertised.set(e.name, { host: e.host, port: e.port })
  }
  const seen = new Set<string>()
  const ports = new Set<number>()
  return endpoints.map((e) => {
    if (seen.has(e.name)) throw new ConfigError('listeners', `listeners names ${e.name} twice`)
    seen.add(e.name)
    if (e.port !== 0 && ports.has(e.port)) throw new ConfigError('listeners', `listeners use port ${e.port} twice`)
    ports.add(e.port)
    const protocol = protocols.get(e.name)
    if (protocol === undefined)
      throw new ConfigError(
        'listener.security.protocol.map',
        `listener ${e.name} has no security protocol: add ${e.name}:<PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL> to listener.security.protocol.map`,
      )
    return {
      name: e.name,
      protocol,
      host: e.host === '' ? defaultHost : e.host,
      port: e.port,
      advertised: advertised.get(e.name),
    }
  })
}

/** The host:port a client of `listener` is told, once it is bound to `boundPort`. */
export function advertisedEndpoint(
  listener: ListenerSpec,
  boundPort: number,
  advertisedHostName: string,
): { host: string; port: number } {
  if (listener.advertised !== undefined) return listener.advertised
  const wildcard = listener.host === '0.0.0.0' || listener.host === '::'
  const host = advertisedHostName !== '' ? advertisedHostName : wildcard ? 'localhost' : listener.host
  return { host, port: boundPort }
}
