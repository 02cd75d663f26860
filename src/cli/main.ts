// The `cortado` command.
//   cortado broker --port <n> --data-dir <dir> [--host 127.0.0.1] [--config key=value]... [--metrics-port <n>]
//   cortado start [--data-dir ./data] [--http-port 8080] [--broker-port 9092] [--nodes 3] [--bootstrap host:port]
//   cortado node | router   (the database's processes, as `start` runs them)
//   cortado produce | consume | audit   (the client layer: see USAGE)
import { parseArgs } from 'node:util'
import { Broker } from '../broker/broker.ts'
import { ConfigError, parseConfigArgs } from '../broker/config.ts'
import { Logger } from '../util/log.ts'
import { serveMetrics } from '../util/metrics.ts'
import { admin, AdminUsageError } from './admin-commands.ts'
import { audit, consume, parseTime, produce } from './client-commands.ts'
import { runController, runNode, runRouter, runStart } from './db-commands.ts'

const USAGE = `usage:
  cortado broker --port <n> --data-dir <dir> [--host 127.0.0.1] [--config key=value]... [--metrics-port <n>]
  cortado start [--data-dir ./data] [--http-port 8080] [--broker-port 9092] [--metrics-port 9404] [--nodes 3]
                [--bootstrap <host:port,...>] [--config key=value]...
  cortado node --id <id> --data-dir <dir> --bootstrap <host:port> [--port 0] [--rack <r>] [--segment-size <bytes>]
  cortado router --bootstrap <host:port> [--http-port 8080] [--retry-ms 10000]
  cortado admin cluster | move-master <db> <partition> <node> | decommission <node> | recommission <node> [--router http://127.0.0.1:8080]
  cortado controller --id <id> --bootstrap <host:port> [--node-session-ms 1500] [--controller-session-ms 3000] [--rereplication-delay-ms 60000]
  cortado produce --bootstrap <host:port> --topic <t> [--key <k>] [--file <path>] [--segment-size <bytes>]
  cortado consume --bootstrap <host:port> --topic <t> [--group <g>] [--from-beginning] [--count <n>] [--output <dir>]
  cortado audit --bootstrap <host:port> --topic <t> --group <g> --from <time> --to <time>
`

/** A command-line mistake: printed with the usage, exit code 2. */
class UsageError extends Error {
  readonly code = 'USAGE'
}

function intOption(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`)
    return fallback
  }
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port number, got "${value}"`)
  return n
}

/** Exits once everything written to stdout has gone out (process.exit would cut a pipe short). */
function exitAfterOutput(code: number): void {
  process.stdout.write('', () => process.exit(code))
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

interface BrokerCommand {
  host: string
  port: number
  dataDir: string
  settings: Record<string, string>
  metricsPort?: number
  banner: (broker: Broker, metricsPort?: number) => string
}

async function runBroker(cmd: BrokerCommand): Promise<void> {
  const log = new Logger()
  const broker = await Broker.start({ host: cmd.host, port: cmd.port, dataDir: cmd.dataDir, settings: cmd.settings, log })
  const metrics = cmd.metricsPort === undefined ? undefined : await serveMetrics(broker.registry, cmd.host, cmd.metricsPort)
  const address = metrics?.address()
  const metricsPort = typeof address === 'object' && address !== null ? address.port : undefined
  process.stdout.write(cmd.banner(broker, metricsPort) + '\n')
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    metrics?.close()
    broker.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { err })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === 'broker') {
    const { values } = parseArgs({
      args: rest,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        config: { type: 'string', multiple: true, default: [] },
        'metrics-port': { type: 'string' },
      },
      strict: true,
    })
    if (values['data-dir'] === undefined) throw new UsageError('--data-dir is required')
    await runBroker({
      host: values.host,
      port: intOption('port', values.port),
      dataDir: values['data-dir'],
      settings: parseConfigArgs(values.config),
      metricsPort: values['metrics-port'] === undefined ? undefined : intOption('metrics-port', values['metrics-port']),
      banner: (b, metricsPort) => `cortado broker ready on ${b.host}:${b.port} (node ${b.nodeId}, data ${b.dataDir}${metricsPort === undefined ? '' : `, metrics on :${metricsPort}/metrics`})`,
    })
    return
  }
  if (command === 'start') {
    const { values } = parseArgs({
      args: rest,
      options: {
        'data-dir': { type: 'string', default: './data' },
        'http-port': { type: 'string' },
        'broker-port': { type: 'string' },
        'metrics-port': { type: 'string' },
        nodes: { type: 'string' },
        bootstrap: { type: 'string' },
        config: { type: 'string', multiple: true, default: [] },
      },
      strict: true,
    })
    await runStart({
      dataDir: values['data-dir'],
      httpPort: intOption('http-port', values['http-port'], 8080),
      brokerPort: intOption('broker-port', values['broker-port'], 9092),
      metricsPort: intOption('metrics-port', values['metrics-port'], 9404),
      nodes: values.nodes === undefined ? 3 : positive(values.nodes, 'nodes'),
      bootstrap: values.bootstrap === undefined ? undefined : values.bootstrap.split(','),
      brokerSettings: parseConfigArgs(values.config),
    })
    return
  }
  if (command === 'node') {
    const { values } = parseArgs({
      args: rest,
      options: {
        id: { type: 'string' },
        'data-dir': { type: 'string' },
        bootstrap: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        rack: { type: 'string' },
        'segment-size': { type: 'string' },
        'replication-factor': { type: 'string' },
      },
      strict: true,
    })
    const id = required(values.id, 'id')
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new UsageError(`--id must be 1 to 64 letters, digits, _ or -, got "${id}"`)
    await runNode({
      id,
      dataDir: required(values['data-dir'], 'data-dir'),
      bootstrap: required(values.bootstrap, 'bootstrap').split(','),
      host: values.host,
      port: intOption('port', values.port, 0),
      rack: values.rack ?? null,
      segmentSize: values['segment-size'] === undefined ? undefined : positive(values['segment-size'], 'segment-size'),
      replicationFactor: values['replication-factor'] === undefined ? 1 : positive(values['replication-factor'], 'replication-factor'),
    })
    return
  }
  if (command === 'controller') {
    const { values } = parseArgs({
      args: rest,
      options: {
        id: { type: 'string' },
        bootstrap: { type: 'string' },
        'node-session-ms': { type: 'string' },
        'controller-session-ms': { type: 'string' },
        'rereplication-delay-ms': { type: 'string' },
        'replication-factor': { type: 'string' },
        'metrics-port': { type: 'string' },
      },
      strict: true,
    })
    await runController({
      id: required(values.id, 'id'),
      bootstrap: required(values.bootstrap, 'bootstrap').split(','),
      nodeSessionMs: values['node-session-ms'] === undefined ? undefined : positive(values['node-session-ms'], 'node-session-ms'),
      controllerSessionMs: values['controller-session-ms'] === undefined ? undefined : positive(values['controller-session-ms'], 'controller-session-ms'),
      rereplicationDelayMs: values['rereplication-delay-ms'] === undefined ? undefined : positive(values['rereplication-delay-ms'], 'rereplication-delay-ms'),
      replicationFactor: values['replication-factor'] === undefined ? 1 : positive(values['replication-factor'], 'replication-factor'),
      metricsPort: values['metrics-port'] === undefined ? undefined : intOption('metrics-port', values['metrics-port']),
    })
    return
  }
  if (command === 'admin') {
    const { values, positionals } = parseArgs({ args: rest, options: { router: { type: 'string', default: 'http://127.0.0.1:8080' } }, allowPositionals: true, strict: true })
    try {
      await admin(values.router.replace(/\/$/, ''), positionals, (line) => process.stdout.write(line + '\n'))
    } catch (error) {
      if (error instanceof AdminUsageError) throw new UsageError(error.message)
      throw error
    }
    exitAfterOutput(0)
    return
  }
  if (command === 'router') {
    const { values } = parseArgs({
      args: rest,
      options: {
        bootstrap: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        'http-port': { type: 'string' },
        'replication-factor': { type: 'string' },
        'retry-ms': { type: 'string' },
      },
      strict: true,
    })
    await runRouter({
      retryMs: values['retry-ms'] === undefined ? undefined : positive(values['retry-ms'], 'retry-ms'),
      bootstrap: required(values.bootstrap, 'bootstrap').split(','),
      host: values.host,
      port: intOption('http-port', values['http-port'], 8080),
      replicationFactor: values['replication-factor'] === undefined ? 1 : positive(values['replication-factor'], 'replication-factor'),
    })
    return
  }
  if (command === 'produce') {
    const { values } = parseArgs({
      args: rest,
      options: { bootstrap: { type: 'string' }, topic: { type: 'string' }, key: { type: 'string' }, file: { type: 'string' }, 'segment-size': { type: 'string' } },
      strict: true,
    })
    const bootstrap = required(values.bootstrap, 'bootstrap')
    const topic = required(values.topic, 'topic')
    const segmentSize = values['segment-size'] === undefined ? undefined : positive(values['segment-size'], 'segment-size')
    const failed = await produce({ bootstrap, topic, key: values.key, file: values.file, segmentSize })
    exitAfterOutput(failed === 0 ? 0 : 1)
    return
  }
  if (command === 'consume') {
    const { values } = parseArgs({
      args: rest,
      options: {
        bootstrap: { type: 'string' }, topic: { type: 'string' }, group: { type: 'string' }, 'from-beginning': { type: 'boolean', default: false },
        count: { type: 'string' }, output: { type: 'string' },
      },
      strict: true,
    })
    await consume({
      bootstrap: required(values.bootstrap, 'bootstrap'), topic: required(values.topic, 'topic'), group: values.group,
      fromBeginning: values['from-beginning'], count: values.count === undefined ? undefined : positive(values.count, 'count'), output: values.output,
    })
    exitAfterOutput(0)
    return
  }
  if (command === 'audit') {
    const { values } = parseArgs({
      args: rest,
      options: { bootstrap: { type: 'string' }, topic: { type: 'string' }, group: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } },
      strict: true,
    })
    const time = (name: string, v: string | undefined) => {
      const t = parseTime(required(v, name))
      if (t === undefined) throw new UsageError(`--${name} must be a time (ISO 8601 or epoch milliseconds), got "${v}"`)
      return t
    }
    const complete = await audit({
      bootstrap: required(values.bootstrap, 'bootstrap'), topic: required(values.topic, 'topic'), group: required(values.group, 'group'),
      from: time('from', values.from), to: time('to', values.to),
    })
    exitAfterOutput(complete ? 0 : 1)
    return
  }
  throw new UsageError(command === undefined ? 'no command given' : `unknown command "${command}"`)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || err instanceof ConfigError || (err instanceof Error && 'code' in err && err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')) {
    process.stderr.write(`cortado: ${err.message}\n${USAGE}`)
    process.exit(2)
  }
  process.stderr.write(`cortado: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
