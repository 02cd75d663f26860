// The database benchmark's Cortado side: `cortado start` (a broker, three storage nodes and a
// router, src/cli/main.ts) on a temp data dir, a `bench` database of 8 partitions with 3 replicas
// each, and documents written and read through the router's HTTP API with undici (a keep-alive
// pool of as many connections as workers, one request in flight on each, like the `pg` pool on
// the PostgreSQL side).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Dispatcher, Pool } from 'undici'
import { keyOf, makeDoc, type Target } from './db-load.ts'

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
  httpPort: number
  brokerPort: number
  metricsPort: number
  concurrency: number
  /** Node arguments that run the `cortado` command (default: src/cli/main.ts). */
  command?: string[]
}

export interface CortadoCluster {
  target: Target
  /** The `cortado ready ...` line. */
  ready: string
  /** The `cortado start` process, for counting its CPU (and its children's). */
  pids(): number[]
  stderr(): string
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts `cortado start`, creates the bench database, and waits until writes succeed on (very
 * nearly certainly) every partition. `defer` gets the cleanup as soon as there is something to
 * clean up.
 */
export async function startCortado(
  o: CortadoOptions,
  defer: (stop: () => Promise<void>) => void,
): Promise<CortadoCluster> {
  const dataDir = mkdtempSync(join(o.parentDir, 'cortado-bench-db-'))
  const argv = [
    ...(o.command ?? [join(ROOT, 'src/cli/main.ts')]),
    'start',
    '--data-dir',
    dataDir,
    '--http-port',
    String(o.httpPort),
    '--broker-port',
    String(o.brokerPort),
    '--metrics-port',
    String(o.metricsPort),
  ]
  const proc = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CORTADO_LOG_LEVEL: 'warn' },
  })
  let err = ''
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
    if (err.length > 200_000) err = err.slice(-100_000)
  })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  // The HTTP client, once there is a router to talk to.
  const client: { http?: HttpTarget } = {}
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      await client.http?.close().catch(() => {})
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM')
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
        await exited
        clearTimeout(timer)
      }
      rmSync(dataDir, { recursive: true, force: true })
    })()
    return stopped
  }
  defer(stop)

  const { ready, origin } = await new Promise<{ ready: string; origin: string }>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(
      () => reject(new Error(`cortado start did not print "cortado ready" within 60 s:\n${out}\n${err}`)),
      60_000,
    )
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('cortado ready '))
      const m = line === undefined ? null : /http=(http:\/\/[^\s,]+)/.exec(line)
      if (line !== undefined && m !== null) {
        clearTimeout(timer)
        resolve({ ready: line.trim(), origin: m[1].replace(/\/$/, '') })
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(
        new Error(
          `cortado start exited (code ${proc.exitCode}, signal ${proc.signalCode}) before it was ready:\n${out}\n${err}`,
        ),
      )
    })
  })

  const http = httpTarget(origin, DATABASE, TABLE, o.concurrency)
  client.http = http
  const spec = {
    partitions: PARTITIONS,
    replicas: REPLICAS,
    tables: { [TABLE]: { key: ['id'], schema: DOC_SCHEMA, indexes: [] } },
  }
  const deadline = Date.now() + 60_000
  for (;;) {
    const r = await http.request('PUT', `/_admin/databases/${DATABASE}`, spec)
    if (r.status >= 200 && r.status <= 299) break
    if (r.status !== 503 || Date.now() > deadline)
      throw new Error(`PUT /_admin/databases/${DATABASE}: HTTP ${r.status} ${r.text.slice(0, 500)}`)
    await sleep(100)
  }

  // Partitions get their masters asynchronously; a write to a partition without one is a 503.
  // Writing 128 keys touches all 8 partitions unless hashing is very unlucky ((7/8)^128 per
  // partition), so once they all succeed the measured slices do not hit a partition still starting.
  await Promise.all(
    Array.from({ length: 128 }, async (_, i) => {
      const key = keyOf(i)
      for (;;) {
        try {
          await http.target.write(key, makeDoc(key, 0))
          return
        } catch (e) {
          if (!(e instanceof HttpError && e.status === 503) || Date.now() > deadline) throw e
          await sleep(100)
        }
      }
    }),
  )

  return {
    target: http.target,
    ready,
    pids: () => (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null ? [proc.pid] : []),
    stderr: () => err,
    stop,
  }
}
