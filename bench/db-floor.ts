// `npm run bench:db-floor`: what the shape of Cortado's HTTP path costs before any database work,
// beside PostgreSQL in the same run, with bench:db's load generator (bench/db-load.ts).
//
//   node bench/db-floor.ts [--duration <s per scenario and column>] [--pairs <n>] [--dir <parent of PostgreSQL's data>]
//
// Columns:
// - postgres: as in bench:db (a primary and a synchronous standby, bench/db-postgres.ts).
// - one-hop: a bare node:http server answering every PUT and GET from memory, as the router
//   answers its clients: what one HTTP exchange costs on this machine.
// - two-hop: a bare router (node:http and the real channel client, src/db/node-client/node-channel.ts)
//   forwarding every request to a bare node (the real channel framing and coalescing,
//   src/db/node-rpc.ts) that answers it from memory: the router → master shape of every Cortado
//   request through the HTTP API, with no database work at all (no parsing, no log, no SQLite).
// - log: two-hop plus the replication log, with no database work: the real embedded broker
//   (`cortado broker`, its journal and fsync as shipped) and three bare nodes, each the master of
//   a third of 8 partitions; a PUT goes router → the partition's master over the channel, which
//   produces it with the reliable producer (src/client/reliable-producer.ts, one per partition, as
//   a storage node has) and answers once its log reader (src/client/log-reader.ts) has read it
//   back; every node reads every partition, the ones it follows lingering between deliveries as a
//   storage node's followers do, and drops what it reads (no parsing, no SQLite). GETs go to the
//   master and are answered from memory. This is the least a write of a database of 3 replicas
//   costs through the HTTP API in this design.
// The two-hop column's ratio to PostgreSQL is a ceiling: the HTTP API through a router process of
// its own cannot beat it however cheap the database work becomes; the log column's write ratio is
// the same ceiling for writes that go through the log (docs/database.md, "Performance").
//
// Scenarios as in bench:db: writes of ~1 KB documents at 32 workers, reads at 32, writes at one
// worker; each in pairs of slices, columns in order in odd pairs and reversed in even ones.
// Prints ops/s, p50 latency and the servers' CPU per operation (from /proc); no timing assertions.
import { type ChildProcess, fork, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { EXIT_WITH_PARENT_ENV } from '../src/cli/shutdown.ts'
import { LogReader } from '../src/client/log-reader.ts'
import { ReliableProducer } from '../src/client/reliable-producer.ts'
import { ensureTopic } from '../src/db/kafka-topics.ts'
import { partitionOf } from '../src/db/metadata/model.ts'
import {
  CoalescingWriter,
  decodeRequest,
  encodeResponse,
  FrameReader,
  RPC_UPGRADE,
  type RpcRequest,
} from '../src/db/node-rpc.ts'
import { NodeChannel } from '../src/db/node-client/node-channel.ts'
import { FOLLOWER_LINGER_MS } from '../src/db/storage/storage-node.ts'
import { httpTarget } from './db-cortado.ts'
import { makeDoc, runPhase, type Target, WrittenKeys } from './db-load.ts'
import { ensurePostgres, startPostgres } from './db-postgres.ts'
import { freePorts } from './free-ports.ts'
import { cpuBetween, processTable } from './process-cpu.ts'

const HOST = '127.0.0.1'
const KEYS = 10_000
/** The log column's topic: 8 partitions over 3 nodes, as bench:db's database. */
const LOG_TOPIC = 'floor-log'
const LOG_PARTITIONS = 8
const LOG_NODES = 3

const texts = new Map<string, string>()

/** The document a bare server answers for a key (the load generator checks its id), made once. */
function docText(key: string): string {
  let text = texts.get(key)
  if (text === undefined) texts.set(key, (text = JSON.stringify(makeDoc(key, 1))))
  return text
}

function keyOfPath(path: string): string {
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1))
}

type Answer = (frame: Buffer) => void

/** Answers a call from memory: a write with an ETag, a read with the key's document. */
function answerFromMemory(call: RpcRequest, answer: Answer): void {
  // Answered from a promise job, as the node's handlers are.
  void Promise.resolve().then(() =>
    answer(
      call.method === 'POST'
        ? encodeResponse(call.id, 200, null, '{"etag":"1-1"}')
        : encodeResponse(call.id, 200, { etag: '1-1' }, docText(keyOfPath(call.path))),
    ),
  )
}

/** A bare node: the channel's framing and coalescing, every call answered by `handle`. */
function bareNode(handle: (call: RpcRequest, answer: Answer) => void): http.Server {
  const server = http.createServer((_req, res) => res.writeHead(404).end())
  server.on('upgrade', (req, socket, head: Buffer) => {
    if (req.headers.upgrade?.toLowerCase() !== RPC_UPGRADE) return socket.destroy()
    const reader = new FrameReader()
    const out = new CoalescingWriter((data) => socket.write(data), 'microtasks')
    const answer = (frame: Buffer) => out.push(frame)
    const onData = (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) handle(decodeRequest(frame), answer)
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RPC_UPGRADE}\r\n\r\n`)
    socket.on('data', onData)
    socket.on('error', () => socket.destroy())
    if (head.length > 0) onData(head)
  })
  return server
}

/**
 * The log column's node `index`: masters the partitions p with p % LOG_NODES === index, follows
 * the others. A PUT is produced to its partition and answered once read back.
 */
function logNode(bootstrap: string, index: number): http.Server {
  const reader = new LogReader({ bootstrap: [bootstrap], clientId: `floor-node-${index}` })
  const producers = new Map<number, ReliableProducer>()
  /** Per mastered partition: the next offset to read, and the writes acknowledged and not yet read back (in offset order). */
  const readTo = new Map<number, number>()
  const waiting = new Map<number, { offset: number; answer: () => void }[]>()
  for (let p = 0; p < LOG_PARTITIONS; p++) {
    if (p % LOG_NODES !== index) {
      reader.assign(LOG_TOPIC, p, 0, () => undefined, FOLLOWER_LINGER_MS)
      continue
    }
    producers.set(p, new ReliableProducer({ bootstrap: [bootstrap], clientId: `floor-node-${index}-${p}` }))
    readTo.set(p, 0)
    waiting.set(p, [])
    reader.assign(LOG_TOPIC, p, 0, (records) => {
      readTo.set(p, records[records.length - 1].offset + 1)
      const queue = waiting.get(p)!
      let n = 0
      while (n < queue.length && queue[n].offset < readTo.get(p)!) queue[n++].answer()
      queue.splice(0, n)
    })
  }
  return bareNode((call, answer) => {
    if (call.method !== 'POST') return answerFromMemory(call, answer)
    const key = keyOfPath(call.path)
    const partition = partitionOf(key, LOG_PARTITIONS)
    const producer = producers.get(partition)
    if (producer === undefined) return answer(encodeResponse(call.id, 421, null, '{"error":"not master"}'))
    const done = () => answer(encodeResponse(call.id, 200, null, '{"etag":"1-1"}'))
    producer.send({ topic: LOG_TOPIC, partition, key: Buffer.from(key), value: Buffer.from(call.body ?? '') }).then(
      (m) => {
        const offset = Number(m.offset)
        if (offset < readTo.get(partition)!) done()
        else waiting.get(partition)!.push({ offset, answer: done })
      },
      (e: unknown) => answer(encodeResponse(call.id, 503, null, JSON.stringify({ error: String(e) }))),
    )
  })
}

/** The log column's router: each request to its partition's master (as bareRouter, by partition). */
function logRouter(nodes: NodeChannel[]): http.Server {
  return bareRouter((url) => nodes[partitionOf(keyOfPath(url), LOG_PARTITIONS) % LOG_NODES])
}

/** A bare HTTP server: every GET answered with a document, every PUT with an ETag, from memory (or via the node). */
function bareRouter(nodeFor: ((url: string) => NodeChannel) | undefined): http.Server {
  const answer = (res: http.ServerResponse, status: number, etag: string, body: string) => {
    res.writeHead(status, {
      etag: `"${etag}"`,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
    })
    res.end(body)
  }
  return http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const url = req.url ?? '/'
      const put = req.method === 'PUT'
      if (nodeFor === undefined) return answer(res, 200, '1-1', put ? '{"etag":"1-1"}' : docText(keyOfPath(url)))
      const body = put ? Buffer.concat(chunks).toString('utf8') : undefined
      nodeFor(url)
        .call(put ? 'POST' : 'GET', `/_node/doc${url}`, body)
        .then(
          (r) => answer(res, r.status, r.headers.etag ?? '', r.body.toString('utf8')),
          () => res.writeHead(503).end(),
        )
    })
  })
}

/** Runs a bare process of this file: prints its port once listening. */
function serve(role: string, args: string[]): void {
  const channels = role.endsWith('router') ? args.map((url) => new NodeChannel(url, 30_000)) : []
  const server =
    role === 'node'
      ? bareNode(answerFromMemory)
      : role === 'router'
        ? bareRouter(() => channels[0])
        : role === 'log-node'
          ? logNode(args[0], Number(args[1]))
          : role === 'log-router'
            ? logRouter(channels)
            : bareRouter(undefined)
  server.keepAliveTimeout = 72_000
  server.listen(0, HOST, () => {
    const a = server.address()
    process.send?.(typeof a === 'object' && a !== null ? a.port : 0)
  })
}

async function spawnBare(role: string, args: string[], defer: (stop: () => Promise<void>) => void) {
  const child: ChildProcess = fork(import.meta.filename, ['--serve', role, ...args], { stdio: 'inherit' })
  defer(() => {
    child.kill()
    return Promise.resolve()
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve(Number(m)))
    child.once('exit', (code) => reject(new Error(`bare ${role} exited with ${code}`)))
  })
  return { pid: child.pid!, url: `http://${HOST}:${port}` }
}

/** Runs the real embedded broker (`cortado broker`) in a data directory of its own; resolves once it is ready. */
async function startBroker(parentDir: string, defer: (stop: () => Promise<void>) => void) {
  const dataDir = mkdtempSync(join(parentDir, 'cortado-bench-floor-'))
  const [port] = await freePorts(HOST, 1)
  const main = join(import.meta.dirname, '../src/cli/main.ts')
  const broker = spawn(
    process.execPath,
    [main, 'broker', '--port', String(port), '--data-dir', join(dataDir, 'broker')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, CORTADO_LOG_LEVEL: 'warn', [EXIT_WITH_PARENT_ENV]: '1' },
    },
  )
  const exited = new Promise<void>((resolve) => broker.once('exit', () => resolve()))
  defer(async () => {
    broker.kill('SIGTERM')
    await exited
    rmSync(dataDir, { recursive: true, force: true })
  })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    broker.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('cortado broker ready')) resolve()
    })
    void exited.then(() => reject(new Error(`cortado broker exited before it was ready:\n${out}`)))
  })
  const bootstrap = `${HOST}:${port}`
  await ensureTopic([bootstrap], {
    name: LOG_TOPIC,
    partitions: LOG_PARTITIONS,
    replicationFactor: 1,
    configs: { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' },
  })
  return { pid: broker.pid!, bootstrap }
}

interface Column {
  name: string
  target: Target
  /** Its processes, each with the role its CPU is printed under. */
  processes: () => [number, string][]
}

interface Result {
  ops: number
  seconds: number
  completed: number
  /** CPU seconds by role. */
  cpu: Map<string, number>
  latencies: number[]
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      duration: { type: 'string', default: '8' },
      pairs: { type: 'string', default: '2' },
      dir: { type: 'string', default: tmpdir() },
    },
  })
  const pairs = Number(args.pairs)
  const sliceMs = (Number(args.duration) * 1000) / (2 * pairs)
  const stops: (() => Promise<void>)[] = []
  const defer = (stop: () => Promise<void>) => stops.push(stop)
  try {
    if (!(await ensurePostgres((line) => console.log(line)))) throw new Error('PostgreSQL 15 is needed')
    const [primaryPort, standbyPort] = await freePorts(HOST, 2)
    const pg = await startPostgres({ parentDir: args.dir, primaryPort, standbyPort, concurrency: 32 }, defer)
    const oneHop = await spawnBare('direct', [], defer)
    const node = await spawnBare('node', [], defer)
    const router = await spawnBare('router', [node.url], defer)
    const broker = await startBroker(args.dir, defer)
    const logNodes = await Promise.all(
      Array.from({ length: LOG_NODES }, (_, i) => spawnBare('log-node', [broker.bootstrap, String(i)], defer)),
    )
    const logRouter = await spawnBare(
      'log-router',
      logNodes.map((n) => n.url),
      defer,
    )
    const columns: Column[] = [
      { name: 'postgres', target: pg.target, processes: () => pg.pids().map((pid) => [pid, 'postgres']) },
      {
        name: 'one-hop',
        target: httpTarget(oneHop.url, 'db', 'docs', 32).target,
        processes: () => [[oneHop.pid, 'server']],
      },
      {
        name: 'two-hop',
        target: httpTarget(router.url, 'db', 'docs', 32).target,
        processes: () => [
          [router.pid, 'router'],
          [node.pid, 'node'],
        ],
      },
      {
        name: 'log',
        target: httpTarget(logRouter.url, 'db', 'docs', 32).target,
        processes: () => [
          [logRouter.pid, 'router'],
          [broker.pid, 'broker'],
          ...logNodes.map((n): [number, string] => [n.pid, 'nodes']),
        ],
      },
    ]
    // Each column reads back only keys it was written (the write scenario comes first).
    const written = new Map(columns.map((c) => [c.name, new WrittenKeys(KEYS)]))
    const scenarios = [
      { name: 'write 1 KB, 32 workers', kind: 'write' as const, concurrency: 32 },
      { name: 'read, 32 workers', kind: 'read' as const, concurrency: 32 },
      { name: 'write 1 KB, 1 worker', kind: 'write' as const, concurrency: 1 },
    ]
    console.log(
      `floor of the HTTP path: ${pairs} pairs of ${(sliceMs / 1000).toFixed(1)} s slices per scenario and column`,
    )
    for (const s of scenarios) {
      const results = new Map<string, Result>(
        columns.map((c) => [c.name, { ops: 0, seconds: 0, completed: 0, cpu: new Map(), latencies: [] }]),
      )
      for (let slice = 0; slice < 2 * pairs; slice++) {
        const order = slice % 2 === 0 ? columns : [...columns].reverse()
        for (const c of order) {
          const before = processTable()
          const r = await runPhase({
            target: c.target,
            kind: s.kind,
            concurrency: s.concurrency,
            keys: KEYS,
            written: written.get(c.name)!,
            warmupMs: 300,
            durationMs: sliceMs,
            seed: 100 + slice,
          })
          if (r.errors > 0) throw new Error(`${c.name}: ${r.errors} errors, first: ${r.firstError}`)
          const t = results.get(c.name)!
          t.ops += r.ops
          t.seconds += r.seconds
          t.completed += r.completed
          for (const [role, seconds] of cpuBetween(before, processTable(), new Map(c.processes())))
            t.cpu.set(role, (t.cpu.get(role) ?? 0) + seconds)
          for (const l of r.latencies) t.latencies.push(l)
        }
      }
      const pgOps = results.get('postgres')!.ops / results.get('postgres')!.seconds
      for (const c of columns) {
        const t = results.get(c.name)!
        const ops = t.ops / t.seconds
        const sorted = Float64Array.from(t.latencies).sort()
        const p50 = sorted[Math.max(0, Math.ceil(0.5 * sorted.length) - 1)]
        const perOp = (seconds: number) => ((seconds * 1e6) / t.completed).toFixed(0)
        const total = [...t.cpu.values()].reduce((a, b) => a + b, 0)
        const roles =
          t.cpu.size > 1 ? ` (${[...t.cpu].map(([role, seconds]) => `${role} ${perOp(seconds)}`).join(', ')})` : ''
        console.log(
          `${s.name.padEnd(24)} ${c.name.padEnd(9)} ${ops.toFixed(0).padStart(7)} ops/s (${(ops / pgOps).toFixed(2)}x postgres)  p50 ${p50.toFixed(2)} ms  server CPU ${perOp(total)} µs/op${roles}`,
        )
      }
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  }
}

if (process.argv[2] === '--serve') serve(process.argv[3], process.argv.slice(4))
else {
  await main()
  process.exit(0)
}
