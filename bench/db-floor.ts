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
// The two-hop column's ratio to PostgreSQL is a ceiling: the HTTP API through a router process of
// its own cannot beat it however cheap the database work becomes (docs/database.md, "Performance").
//
// Scenarios as in bench:db: writes of ~1 KB documents at 32 workers, reads at 32, writes at one
// worker; each in pairs of slices, columns in order in odd pairs and reversed in even ones.
// Prints ops/s, p50 latency and the servers' CPU per operation (from /proc); no timing assertions.
import { type ChildProcess, fork } from 'node:child_process'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { CoalescingWriter, decodeRequest, encodeResponse, FrameReader, RPC_UPGRADE } from '../src/db/node-rpc.ts'
import { NodeChannel } from '../src/db/node-client/node-channel.ts'
import { httpTarget } from './db-cortado.ts'
import { makeDoc, runPhase, type Target, WrittenKeys } from './db-load.ts'
import { ensurePostgres, startPostgres } from './db-postgres.ts'
import { freePorts } from './free-ports.ts'
import { cpuBetween, processTable } from './process-cpu.ts'

const HOST = '127.0.0.1'
const KEYS = 10_000

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

/** A bare node: the channel's framing and coalescing, every call answered from memory. */
function bareNode(): http.Server {
  const server = http.createServer((_req, res) => res.writeHead(404).end())
  server.on('upgrade', (req, socket, head: Buffer) => {
    if (req.headers.upgrade?.toLowerCase() !== RPC_UPGRADE) return socket.destroy()
    const reader = new FrameReader()
    const out = new CoalescingWriter((data) => socket.write(data), 'microtasks')
    const onData = (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) {
        const call = decodeRequest(frame)
        // Answered from a promise job, as the node's handlers are.
        void Promise.resolve().then(() =>
          out.push(
            call.method === 'POST'
              ? encodeResponse(call.id, 200, null, '{"etag":"1-1"}')
              : encodeResponse(call.id, 200, { etag: '1-1' }, docText(keyOfPath(call.path))),
          ),
        )
      }
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RPC_UPGRADE}\r\n\r\n`)
    socket.on('data', onData)
    socket.on('error', () => socket.destroy())
    if (head.length > 0) onData(head)
  })
  return server
}

/** A bare HTTP server: every GET answered with a document, every PUT with an ETag, from memory (or via the node). */
function bareRouter(node: NodeChannel | undefined): http.Server {
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
      if (node === undefined) return answer(res, 200, '1-1', put ? '{"etag":"1-1"}' : docText(keyOfPath(url)))
      const body = put ? Buffer.concat(chunks).toString('utf8') : undefined
      node.call(put ? 'POST' : 'GET', `/_node/doc${url}`, body).then(
        (r) => answer(res, r.status, r.headers.etag ?? '', r.body.toString('utf8')),
        () => res.writeHead(503).end(),
      )
    })
  })
}

/** Runs a bare process of this file: prints its port once listening. */
function serve(role: string): void {
  const node = role === 'router' ? new NodeChannel(process.argv[4], 30_000) : undefined
  const server = role === 'node' ? bareNode() : bareRouter(node)
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

interface Column {
  name: string
  target: Target
  pids: () => number[]
}

interface Result {
  ops: number
  seconds: number
  completed: number
  cpu: number
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
    const columns: Column[] = [
      { name: 'postgres', target: pg.target, pids: () => pg.pids() },
      { name: 'one-hop', target: httpTarget(oneHop.url, 'db', 'docs', 32).target, pids: () => [oneHop.pid] },
      { name: 'two-hop', target: httpTarget(router.url, 'db', 'docs', 32).target, pids: () => [router.pid, node.pid] },
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
        columns.map((c) => [c.name, { ops: 0, seconds: 0, completed: 0, cpu: 0, latencies: [] }]),
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
          const owners = new Map(c.pids().map((pid) => [pid, c.name]))
          t.cpu += cpuBetween(before, processTable(), owners).get(c.name) ?? 0
          for (const l of r.latencies) t.latencies.push(l)
        }
      }
      const pgOps = results.get('postgres')!.ops / results.get('postgres')!.seconds
      for (const c of columns) {
        const t = results.get(c.name)!
        const ops = t.ops / t.seconds
        const sorted = Float64Array.from(t.latencies).sort()
        const p50 = sorted[Math.max(0, Math.ceil(0.5 * sorted.length) - 1)]
        console.log(
          `${s.name.padEnd(24)} ${c.name.padEnd(9)} ${ops.toFixed(0).padStart(7)} ops/s (${(ops / pgOps).toFixed(2)}x postgres)  p50 ${p50.toFixed(2)} ms  server CPU ${((t.cpu * 1e6) / t.completed).toFixed(0)} µs/op`,
        )
      }
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  }
}

if (process.argv[2] === '--serve') serve(process.argv[3])
else {
  await main()
  process.exit(0)
}
