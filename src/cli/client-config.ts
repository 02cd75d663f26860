// `--command-config <file>`: a Kafka client properties file, as Kafka's own tools take it
// (`kafka-configs.sh --command-config`), turned into @platformatic/kafka connection options.
// Both spellings users have are read: Java's (`sasl.mechanism`, `sasl.jaas.config` with
// username="…" password="…", `ssl.truststore.location` of a PEM truststore) and librdkafka's
// (`sasl.mechanisms`, `sasl.username`, `sasl.password`, `ssl.ca.location`,
// `ssl.certificate.location`, `ssl.key.location`).
import { readFileSync } from 'node:fs'
import { type ConnectionOptions } from 'node:tls'
import { type KafkaSecurity } from '../client/kafka-security.ts'

export class ClientConfigError extends Error {
  readonly code = 'INVALID_CLIENT_CONFIG'
}

/** The security a `--command-config` file gives (the name the CLI commands have used for it). */
export type ClientSecurity = KafkaSecurity

/** Java properties: key=value or key: value lines, # and ! comments, no line continuations. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue
    const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(line)
    if (m === null) throw new ClientConfigError(`not key=value: ${line}`)
    out.set(m[1], m[2])
  }
  return out
}

function jaasOption(jaas: string, name: string): string | undefined {
  return new RegExp(`\\b${name}\\s*=\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(jaas)?.[1].replace(/\\(.)/g, '$1')
}

function readPem(key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new ClientConfigError(`${key}: cannot read ${path}: ${(err as Error).message}`)
  }
}

/** The TLS and SASL options of a properties file's settings. */
export function clientSecurity(props: ReadonlyMap<string, string>): ClientSecurity {
  const protocol = (props.get('security.protocol') ?? 'PLAINTEXT').toUpperCase()
  if (!['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'].includes(protocol))
    throw new ClientConfigError(`security.protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got ${protocol}`)
  const out: ClientSecurity = {}
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    const tls: ConnectionOptions = {}
    const ca = props.get('ssl.ca.location') ?? props.get('ssl.truststore.location')
    if (ca !== undefined) tls.ca = readPem('ssl.ca.location', ca)
    const cert = props.get('ssl.certificate.location')
    const key = props.get('ssl.key.location')
    if (cert !== undefined) tls.cert = readPem('ssl.certificate.location', cert)
    if (key !== undefined) tls.key = readPem('ssl.key.location', key)
    // An empty ssl.endpoint.identification.algorithm turns host name checking off, as in Kafka.
    if (props.get('ssl.endpoint.identification.algorithm') === '') tls.checkServerIdentity = () => undefined
    out.tls = tls
  }
  if (protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL') {
    const mechanism = (props.get('sasl.mechanism') ?? props.get('sasl.mechanisms') ?? 'PLAIN').toUpperCase()
    if (mechanism !== 'PLAIN' && mechanism !== 'SCRAM-SHA-256' && mechanism !== 'SCRAM-SHA-512')
      throw new ClientConfigError(`sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got ${mechanism}`)
    const jaas = props.get('sasl.jaas.config') ?? ''
    const username = props.get('sasl.username') ?? jaasOption(jaas, 'username')
    const password = props.get('sasl.password') ?? jaasOption(jaas, 'password')
    if (username === undefined || password === undefined)
      throw new ClientConfigError(
        `security.protocol=${protocol} needs a username and password: sasl.username and sasl.password, or sasl.jaas.config with username="…" password="…"`,
      )
    out.sasl = { mechanism, username, password }
  }
  return out
}

/** Reads `--command-config`'s file (undefined: a plaintext client). */
export function readClientConfig(path: string | undefined): ClientSecurity {
  if (path === undefined) return {}
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ClientConfigError(`--command-config: cannot read ${path}: ${(err as Error).message}`)
  }
  return clientSecurity(parseProperties(text))
}
