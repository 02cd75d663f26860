// Keeps `npm run bench:db` honest: the load generator counts what completed, times it, and counts
// failures as failures (against an in-process document store over HTTP, through the same client
// the Cortado side uses, and against in-memory targets); the Cortado side starts as separate
// processes or as `cortado start`; and, where PostgreSQL 15 and etcd are installed, the etcd
// target writes and reads back through a real cluster and a quick run against each baseline
// completes and prints a figure for every scenario, as does `npm run bench:db-floor` for each of
// its columns. No assertion on the figures themselves (tests never fail on timing).
import assert from 'node:assert/strict'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { DATABASE, DOC_SCHEMA, httpTarget, startCortado } from '../../bench/db-cortado.ts'
import { ETCD_INSTALL_HINT, ETCD_PACKAGE, etcdInstalled, startEtcd } from '../../bench/db-etcd.ts'
import { docBytes, keyOf, makeDoc, runPhase, WrittenKeys, type Target } from '../../bench/db-load.ts'
import { INSTALL_HINT, PG_PACKAGE, postgresInstalled } from '../../bench/db-postgres.ts'
import { parseRecordSchema, validateDocument } from '../../src/db/schema/table-schema.ts'
import { ROOT } from '../helpers/broker-process.ts'

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString()
}

void test('the benchmark document is about 1 KB of JSON and deterministic', () => {
  const size = docBytes()
  assert.ok(size >= 950 && size <= 1100, `document of ${size} bytes`)
  assert.deepEqual(makeDoc(keyOf(7), 42), makeDoc(keyOf(7), 42))
  assert.notDeepEqual(makeDoc(keyOf(7), 42), makeDoc(keyOf(7), 43))
  assert.equal(makeDoc(keyOf(7), 42).id, keyOf(7))
  // Cortado validates every write against the table schema the benchmark creates.
  const schema = parseRecordSchema(DOC_SCHEMA)
  for (const counter of [0, 1, 9, 123_456]) validateDocument(schema, makeDoc(keyOf(counter), counter))
})

void test('write and read phases against an in-process HTTP document store count every operation', async () => {
  const store = new Map<string, string>()
  let puts = 0
  let gets = 0
  const server = createServer((req, res) => {
    void (async () => {
      const m = /^\/bench\/docs\/([^/]+)$/.exec(req.url ?? '')
      if (m === null) {
        res.writeHead(404).end()
        return
      }
      const key = decodeURIComponent(m[1])
      if (req.method === 'PUT') {
        const body = await readBody(req)
        const doc = JSON.parse(body) as { id?: string }
        if (req.headers['content-type'] !== 'application/json' || doc.id !== key) {
          res.writeHead(400).end('bad document')
          return
        }
        puts++
        store.set(key, body)
        res.writeHead(204).end()
      } else if (req.method === 'GET') {
        gets++
        const doc = store.get(key)
        if (doc === undefined) res.writeHead(404).end()
        else res.writeHead(200, { 'content-type': 'application/json' }).end(doc)
      } else {
        res.writeHead(405).end()
      }
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const http = httpTarget(`http://127.0.0.1:${port}`, 'bench', 'docs', 4)
  try {
    const written = new WrittenKeys(50)
    const w = await runPhase({
      target: http.target,
      kind: 'write',
      concurrency: 4,
      keys: 50,
      written,
      warmupMs: 100,
      durationMs: 300,
      seed: 1,
    })
    assert.equal(w.errors, 0, w.firstError)
    assert.ok(w.ops > 0)
    assert.equal(w.latencies.length, w.ops)
    assert.ok(w.latencies.every((l) => l > 0 && Number.isFinite(l)))
    assert.ok(w.ops <= puts, `${w.ops} measured writes but the server took ${puts}`)
    assert.equal(w.opsPerSec, w.ops / 0.3)
    assert.ok(
      w.latencyMs.p50 <= w.latencyMs.p99 && w.latencyMs.p99 <= w.latencyMs.p999 && w.latencyMs.p999 <= w.latencyMs.max,
    )
    // Exactly the keys the server stored are the ones the load generator will read.
    assert.deepEqual([...written.list].map(keyOf).sort(), [...store.keys()].sort())

    const r = await runPhase({
      target: http.target,
      kind: 'read',
      concurrency: 4,
      keys: 50,
      written,
      warmupMs: 100,
      durationMs: 300,
      seed: 2,
    })
    assert.equal(r.errors, 0, r.firstError)
    assert.ok(r.ops > 0 && r.ops <= gets, `${r.ops} measured reads, ${gets} served`)
    assert.equal(r.latencies.length, r.ops)
  } finally {
    await http.close()
    await new Promise((resolve) => server.close(resolve))
  }
})

void test('latencies are measured from call to completion, and failures are errors, not latencies', async () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
  let calls = 0
  const slow: Target = {
    name: 'slow',
    async write() {
      calls++
      await sleep(5)
    },
    async read() {
      await sleep(5)
      return null
    },
  }
  const written = new WrittenKeys(10)
  const w = await runPhase({
    target: slow,
    kind: 'write',
    concurrency: 2,
    keys: 10,
    written,
    warmupMs: 50,
    durationMs: 200,
    seed: 3,
  })
  assert.equal(w.errors, 0)
  // Two workers, each at most one 5 ms operation at a time: no more than 2 × 200/5 (plus slack for
  // timers firing a little early) can complete in the window, however fast the machine.
  assert.ok(w.ops > 0 && w.ops <= 2 * (200 / 4) + 2, `${w.ops} operations`)
  assert.ok(calls >= w.ops)
  assert.ok(w.latencyMs.p50 >= 3, `p50 ${w.latencyMs.p50} ms for 5 ms operations`)

  // Reads that find nothing for keys that were written are failures.
  const r = await runPhase({
    target: slow,
    kind: 'read',
    concurrency: 2,
    keys: 10,
    written,
    warmupMs: 0,
    durationMs: 100,
    seed: 4,
  })
  assert.equal(r.ops, 0)
  assert.ok(r.errors > 0)
  assert.match(r.firstError ?? '', /not found/)

  let n = 0
  const flaky: Target = {
    name: 'flaky',
    async write() {
      await sleep(1)
      if (++n % 3 === 0) throw new Error('boom')
    },
    read: () => Promise.resolve({}),
  }
  const f = await runPhase({
    target: flaky,
    kind: 'write',
    concurrency: 3,
    keys: 10,
    written: new WrittenKeys(10),
    warmupMs: 0,
    durationMs: 150,
    seed: 5,
  })
  assert.ok(f.errors > 0 && f.ops > 0)
  assert.equal(f.latencies.length, f.ops)
  assert.ok(f.ops + f.errors <= n)
  assert.match(f.firstError ?? '', /boom/)
})

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
}

for (const processes of ['separate', 'start'] as const) {
  void test(
    `the Cortado target starts the cluster (${processes}), creates the database, writes and reads through the router and the client library, counts replica apply CPU and Kafka requests, and cleans up`,
    { timeout: 120_000 },
    async () => {
      const parentDir = mkdtempSync(join(tmpdir(), 'cortado-db-bench-test-'))
      const cleanups: (() => Promise<void>)[] = []
      try {
        const [httpPort, brokerPort, metricsPort] = await Promise.all([freePort(), freePort(), freePort()])
        const c = await startCortado(
          { parentDir, httpPort, brokerPort, metricsPort, concurrency: 4, processes },
          (stop) => cleanups.push(stop),
        )
        if (processes === 'start')
          assert.match(c.ready, new RegExp(`^cortado ready .*http=http://127.0.0.1:${httpPort}`))
        assert.equal(readdirSync(parentDir).length, 1)
        const roles = c.processes()
        assert.deepEqual(
          roles.map((g) => g.role),
          processes === 'start' ? ['broker+router+controller', 'nodes'] : ['router', 'broker', 'controller', 'nodes'],
        )
        assert.equal(roles.find((g) => g.role === 'nodes')?.pids.length, 3)
        assert.equal(new Set(roles.flatMap((g) => g.pids)).size, processes === 'start' ? 4 : 6)
        const applied0 = await c.replicaApplySeconds()
        const kafka0 = await c.kafkaRequests()
        const written = new WrittenKeys(100)
        const http = await c.target(DATABASE, 'http')
        const w = await runPhase({
          target: http,
          kind: 'write',
          concurrency: 4,
          keys: 100,
          written,
          warmupMs: 50,
          durationMs: 300,
          seed: 6,
        })
        assert.equal(w.errors, 0, w.firstError)
        const r = await runPhase({
          target: http,
          kind: 'read',
          concurrency: 4,
          keys: 100,
          written,
          warmupMs: 50,
          durationMs: 300,
          seed: 7,
        })
        assert.equal(r.errors, 0, r.firstError)
        assert.ok(w.ops > 0 && r.ops > 0)
        // The client library's target reads the same database: what the router wrote.
        const library = await c.target(DATABASE, 'client')
        const key = keyOf(written.list[0])
        const viaRouter = await http.read(key)
        assert.ok(viaRouter !== null)
        assert.deepEqual(await library.read(key), viaRouter)
        // Each write was applied by two replicas that are not master, and their nodes counted it.
        const applied1 = await c.replicaApplySeconds()
        assert.ok(Number.isFinite(applied0) && applied1 > applied0, `replica apply CPU ${applied0} -> ${applied1} s`)
        // Every write was produced to the broker and read back from it at least once.
        const kafka1 = await c.kafkaRequests()
        for (const api of ['Produce', 'Fetch']) {
          const n = (kafka1.get(api) ?? 0) - (kafka0.get(api) ?? 0)
          assert.ok(n > 0, `${api} requests ${kafka0.get(api)} -> ${kafka1.get(api)}`)
        }
        assert.equal(c.pids().length, processes === 'start' ? 1 : 6)
        await c.stop()
        assert.equal(c.pids().length, 0)
        assert.deepEqual(readdirSync(parentDir), [])
      } finally {
        await Promise.all(cleanups.map((stop) => stop()))
        rmSync(parentDir, { recursive: true, force: true })
      }
    },
  )
}

/** Per scenario, the ops/s figure of one column of a bench/db.ts table. */
function opsPerSec(stdout: string, column: string): Map<string, string> {
  const lines = stdout.split('\n')
  const header = lines.find((l) => l.startsWith('scenario '))
  assert.ok(header !== undefined, `no table in:\n${stdout}`)
  const index = header.split(/\s{2,}/).indexOf(column)
  assert.ok(index > 1, `no ${column} column in: ${header}`)
  const figures = new Map<string, string>()
  for (const l of lines) {
    const cells = l.split(/\s{2,}/)
    if (cells[1] === 'ops/s') figures.set(cells[0], cells[index].replace(/,/g, ''))
  }
  return figures
}

const SCENARIOS = ['write 1 KB, 32 workers', 'read, 32 workers', 'write 1 KB, 1 worker']

void test(
  'bench/db.ts --quick --only cortado,cortado-r2 measures both databases on one cluster, each column with its own figures, and profiles each process when asked',
  { timeout: 150_000 },
  () => {
    const profiles = mkdtempSync(join(tmpdir(), 'cortado-db-bench-prof-'))
    let res: SpawnSyncReturns<string>
    let written: string[]
    try {
      res = spawnSync(
        process.execPath,
        [
          join(ROOT, 'bench', 'db.ts'),
          '--quick',
          '--only',
          'cortado,cortado-r2',
          '--pairs',
          '1',
          `--cortado-node-args=--cpu-prof --cpu-prof-dir=${profiles}`,
        ],
        { encoding: 'utf8', timeout: 140_000 },
      )
      written = readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile'))
    } finally {
      rmSync(profiles, { recursive: true, force: true })
    }
    assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`)
    // The broker, the router, the controller and three nodes: one profile each.
    assert.equal(written.length, 6, written.join(', '))
    const r3 = /^cortado: broker (\S+), .*database bench, 8 partitions x 3 replicas/m.exec(res.stdout)
    const r2 = /^cortado-r2: broker (\S+), .*database bench-r2, 8 partitions x 2 replicas/m.exec(res.stdout)
    assert.ok(r3 !== null && r2 !== null, res.stdout)
    assert.equal(r2[1], r3[1], 'one broker, so one cluster, for both columns')
    for (const column of ['cortado', 'cortado-r2']) {
      const figures = opsPerSec(res.stdout, column)
      for (const scenario of SCENARIOS)
        assert.ok(Number(figures.get(scenario)) > 0, `${column} ${scenario}: ${res.stdout}`)
    }
    // With no other database's column, no slice measures the cluster idle.
    assert.match(res.stdout, /server CPU % idle\s+-\s+-/)
  },
)

if (postgresInstalled()) {
  void test(
    'bench/db.ts --quick --only postgres measures a primary with a synchronous standby',
    { timeout: 150_000 },
    () => {
      const res = spawnSync(process.execPath, [join(ROOT, 'bench', 'db.ts'), '--quick', '--only', 'postgres'], {
        encoding: 'utf8',
        timeout: 140_000,
      })
      assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`)
      assert.match(res.stdout, /PostgreSQL 15\./)
      assert.match(res.stdout, /sync_state=sync/)
      assert.match(res.stdout, /synchronous_commit=on/)
      assert.match(res.stdout, /fsync=on/)
      const figures = opsPerSec(res.stdout, 'postgres')
      for (const scenario of SCENARIOS) assert.ok(Number(figures.get(scenario)) > 0, `${scenario}: ${res.stdout}`)
      assert.match(res.stdout, /CPU µs\/op pg primary/)
    },
  )
  void test(
    'bench/db-floor.ts measures PostgreSQL beside bare one-hop, two-hop and replicated-log HTTP paths, every scenario',
    { timeout: 150_000 },
    () => {
      const res = spawnSync(process.execPath, [join(ROOT, 'bench', 'db-floor.ts'), '--duration', '1', '--pairs', '1'], {
        encoding: 'utf8',
        timeout: 140_000,
      })
      assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`)
      for (const scenario of SCENARIOS) {
        for (const column of ['postgres', 'one-hop', 'two-hop', 'log']) {
          // The scenario names hold no regular-expression metacharacters.
          const line = new RegExp(`^${scenario}\\s+${column}\\s+(\\d+) ops/s .* server CPU (\\d+) µs/op(.*)$`, 'm')
          const m = line.exec(res.stdout)
          assert.ok(m !== null && Number(m[1]) > 0 && Number(m[2]) >= 0, `${scenario} ${column}: ${res.stdout}`)
          // The log column's CPU split by process: its router, its broker and its three nodes.
          if (column === 'log')
            for (const role of ['router', 'broker', 'nodes'])
              assert.match(m[3], new RegExp(`(\\(|, )${role} \\d+[,)]`), `${scenario}: ${m[3]}`)
        }
      }
    },
  )
} else {
  void test('without PostgreSQL 15, the benchmark says what to install', () => {
    assert.match(INSTALL_HINT, new RegExp(`apt-get install -y ${PG_PACKAGE}`))
    assert.equal(PG_PACKAGE, 'postgresql-15')
  })
}

if (etcdInstalled()) {
  void test(
    'the etcd target writes a document through a real three-member cluster and reads it back; a missing key is null',
    { timeout: 60_000 },
    async () => {
      const parentDir = mkdtempSync(join(tmpdir(), 'cortado-db-bench-test-'))
      const cleanups: (() => Promise<void>)[] = []
      try {
        const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()))
        const e = await startEtcd(
          { parentDir, clientPorts: ports.slice(0, 3), peerPorts: ports.slice(3), concurrency: 4 },
          (stop) => cleanups.push(stop),
        )
        assert.match(e.version, /etcd Version: 3\./)
        assert.equal(e.pids().length, 3)
        const roles = await e.processes()
        assert.deepEqual(
          roles.map((g) => [g.role, g.pids.length]),
          [
            ['etcd leader', 1],
            ['etcd followers', 2],
          ],
        )
        // Round robin: consecutive requests go to different members, so each read follows a
        // write made through another member (linearizable reads see it).
        for (let i = 0; i < 6; i++) {
          const doc = makeDoc(keyOf(i), i)
          await e.target.write(doc.id, doc)
          assert.deepEqual(await e.target.read(doc.id), doc)
        }
        const again = makeDoc(keyOf(0), 99)
        await e.target.write(again.id, again)
        assert.deepEqual(await e.target.read(again.id), again)
        assert.equal(await e.target.read(keyOf(1234)), null)
        await e.stop()
        assert.equal(e.pids().length, 0)
        assert.deepEqual(readdirSync(parentDir), [])
      } finally {
        await Promise.all(cleanups.map((stop) => stop()))
        rmSync(parentDir, { recursive: true, force: true })
      }
    },
  )

  void test('bench/db.ts --quick --only etcd measures a three-member etcd cluster', { timeout: 150_000 }, () => {
    const res = spawnSync(process.execPath, [join(ROOT, 'bench', 'db.ts'), '--quick', '--only', 'etcd'], {
      encoding: 'utf8',
      timeout: 140_000,
    })
    assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`)
    assert.match(res.stdout, /etcd Version: 3\./)
    assert.match(res.stdout, /3 members/)
    const figures = opsPerSec(res.stdout, 'etcd')
    for (const scenario of SCENARIOS) assert.ok(Number(figures.get(scenario)) > 0, `${scenario}: ${res.stdout}`)
    assert.match(res.stdout, /CPU µs\/op etcd leader/)
  })
} else {
  void test('without etcd, the benchmark says what to install', () => {
    assert.match(ETCD_INSTALL_HINT, new RegExp(`apt-get install -y ${ETCD_PACKAGE}`))
    assert.equal(ETCD_PACKAGE, 'etcd-server')
  })
}
