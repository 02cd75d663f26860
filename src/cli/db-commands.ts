// The database's processes as commands:
//   cortado node    one storage node (its own process)
//   cortado router  the HTTP router
//   cortado controller  a cluster controller (active or standby: the metadata log decides)
//   cortado start   the local cluster: the embedded broker (or --bootstrap an external Kafka),
//                   N storage node processes (restarted if they die), a controller and the router.
import { Admin } from '@platformatic/kafka'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Broker } from '../broker/broker.ts'
import {
  ADMIN_USER,
  clusterSecretFile,
  grantLocalAccess,
  loadOrCreateCredentials,
  propertiesFile,
  secureBrokerSettings,
  serviceSecurity,
  writeClientProperties,
} from './local-credentials.ts'
import { kafkaConnectionOptions, type KafkaSecurity } from '../client/kafka-security.ts'
import { CdcService } from '../db/changes/cdc-service.ts'
import { Controller } from '../db/controller/controller.ts'
import { checkReplicationTopics } from '../db/kafka-topics.ts'
import { METADATA_TOPIC } from '../db/metadata/metadata-log.ts'
import { Router } from '../db/router/router.ts'
import { StorageNode } from '../db/storage/storage-node.ts'
import { Logger } from '../util/log.ts'
import { createRegistry, serveMetrics } from '../util/metrics.ts'
import { EXIT_WITH_PARENT_ENV, spawnedToExitWithParent, stopOnSignals } from './shutdown.ts'

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url))
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version

export interface NodeCommand {
  id: string
  dataDir: string
  bootstrap: string[]
  /** TLS and SASL for Kafka (`--command-config`); default plaintext. */
  security?: KafkaSecurity
  /** The secret the internal API requires (`--cluster-secret-file`). */
  clusterSecret?: string
  host: string
  port: number
  rack: string | null
  segmentSize?: number
  replicationFactor: number
  /** The controller's node session, which the master lease is cut from (default 1500 ms). */
  nodeSessionMs?: number
  /** Kafka's fetch.max.wait.ms for the node's log readers (StorageNodeOptions.fetchMaxWaitMs). */
  fetchMaxWaitMs?: number
}

export async function runNode(cmd: NodeCommand): Promise<void> {
  const log = new Logger({ component: 'node', node: cmd.id })
  const node = await StorageNode.start({ ...cmd, log, registry: createRegistry() })
  stopOnSignals(() => node.close(), log, { exitWithParent: spawnedToExitWithParent() })
  process.stdout.write(`cortado node ready id=${cmd.id} url=${node.url} pid=${process.pid}\n`)
}

export interface RouterCommand {
  bootstrap: string[]
  /** TLS and SASL for Kafka (`--command-config`); default plaintext. */
  security?: KafkaSecurity
  host: string
  port: number
  replicationFactor: number
  /** How long requests retry while a partition has no master (default 10 s). */
  retryMs?: number
  fetchMaxWaitMs?: number
  /** Authentication off (`--insecure`). */
  insecure: boolean
  /** The first cluster admin's password (`--admin-password-file`), used when the cluster has no user. */
  adminPassword?: string
  /** HTTPS (`--tls-cert`, `--tls-key`): PEM. */
  tls?: { cert: string; key: string }
  /** The secret the storage nodes require (`--cluster-secret-file`). */
  clusterSecret?: string
}

export async function runRouter(cmd: RouterCommand): Promise<void> {
  const log = new Logger({ component: 'router' })
  const { insecure, adminPassword, ...rest } = cmd
  const initialAdmin = adminPassword === undefined ? undefined : { name: ADMIN_USER, password: adminPassword }
  const router = await Router.start({
    ...rest,
    access: { required: !insecure, initialAdmin },
    log,
    registry: createRegistry(),
  })
  if (insecure) process.stderr.write(INSECURE_WARNING(router.url, cmd.bootstrap.join(',')))
  else if (router.metadata.view.users.size === 0)
    log.warn('the cluster has no user yet: start a router with --admin-password-file to create the first cluster admin')
  stopOnSignals(() => router.close(), log, { exitWithParent: spawnedToExitWithParent() })
  process.stdout.write(`cortado router ready http=${router.url}\n`)
}

export interface ControllerCommand {
  id: string
  bootstrap: string[]
  /** TLS and SASL for Kafka (`--command-config`); default plaintext. */
  security?: KafkaSecurity
  nodeSessionMs?: number
  controllerSessionMs?: number
  rereplicationDelayMs?: number
  /** Load-balancing settings (ControllerConfig's load* fields). */
  load?: Record<string, number | boolean>
  replicationFactor: number
  metricsPort?: number
  fetchMaxWaitMs?: number
}

export async function runController(cmd: ControllerCommand): Promise<void> {
  const log = new Logger({ component: 'controller', id: cmd.id })
  const registry = createRegistry()
  const config = {
    ...(cmd.nodeSessionMs === undefined ? {} : { nodeSessionMs: cmd.nodeSessionMs }),
    ...(cmd.controllerSessionMs === undefined ? {} : { controllerSessionMs: cmd.controllerSessionMs }),
    ...(cmd.rereplicationDelayMs === undefined ? {} : { rereplicationDelayMs: cmd.rereplicationDelayMs }),
    ...cmd.load,
  }
  const controller = await Controller.start({
    id: cmd.id,
    bootstrap: cmd.bootstrap,
    security: cmd.security,
    log,
    registry,
    config,
    replicationFactor: cmd.replicationFactor,
    fetchMaxWaitMs: cmd.fetchMaxWaitMs,
  })
  const metrics = cmd.metricsPort === undefined ? undefined : await serveMetrics(registry, '127.0.0.1', cmd.metricsPort)
  stopOnSignals(
    async () => {
      metrics?.close()
      await controller.close()
    },
    log,
    { exitWithParent: spawnedToExitWithParent() },
  )
  process.stdout.write(`cortado controller ready id=${cmd.id} pid=${process.pid}\n`)
}

export interface CdcCommand {
  bootstrap: string[]
  /** TLS and SASL for Kafka (`--command-config`); default plaintext. */
  security?: KafkaSecurity
  /** Only these databases (default all). */
  databases?: string[]
  replicationFactor: number
  metricsPort?: number
}

export async function runCdc(cmd: CdcCommand): Promise<void> {
  const log = new Logger({ component: 'cdc' })
  const registry = createRegistry()
  const service = await CdcService.start({ ...cmd, log, registry, version: VERSION })
  const metrics = cmd.metricsPort === undefined ? undefined : await serveMetrics(registry, '127.0.0.1', cmd.metricsPort)
  stopOnSignals(
    async () => {
      metrics?.close()
      await service.close()
    },
    log,
    { exitWithParent: spawnedToExitWithParent() },
  )
  const address = metrics?.address()
  const metricsUrl =
    typeof address === 'object' && address !== null ? ` metrics=http://127.0.0.1:${address.port}/metrics` : ''
  process.stdout.write(`cortado cdc ready pid=${process.pid}${metricsUrl}\n`)
}

async function brokerCount(bootstrap: string[], security: KafkaSecurity | undefined): Promise<number> {
  const admin = new Admin({
    clientId: 'cortado-start',
    bootstrapBrokers: bootstrap,
    ...kafkaConnectionOptions(security),
    retries: 5,
    retryDelay: 500,
  })
  try {
    return Math.max(1, (await admin.metadata({ topics: [] })).brokers.size)
  } finally {
    await admin.close()
  }
}

export interface StartCommand {
  dataDir: string
  httpPort: number
  brokerPort: number
  metricsPort: number
  nodes: number
  /** An external Kafka instead of the embedded broker. */
  bootstrap?: string[]
  /** TLS and SASL for Kafka, read from `commandConfig`; default plaintext. */
  security?: KafkaSecurity
  /** The `--command-config` file `security` was read from, handed on to the storage node processes. */
  commandConfig?: string
  brokerSettings: Record<string, string>
  /** The controller's node session, also given to the nodes (their master lease is cut from it). */
  nodeSessionMs?: number
  fetchMaxWaitMs?: number
  /** Authentication off, on the API and the embedded broker (`--insecure`). */
  insecure: boolean
  /** HTTPS for the router (`--tls-cert`, `--tls-key`): PEM. */
  tls?: { cert: string; key: string }
}

const INSECURE_WARNING = (http: string, broker: string) =>
  [
    '',
    '!!! WARNING: --insecure: authentication and authorization are OFF.',
    `!!! Anyone who can reach ${http} or the broker at ${broker} can read, write and delete everything.`,
    '!!! Use it for local experiments only.',
    '',
  ].join('\n') + '\n'

/** A storage node child process, restarted (after a pause) whenever it dies unexpectedly. */
class NodeSupervisor {
  readonly id: string
  readonly #args: string[]
  readonly #log: Logger
  #child: ChildProcess | undefined
  #stopping = false
  #ready: Promise<void>

  constructor(id: string, args: string[], log: Logger) {
    this.id = id
    this.#args = args
    this.#log = log
    this.#ready = this.#spawn()
  }

  get ready(): Promise<void> {
    return this.#ready
  }

  #spawn(): Promise<void> {
    // The node stops by itself if this process dies without stopping it (SIGKILL).
    const env = { ...process.env, [EXIT_WITH_PARENT_ENV]: '1' }
    const child = spawn(process.execPath, [MAIN, 'node', ...this.#args], { stdio: ['ignore', 'pipe', 'inherit'], env })
    this.#child = child
    const ready = new Promise<void>((resolveReady, reject) => {
      const lines = createInterface({ input: child.stdout })
      lines.on('line', (line) => {
        if (line.startsWith('cortado node ready')) resolveReady()
      })
      child.once('exit', (code, signal) => {
        reject(new Error(`storage node ${this.id} exited (${signal ?? code}) before it was ready`))
        if (this.#stopping) return
        this.#log.warn('storage node died; restarting it in 1 s', { node: this.id, code, signal })
        setTimeout(() => {
          if (!this.#stopping)
            this.#ready = this.#spawn().catch((error: unknown) =>
              this.#log.error('storage node restart failed', { node: this.id, error: String(error) }),
            )
        }, 1000)
      })
    })
    return ready
  }

  async stop(): Promise<void> {
    this.#stopping = true
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

export async function runStart(cmd: StartCommand): Promise<void> {
  const log = new Logger({ component: 'start' })
  const dataDir = resolve(cmd.dataDir)
  mkdirSync(dataDir, { recursive: true })
  let broker: Broker | undefined
  let bootstrap = cmd.bootstrap
  const registry = createRegistry()
  // Secure by default: the first start makes the admin's and the processes' credentials.
  const local = cmd.insecure ? undefined : loadOrCreateCredentials(dataDir)
  // How each process reaches Kafka: an external Kafka as --command-config says; the embedded
  // broker (when secure) with each process's own SCRAM user.
  const kafka = { router: cmd.security, controller: cmd.security, cdc: cmd.security, nodeConfig: cmd.commandConfig }
  const clusterSecret = local?.credentials.clusterSecret
  if (bootstrap === undefined) {
    const secure = local === undefined ? {} : secureBrokerSettings('127.0.0.1', cmd.brokerPort)
    broker = await Broker.start({
      host: '127.0.0.1',
      port: cmd.brokerPort,
      dataDir: join(dataDir, 'broker'),
      settings: { ...secure, ...cmd.brokerSettings },
      log,
      registry,
    })
    bootstrap = [`${broker.host}:${broker.port}`]
    if (local !== undefined) {
      grantLocalAccess(broker, local.credentials)
      writeClientProperties(dataDir, local.credentials, bootstrap[0])
      const { services } = local.credentials
      kafka.router = serviceSecurity(services.router)
      kafka.controller = serviceSecurity(services.controller)
      kafka.cdc = serviceSecurity(services.cdc)
      kafka.nodeConfig = propertiesFile(dataDir, services.node.name)
    }
  }
  // Three Kafka replicas of every replication topic, or as many as there are brokers (the check
  // below then warns that the topic falls short).
  const replicationFactor = broker === undefined ? Math.min(3, await brokerCount(bootstrap, cmd.security)) : 1
  const metrics = await serveMetrics(registry, '127.0.0.1', cmd.metricsPort)
  const metricsAddress = metrics.address()
  const metricsPort =
    typeof metricsAddress === 'object' && metricsAddress !== null ? metricsAddress.port : cmd.metricsPort
  // The router first: it creates the metadata topic the nodes register in. Then the controller
  // (one here; `cortado controller` runs more, as standbys).
  const router = await Router.start({
    bootstrap,
    security: kafka.router,
    access: { required: local !== undefined, initialAdmin: local?.credentials.admin },
    clusterSecret,
    tls: cmd.tls,
    host: '127.0.0.1',
    port: cmd.httpPort,
    log: log.child({ component: 'router' }),
    registry,
    replicationFactor,
    fetchMaxWaitMs: cmd.fetchMaxWaitMs,
  })
  const controller = await Controller.start({
    id: 'controller-1',
    bootstrap,
    security: kafka.controller,
    log: log.child({ component: 'controller' }),
    registry,
    replicationFactor,
    config: cmd.nodeSessionMs === undefined ? {} : { nodeSessionMs: cmd.nodeSessionMs },
    fetchMaxWaitMs: cmd.fetchMaxWaitMs,
  })
  const nodes = Array.from({ length: cmd.nodes }, (_, i) => {
    const id = `node-${i + 1}`
    const args = [
      '--id',
      id,
      '--data-dir',
      join(dataDir, 'nodes', id),
      '--bootstrap',
      bootstrap.join(','),
      '--replication-factor',
      String(replicationFactor),
    ]
    if (cmd.nodeSessionMs !== undefined) args.push('--node-session-ms', String(cmd.nodeSessionMs))
    if (cmd.fetchMaxWaitMs !== undefined) args.push('--fetch-max-wait-ms', String(cmd.fetchMaxWaitMs))
    if (kafka.nodeConfig !== undefined) args.push('--command-config', kafka.nodeConfig)
    if (clusterSecret !== undefined) args.push('--cluster-secret-file', clusterSecretFile(dataDir))
    return new NodeSupervisor(id, args, log)
  })
  await Promise.all(nodes.map((n) => n.ready))
  // Each database's change topic (cortado-cdc-<db>), in Debezium's envelope.
  const cdc = await CdcService.start({
    bootstrap,
    security: kafka.cdc,
    replicationFactor,
    log: log.child({ component: 'cdc' }),
    registry,
    version: VERSION,
  })

  const notes: string[] = []
  if (broker !== undefined) {
    notes.push(
      'Embedded single broker: replication topics have one Kafka replica; min.insync.replicas and unclean leader election do not apply.',
    )
  } else {
    const topics = [METADATA_TOPIC, ...[...router.metadata.view.databases.values()].map((d) => d.topic)]
    for (const check of await checkReplicationTopics(bootstrap, topics, cmd.security)) {
      if (!check.ok) {
        const warning = `WARNING: topic ${check.topic} is not safe for no-loss replication: ${check.problems.join('; ')}`
        notes.push(warning)
        log.warn('replication topic settings fall short', { topic: check.topic, problems: check.problems })
      }
    }
  }
  stopOnSignals(
    async () => {
      await router.close()
      await cdc.close()
      await controller.close()
      await Promise.all(nodes.map((n) => n.stop()))
      metrics.close()
      await broker?.stop()
    },
    log,
    { exitWithParent: true },
  )
  const curl =
    local === undefined ? 'curl' : `curl -u admin:${local.created ? local.credentials.admin.password : '<password>'}`
  process.stdout.write(
    [
      `cortado ready http=${router.url} broker=${bootstrap.join(',')} nodes=${cmd.nodes} metrics=http://127.0.0.1:${metricsPort}/metrics`,
      `Cortado is running: ${cmd.nodes} storage nodes and a router at ${router.url} over Kafka at ${bootstrap.join(',')}.`,
      ...notes,
      ...accessNotes(dataDir, local, broker !== undefined),
      `  create a database:  ${curl} -X PUT ${router.url}/_admin/databases/shop -H 'content-type: application/json' \\`,
      `    -d '{"partitions": 8, "replicas": 3, "tables": {"users": {"key": ["id"], "schema": {"type": "record", "name": "User", "fields": [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}]}}}}'`,
      `  write:  ${curl} -X PUT ${router.url}/shop/users/u1 -H 'content-type: application/json' -d '{"id": "u1", "name": "Ada"}'`,
      `  read:   ${curl} ${router.url}/shop/users/u1`,
      `  cluster: ${curl} ${router.url}/_admin/cluster    API: ${router.url}/openapi.json`,
      'Ctrl-C stops everything cleanly.',
    ].join('\n') + '\n',
  )
  if (local === undefined) {
    process.stderr.write(INSECURE_WARNING(router.url, bootstrap.join(',')))
    log.warn('started with --insecure: authentication and authorization are off')
  }
}

/** What the start says of its credentials: the admin's password the first time only. */
function accessNotes(
  dataDir: string,
  local: ReturnType<typeof loadOrCreateCredentials> | undefined,
  embedded: boolean,
): string[] {
  if (local === undefined) return []
  const kafkaTools = embedded
    ? [
        `  Kafka tools as admin: kcat -F ${propertiesFile(dataDir, ADMIN_USER)} -L`,
        `    (the same file for cortado produce/consume --command-config; the broker takes SCRAM-SHA-512 only)`,
      ]
    : []
  if (!local.created)
    return [`Authentication is on: the password of the cluster admin (user admin) is in ${local.path}.`, ...kafkaTools]
  return [
    `First start: created the cluster admin (shown once; stored in ${local.path}, readable only by you):`,
    `  user: admin  password: ${local.credentials.admin.password}`,
    ...kafkaTools,
  ]
}
