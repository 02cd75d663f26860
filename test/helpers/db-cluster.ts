// A real database cluster for tests, every part its own process as in production: a broker
// (`cortado broker`, or an external Kafka such as the mock cluster), storage nodes (`cortado
// node`), controllers (`cortado controller`) and routers (`cortado router`). Nodes can be
// SIGKILLed, restarted (optionally with their data wiped) and inspected through their HTTP APIs.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { type BrokerProcess, MAIN, removeDir, type SpawnFunction, startBroker, tempDir } from './broker-process.ts'
import { type TestNetwork } from './netns.ts'

export interface ServiceProcess {
  readonly url: string
  readonly proc: ChildProcess
  readonly stderr: () => string
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>
}

export interface HttpResult {
  status: number
  headers: Headers
  /** The parsed JSON body (undefined when empty). */
  body: unknown
}

export interface ReplicaDigest {
  node: string
  digest: string
  /** Of the SQLite file in canonical form (byte-identical replicas have equal ones). */
  fileDigest: string
  generation: number
  scn: number
  documents: number
}

export interface DbCluster {
  /** The embedded broker (throws when the cluster runs on an external Kafka). */
  readonly broker: BrokerProcess
  /** The bootstrap address every process was given. */
  readonly bootstrap: string
  /** SIGKILLs the broker and starts it again on the same port and data directory. */
  restartBroker(): Promise<void>
  /** The first router. */
  readonly router: ServiceProcess
  /** Every router: those of the `routers` option (router, router2, …), then those startRouter added. */
  readonly routers: ServiceProcess[]
  readonly nodes: Map<string, ServiceProcess>
  readonly controllers: Map<string, ServiceProcess>
  /** Starts (or restarts) a controller. */
  startController(id: string, extraArgs?: string[]): Promise<ServiceProcess>
  readonly dir: string
  /**
   * Starts (or restarts) a storage node; `wipe` deletes its data first; `bootstrap` points it at
   * another address than the broker's (a fault proxy in front of it).
   */
  startNode(id: string, options?: { wipe?: boolean; rack?: string; bootstrap?: string }): Promise<ServiceProcess>
  /** Starts another router, optionally reaching the broker through `bootstrap`. */
  startRouter(options?: { bootstrap?: string }): Promise<ServiceProcess>
  http(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult>
  /** Waits until every replica of every partition of `db` has applied what its master has. */
  waitCaughtUp(db: string, timeoutMs?: number): Promise<void>
  /** Each replica's content digest, per partition, once every replica has caught up and all
   *  replicas of a partition report one position (followers apply after their master answers, and
   *  a new generation may start meanwhile, so a digest taken too early could differ). */
  digests(db: string): Promise<ReplicaDigest[][]>
  stop(): Promise<void>
}

function spawnService(
  args: string[],
  readyPattern: RegExp,
  what: string,
  spawnProcess: SpawnFunction = spawn,
): Promise<ServiceProcess> {
  const proc = spawnProcess(process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CORTADO_LOG_LEVEL: process.env.CORTADO_LOG_LEVEL ?? 'info' },
  })
  const { stdout, stderr } = proc
  assert.ok(stdout !== null && stderr !== null)
  let err = ''
  stderr.on('data', (d: Buffer) => {
    err += d.toString()
    if (err.length > 2_000_000) err = err.slice(-1_000_000)
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stdout })
    lines.on('line', (line) => {
      const m = readyPattern.exec(line)
      if (m === null) return
      resolve({
        url: m[1],
        proc,
        stderr: () => err,
        async stop() {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
          return exited
        },
        async kill() {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
          await exited
        },
      })
    })
    void exited.then((code) =>
      reject(new Error(`${what} exited with ${code} before it was ready:\n${err.slice(-5000)}`)),
    )
  })
}

export interface DbClusterOptions {
  nodes?: number
  /** Controllers to start (default 1; more run as standbys). */
  controllers?: number
  nodeSessionMs?: number
  controllerSessionMs?: number
  rereplicationDelayMs?: number
  /** More arguments of `cortado controller` (e.g. the load-balancing flags). */
  controllerArgs?: string[]
  brokerConfig?: Record<string, string>
  segmentSize?: number
  routerRetryMs?: number
  /** Routers to start (default 1), on hosts `router`, `router2`, … of a test network. */
  routers?: number
  /**
   * Runs every process in a host of this test network instead of on the loopback: the broker on
   * host `kafka`, the router on `router`, controller cN on `cN`, node nN on `nN` (the network must
   * have these hosts, and the test runner must be connected to it to reach the router).
   */
  net?: TestNetwork
  /**
   * An external Kafka's bootstrap list (e.g. the mock cluster of test/helpers/mock-kafka.ts): no
   * broker is started, and the topics must exist beforehand if that Kafka cannot create them.
   */
  kafka?: string
  /** `--fetch-max-wait-ms` of every node, router and controller. */
  fetchMaxWaitMs?: number
}

/** Where a process of the cluster runs: its spawn function and the address it listens on. */
function placement(net: TestNetwork | undefined, host: string): { spawn: SpawnFunction; ip: string } {
  if (net === undefined) return { spawn, ip: '127.0.0.1' }
  return { spawn: (command, args, options) => net.spawn(host, command, args, options), ip: net.host(host).ip }
}

export async function startDbCluster(options: DbClusterOptions = {}): Promise<DbCluster> {
  const dir = tempDir('db-cluster')
  const onBrokerHost = placement(options.net, 'kafka')
  const brokerOptions = { config: options.brokerConfig, host: onBrokerHost.ip, spawn: onBrokerHost.spawn }
  let broker =
    options.kafka === undefined ? await startBroker({ dataDir: join(dir, 'broker'), ...brokerOptions }) : undefined
  const kafkaBootstrap = () => options.kafka ?? (broker as BrokerProcess).bootstrap
  const embeddedBroker = (): BrokerProcess => {
    if (broker === undefined) throw new Error('this cluster runs on an external Kafka, not the embedded broker')
    return broker
  }
  const fetchArgs = options.fetchMaxWaitMs === undefined ? [] : ['--fetch-max-wait-ms', String(options.fetchMaxWaitMs)]
  const spawnRouter = (name: string, bootstrap = kafkaBootstrap()) => {
    const onHost = placement(options.net, name)
    const args = ['router', '--bootstrap', bootstrap, '--http-port', '0', '--host', onHost.ip, '--insecure']
    if (options.routerRetryMs !== undefined) args.push('--retry-ms', String(options.routerRetryMs))
    args.push(...fetchArgs)
    return spawnService(args, /^cortado router ready http=(\S+)/, name, onHost.spawn)
  }
  const routers = await Promise.all(
    Array.from({ length: options.routers ?? 1 }, (_, i) => spawnRouter(i === 0 ? 'router' : `router${i + 1}`)),
  )
  const router = routers[0]
  const nodes = new Map<string, ServiceProcess>()
  const startRouter = async (o: { bootstrap?: string } = {}) => {
    const r = await spawnRouter(`router${routers.length + 1}`, o.bootstrap)
    routers.push(r)
    return r
  }

  const startNode = async (id: string, o: { wipe?: boolean; rack?: string; bootstrap?: string } = {}) => {
    const dataDir = join(dir, 'nodes', id)
    if (o.wipe === true) removeDir(dataDir)
    const onHost = placement(options.net, id)
    const args = [
      'node',
      '--id',
      id,
      '--data-dir',
      dataDir,
      '--bootstrap',
      o.bootstrap ?? kafkaBootstrap(),
      '--host',
      onHost.ip,
    ]
    if (o.rack !== undefined) args.push('--rack', o.rack)
    // The master lease is cut from the controller's node session: the nodes get the same value.
    if (options.nodeSessionMs !== undefined) args.push('--node-session-ms', String(options.nodeSessionMs))
    if (options.segmentSize !== undefined) args.push('--segment-size', String(options.segmentSize))
    args.push(...fetchArgs)
    const node = await spawnService(args, /^cortado node ready id=\S+ url=(\S+)/, `node ${id}`, onHost.spawn)
    nodes.set(id, node)
    return node
  }
  const controllers = new Map<string, ServiceProcess>()
  const startController = async (id: string, extraArgs = options.controllerArgs ?? []) => {
    const args = ['controller', '--id', id, '--bootstrap', kafkaBootstrap(), ...extraArgs, ...fetchArgs]
    if (options.nodeSessionMs !== undefined) args.push('--node-session-ms', String(options.nodeSessionMs))
    if (options.controllerSessionMs !== undefined)
      args.push('--controller-session-ms', String(options.controllerSessionMs))
    if (options.rereplicationDelayMs !== undefined)
      args.push('--rereplication-delay-ms', String(options.rereplicationDelayMs))
    const onHost = placement(options.net, id)
    const controller = await spawnService(args, /^cortado controller ready id=(\S+)/, `controller ${id}`, onHost.spawn)
    controllers.set(id, controller)
    return controller
  }
  await Promise.all(Array.from({ length: options.controllers ?? 1 }, (_, i) => startController(`c${i + 1}`)))
  await Promise.all(Array.from({ length: options.nodes ?? 3 }, (_, i) => startNode(`n${i + 1}`)))

  const http = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResult> => {
    const init: RequestInit = { method, headers: { ...headers } }
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body)
      ;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
    }
    const res = await fetch(`${router.url}${path}`, init)
    const text = await res.text()
    return {
      status: res.status,
      headers: res.headers,
      body: text.length === 0 ? undefined : (JSON.parse(text) as unknown),
    }
  }

  interface ClusterView {
    nodes: { id: string; url: string; status: string }[]
    databases: {
      name: string
      partitions: {
        partition: number
        master: string
        replicas: { node: string; role: string; applied: { generation: number; scn: number } | null }[]
      }[]
    }[]
  }

  const cluster: DbCluster = {
    get broker() {
      return embeddedBroker()
    },
    get bootstrap() {
      return kafkaBootstrap()
    },
    async restartBroker() {
      const old = embeddedBroker()
      await old.kill()
      broker = await startBroker({ dataDir: join(dir, 'broker'), port: old.port, ...brokerOptions })
    },
    router,
    routers,
    nodes,
    controllers,
    startController,
    dir,
    startNode,
    startRouter,
    http,
    async waitCaughtUp(db, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      let last = ''
      for (;;) {
        const view = (await http('GET', '/_admin/cluster')).body as ClusterView
        const d = view.databases.find((x) => x.name === db)
        assert.ok(d !== undefined, `no database ${db}`)
        const behind = d.partitions.filter((p) => {
          const applied = p.replicas.map((r) =>
            r.applied === null ? 'none' : `${r.applied.generation}.${r.applied.scn}`,
          )
          return p.replicas.some((r) => r.role === 'offline') || new Set(applied).size !== 1
        })
        if (behind.length === 0) return
        last = JSON.stringify(behind)
        if (Date.now() > deadline) assert.fail(`replicas of ${db} not caught up after ${timeoutMs} ms: ${last}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async digests(db) {
      // A partition can start a new generation between the catch-up check and the digests (a
      // master moved back to a restarted node): digests are comparable only at one position, so
      // they are read again until each partition's replicas report the same one (or 60 s pass).
      const deadline = Date.now() + 60_000
      for (;;) {
        await cluster.waitCaughtUp(db)
        const view = (await http('GET', '/_admin/cluster')).body as ClusterView
        const d = view.databases.find((x) => x.name === db)!
        const urls = new Map(view.nodes.map((n) => [n.id, n.url]))
        const digests = await Promise.all(
          d.partitions.map((p) =>
            Promise.all(
              p.replicas.map(async (r) => {
                const res = await fetch(`${urls.get(r.node)}/_node/digest/${db}/${p.partition}`)
                assert.equal(res.status, 200)
                return { node: r.node, ...((await res.json()) as Omit<ReplicaDigest, 'node'>) }
              }),
            ),
          ),
        )
        const atOnePosition = digests.every((rs) => new Set(rs.map((r) => `${r.generation}.${r.scn}`)).size === 1)
        if (atOnePosition || Date.now() > deadline) return digests
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async stop() {
      await Promise.all(routers.map((r) => r.stop()))
      await Promise.all([...controllers.values()].map((c) => c.stop()))
      await Promise.all([...nodes.values()].map((n) => n.stop()))
      await broker?.stop()
      removeDir(dir)
    },
  }
  return cluster
}
