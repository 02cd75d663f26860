// The database benchmark's Cortado side: an embedded broker, a router, a controller and three
// storage nodes on a temp data dir, each its own process wired as `cortado start` wires them (so
// that /proc counts each role's CPU apart), or `cortado start` itself (src/cli/main.ts); a `bench`
// database of 8 partitions with 3 replicas each (or the databases asked for, on the same cluster);
// documents written and read through the router's HTTP API with undici (a keep-alive pool of as
// many connections as workers, one request in flight on each, like the `pg` pool on the PostgreSQL
// side), or (`target(database, 'client')`) with the client library (src/db/client/), which calls
// each partition's master directly.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Dispatcher, Pool, request } from 'undici'
import { EXIT_WITH_PARENT_ENV } from '../src/cli/shutdown.ts'
import { CortadoClient } from '../src/db/client/cortado-client.ts'
import { keyOf, makeDoc, type ProcessGroup, type Target } from './db-load.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

export const DATABASE = 'bench'
export const TABLE = 'docs'
export const PARTITIONS = 8
export const REPLICAS = 3

/** The Avro record schema of the benchmark's documents (db-load.ts makeDoc()). */
export const DOC_SCHEMA = {
  type: 'record',
  name: 'BenchDoc',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'counter', type: 'long' },
    { name: 'payload', type: 'string' },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
}

/** An HTTP answer other than the one expected. */
export class HttpError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.name = 'HttpError'
    this.status = status
  }
}

export interface HttpTarget {
  target: Target
  /** Sends a request with a JSON body and returns the status and body text (any status). */
  request(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<{ status: number; text: string }>
  close(): Promise<void>
}

/**
 * A Target over Cortado's document API: PUT /<db>/<table>/<key> with the JSON document, GET the
 * same path for it back (404: none).
 */
export function httpTarget(origin: string, database: string, table: string, connections: number): HttpTarget {
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 })
  const base = `/${encodeURIComponent(database)}/${encodeURIComponent(table)}/`
  const json = { 'content-type': 'application/json' }
  return {
    target: {
      name: 'cortado',
      async write(key, doc) {
        const res = await pool.request({
          path: base + encodeURIComponent(key),
          method: 'PUT',
          headers: json,
          body: JSON.stringify(doc),
        })
        if (res.statusCode < 200 || res.statusCode > 299) {
          throw new HttpError(
            res.statusCode,
            `PUT ${key}: HTTP ${res.statusCode} ${(await res.body.text()).slice(0, 300)}`,
          )
        }
        await res.body.dump()
      },
      async read(key) {
        const res = await pool.request({ path: base + encodeURIComponent(key), method: 'GET' })
        if (res.statusCode === 404) {
          await res.body.dump()
          return null
        }
        if (res.statusCode !== 200)
          throw new HttpError(
            res.statusCode,
            `GET ${key}: HTTP ${res.statusCode} ${(await res.body.text()).slice(0, 300)}`,
          )
        return (await res.body.json()) as object
      },
    },
    async request(method, path, body) {
      const res = await pool.request({
        path,
        method,
        ...(body === undefined ? {} : { headers: json, body: JSON.stringify(body) }),
      })
      return { status: res.statusCode, text: await res.body.text() }
    },
    close: () => pool.close(),
  }
}

export interface CortadoOptions {
  parentDir: string
  /** The router's HTTP port. */
  httpPort: number
  brokerPort: number
  /** The broker's metrics port (`cortado start`'s, which has the broker's metrics too). */
  metricsPort: number
  concurrency: number
  /**
   * The databases to create, each of PARTITIONS partitions with a table TABLE (default one,
   * DATABASE, of REPLICAS replicas). Several share the cluster: the benchmark's Cortado columns
   * measure one cluster, not one each, so that no column pays for idle copies of it.
   */
  databases?: { name: string; replicas: number }[]
  /**
   * 'separate' (default): the broker, the router, the controller and each storage node in a process
   * of its own, wired and set as `cortado start` wires them, so each role's CPU is counted apart.
   * 'start': `cortado start` itself, the broker, router and controller in one process.
   */
  processes?: 'separate' | 'start'
  /** Node arguments that run the `cortado` command (default: src/cli/main.ts, after `nodeArgs`). */
  command?: string[]
  /** Node.js flags for every Cortado process (say `--cpu-prof --cpu-prof-dir=<dir>`). */
  nodeArgs?: string[]
}

export interface CortadoCluster {
  /**
   * A target on one of the databases: through the router's HTTP API (on a keep-alive pool of
   * `concurrency` connections), or through the client library, which calls each partition's
   * master directly.
   */
  target(database: string, via: 'http' | 'client'): Promise<Target>
  /** The `cortado ready ...` line, or which processes run where. */
  ready: string
  /** The cluster's processes by role; the storage nodes are one group, 'nodes'. */
  processes(): ProcessGroup[]
  /** Every process of the cluster still running (with 'start', the one `cortado start`). */
  pids(): number[]
  /**
   * CPU seconds the storage nodes have spent so far applying records on replicas that were not
   * master (their cortado_node_replica_apply_cpu_seconds_total, summed); NaN if a node did not say.
   */
  replicaApplySeconds(): Promise<number>
  /** Kafka requests the broker has handled so far, by API (its cortado_broker_requests_total); empty if it did not say. */
  kafkaRequests(): Promise<Map<string, number>>
  stderr(): string
  stop(): Promise<void>
}

const NODES = 3
const READY_TIMEOUT_MS = 60_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Spawned {
  proc: ChildProcess
  /** The process's first stdout line starting with the ready prefix. */
  ready: Promise<string>
  stop(): Promise<void>
}

/** Runs one `cortado` command; its stderr goes to `onStderr`. */
function spawnCortado(command: string[], args: string[], readyPrefix: string, onStderr: (d: Buffer) => void): Spawned {
  // EXIT_WITH_PARENT: the process stops by itself if the benchmark dies without stopping it.
  const proc = spawn(process.execPath, [...command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CORTADO_LOG_LEVEL: 'warn', [EXIT_WITH_PARENT_ENV]: '1' },
  })
  proc.stderr.on('data', onStderr)
  const running = () => proc.exitCode === null && proc.signalCode === null
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const ready = new Promise<string>((resolve, reject) => {
    let out = ''
    const what = `cortado ${args[0]}`
    const timer = setTimeout(
      () => reject(new Error(`${what} did not print "${readyPrefix}" within ${READY_TIMEOUT_MS / 1000} s:\n${out}`)),
      READY_TIMEOUT_MS,
    )
    // Read on after the ready line too: a full pipe would stall the process.
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.length > 100_000) out = out.slice(-50_000)
      // Whole lines only: a chunk may end inside one.
      const line = out
        .split('\n')
        .slice(0, -1)
        .find((l) => l.startsWith(readyPrefix))
      if (line !== undefined) {
        clearTimeout(timer)
        resolve(line.trim())
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(
        new Error(`${what} exited (code ${proc.exitCode}, signal ${proc.signalCode}) before it was ready:\n${out}`),
      )
    })
  })
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      if (!running()) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    })()
    return stopped
  }
  return { proc, ready, stop }
}

/** The value of an unlabelled counter in a Prometheus text exposition; NaN if absent. */
function counterValue(exposition: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(exposition)
  return m === null ? NaN : Number(m[1])
}

/** A counter's values by one label in a Prometheus text exposition. */
function labelledCounter(exposition: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>()
  const line = new RegExp(`^${name}\\{[^}]*\\b${label}="([^"]*)"[^}]*\\} (\\S+)$`, 'gm')
  for (const m of exposition.matchAll(line)) out.set(m[1], Number(m[2]))
  return out
}

/**
 * Starts the cluster, creates the bench database, and waits until writes succeed on (very nearly
 * certainly) every partition. `defer` gets the cleanup as soon as there is something to clean up.
 */
export async function startCortado(
  o: CortadoOptions,
  defer: (stop: () => Promise<void>) => void,
): Promise<CortadoCluster> {
  const dataDir = mkdtempSync(join(o.parentDir, 'cortado-bench-db-'))
  const command = o.command ?? [...(o.nodeArgs ?? []), join(ROOT, 'src/cli/main.ts')]
  let err = ''
  const onStderr = (d: Buffer) => {
    err += d.toString()
    if (err.length > 200_000) err = err.slice(-100_000)
  }
  const started: { role: string; spawned: Spawned }[] = []
  const run = (role: string, args: string[], readyPrefix: string) => {
    const spawned = spawnCortado(command, args, readyPrefix, onStderr)
    started.push({ role, spawned })
    return spawned.ready.catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${err}`)
    })
  }
  // The HTTP client, once there is a router to talk to.
  const client: { http: HttpTarget[]; library?: CortadoClient } = { http: [] }
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      for (const h of client.http) await h.close().catch(() => {})
      await client.library?.close().catch(() => {})
      // In `cortado start`'s order: the broker last, as the others flush their writes to it.
      for (const role of ['start', 'router', 'controller', 'node', 'broker'])
        await Promise.all(started.filter((s) => s.role === role).map((s) => s.spawned.stop()))
      rmSync(dataDir, { recursive: true, force: true })
    })()
    return stopped
  }
  defer(stop)

  let ready: string
  let routerLine: string
  if (o.processes === 'start') {
    ready = await run(
      'start',
      [
        'start',
        '--data-dir',
        dataDir,
        '--http-port',
        String(o.httpPort),
        '--broker-port',
        String(o.brokerPort),
        '--metrics-port',
        String(o.metricsPort),
        '--insecure',
      ],
      'cortado ready ',
    )
    routerLine = ready
  } else {
    // What `cortado start` does in one process (src/cli/db-commands.ts runStart), one process each:
    // the broker, then the router (it creates the metadata topic), the controller, the nodes.
    // Replication factor 1 for the topics, as on `cortado start`'s embedded single broker.
    const bootstrap = `127.0.0.1:${o.brokerPort}`
    const common = ['--bootstrap', bootstrap, '--replication-factor', '1']
    await run(
      'broker',
      [
        'broker',
        '--port',
        String(o.brokerPort),
        '--data-dir',
        join(dataDir, 'broker'),
        '--metrics-port',
        String(o.metricsPort),
      ],
      'cortado broker ready',
    )
    routerLine = await run(
      'router',
      ['router', ...common, '--http-port', String(o.httpPort), '--insecure'],
      'cortado router ready',
    )
    await run('controller', ['controller', '--id', 'controller-1', ...common], 'cortado controller ready')
    await Promise.all(
      Array.from({ length: NODES }, (_, i) => {
        const id = `node-${i + 1}`
        return run(
          'node',
          ['node', '--id', id, '--data-dir', join(dataDir, 'nodes', id), ...common],
          'cortado node ready',
        )
      }),
    )
    ready = `broker ${bootstrap}, router, controller and ${NODES} storage nodes, each its own process (cortado broker, router, controller, node)`
  }
  const m = /http=(http:\/\/[^\s,]+)/.exec(routerLine)
  if (m === null) throw new Error(`no router URL in "${routerLine}"`)
  const origin = m[1].replace(/\/$/, '')

  const admin = httpTarget(origin, DATABASE, TABLE, o.concurrency)
  client.http.push(admin)
  const databases = o.databases ?? [{ name: DATABASE, replicas: REPLICAS }]
  const deadline = Date.now() + 60_000
  const http = new Map<string, HttpTarget>()
  for (const { name, replicas } of databases) {
    const spec = {
      partitions: PARTITIONS,
      replicas,
      tables: { [TABLE]: { key: ['id'], schema: DOC_SCHEMA, indexes: [] } },
    }
    for (;;) {
      const r = await admin.request('PUT', `/_admin/databases/${name}`, spec)
      if (r.status >= 200 && r.status <= 299) break
      if (r.status !== 503 || Date.now() > deadline)
        throw new Error(`PUT /_admin/databases/${name}: HTTP ${r.status} ${r.text.slice(0, 500)}`)
      await sleep(100)
    }
    const h = httpTarget(origin, name, TABLE, o.concurrency)
    client.http.push(h)
    http.set(name, h)
  }

  // Partitions get their masters asynchronously; a write to a partition without one is a 503, and
  // one whose new master's lease lapsed on a busy machine a 504 (a PUT is safe to repeat).
  // Writing 128 keys touches all 8 partitions unless hashing is very unlucky ((7/8)^128 per
  // partition), so once they all succeed the measured slices do not hit a partition still starting.
  for (const h of http.values()) {
    await Promise.all(
      Array.from({ length: 128 }, async (_, i) => {
        const key = keyOf(i)
        for (;;) {
          try {
            await h.target.write(key, makeDoc(key, 0))
            return
          } catch (e) {
            if (!(e instanceof HttpError && (e.status === 503 || e.status === 504)) || Date.now() > deadline) throw e
            await sleep(100)
          }
        }
      }),
    )
  }

  // The storage nodes, as registered: their pids (`cortado start`'s children) and metrics URLs.
  const cluster = await admin.request('GET', '/_admin/cluster')
  if (cluster.status !== 200)
    throw new Error(`GET /_admin/cluster: HTTP ${cluster.status} ${cluster.text.slice(0, 500)}`)
  const nodes = (JSON.parse(cluster.text) as { nodes: { pid: number; url: string }[] }).nodes
  if (nodes.length !== NODES) throw new Error(`${nodes.length} storage nodes registered, not ${NODES}: ${cluster.text}`)

  const pidsOf = (role: string) => started.filter((s) => s.role === role).flatMap((s) => s.spawned.proc.pid ?? [])
  const running = (p: ChildProcess) => p.exitCode === null && p.signalCode === null
  const target = async (database: string, via: 'http' | 'client'): Promise<Target> => {
    const h = http.get(database)
    if (h === undefined) throw new Error(`no bench database ${database}`)
    if (via === 'http') return h.target
    const library = (client.library ??= await CortadoClient.connect({ router: origin }))
    return {
      name: 'cortado-client',
      write: async (key, doc) => {
        await library.put(database, TABLE, key, doc as Record<string, unknown>)
      },
      read: async (key) => (await library.get(database, TABLE, key))?.doc ?? null,
    }
  }
  return {
    target,
    ready,
    processes: () =>
      o.processes === 'start'
        ? [
            { role: 'broker+router+controller', pids: pidsOf('start') },
            { role: 'nodes', pids: nodes.map((n) => n.pid) },
          ]
        : [
            ...['router', 'broker', 'controller'].map((role) => ({ role, pids: pidsOf(role) })),
            { role: 'nodes', pids: pidsOf('node') },
          ],
    pids: () => started.flatMap((s) => (running(s.spawned.proc) ? (s.spawned.proc.pid ?? []) : [])),
    async kafkaRequests() {
      try {
        const res = await request(`http://127.0.0.1:${o.metricsPort}/metrics`)
        return labelledCounter(await res.body.text(), 'cortado_broker_requests_total', 'api')
      } catch {
        return new Map<string, number>()
      }
    },
    async replicaApplySeconds() {
      const values = await Promise.all(
        nodes.map(async (n) => {
          try {
            const res = await request(`${n.url}/metrics`)
            return counterValue(await res.body.text(), 'cortado_node_replica_apply_cpu_seconds_total')
          } catch {
            return NaN
          }
        }),
      )
      return values.reduce((a, b) => a + b, 0)
    },
    stderr: () => err,
    stop,
  }
}
