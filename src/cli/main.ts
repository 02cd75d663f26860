// The `cortado` command: one entry per subcommand in COMMANDS, each with its usage text and the
// function that parses its options and runs it. `cortado --help`, `cortado <command> --help`
// (or -h, or `cortado help <command>`) print usage and exit 0; `cortado --version` prints the
// version. A command-line mistake exits 2 with the usage; any other failure exits 1.
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConfigError, parseConfigArgs } from '../broker/config.ts'
import { type ClientSecurity } from './client-config.ts'
import { parseTime } from './time.ts'

// Each command loads what it runs when it runs, so `--help` and `--version` answer at once.
const load = {
  broker: () => import('../broker/broker.ts'),
  log: () => import('../util/log.ts'),
  metrics: () => import('../util/metrics.ts'),
  admin: () => import('./admin-commands.ts'),
  bulk: () => import('./bulk-commands.ts'),
  backup: () => import('./backup-commands.ts'),
  users: () => import('./user-commands.ts'),
  acls: () => import('./acl-commands.ts'),
  quotas: () => import('./quota-commands.ts'),
  clientConfig: () => import('./client-config.ts'),
  client: () => import('./client-commands.ts'),
  db: () => import('./db-commands.ts'),
  reachability: () => import('./reachability.ts'),
  shutdown: () => import('./shutdown.ts'),
}

/** Seconds a command waits for its broker or router before giving up (`--connect-timeout`). */
const DEFAULT_CONNECT_TIMEOUT_S = 15

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version

const CONNECT = `[--connect-timeout <seconds, default ${DEFAULT_CONNECT_TIMEOUT_S}>]`
/** A Kafka client properties file (security.protocol, sasl.*, ssl.*), as Kafka's own tools take it. */
const COMMAND_CONFIG = '[--command-config <file>]'
/** Of the database's processes, which read Kafka's logs continuously. */
const FETCH = "[--fetch-max-wait-ms <ms> (Kafka's fetch.max.wait.ms; default 500 for the log, 1000 for metadata)]"

interface Command {
  usage: string
  run: (args: string[]) => Promise<void>
}

/** A command-line mistake: printed with the usage, exit code 2. */
class UsageError extends Error {
  readonly code = 'USAGE'
}

function port(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`)
    return fallback
  }
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`--${name} must be a port number, got "${value}"`)
  return n
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`)
  return value
}

function positive(value: string, name: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, got "${value}"`)
  return n
}

function optionalPositive(value: string | undefined, name: string): number | undefined {
  return value === undefined ? undefined : positive(value, name)
}

/** The controller's load-balancing flags (see docs/controller.md, Balancing by write load). */
function loadOptions(values: Record<string, string | boolean | undefined>): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {}
  const onOff = values['load-balancing']
  if (onOff !== undefined) {
    if (onOff !== 'on' && onOff !== 'off')
      throw new UsageError(`--load-balancing must be on or off, got "${String(onOff)}"`)
    out.loadBalancing = onOff === 'on'
  }
  const number = (flag: string, key: string, min: number) => {
    const v = values[flag]
    if (v === undefined) return
    const n = Number(v)
    if (typeof v !== 'string' || !Number.isFinite(n) || n < min)
      throw new UsageError(`--${flag} must be a number >= ${min}, got "${String(v)}"`)
    out[key] = n
  }
  number('load-imbalance-factor', 'loadImbalanceFactor', 1)
  number('load-min-writes-per-sec', 'loadMinWritesPerSec', 0)
  number('load-smoothing-ms', 'loadSmoothingMs', 1)
  number('load-move-cooldown-ms', 'loadMoveCooldownMs', 0)
  return out
}

/** `--connect-timeout` in seconds (0 allowed: one attempt), returned in milliseconds. */
function connectTimeoutMs(value: string | undefined): number {
  if (value === undefined) return DEFAULT_CONNECT_TIMEOUT_S * 1000
  const s = Number(value)
  if (!Number.isFinite(s) || s < 0)
    throw new UsageError(`--connect-timeout must be a number of seconds, got "${value}"`)
  return s * 1000
}

const connectOption = { 'connect-timeout': { type: 'string' } } as const
const commandConfigOption = { 'command-config': { type: 'string' } } as const
const fetchOption = { 'fetch-max-wait-ms': { type: 'string' } } as const
const httpSecurityOptions = {
  insecure: { type: 'boolean', default: false },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const
const HTTP_SECURITY = '[--tls-cert <pem> --tls-key <pem>] [--insecure (no authentication: local experiments only)]'

/** A PEM file's text; a missing file is a usage error. */
function readOptionFile(option: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new UsageError(`--${option}: cannot read ${path}: ${(error as Error).message}`)
  }
}

/** A file that exists and can be read (a usage error otherwise), not read yet. */
function readableFile(option: string, path: string): void {
  try {
    accessSync(path, constants.R_OK)
    if (!statSync(path).isFile()) throw new Error('not a file')
  } catch (error) {
    throw new UsageError(`--${option}: cannot read ${path}: ${(error as Error).message}`)
  }
}

const CLUSTER_SECRET = '[--cluster-secret-file <file> (the secret the nodes require of every caller)]'

/** The first line of `--cluster-secret-file`, at least 16 characters. */
function clusterSecret(path: string | undefined): string | undefined {
  if (path === undefined) return undefined
  const secret = readOptionFile('cluster-secret-file', path).split(/\r?\n/)[0]
  if (secret.length < 16)
    throw new UsageError(`--cluster-secret-file: the secret in ${path} is shorter than 16 characters`)
  return secret
}

/** The first line of `--admin-password-file`, at least 8 characters. */
function adminPassword(path: string | undefined): string | undefined {
  if (path === undefined) return undefined
  const password = readOptionFile('admin-password-file', path).split(/\r?\n/)[0]
  if (password.length < 8)
    throw new UsageError(`--admin-password-file: the password in ${path} is shorter than 8 characters`)
  return password
}

/** `--user name:password`, or `--user name` with the password in CORTADO_PASSWORD (kept out of the process list). */
function userAndPassword(user: string): { name: string; password: string } {
  const colon = user.indexOf(':')
  if (colon > 0) return { name: user.slice(0, colon), password: user.slice(colon + 1) }
  const password = process.env.CORTADO_PASSWORD
  if (password === undefined)
    throw new UsageError('--user name needs the password: --user name:password, or CORTADO_PASSWORD in the environment')
  return { name: user, password }
}

/** The Authorization header of the database API: `--user` (Basic), else a token in CORTADO_TOKEN (Bearer). */
function routerAuthorization(user: string | undefined): string | undefined {
  if (user === undefined) {
    const token = process.env.CORTADO_TOKEN
    return token === undefined || token === '' ? undefined : `Bearer ${token}`
  }
  const { name, password } = userAndPassword(user)
  return `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`
}

const ROUTER = 'http://127.0.0.1:8080'
const routerOptions = {
  router: { type: 'string', default: ROUTER },
  user: { type: 'string' },
  ...connectOption,
} as const
const ROUTER_USER = '[--user name[:password] (password also from CORTADO_PASSWORD; or a token in CORTADO_TOKEN)]'

/**
 * The router of `--router`, with the Authorization header of `--user` (or CORTADO_TOKEN), once it
 * answers; until then, says on stderr what it waits for, and gives up after `--connect-timeout`.
 */
async function reachRouter(values: {
  router: string
  user?: string
  'connect-timeout'?: string
}): Promise<{ url: string; authorization?: string }> {
  const url = values.router.replace(/\/$/, '')
  const authorization = routerAuthorization(values.user)
  const timeoutMs = connectTimeoutMs(values['connect-timeout'])
  const { waitUntilReachable } = await load.reachability()
  await waitUntilReachable(`the router at ${url}`, async () => void (await fetch(`${url}/_health`)).body?.cancel(), {
    timeoutMs,
    say: (line) => process.stderr.write(line + '\n'),
  })
  return { url, authorization }
}

/** The one positional argument a command takes (`<db>`). */
function onePositional(positionals: string[], name: string): string {
  if (positionals.length === 0) throw new UsageError(`${name} is required`)
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`)
  return positionals[0]
}

const clientSecurityOptions = { ...commandConfigOption, user: { type: 'string' } } as const
const CLIENT_SECURITY = '[--command-config <file>] [--user name[:password] (SASL; password also from CORTADO_PASSWORD)]'

/**
 * A client command's Kafka security: --command-config, with --user as its SASL user (the file's
 * mechanism, else SCRAM-SHA-512; SASL_PLAINTEXT unless the file asks for TLS).
 */
async function clientSecurity(values: { 'command-config'?: string; user?: string }): Promise<ClientSecurity> {
  const security = await securityOption(values['command-config'])
  if (values.user === undefined) return security
  const { name, password } = userAndPassword(values.user)
  return { ...security, sasl: { mechanism: security.sasl?.mechanism ?? 'SCRAM-SHA-512', username: name, password } }
}

/** `--tls-cert` and `--tls-key`, both or neither. */
function httpTls(values: { 'tls-cert'?: string; 'tls-key'?: string }): { cert: string; key: string } | undefined {
  const cert = values['tls-cert']
  const key = values['tls-key']
  if (cert === undefined && key === undefined) return undefined
  if (cert === undefined || key === undefined) throw new UsageError('--tls-cert and --tls-key go together')
  return { cert: readOptionFile('tls-cert', cert), key: readOptionFile('tls-key', key) }
}

/** Waits for Kafka before a command uses it, saying on stderr what it waits for. */
async function kafkaReachable(
  bootstrap: string[],
  timeout: string | undefined,
  security?: ClientSecurity,
): Promise<void> {
  const { waitForKafka } = await load.reachability()
  return waitForKafka(bootstrap, {
    timeoutMs: connectTimeoutMs(timeout),
    say: (line) => process.stderr.write(line + '\n'),
    security,
  })
}

/** `--command-config`'s TLS and SASL settings (a Kafka client properties file); a mistake in it is a usage error. */
async function securityOption(path: string | undefined): Promise<ClientSecurity> {
  const { readClientConfig, ClientConfigError } = await load.clientConfig()
  try {
    return readClientConfig(path)
  } catch (error) {
    if (error instanceof ClientConfigError) throw new UsageError(error.message)
    throw error
  }
}

/** The options of `cortado user`, `acl` and `quota`, which runKafkaAdmin reads. */
const kafkaAdminOption = {
  bootstrap: { type: 'string' },
  'command-config': { type: 'string' },
  ...connectOption,
} as const

/** Each line of an admin command's output, on stdout. */
const sayLine = (line: string) => process.stdout.write(line + '\n')
/** A bulk command's messages, on stderr. */
const sayError = (line: string) => process.stderr.write(line + '\n')

/**
 * The frame of `cortado user`, `acl` and `quota`: --bootstrap and --command-config, waiting for the
 * broker, then the command; exits with its code. A mistake the command finds (an error with code
 * USAGE) prints the usage, as a command-line mistake does.
 */
async function runKafkaAdmin(
  values: { bootstrap?: string; 'command-config'?: string; 'connect-timeout'?: string },
  command: (bootstrap: string, security: ClientSecurity) => Promise<number>,
): Promise<void> {
  const bootstrap = required(values.bootstrap, 'bootstrap')
  const security = await securityOption(values['command-config'])
  await kafkaReachable([bootstrap], values['connect-timeout'], security)
  try {
    exitAfterOutput(await command(bootstrap, security))
  } catch (error) {
    if ((error as { code?: unknown }).code === 'USAGE') throw new UsageError((error as Error).message)
    throw error
  }
}

/** Exits once everything written to stdout has gone out (process.exit would cut a pipe short). */
function exitAfterOutput(code: number): void {
  process.stdout.write('', () => process.exit(code))
}

async function runBroker(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string', multiple: true, default: [] },
      'metrics-port': { type: 'string' },
    },
    strict: true,
  })
  const dataDir = required(values['data-dir'], 'data-dir')
  const settings = parseConfigArgs(values.config)
  // `listeners` (Kafka's syntax) names every listener with its port; --port is then not needed.
  const withListeners = (settings.listeners ?? '').trim() !== ''
  if (withListeners && values.port !== undefined)
    throw new UsageError('--port and --config listeners=... both name ports: give the ports in listeners only')
  const brokerPort = port('port', values.port, withListeners ? 0 : undefined)
  const wantedMetricsPort =
    values['metrics-port'] === undefined ? undefined : port('metrics-port', values['metrics-port'])
  const [{ Broker }, { Logger }, { serveMetrics }, { stopOnSignals, spawnedToExitWithParent }] = await Promise.all([
    load.broker(),
    load.log(),
    load.metrics(),
    load.shutdown(),
  ])
  const log = new Logger()
  const broker = await Broker.start({ host: values.host, port: brokerPort, dataDir, settings, log })
  const metrics =
    wantedMetricsPort === undefined ? undefined : await serveMetrics(broker.registry, values.host, wantedMetricsPort)
  const address = metrics?.address()
  const metricsNote = typeof address === 'object' && address !== null ? `, metrics on :${address.port}/metrics` : ''
  stopOnSignals(
    async () => {
      metrics?.close()
      await broker.stop()
    },
    log,
    { exitWithParent: spawnedToExitWithParent() },
  )
  process.stdout.write(
    `cortado broker ready on ${broker.host}:${broker.port} (node ${broker.nodeId}, data ${broker.dataDir}${metricsNote}, listeners ${broker.listenerSummary()})\n`,
  )
}

const COMMANDS: Record<string, Command> = {
  broker: {
    usage:
      'cortado broker --port <n> --data-dir <dir> [--host 127.0.0.1] [--config key=value]... [--metrics-port <n>]\n' +
      '       cortado broker --config listeners=PLAINTEXT://:9092,SASL_SSL://:9094 --data-dir <dir> [--config key=value]...',
    run: runBroker,
  },
  start: {
    usage: `cortado start [--data-dir ./data] [--http-port 8080] [--broker-port 9092] [--metrics-port 9404] [--nodes 3]
                [--bootstrap <host:port,...> [--command-config <file>]] [--config key=value]... [--node-session-ms 1500]
                ${HTTP_SECURITY}
                ${FETCH} ${CONNECT}`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          'data-dir': { type: 'string', default: './data' },
          'http-port': { type: 'string' },
          'broker-port': { type: 'string' },
          'metrics-port': { type: 'string' },
          nodes: { type: 'string' },
          bootstrap: { type: 'string' },
          ...commandConfigOption,
          config: { type: 'string', multiple: true, default: [] },
          'node-session-ms': { type: 'string' },
          ...httpSecurityOptions,
          ...fetchOption,
          ...connectOption,
        },
        strict: true,
      })
      const bootstrap = values.bootstrap?.split(',')
      if (bootstrap === undefined && values['command-config'] !== undefined)
        throw new UsageError(
          "--command-config is for --bootstrap (an external Kafka): cortado start makes the embedded broker's credentials itself",
        )
      const security = await securityOption(values['command-config'])
      const command = {
        dataDir: values['data-dir'],
        httpPort: port('http-port', values['http-port'], 8080),
        brokerPort: port('broker-port', values['broker-port'], 9092),
        metricsPort: port('metrics-port', values['metrics-port'], 9404),
        nodes: optionalPositive(values.nodes, 'nodes') ?? 3,
        bootstrap,
        security,
        commandConfig: values['command-config'],
        brokerSettings: parseConfigArgs(values.config),
        nodeSessionMs: optionalPositive(values['node-session-ms'], 'node-session-ms'),
        fetchMaxWaitMs: optionalPositive(values['fetch-max-wait-ms'], 'fetch-max-wait-ms'),
        insecure: values.insecure,
        tls: httpTls(values),
      }
      if (bootstrap !== undefined) await kafkaReachable(bootstrap, values['connect-timeout'], security)
      const { runStart } = await load.db()
      await runStart(command)
    },
  },
  node: {
    usage: `cortado node --id <id> --data-dir <dir> --bootstrap <host:port> [--port 0] [--rack <r>] [--segment-size <bytes>]
                [--node-session-ms 1500 (as given to the controller; the master lease is cut from it)]
                ${COMMAND_CONFIG} ${CLUSTER_SECRET} ${FETCH} ${CONNECT}`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          id: { type: 'string' },
          'data-dir': { type: 'string' },
          bootstrap: { type: 'string' },
          ...commandConfigOption,
          host: { type: 'string', default: '127.0.0.1' },
          port: { type: 'string' },
          rack: { type: 'string' },
          'segment-size': { type: 'string' },
          'replication-factor': { type: 'string' },
          'node-session-ms': { type: 'string' },
          'cluster-secret-file': { type: 'string' },
          ...fetchOption,
          ...connectOption,
        },
        strict: true,
      })
      const id = required(values.id, 'id')
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(id))
        throw new UsageError(`--id must be 1 to 64 letters, digits, _ or -, got "${id}"`)
      const command = {
        id,
        dataDir: required(values['data-dir'], 'data-dir'),
        bootstrap: required(values.bootstrap, 'bootstrap').split(','),
        security: await securityOption(values['command-config']),
        clusterSecret: clusterSecret(values['cluster-secret-file']),
        host: values.host,
        port: port('port', values.port, 0),
        rack: values.rack ?? null,
        segmentSize: optionalPositive(values['segment-size'], 'segment-size'),
        replicationFactor: optionalPositive(values['replication-factor'], 'replication-factor') ?? 1,
        nodeSessionMs: optionalPositive(values['node-session-ms'], 'node-session-ms'),
        fetchMaxWaitMs: optionalPositive(values['fetch-max-wait-ms'], 'fetch-max-wait-ms'),
      }
      await kafkaReachable(command.bootstrap, values['connect-timeout'], command.security)
      const { runNode } = await load.db()
      await runNode(command)
    },
  },
  router: {
    usage: `cortado router --bootstrap <host:port> [--http-port 8080] [--retry-ms 10000] ${COMMAND_CONFIG}
                [--admin-password-file <file> (creates the first cluster admin, user admin)] ${HTTP_SECURITY}
                ${CLUSTER_SECRET}
                ${FETCH} ${CONNECT}`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          bootstrap: { type: 'string' },
          ...commandConfigOption,
          host: { type: 'string', default: '127.0.0.1' },
          'http-port': { type: 'string' },
          'replication-factor': { type: 'string' },
          'retry-ms': { type: 'string' },
          'admin-password-file': { type: 'string' },
          'cluster-secret-file': { type: 'string' },
          ...httpSecurityOptions,
          ...fetchOption,
          ...connectOption,
        },
        strict: true,
      })
      const command = {
        retryMs: optionalPositive(values['retry-ms'], 'retry-ms'),
        bootstrap: required(values.bootstrap, 'bootstrap').split(','),
        security: await securityOption(values['command-config']),
        host: values.host,
        port: port('http-port', values['http-port'], 8080),
        replicationFactor: optionalPositive(values['replication-factor'], 'replication-factor') ?? 1,
        fetchMaxWaitMs: optionalPositive(values['fetch-max-wait-ms'], 'fetch-max-wait-ms'),
        insecure: values.insecure,
        tls: httpTls(values),
        adminPassword: adminPassword(values['admin-password-file']),
        clusterSecret: clusterSecret(values['cluster-secret-file']),
      }
      await kafkaReachable(command.bootstrap, values['connect-timeout'], command.security)
      const { runRouter } = await load.db()
      await runRouter(command)
    },
  },
  controller: {
    usage: `cortado controller --id <id> --bootstrap <host:port> [--node-session-ms 1500] [--controller-session-ms 3000]
                     [--rereplication-delay-ms 60000] [--load-balancing off|on] [--load-imbalance-factor 1.5]
                     [--load-min-writes-per-sec 20] [--load-smoothing-ms 10000] [--load-move-cooldown-ms 60000]
                     [--metrics-port <n>] ${COMMAND_CONFIG} ${FETCH} ${CONNECT}`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          id: { type: 'string' },
          bootstrap: { type: 'string' },
          ...commandConfigOption,
          'node-session-ms': { type: 'string' },
          'controller-session-ms': { type: 'string' },
          'rereplication-delay-ms': { type: 'string' },
          'load-balancing': { type: 'string' },
          'load-imbalance-factor': { type: 'string' },
          'load-min-writes-per-sec': { type: 'string' },
          'load-smoothing-ms': { type: 'string' },
          'load-move-cooldown-ms': { type: 'string' },
          'replication-factor': { type: 'string' },
          'metrics-port': { type: 'string' },
          ...fetchOption,
          ...connectOption,
        },
        strict: true,
      })
      const command = {
        id: required(values.id, 'id'),
        bootstrap: required(values.bootstrap, 'bootstrap').split(','),
        security: await securityOption(values['command-config']),
        nodeSessionMs: optionalPositive(values['node-session-ms'], 'node-session-ms'),
        controllerSessionMs: optionalPositive(values['controller-session-ms'], 'controller-session-ms'),
        rereplicationDelayMs: optionalPositive(values['rereplication-delay-ms'], 'rereplication-delay-ms'),
        load: loadOptions(values),
        replicationFactor: optionalPositive(values['replication-factor'], 'replication-factor') ?? 1,
        metricsPort: values['metrics-port'] === undefined ? undefined : port('metrics-port', values['metrics-port']),
        fetchMaxWaitMs: optionalPositive(values['fetch-max-wait-ms'], 'fetch-max-wait-ms'),
      }
      await kafkaReachable(command.bootstrap, values['connect-timeout'], command.security)
      const { runController } = await load.db()
      await runController(command)
    },
  },
  cdc: {
    usage: `cortado cdc --bootstrap <host:port> [--db <db>,...] [--replication-factor 1] [--metrics-port <n>]
                ${COMMAND_CONFIG} ${CONNECT}   (one per cluster: each database's changes to topic cortado-cdc-<db>)`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          bootstrap: { type: 'string' },
          ...commandConfigOption,
          db: { type: 'string' },
          'replication-factor': { type: 'string' },
          'metrics-port': { type: 'string' },
          ...connectOption,
        },
        strict: true,
      })
      const command = {
        bootstrap: required(values.bootstrap, 'bootstrap').split(','),
        security: await securityOption(values['command-config']),
        databases: values.db?.split(','),
        replicationFactor: optionalPositive(values['replication-factor'], 'replication-factor') ?? 1,
        metricsPort: values['metrics-port'] === undefined ? undefined : port('metrics-port', values['metrics-port']),
      }
      await kafkaReachable(command.bootstrap, values['connect-timeout'], command.security)
      const { runCdc } = await load.db()
      await runCdc(command)
    },
  },
  admin: {
    usage: `cortado admin cluster | move-master <db> <partition> <node> | decommission <node> | recommission <node>
              | rebalance [--dry-run] [--db <db>]   [--router ${ROUTER}] ${CONNECT}
              ${ROUTER_USER}`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: {
          ...routerOptions,
          'dry-run': { type: 'boolean' },
          db: { type: 'string' },
        },
        allowPositionals: true,
        strict: true,
      })
      // rebalance's own flags, handed on to it (any other subcommand refuses them).
      const flags = [
        ...(values['dry-run'] === true ? ['--dry-run'] : []),
        ...(values.db === undefined ? [] : ['--db', values.db]),
      ]
      if (flags.length > 0 && positionals[0] !== 'rebalance')
        throw new UsageError(`${flags[0]} is an option of \`cortado admin rebalance\` only`)
      const target = await reachRouter(values)
      const { admin, AdminUsageError } = await load.admin()
      try {
        await admin(target, [...positionals, ...flags], (line) => process.stdout.write(line + '\n'))
      } catch (error) {
        if (error instanceof AdminUsageError) throw new UsageError(error.message)
        throw error
      }
      exitAfterOutput(0)
    },
  },
  export: {
    usage: `cortado export <db> --out <file|dir> [--table <t>] [--router ${ROUTER}] ${CONNECT}
              ${ROUTER_USER}
              (one file of {"table", "key", "doc"} lines, bare documents with --table; a directory: <table>.ndjson each)`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: { ...routerOptions, out: { type: 'string' }, table: { type: 'string' } },
        allowPositionals: true,
        strict: true,
      })
      const db = onePositional(positionals, '<db>')
      const out = required(values.out, 'out')
      const router = await reachRouter(values)
      const { exportDatabase } = await load.bulk()
      await exportDatabase({ router, db, table: values.table, out, say: sayError })
      exitAfterOutput(0)
    },
  },
  import: {
    usage: `cortado import <db> --table <t> --file <x.ndjson> [--on-error skip|fail (default skip)] [--batch 500] [--concurrency 8]
              [--state <file> (default <file>.import-state)] [--router ${ROUTER}] ${CONNECT}
              ${ROUTER_USER}`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: {
          ...routerOptions,
          table: { type: 'string' },
          file: { type: 'string' },
          'on-error': { type: 'string', default: 'skip' },
          batch: { type: 'string', default: '500' },
          concurrency: { type: 'string', default: '8' },
          state: { type: 'string' },
        },
        allowPositionals: true,
        strict: true,
      })
      const db = onePositional(positionals, '<db>')
      const table = required(values.table, 'table')
      const file = required(values.file, 'file')
      const onError = values['on-error']
      if (onError !== 'skip' && onError !== 'fail')
        throw new UsageError(`--on-error must be skip or fail, got "${onError}"`)
      const batch = positive(values.batch, 'batch')
      const concurrency = positive(values.concurrency, 'concurrency')
      readableFile('file', file)
      const router = await reachRouter(values)
      const { importFile } = await load.bulk()
      const options = { router, db, table, file, onError, batch, concurrency, say: sayError } as const
      exitAfterOutput(await importFile({ ...options, state: values.state ?? `${file}.import-state` }))
    },
  },
  backup: {
    usage: `cortado backup <db> --to <dir> [--router ${ROUTER}] ${CONNECT}
              ${ROUTER_USER}   (the first into a directory takes the base; each next one, the log's tail since)`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: { ...routerOptions, to: { type: 'string' } },
        allowPositionals: true,
        strict: true,
      })
      const db = onePositional(positionals, '<db>')
      const to = required(values.to, 'to')
      const router = await reachRouter(values)
      const { backup } = await load.backup()
      await backup({ router, db, to, say: sayError })
      exitAfterOutput(0)
    },
  },
  restore: {
    usage: `cortado restore --from <dir> --db <new name> [--until <ISO time | epoch ms> | --until-token <token>]
              [--concurrency 8] [--router ${ROUTER}] ${CONNECT}
              ${ROUTER_USER}`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: {
          ...routerOptions,
          from: { type: 'string' },
          db: { type: 'string' },
          until: { type: 'string' },
          'until-token': { type: 'string' },
          concurrency: { type: 'string', default: '8' },
        },
        allowPositionals: true,
        strict: true,
      })
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
      const from = required(values.from, 'from')
      const db = required(values.db, 'db')
      if (values.until !== undefined && values['until-token'] !== undefined)
        throw new UsageError('--until and --until-token go one at a time')
      let until: { time: number } | { token: string } | undefined
      if (values.until !== undefined) {
        const time = parseTime(values.until)
        if (time === undefined)
          throw new UsageError(`--until must be a time (ISO 8601 or epoch milliseconds), got "${values.until}"`)
        until = { time }
      } else if (values['until-token'] !== undefined) until = { token: values['until-token'] }
      const concurrency = positive(values.concurrency, 'concurrency')
      const router = await reachRouter(values)
      const { restore } = await load.backup()
      await restore({ router, from, db, until, concurrency, say: sayError })
      exitAfterOutput(0)
    },
  },
  user: {
    usage: `cortado user add <name> --password <p|-> | remove <name> | list [<name>...]   --bootstrap <host:port>
              [--mechanism SCRAM-SHA-256|SCRAM-SHA-512|all (default all)] [--iterations 4096] [--command-config <file>]`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: {
          ...kafkaAdminOption,
          password: { type: 'string' },
          mechanism: { type: 'string', default: 'all' },
          iterations: { type: 'string', default: '4096' },
        },
        allowPositionals: true,
        strict: true,
      })
      const iterations = optionalPositive(values.iterations, 'iterations') ?? 4096
      const password = values.password === '-' ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : values.password
      await runKafkaAdmin(values, async (bootstrap, security) => {
        const { user } = await load.users()
        return user({ bootstrap, security, password, mechanism: values.mechanism, iterations }, positionals, sayLine)
      })
    },
  },
  acl: {
    usage: `cortado acl add | remove | list   --bootstrap <host:port> [--command-config <file>]
              [--allow-principal User:<name>]... [--deny-principal User:<name>]... [--allow-host <ip>]... [--deny-host <ip>]...
              [--principal User:<name> (list, remove)] [--operation read|write|create|delete|alter|describe|...]...
              [--topic <t> | --group <g> | --cluster | --transactional-id <id>] [--resource-pattern-type literal|prefixed|match|any]`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: {
          ...kafkaAdminOption,
          'allow-principal': { type: 'string', multiple: true, default: [] },
          'deny-principal': { type: 'string', multiple: true, default: [] },
          'allow-host': { type: 'string', multiple: true, default: [] },
          'deny-host': { type: 'string', multiple: true, default: [] },
          principal: { type: 'string' },
          operation: { type: 'string', multiple: true, default: [] },
          topic: { type: 'string' },
          group: { type: 'string' },
          cluster: { type: 'boolean', default: false },
          'transactional-id': { type: 'string' },
          'resource-pattern-type': { type: 'string' },
        },
        allowPositionals: true,
        strict: true,
      })
      await runKafkaAdmin(values, async (bootstrap, security) => {
        const { acl } = await load.acls()
        const options = {
          bootstrap,
          security,
          allowPrincipal: values['allow-principal'],
          denyPrincipal: values['deny-principal'],
          allowHost: values['allow-host'],
          denyHost: values['deny-host'],
          principal: values.principal,
          operation: values.operation,
          topic: values.topic,
          group: values.group,
          cluster: values.cluster,
          transactionalId: values['transactional-id'],
          resourcePatternType: values['resource-pattern-type'],
        }
        return acl(options, positionals, sayLine)
      })
    },
  },
  quota: {
    usage: `cortado quota set <key>=<value>... [--remove <key>]... | list   --bootstrap <host:port> [--command-config <file>]
              [--user <name> | --user-default] [--client-id <id> | --client-id-default]
              keys: producer_byte_rate, consumer_byte_rate (bytes/s), request_percentage (% of one thread)`,
    run: async (args) => {
      const { values, positionals } = parseArgs({
        args,
        options: {
          ...kafkaAdminOption,
          user: { type: 'string' },
          'user-default': { type: 'boolean', default: false },
          'client-id': { type: 'string' },
          'client-id-default': { type: 'boolean', default: false },
          remove: { type: 'string', multiple: true, default: [] },
        },
        allowPositionals: true,
        strict: true,
      })
      await runKafkaAdmin(values, async (bootstrap, security) => {
        const { quota } = await load.quotas()
        const options = {
          bootstrap,
          security,
          user: values.user,
          userDefault: values['user-default'],
          clientId: values['client-id'],
          clientIdDefault: values['client-id-default'],
          remove: values.remove,
        }
        return quota(options, positionals, sayLine)
      })
    },
  },
  produce: {
    usage: `cortado produce --bootstrap <host:port> --topic <t> [--key <k>] [--file <path>] [--segment-size <bytes>]
                ${CLIENT_SECURITY} ${CONNECT}`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          bootstrap: { type: 'string' },
          topic: { type: 'string' },
          key: { type: 'string' },
          file: { type: 'string' },
          'segment-size': { type: 'string' },
          ...clientSecurityOptions,
          ...connectOption,
        },
        strict: true,
      })
      const bootstrap = required(values.bootstrap, 'bootstrap')
      const topic = required(values.topic, 'topic')
      const segmentSize = optionalPositive(values['segment-size'], 'segment-size')
      const security = await clientSecurity(values)
      await kafkaReachable([bootstrap], values['connect-timeout'], security)
      const { produce } = await load.client()
      const stallTimeoutMs = connectTimeoutMs(values['connect-timeout'])
      const failed = await produce({
        bootstrap,
        security,
        topic,
        key: values.key,
        file: values.file,
        segmentSize,
        stallTimeoutMs,
      })
      exitAfterOutput(failed === 0 ? 0 : 1)
    },
  },
  consume: {
    usage: `cortado consume --bootstrap <host:port> --topic <t> [--group <g>] [--from-beginning] [--count <n>] [--output <dir>]
                ${CLIENT_SECURITY} ${CONNECT}`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          bootstrap: { type: 'string' },
          topic: { type: 'string' },
          group: { type: 'string' },
          'from-beginning': { type: 'boolean', default: false },
          count: { type: 'string' },
          output: { type: 'string' },
          ...clientSecurityOptions,
          ...connectOption,
        },
        strict: true,
      })
      const bootstrap = required(values.bootstrap, 'bootstrap')
      const options = {
        bootstrap,
        security: await clientSecurity(values),
        topic: required(values.topic, 'topic'),
        group: values.group,
        fromBeginning: values['from-beginning'],
        count: optionalPositive(values.count, 'count'),
        output: values.output,
      }
      await kafkaReachable([bootstrap], values['connect-timeout'], options.security)
      const { consume } = await load.client()
      await consume(options)
      exitAfterOutput(0)
    },
  },
  audit: {
    usage: `cortado audit --bootstrap <host:port> --topic <t> --group <g> --from <time> --to <time>
                ${CLIENT_SECURITY} ${CONNECT}`,
    run: async (args) => {
      const { values } = parseArgs({
        args,
        options: {
          bootstrap: { type: 'string' },
          topic: { type: 'string' },
          group: { type: 'string' },
          from: { type: 'string' },
          to: { type: 'string' },
          ...clientSecurityOptions,
          ...connectOption,
        },
        strict: true,
      })
      const time = (name: string, v: string | undefined) => {
        const t = parseTime(required(v, name))
        if (t === undefined)
          throw new UsageError(`--${name} must be a time (ISO 8601 or epoch milliseconds), got "${v}"`)
        return t
      }
      const bootstrap = required(values.bootstrap, 'bootstrap')
      const options = {
        bootstrap,
        security: await clientSecurity(values),
        topic: required(values.topic, 'topic'),
        group: required(values.group, 'group'),
        from: time('from', values.from),
        to: time('to', values.to),
      }
      await kafkaReachable([bootstrap], values['connect-timeout'], options.security)
      const { audit } = await load.client()
      const complete = await audit(options)
      exitAfterOutput(complete ? 0 : 1)
    },
  },
}

const USAGE = `usage:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join('\n')}
  cortado <command> --help | cortado --version
`

const isHelp = (arg: string) => arg === '--help' || arg === '-h'

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`cortado ${VERSION}\n`)
    return
  }
  if (command === undefined) throw new UsageError('no command given')
  if (isHelp(command) || command === 'help') {
    const topic = rest[0]
    if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) throw new UsageError(`unknown command "${topic}"`)
    process.stdout.write(topic === undefined ? USAGE : `usage: ${COMMANDS[topic].usage}\n`)
    return
  }
  if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command "${command}"`)
  if (rest.some(isHelp)) {
    process.stdout.write(`usage: ${COMMANDS[command].usage}\n`)
    return
  }
  await COMMANDS[command].run(rest)
}

function isArgumentError(err: unknown): err is Error {
  return (
    err instanceof UsageError ||
    err instanceof ConfigError ||
    (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS_'))
  )
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (isArgumentError(err)) {
    const command = process.argv[2]
    const usage =
      command !== undefined && Object.hasOwn(COMMANDS, command) ? `usage: ${COMMANDS[command].usage}\n` : USAGE
    process.stderr.write(`cortado: ${err.message}\n${usage}`)
    process.exit(2)
  }
  process.stderr.write(`cortado: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
