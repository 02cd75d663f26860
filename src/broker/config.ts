// Broker and topic configuration, under Kafka's own names and defaults (Kafka 3.8.0
// ServerLogConfigs / LogConfig), so `--config message.max.bytes=...` means what a Kafka user
// expects. Topic configs fall back to the broker's `log.*` settings, as in Kafka.

export type ConfigType = 'BOOLEAN' | 'STRING' | 'INT' | 'LONG' | 'DOUBLE' | 'LIST' | 'CLASS' | 'PASSWORD' | 'SHORT'

export class ConfigError extends Error {
  readonly code = 'INVALID_CONFIG'
  readonly key: string
  constructor(key: string, message: string) {
    super(message)
    this.name = 'ConfigError'
    this.key = key
  }
}

interface ConfigDef {
  readonly type: ConfigType
  readonly default: string
  readonly doc: string
  /** Extra validation beyond the type; returns an error message or undefined. */
  readonly check?: (v: string) => string | undefined
}

const atLeast = (min: number) => (v: string) => (Number(v) < min ? `must be at least ${min}` : undefined)
const oneOf =
  (...values: string[]) =>
  (v: string) =>
    values.includes(v) ? undefined : `must be one of ${values.join(', ')}`
const cleanupPolicy = (v: string) =>
  v.split(',').every((p) => p.trim() === 'delete' || p.trim() === 'compact') && v.trim() !== ''
    ? undefined
    : 'must be a list of delete, compact'

/** Topic-level configs: topic name → [broker-level name, definition]. */
export const TOPIC_CONFIGS: Readonly<Record<string, readonly [string, ConfigDef]>> = {
  'cleanup.policy': [
    'log.cleanup.policy',
    { type: 'LIST', default: 'delete', doc: 'delete, compact, or both', check: cleanupPolicy },
  ],
  'compression.type': [
    'compression.type',
    {
      type: 'STRING',
      default: 'producer',
      doc: 'Stored as sent by the producer',
      check: oneOf('producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'),
    },
  ],
  'delete.retention.ms': [
    'log.cleaner.delete.retention.ms',
    { type: 'LONG', default: '86400000', doc: 'How long tombstones are kept in compacted topics', check: atLeast(0) },
  ],
  'file.delete.delay.ms': [
    'log.segment.delete.delay.ms',
    { type: 'LONG', default: '60000', doc: 'Delay before a deleted segment file is removed', check: atLeast(0) },
  ],
  'flush.messages': [
    'log.flush.interval.messages',
    { type: 'LONG', default: '9223372036854775807', doc: 'Kafka compatibility; see cortado.fsync', check: atLeast(1) },
  ],
  'flush.ms': [
    'log.flush.interval.ms',
    { type: 'LONG', default: '9223372036854775807', doc: 'Kafka compatibility; see cortado.fsync', check: atLeast(0) },
  ],
  'index.interval.bytes': [
    'log.index.interval.bytes',
    { type: 'INT', default: '4096', doc: 'Bytes between offset index entries', check: atLeast(0) },
  ],
  'max.compaction.lag.ms': [
    'log.cleaner.max.compaction.lag.ms',
    { type: 'LONG', default: '9223372036854775807', doc: 'Longest time a record stays uncompacted', check: atLeast(1) },
  ],
  'max.message.bytes': [
    'message.max.bytes',
    { type: 'INT', default: '1048588', doc: 'Largest record batch accepted', check: atLeast(0) },
  ],
  'message.timestamp.type': [
    'log.message.timestamp.type',
    {
      type: 'STRING',
      default: 'CreateTime',
      doc: 'CreateTime or LogAppendTime',
      check: oneOf('CreateTime', 'LogAppendTime'),
    },
  ],
  'min.cleanable.dirty.ratio': [
    'log.cleaner.min.cleanable.ratio',
    {
      type: 'DOUBLE',
      default: '0.5',
      doc: 'Dirty ratio that triggers compaction',
      check: (v) => (Number(v) < 0 || Number(v) > 1 ? 'must be between 0 and 1' : undefined),
    },
  ],
  'min.compaction.lag.ms': [
    'log.cleaner.min.compaction.lag.ms',
    { type: 'LONG', default: '0', doc: 'Shortest time a record stays uncompacted', check: atLeast(0) },
  ],
  'min.insync.replicas': [
    'min.insync.replicas',
    { type: 'INT', default: '1', doc: 'Single node: always 1 in sync', check: atLeast(1) },
  ],
  'retention.bytes': [
    'log.retention.bytes',
    { type: 'LONG', default: '-1', doc: 'Size limit per partition; -1 unlimited' },
  ],
  'retention.ms': [
    'log.retention.ms',
    { type: 'LONG', default: '604800000', doc: 'Time limit; -1 unlimited', check: atLeast(-1) },
  ],
  'segment.bytes': [
    'log.segment.bytes',
    { type: 'INT', default: '1073741824', doc: 'Segment file size', check: atLeast(14) },
  ],
  'segment.index.bytes': [
    'log.index.size.max.bytes',
    { type: 'INT', default: '10485760', doc: 'Offset index size', check: atLeast(4) },
  ],
  'segment.ms': [
    'log.roll.ms',
    { type: 'LONG', default: '604800000', doc: 'Roll a segment after this time', check: atLeast(1) },
  ],
  'unclean.leader.election.enable': [
    'unclean.leader.election.enable',
    { type: 'BOOLEAN', default: 'false', doc: 'Single node: no effect' },
  ],
}

/** Broker-only configs (not topic overrides). */
export const BROKER_CONFIGS: Readonly<Record<string, ConfigDef>> = {
  'node.id': { type: 'INT', default: '0', doc: "This broker's id", check: atLeast(0) },
  'auto.create.topics.enable': { type: 'BOOLEAN', default: 'true', doc: 'Create unknown topics on metadata requests' },
  'num.partitions': { type: 'INT', default: '1', doc: 'Partitions of auto-created topics', check: atLeast(1) },
  'default.replication.factor': { type: 'INT', default: '1', doc: 'Single node: 1', check: atLeast(1) },
  'log.retention.check.interval.ms': {
    type: 'LONG',
    default: '300000',
    doc: 'How often retention runs',
    check: atLeast(1),
  },
  'log.cleaner.enable': {
    type: 'BOOLEAN',
    default: 'true',
    doc: 'Run the log cleaner (compaction of cleanup.policy=compact topics)',
  },
  'log.cleaner.backoff.ms': {
    type: 'LONG',
    default: '15000',
    doc: 'How long the log cleaner sleeps when no log needs cleaning',
    check: atLeast(0),
  },
  'log.cleaner.dedupe.buffer.size': {
    type: 'LONG',
    default: '134217728',
    doc: 'Memory for the offset map of a cleaning round (about 100 bytes a distinct key); more keys are left for the next round',
    check: atLeast(1024),
  },
  'producer.id.expiration.ms': {
    type: 'INT',
    default: '86400000',
    doc: 'An idempotent producer idle this long is forgotten by each partition (a later batch from it is accepted at any sequence)',
    check: atLeast(1),
  },
  'producer.id.expiration.check.interval.ms': {
    type: 'INT',
    default: '600000',
    doc: 'How often a partition looks for expired producers',
    check: atLeast(1),
  },
  'fetch.max.bytes': {
    type: 'INT',
    default: '57671680',
    doc: "Most record bytes one fetch response carries (caps the request's max_bytes)",
    check: atLeast(1024),
  },
  'group.min.session.timeout.ms': {
    type: 'INT',
    default: '6000',
    doc: 'Shortest session timeout a group member may ask for',
    check: atLeast(1),
  },
  'group.max.session.timeout.ms': {
    type: 'INT',
    default: '1800000',
    doc: 'Longest session timeout a group member may ask for',
    check: atLeast(1),
  },
  'group.initial.rebalance.delay.ms': {
    type: 'INT',
    default: '3000',
    doc: 'How long the first rebalance of an empty group waits for more members',
    check: atLeast(0),
  },
  'group.max.size': { type: 'INT', default: '2147483647', doc: 'Most members one group may have', check: atLeast(1) },
  'offsets.topic.num.partitions': {
    type: 'INT',
    default: '50',
    doc: 'Partitions of __consumer_offsets (fixed once created)',
    check: atLeast(1),
  },
  'offsets.topic.segment.bytes': {
    type: 'INT',
    default: '104857600',
    doc: 'Segment size of __consumer_offsets',
    check: atLeast(1024),
  },
  'offsets.retention.minutes': {
    type: 'INT',
    default: '10080',
    doc: 'Committed offsets of a group without members are kept this long',
    check: atLeast(1),
  },
  'offsets.retention.check.interval.ms': {
    type: 'LONG',
    default: '600000',
    doc: 'How often expired offsets are removed',
    check: atLeast(1),
  },
  'socket.request.max.bytes': {
    type: 'INT',
    default: '104857600',
    doc: 'Largest request frame accepted',
    check: atLeast(1024),
  },
  'advertised.host.name': { type: 'STRING', default: '', doc: 'Host put in metadata (default: the listen host)' },
  'cortado.fsync': {
    type: 'STRING',
    default: 'ack',
    doc: 'ack: acks=1/all produce is answered only after fdatasync (group commit); none: page cache only, as Kafka by default',
    check: oneOf('ack', 'none'),
  },
  'cortado.journal': {
    type: 'BOOLEAN',
    default: 'true',
    doc: 'With cortado.fsync=ack: appends also go to one write-ahead journal, which each group commit syncs instead of every partition written; segments are synced at checkpoints',
  },
  'cortado.journal.direct.bytes': {
    type: 'INT',
    default: '32768',
    doc: 'A partition with this many bytes in a group-commit round, or the only one in it, has its segment synced instead of journaled (its bytes written once); -1: every append journaled',
    check: atLeast(-1),
  },
  // Listeners and their security (src/broker/listeners.ts, docs/security.md). Every ssl.* and
  // sasl.* setting below may also be given for one listener as listener.name.<name>.<key>.
  listeners: {
    type: 'LIST',
    default: '',
    doc: 'NAME://host:port,... (empty: one PLAINTEXT listener on --host and --port)',
  },
  'advertised.listeners': {
    type: 'LIST',
    default: '',
    doc: 'NAME://host:port,... told to clients of each listener (default: its listen address)',
  },
  'listener.security.protocol.map': {
    type: 'LIST',
    default: 'PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL',
    doc: 'Listener name to security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)',
  },
  'ssl.keystore.type': {
    type: 'STRING',
    default: 'PEM',
    doc: 'PEM (key and certificate chain) or PKCS12; JKS is not supported',
    check: oneOf('PEM', 'PKCS12'),
  },
  'ssl.keystore.location': {
    type: 'STRING',
    default: '',
    doc: "File with the broker's private key and certificate chain (PEM), or a PKCS12 file",
  },
  'ssl.keystore.password': { type: 'PASSWORD', default: '', doc: 'Password of a PKCS12 keystore' },
  'ssl.key.password': { type: 'PASSWORD', default: '', doc: 'Passphrase of an encrypted PEM private key' },
  'ssl.keystore.certificate.chain': {
    type: 'PASSWORD',
    default: '',
    doc: 'The certificate chain in PEM, in place of ssl.keystore.location',
  },
  'ssl.keystore.key': {
    type: 'PASSWORD',
    default: '',
    doc: 'The private key in PEM, in place of ssl.keystore.location',
  },
  'ssl.truststore.type': { type: 'STRING', default: 'PEM', doc: 'PEM only', check: oneOf('PEM') },
  'ssl.truststore.location': {
    type: 'STRING',
    default: '',
    doc: 'PEM file of the CA certificates client certificates are checked against',
  },
  'ssl.truststore.certificates': {
    type: 'PASSWORD',
    default: '',
    doc: 'CA certificates in PEM, in place of ssl.truststore.location',
  },
  'ssl.client.auth': {
    type: 'STRING',
    default: 'none',
    doc: 'none, requested (a client certificate is checked if sent) or required',
    check: oneOf('none', 'requested', 'required'),
  },
  'ssl.enabled.protocols': {
    type: 'LIST',
    default: 'TLSv1.2,TLSv1.3',
    doc: 'TLS versions accepted',
    check: (v) =>
      v.split(',').every((p) => ['TLSv1.2', 'TLSv1.3'].includes(p.trim())) ? undefined : 'must list TLSv1.2, TLSv1.3',
  },
  'sasl.enabled.mechanisms': {
    type: 'LIST',
    default: 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    doc: 'SASL mechanisms offered on SASL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; not GSSAPI or OAUTHBEARER)',
    check: (v) =>
      v.split(',').every((m) => ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'].includes(m.trim()))
        ? undefined
        : 'must list PLAIN, SCRAM-SHA-256, SCRAM-SHA-512',
  },
  'sasl.jaas.config': {
    type: 'PASSWORD',
    default: '',
    doc: 'JAAS login module and options; PLAIN users as user_<name>="<password>" (usually per listener and mechanism: listener.name.<name>.plain.sasl.jaas.config)',
  },
  'authorizer.class.name': {
    type: 'STRING',
    default: '',
    doc: "Any non-empty value (Kafka's kafka.security.authorizer.AclAuthorizer or org.apache.kafka.metadata.authorizer.StandardAuthorizer) turns on ACL authorization",
  },
  'super.users': {
    type: 'STRING',
    default: '',
    doc: 'Principals allowed everything, separated by semicolons (User:admin;User:CN=ops)',
  },
  'allow.everyone.if.no.acl.found': {
    type: 'BOOLEAN',
    default: 'false',
    doc: 'With an authorizer: a resource no ACL applies to is open to everyone',
  },
  'quota.window.num': {
    type: 'INT',
    default: '11',
    doc: 'Samples a client quota rate is measured over',
    check: atLeast(1),
  },
  'quota.window.size.seconds': {
    type: 'INT',
    default: '1',
    doc: 'Length of each sample of a client quota rate',
    check: atLeast(1),
  },
  'sasl.server.max.receive.size': {
    type: 'INT',
    default: '524288',
    doc: 'Largest frame read from a client before it has authenticated (SASL listeners)',
    check: atLeast(1024),
  },
  'connections.max.reauth.ms': {
    type: 'LONG',
    default: '0',
    doc: 'Longest SASL session before the client must re-authenticate (KIP-368); 0: sessions do not expire',
    check: atLeast(0),
  },
  'cortado.max.inflight.requests.per.connection': {
    type: 'INT',
    default: '100',
    doc: 'Requests read ahead per connection before reading pauses',
    check: atLeast(1),
  },
}

// Kafka's alternative spellings of the retention and roll times.
const ALIASES: Readonly<Record<string, (v: string) => [string, string]>> = {
  'log.retention.hours': (v) => ['log.retention.ms', String(Number(v) * 3_600_000)],
  'log.retention.minutes': (v) => ['log.retention.ms', String(Number(v) * 60_000)],
  'log.roll.hours': (v) => ['log.roll.ms', String(Number(v) * 3_600_000)],
  'broker.id': (v) => ['node.id', v],
}

const BROKER_LEVEL_TOPIC_DEFS = new Map(Object.values(TOPIC_CONFIGS).map(([brokerName, def]) => [brokerName, def]))

function checkValue(key: string, def: ConfigDef, value: string): void {
  switch (def.type) {
    case 'BOOLEAN':
      if (value !== 'true' && value !== 'false')
        throw new ConfigError(key, `${key} must be true or false, got "${value}"`)
      break
    case 'INT':
    case 'LONG':
      if (!/^-?\d+$/.test(value)) throw new ConfigError(key, `${key} must be an integer, got "${value}"`)
      if (def.type === 'INT' && Math.abs(Number(value)) > 2 ** 31 - 1)
        throw new ConfigError(key, `${key} must fit in 32 bits`)
      break
    case 'DOUBLE':
      if (value.trim() === '' || !Number.isFinite(Number(value)))
        throw new ConfigError(key, `${key} must be a number, got "${value}"`)
      break
    default:
      break
  }
  const problem = def.check?.(value)
  if (problem !== undefined) throw new ConfigError(key, `${key} ${problem}, got "${value}"`)
}

export interface ConfigEntry {
  name: string
  /** null for a sensitive (PASSWORD) config, as Kafka answers. */
  value: string | null
  source: 'DEFAULT' | 'STATIC_BROKER' | 'DYNAMIC_TOPIC'
  type: ConfigType
  doc: string
}

/** The broker's configuration: defaults overlaid with `--config key=value` settings. */
export class BrokerConfig {
  private readonly overrides = new Map<string, string>()

  constructor(settings: Readonly<Record<string, string>> = {}) {
    for (const [rawKey, rawValue] of Object.entries(settings)) {
      const alias = ALIASES[rawKey]
      const [key, value] = alias ? alias(rawValue) : [rawKey, rawValue]
      const def = BROKER_CONFIGS[key] ?? BROKER_LEVEL_TOPIC_DEFS.get(key) ?? listenerConfigDef(key)
      if (def === undefined) throw new ConfigError(key, `unknown broker config "${rawKey}"`)
      checkValue(key, def, value)
      this.overrides.set(key, value)
    }
  }

  /**
   * A security setting as one listener sees it, as Kafka resolves it: `listener.name.<listener>.<key>`
   * if set, else `<key>`. For `sasl.jaas.config`, pass the mechanism: the per-listener,
   * per-mechanism `listener.name.<listener>.<mechanism>.sasl.jaas.config` comes first.
   */
  forListener(listener: string, key: string, mechanism?: string): string {
    const prefix = `listener.name.${listener.toLowerCase()}.`
    const candidates = [
      ...(mechanism === undefined ? [] : [`${prefix}${mechanism.toLowerCase()}.${key}`]),
      `${prefix}${key}`,
    ]
    for (const c of candidates) {
      const v = this.overrides.get(c)
      if (v !== undefined) return v
    }
    return this.get(key)
  }

  get(key: string): string {
    const value = this.overrides.get(key)
    if (value !== undefined) return value
    const def = BROKER_CONFIGS[key] ?? BROKER_LEVEL_TOPIC_DEFS.get(key)
    if (def === undefined) throw new ConfigError(key, `unknown broker config "${key}"`)
    return def.default
  }

  number(key: string): number {
    return Number(this.get(key))
  }

  bool(key: string): boolean {
    return this.get(key) === 'true'
  }

  /** The default value a topic gets for a topic-level config. */
  topicDefault(topicKey: string): string {
    const entry = TOPIC_CONFIGS[topicKey]
    if (entry === undefined) throw new ConfigError(topicKey, `unknown topic config "${topicKey}"`)
    return this.get(entry[0])
  }

  entries(): ConfigEntry[] {
    const out: ConfigEntry[] = []
    const all: [string, ConfigDef][] = [...Object.entries(BROKER_CONFIGS), ...BROKER_LEVEL_TOPIC_DEFS.entries()]
    for (const [name, def] of all) {
      const set = this.overrides.get(name)
      out.push({
        name,
        // Kafka never returns a sensitive value (DescribeConfigs answers null and isSensitive).
        value: def.type === 'PASSWORD' ? null : (set ?? def.default),
        source: set === undefined ? 'DEFAULT' : 'STATIC_BROKER',
        type: def.type,
        doc: def.doc,
      })
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }
}

/** Settings a listener may override (`listener.name.<listener>.<key>`). */
const LISTENER_KEYS = /^(ssl\.|sasl\.|connections\.max\.reauth\.ms$)/

/** The definition of `listener.name.<listener>.<key>` (and `...<mechanism>.sasl.jaas.config`): that of `<key>`. */
function listenerConfigDef(key: string): ConfigDef | undefined {
  const m =
    /^listener\.name\.[a-z0-9_]+\.(?:(?:plain|scram-sha-256|scram-sha-512)\.(?=sasl\.jaas\.config$))?(.+)$/.exec(key)
  if (m === null || !LISTENER_KEYS.test(m[1])) return undefined
  return BROKER_CONFIGS[m[1]]
}

/** Validates topic-level overrides (CreateTopics configs, topic metadata on disk). */
export function validateTopicConfigs(configs: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(configs)) {
    const entry = TOPIC_CONFIGS[key]
    if (entry === undefined) throw new ConfigError(key, `unknown topic config "${key}"`)
    checkValue(key, entry[1], value)
  }
}

/** A topic's effective configuration: its overrides, else the broker's defaults. */
export function topicConfigEntries(broker: BrokerConfig, overrides: Readonly<Record<string, string>>): ConfigEntry[] {
  return Object.entries(TOPIC_CONFIGS)
    .map(([name, [, def]]): ConfigEntry => {
      const set = overrides[name]
      return set === undefined
        ? { name, value: broker.topicDefault(name), source: 'DEFAULT', type: def.type, doc: def.doc }
        : { name, value: set, source: 'DYNAMIC_TOPIC', type: def.type, doc: def.doc }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** Parses `key=value` strings from the command line. */
export function parseConfigArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const arg of args) {
    const eq = arg.indexOf('=')
    if (eq <= 0) throw new ConfigError(arg, `--config expects key=value, got "${arg}"`)
    out[arg.slice(0, eq).trim()] = arg.slice(eq + 1).trim()
  }
  return out
}
