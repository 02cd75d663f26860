// The database's processes as commands:
//   cortado node    one storage node (its own process)
//   cortado router  the HTTP router
//   cortado controller  a cluster controller (active or standby: the metadata log decides)
//   cortado start   the local cluster: the embedded broker (or --bootstrap an external Kafka),
//                   N storage node processes (restarted if they die), a controller and the router.
import { Admin } from '@platformatic/kafka'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Broker } from '../broker/broker.ts'
import { Controller } from '../db/controller/controller.ts'
import { checkReplicationTopics } from '../db/kafka-topics.ts'
import { METADATA_TOPIC } from '../db/metadata/metadata-log.ts'
import { Router } from '../db/router/router.ts'
import { StorageNode } from '../db/storage/storage-node.ts'
import { Logger } from '../util/log.ts'
import { createRegistry, serveMetrics } from '../util/metrics.ts'
import { EXIT_WITH_PARENT_ENV, spawnedToExitWithParent, stopOnSignals } from './shutdown.ts'

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url))

export interface NodeCommand {
  id: string
  dataDir: string
  bootstrap: string[]
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
  host: string
  port: number
  replicationFactor: number
  /** How long requests retry while a partition has no master (default 10 s). */
  retryMs?: number
  fetchMaxWaitMs?: number
}

export async function runRouter(cmd: RouterCommand): Promise<void> {
  const log = new Logger({ component: 'router' })
  const router = await Router.start({ ...cmd, log, registry: createRegistry() })
  stopOnSignals(() => router.close(), log, { exitWithParent: spawnedToExitWithParent() })
  process.stdout.write(`cortado router ready http=${router.url}\n`)
}

export interface ControllerCommand {
  id: string
  bootstrap: string[]
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

async function brokerCount(bootstrap: string[]): Promise<number> {
  const admin = new Admin({ clientId: 'cortado-start', bootstrapBrokers: bootstrap, retries: 5, retryDelay: 500 })
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
  brokerSettings: Record<string, string>
  /** The controller's node session, also given to the nodes (their master lease is cut from it). */
  nodeSessionMs?: number
  fetchMaxWaitMs?: number
}

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
  if (bootstrap === undefined) {
    broker = await Broker.start({
      host: '127.0.0.1',
      port: cmd.brokerPort,
      dataDir: join(dataDir, 'broker'),
      settings: cmd.brokerSettings,
      log,
      registry,
    })
    bootstrap = [`${broker.host}:${broker.port}`]
  }
  // Three Kafka replicas of every replication topic, or as many as there are brokers (the check
  // below then warns that the topic falls short).
  const replicationFactor = broker === undefined ? Math.min(3, await brokerCount(bootstrap)) : 1
  const metrics = await serveMetrics(registry, '127.0.0.1', cmd.metricsPort)
  const metricsAddress = metrics.address()
  const metricsPort =
    typeof metricsAddress === 'object' && metricsAddress !== null ? metricsAddress.port : cmd.metricsPort
  // The router first: it creates the metadata topic the nodes register in. Then the controller
  // (one here; `cortado controller` runs more, as standbys).
  const router = await Router.start({
    bootstrap,
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
    return new NodeSupervisor(id, args, log)
  })
  await Promise.all(nodes.map((n) => n.ready))

  const notes: string[] = []
  if (broker !== undefined) {
    notes.push(
      'Embedded single broker: replication topics have one Kafka replica; min.insync.replicas and unclean leader election do not apply.',
    )
  } else {
    const topics = [METADATA_TOPIC, ...[...router.metadata.view.databases.values()].map((d) => d.topic)]
    for (const check of await checkReplicationTopics(bootstrap, topics)) {
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
      await controller.close()
      await Promise.all(nodes.map((n) => n.stop()))
      metrics.close()
      await broker?.stop()
    },
    log,
    { exitWithParent: true },
  )
  process.stdout.write(
    [
      `cortado ready http=${router.url} broker=${bootstrap.join(',')} nodes=${cmd.nodes} metrics=http://127.0.0.1:${metricsPort}/metrics`,
      `Cortado is running: ${cmd.nodes} storage nodes and a router at ${router.url} over Kafka at ${bootstrap.join(',')}.`,
      ...notes,
      `  create a database:  curl -X PUT ${router.url}/_admin/databases/shop -H 'content-type: application/json' \\`,
      `    -d '{"partitions": 8, "replicas": 3, "tables": {"users": {"key": ["id"], "schema": {"type": "record", "name": "User", "fields": [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}]}}}}'`,
      `  write:  curl -X PUT ${router.url}/shop/users/u1 -H 'content-type: application/json' -d '{"id": "u1", "name": "Ada"}'`,
      `  read:   curl ${router.url}/shop/users/u1`,
      `  cluster: curl ${router.url}/_admin/cluster    API: ${router.url}/openapi.json`,
      'Ctrl-C stops everything cleanly.',
    ].join('\n') + '\n',
  )
}
