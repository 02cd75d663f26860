// `npm run bench:db`: Cortado's document writes and reads beside PostgreSQL 15 and etcd in the same run.
//
//   node bench/db.ts [--duration <s>] [--concurrency <n>] [--keys <k>] [--pairs <n>] [--quick]
//                    [--only <column>,<column>...] [--cortado-start] [--dir <parent of the temp data dirs>]
//                    [--cortado-node-args="<Node.js flags for every Cortado process>"]
//
// `--cortado-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"` profiles each Cortado process (a
// .cpuprofile each when the run ends; `node bench/cpuprofile-top.ts <file>` summarizes one).
//
// Columns (COLUMNS below; `--only` picks some, by name):
// - cortado: an embedded broker, a router, a controller and 3 storage nodes (bench/db-cortado.ts),
//   each its own process wired as `cortado start` wires them, so that each role's CPU is counted
//   apart (`--cortado-start` runs `cortado start` itself instead: broker, router and controller in
//   one process); a database of 8 partitions × 3 replicas, documents PUT and GET through the
//   router's HTTP API.
// - cortado-client: the same cluster and database, driven through the client library
//   (src/db/client/), which sends each request straight to the partition's master over the node's
//   pipelined channel; a third column beside the HTTP API's, never instead of it.
// - cortado-r2: a second database of the same cluster, with 2 replicas per partition, through the
//   router's HTTP API.
// The Cortado columns measure one cluster: a cluster per column would leave two idle copies beside
// the measured one, ~12% of a core each taken from every column's slices, and more from Cortado's,
// whose requests cross more processes.
// - postgres: Debian's PostgreSQL 15, a primary plus one synchronous streaming standby
//   (synchronous_commit=on, fsync=on; bench/db-postgres.ts), JSONB rows upserted and selected by
//   key on the primary.
// - etcd: Debian's etcd (3.4), three members with fsync as shipped (bench/db-etcd.ts), documents
//   put and read (linearizable) through its JSON gateway, round robin over the members.
// A baseline that is not installed is installed with apt-get when running as root; otherwise the
// run says what to install and goes on without it.
// All are driven by the same load generator (bench/db-load.ts): `--concurrency` closed-loop
// workers, ~1 KB documents under random keys among `--keys`.
//
// Scenarios: writes at `--concurrency`, then reads of the written keys at `--concurrency`, then
// writes from one worker (latency without queueing). Shared and virtual machines drift, so each
// scenario runs as `--pairs` pairs of slices, every column once per slice round, in column order
// in odd pairs and in reverse in even ones (AB BA AB ...), each slice with its own warm-up;
// `--duration` is the measured seconds per scenario and column, split over the slices (defaults
// 10 s in 4 pairs: about 4 minutes in all with the five columns on 2 cores). Figures are totals
// over all slices; "pairs" shows the spread of the per-pair cortado/postgres ratios.
//
// Besides throughput and latency, CPU per operation by process role, from /proc (each slice,
// warm-up included, over the operations completed in it): for Cortado the router, broker,
// controller and storage nodes, the nodes' work split into applying records as a replica that is
// not master (their cortado_node_replica_apply_cpu_seconds_total, read from each node's /metrics)
// and everything else (the masters' work, heartbeats, the metadata); the primary and standby of
// PostgreSQL; etcd's leader and followers; and the load generator (this process).
//
// `--quick` is a short smoke run. Exits 1 if any operation failed (or a read found nothing where
// a write had been acknowledged) or a database could not be started; no timing assertions.
import { availableParallelism, tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { type CortadoCluster, DATABASE, PARTITIONS, startCortado } from './db-cortado.ts'
import { ensureEtcd, startEtcd } from './db-etcd.ts'
import { docBytes, type ProcessGroup, runPhase, summarize, type Target, WrittenKeys } from './db-load.ts'
import { ensurePostgres, startPostgres } from './db-postgres.ts'
import { freePorts } from './free-ports.ts'
import { cpuBetween, processTable } from './process-cpu.ts'

const HOST = '127.0.0.1'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    keys: { type: 'string' },
    pairs: { type: 'string' },
    only: { type: 'string' },
    'cortado-start': { type: 'boolean', default: false },
    'cortado-node-args': { type: 'string' },
    dir: { type: 'string', default: tmpdir() },
  },
})

const quick = args.quick
const durationMs = (args.duration !== undefined ? Number(args.duration) : quick ? 1 : 10) * 1000
const pairs = args.pairs !== undefined ? Number(args.pairs) : quick ? 1 : 4
/** Measured ms per slice: each column gets `pairs` slices per scenario. */
const sliceMs = durationMs / pairs
const warmupMs = quick ? 200 : 500
const concurrency = Number(args.concurrency)
const keys = args.keys !== undefined ? Number(args.keys) : quick ? 1000 : 10_000
for (const [name, v] of [
  ['duration', durationMs],
  ['pairs', pairs],
  ['concurrency', concurrency],
  ['keys', keys],
] as const) {
  if (!(Number.isFinite(v) && v > 0)) {
    console.error(`--${name} must be a positive number`)
    process.exit(2)
  }
}

// ---------------------------------------------------------------- columns

/** A database being measured. */
interface Side {
  name: string
  target: Target
  /** Its processes by role, as of now (etcd's leader may move). */
  processes(): Promise<ProcessGroup[]>
  /** Its processes still running, cheaply: for its CPU while other columns are measured. */
  pids(): number[]
  /** Cortado: CPU seconds the nodes have spent applying records as replicas that are not master. */
  replicaApplySeconds?: () => Promise<number>
  /** Cortado: Kafka requests the broker has handled so far, by API. */
  kafkaRequests?: () => Promise<Map<string, number>>
  written: WrittenKeys
}

interface Started {
  side: Omit<Side, 'written'>
  /** What it is, for the run's header. */
  header: string[]
  /** Anything to say after the table (warnings it logged). */
  notes?: () => string[]
}

interface Column {
  name: string
  /** Whether it can run here (installing it if need be); says why not if not. */
  available?: (log: (line: string) => void) => Promise<boolean>
  start(defer: (stop: () => Promise<void>) => void, port: () => number): Promise<Started>
  /** Cortado: the database of the shared cluster it measures. */
  database?: { name: string; replicas: number }
}

/** The one Cortado cluster every Cortado column measures, started by the first to need it. */
let cortadoCluster: Promise<CortadoCluster> | undefined

function cortadoColumn(name: string, database: string, replicas: number, via: 'http' | 'client' = 'http'): Column {
  return {
    name,
    database: { name: database, replicas },
    async start(defer, port) {
      cortadoCluster ??= startCortado(
        {
          parentDir: args.dir,
          httpPort: port(),
          brokerPort: port(),
          metricsPort: port(),
          concurrency,
          // Each database once, of the Cortado columns asked for.
          databases: [
            ...new Map(
              wanted.flatMap((c) => (c.database === undefined ? [] : [[c.database.name, c.database] as const])),
            ).values(),
          ],
          processes: args['cortado-start'] ? 'start' : 'separate',
          nodeArgs: args['cortado-node-args']?.split(' ').filter((a) => a.length > 0),
        },
        defer,
      )
      const c = await cortadoCluster
      return {
        side: {
          name,
          target: await c.target(database, via),
          processes: () => Promise.resolve(c.processes()),
          pids: () => c.pids(),
          replicaApplySeconds: () => c.replicaApplySeconds(),
          kafkaRequests: () => c.kafkaRequests(),
        },
        header: [
          `${name}: ${c.ready}; database ${database}, ${PARTITIONS} partitions x ${replicas} replicas; ` +
            (via === 'client'
              ? 'load through the client library (src/db/client/), straight to each partition master'
              : "load through the router's HTTP API"),
        ],
        notes: () => {
          const warnings = c
            .stderr()
            .split('\n')
            .filter((l) => /"level":"(warn|error)"/.test(l))
          return warnings.length === 0
            ? []
            : [`the Cortado cluster logged ${warnings.length} warnings/errors, first: ${warnings[0].slice(0, 300)}`]
        },
      }
    },
  }
}

const postgresColumn: Column = {
  name: 'postgres',
  available: ensurePostgres,
  async start(defer, port) {
    const primaryPort = port()
    const standbyPort = port()
    const p = await startPostgres({ parentDir: args.dir, primaryPort, standbyPort, concurrency }, defer)
    return {
      side: {
        name: 'postgres',
        target: p.target,
        processes: () => Promise.resolve(p.processes()),
        pids: () => p.pids(),
      },
      header: [
        `postgres: ${p.version}`,
        `postgres: primary ${HOST}:${primaryPort}, standby ${HOST}:${standbyPort}; pg_stat_replication: ${p.replication}`,
        `postgres settings: ${p.settings.join(', ')}`,
        'postgres: write = INSERT INTO docs (key, doc) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET doc = excluded.doc; ' +
          'read = SELECT doc FROM docs WHERE key = $1 (primary); docs(key text primary key, doc jsonb not null); ' +
          `pg driver, pool of ${concurrency}`,
      ],
    }
  },
}

const etcdColumn: Column = {
  name: 'etcd',
  available: ensureEtcd,
  async start(defer, port) {
    const clientPorts = [port(), port(), port()]
    const peerPorts = [port(), port(), port()]
    const e = await startEtcd({ parentDir: args.dir, clientPorts, peerPorts, concurrency }, defer)
    return {
      side: { name: 'etcd', target: e.target, processes: () => e.processes(), pids: () => e.pids() },
      header: [
        `etcd: ${e.version}`,
        `etcd: 3 members, clients at ${e.clientUrls.join(' ')}; fsync on (as shipped), default snapshot and heartbeat settings`,
        'etcd: write = POST /v3/kv/put {key, value: the JSON document} (base64); read = POST /v3/kv/range {key} ' +
          `(linearizable); undici, round robin over the members, ${Math.max(concurrency, 3)} connections in all`,
      ],
    }
  },
}

/**
 * The columns, in table (and slice) order. Ratios are of the first to postgres and to etcd.
 * Another Cortado column is one more line here.
 */
const COLUMNS: Column[] = [
  cortadoColumn('cortado', DATABASE, 3),
  cortadoColumn('cortado-client', DATABASE, 3, 'client'),
  cortadoColumn('cortado-r2', `${DATABASE}-r2`, 2),
  postgresColumn,
  etcdColumn,
]
const BASE = 'cortado'
/** The Cortado columns compared with each baseline (the HTTP API first: the figure the targets name). */
const SUBJECTS = [
  { name: BASE, short: BASE },
  { name: 'cortado-client', short: 'client' },
]
const BASELINES = [
  { name: 'postgres', short: 'pg' },
  { name: 'etcd', short: 'etcd' },
]

const wanted = args.only === undefined ? COLUMNS : COLUMNS.filter((c) => args.only!.split(',').includes(c.name))
for (const name of args.only?.split(',') ?? []) {
  if (!COLUMNS.some((c) => c.name === name)) {
    console.error(`--only takes a comma list of ${COLUMNS.map((c) => c.name).join(', ')}; not ${name}`)
    process.exit(2)
  }
}
const shown = wanted.map((c) => c.name)

// ---------------------------------------------------------------- table

interface Totals {
  ops: number
  seconds: number
  latencies: number[]
  errors: number
  firstError: string | undefined
  /** Operations completed over the slices, warm-up included: the denominator of CPU per operation. */
  completed: number
  wall: number
  clientCpu: number
  /** Server CPU seconds by role, in the order the roles were first seen. */
  roleCpu: Map<string, number>
  /** Server CPU seconds and wall seconds while other columns were measured. */
  idleCpu: number
  idleWall: number
  /** Cortado: Kafka requests the broker handled during the slices, by API. */
  kafkaRequests: Map<string, number>
}

const emptyTotals = (): Totals => ({
  ops: 0,
  seconds: 0,
  latencies: [],
  errors: 0,
  firstError: undefined,
  completed: 0,
  wall: 0,
  clientCpu: 0,
  roleCpu: new Map(),
  idleCpu: 0,
  idleWall: 0,
  kafkaRequests: new Map(),
})

interface Row {
  scenario: string
  metric: string
  /** By column name; a column without the figure has none. */
  values: Map<string, number>
  /** 'up': higher is better; 'down': lower is better; 'info': no judgement. */
  better: 'up' | 'down' | 'info'
  /** Per-pair cortado/postgres ratios, for the spread column. */
  pairs?: number[]
}

const rows: Row[] = []
const problems: string[] = []
/** Aborted on Ctrl-C: the running phase ends and no further one starts. */
const interrupted = new AbortController()

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-'
  if (Number.isInteger(v) && Math.abs(v) < 100_000) return String(v)
  if (Math.abs(v) >= 100_000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 100) return v.toFixed(0)
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function printTable(): void {
  const baselines = BASELINES.filter((b) => shown.includes(b.name))
  const compared = SUBJECTS.filter((s) => shown.includes(s.name)).flatMap((s) => baselines.map((b) => ({ s, b })))
  const withPairs = shown.includes(BASE) && baselines.some((b) => b.name === 'postgres') && pairs > 1
  const header = [
    'scenario',
    'metric',
    ...shown,
    ...compared.map(({ s, b }) => `${s.short}/${b.short}`),
    ...(withPairs ? [`pairs ${BASE}/pg`] : []),
  ]
  const lines = rows.map((r) => {
    const value = (name: string) => r.values.get(name) ?? NaN
    const ratios = compared.map(({ s, b }) => {
      const ratio = value(s.name) / value(b.name)
      const worse = r.better === 'up' ? ratio < 1 : r.better === 'down' ? ratio > 1 : false
      if (r.better === 'info') return ''
      return Number.isFinite(ratio) ? `${ratio.toFixed(2)}x${worse ? ' <' : '  '}` : '-'
    })
    const spread =
      r.pairs === undefined || r.pairs.length < 2
        ? ''
        : `${Math.min(...r.pairs).toFixed(2)}-${Math.max(...r.pairs).toFixed(2)}, med ${median(r.pairs).toFixed(2)}`
    return [r.scenario, r.metric, ...shown.map((name) => fmt(value(name))), ...ratios, ...(withPairs ? [spread] : [])]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const render = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  let previous = ''
  console.log('')
  console.log(render(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const l of lines) {
    const cells = l[0] === previous ? ['', ...l.slice(1)] : l
    previous = l[0]
    console.log(render(cells))
  }
  console.log('')
  console.log('ops/s: higher is better; latency rows (ms, call to completion in the client): lower is better.')
  if (compared.length > 0)
    console.log(
      `"<" marks the Cortado column worse than the baseline${withPairs ? `; "pairs": min-max and median of the per-pair ${BASE}/pg ops/s ratios` : ''}.`,
    )
  console.log('server CPU %: every process of the database, user+sys, 100% = one core, over each slice with its')
  console.log(
    'warm-up; "idle": the same while the other databases\' columns were measured (what it takes from them; the Cortado columns share one cluster).',
  )
  console.log('CPU µs/op: CPU of each kind of process over the operations completed in the slices. Cortado:')
  console.log('"nodes: replica apply" is the storage nodes applying records as replicas that are not master,')
  console.log('"nodes: master work" all their other CPU (serving and replicating writes as master, reads,')
  console.log('heartbeats, metadata). "load generator" is this process, client library included.')
  console.log('Kafka requests/op: Produce and Fetch requests the broker handled per operation (replication,')
  console.log('read-back, followers, heartbeats and metadata); each costs a round of framing, decoding and')
  console.log('wake-ups on both sides (docs/database.md, "Performance", has what they cost).')
}

// ---------------------------------------------------------------- scenarios

/** The Kafka requests per operation shown for Cortado: its replication stream's cost drivers. */
const KAFKA_APIS_SHOWN = ['Produce', 'Fetch']

function add(map: Map<string, number>, key: string, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value)
}

async function slice(
  side: Side,
  sides: Side[],
  totals: Map<string, Totals>,
  kind: 'write' | 'read',
  workers: number,
  seed: number,
): Promise<number> {
  const t = totals.get(side.name)!
  const applied0 = await side.replicaApplySeconds?.()
  const kafka0 = await side.kafkaRequests?.()
  const groups = await side.processes()
  // The columns of other databases idle meanwhile; Cortado's columns share one cluster, so while
  // one is measured the others are not idle but measured with it.
  const mine = new Set(groups.flatMap((g) => g.pids))
  const idle = sides.filter((other) => other !== side && !other.pids().some((pid) => mine.has(pid)))
  const owners = new Map<number, string>()
  // Idle columns of one cluster are credited with its CPU each.
  const idleLabel = new Map<Side, string>()
  for (const other of idle) {
    const pids = other.pids()
    const label = pids.map((pid) => owners.get(pid)).find((l) => l !== undefined) ?? `idle ${other.name}`
    idleLabel.set(other, label)
    for (const pid of pids) owners.set(pid, label)
  }
  for (const g of groups) for (const pid of g.pids) owners.set(pid, g.role)
  const table0 = processTable()
  const client0 = process.cpuUsage()
  const t0 = performance.now()
  const r = await runPhase({
    target: side.target,
    kind,
    concurrency: workers,
    keys,
    written: side.written,
    warmupMs,
    durationMs: sliceMs,
    seed,
    signal: interrupted.signal,
  })
  const wall = (performance.now() - t0) / 1000
  const client = process.cpuUsage(client0)
  const used = cpuBetween(table0, processTable(), owners)
  const applied1 = await side.replicaApplySeconds?.()
  const kafka1 = await side.kafkaRequests?.()
  if (kafka0 !== undefined && kafka1 !== undefined)
    for (const [api, n] of kafka1) add(t.kafkaRequests, api, n - (kafka0.get(api) ?? 0))

  t.wall += wall
  t.clientCpu += (client.user + client.system) / 1e6
  for (const g of groups) {
    const cpu = used.get(g.role) ?? NaN
    if (g.role === 'nodes' && applied0 !== undefined && applied1 !== undefined) {
      add(t.roleCpu, 'nodes: master work', cpu - (applied1 - applied0))
      add(t.roleCpu, 'nodes: replica apply', applied1 - applied0)
    } else {
      add(t.roleCpu, g.role, cpu)
    }
  }
  for (const other of idle) {
    const o = totals.get(other.name)!
    o.idleCpu += used.get(idleLabel.get(other)!) ?? NaN
    o.idleWall += wall
  }
  t.ops += r.ops
  t.seconds += r.seconds
  for (const l of r.latencies) t.latencies.push(l)
  t.completed += r.completed
  t.errors += r.errors
  t.firstError ??= r.firstError
  return r.opsPerSec
}

async function scenario(
  label: string,
  sides: Side[],
  kind: 'write' | 'read',
  workers: number,
  seedBase: number,
): Promise<void> {
  process.stdout.write(`${label} `)
  const totals = new Map(sides.map((s) => [s.name, emptyTotals()]))
  const ratios: number[] = []
  for (let i = 0; i < pairs && !interrupted.signal.aborted; i++) {
    // Odd pairs in column order, even ones in reverse: drift over the run hits every column alike.
    const order = i % 2 === 0 ? sides : [...sides].reverse()
    const rate = new Map<string, number>()
    for (const s of order)
      if (!interrupted.signal.aborted) rate.set(s.name, await slice(s, sides, totals, kind, workers, seedBase + i))
    if (rate.has(BASE) && rate.has('postgres')) ratios.push(rate.get(BASE)! / rate.get('postgres')!)
    process.stdout.write('.')
  }
  console.log('')

  const row = (metric: string, better: Row['better'], f: (t: Totals) => number, withPairs = false) => {
    const values = new Map<string, number>()
    for (const [name, t] of totals) values.set(name, f(t))
    rows.push({ scenario: label, metric, values, better, ...(withPairs ? { pairs: ratios } : {}) })
  }
  row('ops/s', 'up', (t) => t.ops / t.seconds, true)
  for (const [metric, q] of [
    ['p50 ms', 'p50'],
    ['p99 ms', 'p99'],
    ['p99.9 ms', 'p999'],
    ['max ms', 'max'],
  ] as const) {
    row(metric, 'down', (t) => summarize(t.latencies)[q])
  }
  row('errors', 'info', (t) => t.errors)
  const serverCpu = (t: Totals) => [...t.roleCpu.values()].reduce((a, b) => a + b, 0)
  row('server CPU %', 'info', (t) => (serverCpu(t) / t.wall) * 100)
  row('server CPU % idle', 'info', (t) => (t.idleCpu / t.idleWall) * 100)
  const perOp = (seconds: number, t: Totals) => (seconds * 1e6) / t.completed
  const roles = [...new Set([...totals.values()].flatMap((t) => [...t.roleCpu.keys()]))]
  for (const role of roles) row(`CPU µs/op ${role}`, 'info', (t) => perOp(t.roleCpu.get(role) ?? NaN, t))
  row('CPU µs/op server total', 'down', (t) => perOp(serverCpu(t), t))
  row('CPU µs/op load generator', 'down', (t) => perOp(t.clientCpu, t))
  row('CPU µs/op total', 'down', (t) => perOp(serverCpu(t) + t.clientCpu, t))
  for (const api of KAFKA_APIS_SHOWN)
    if ([...totals.values()].some((t) => t.kafkaRequests.size > 0))
      row(`Kafka ${api} requests/op`, 'info', (t) =>
        t.kafkaRequests.size === 0 ? NaN : (t.kafkaRequests.get(api) ?? 0) / t.completed,
      )
  for (const s of sides) {
    const t = totals.get(s.name)!
    if (t.errors > 0) problems.push(`${s.name} ${label}: ${t.errors} failed operations, first: ${t.firstError}`)
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = performance.now()
  const cleanups: (() => Promise<void>)[] = []
  const defer = (stop: () => Promise<void>) => {
    cleanups.push(stop)
  }
  const stopAll = () =>
    Promise.all(cleanups.map((stop) => stop().catch((e: unknown) => console.error(`cleanup: ${String(e)}`))))
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the databases and removing their data...`)
      interrupted.abort()
      setTimeout(() => process.exit(code), 60_000).unref()
      void stopAll().then(() => process.exit(code))
    })
  }

  const notes: (() => string[])[] = []
  try {
    const log = (line: string) => console.log(line)
    const runnable: Column[] = []
    // One at a time: apt-get installs do not run side by side.
    for (const c of wanted) {
      if (c.available === undefined || (await c.available(log))) runnable.push(c)
      else console.log(`Measuring without ${c.name}.`)
    }
    if (runnable.length === 0) throw new Error('nothing to measure (see above)')
    const ports = await freePorts(HOST, runnable.length * 6)
    const port = () => ports.pop()!
    const started = await Promise.allSettled(runnable.map((c) => c.start(defer, port)))

    console.log(
      `load: ${concurrency} workers (and 1 for the latency scenario), ${keys} keys, documents of ${docBytes()} bytes of JSON; ` +
        `${pairs} pair${pairs === 1 ? '' : 's'} of slice rounds of ${fmt(sliceMs / 1000)} s (+${warmupMs / 1000} s warm-up each) per scenario; ` +
        `${availableParallelism()} CPUs; data under ${args.dir}`,
    )
    const sides: Side[] = []
    for (const [i, s] of started.entries()) {
      const name = runnable[i].name
      if (s.status === 'fulfilled') {
        sides.push({ ...s.value.side, written: new WrittenKeys(keys) })
        for (const line of s.value.header) console.log(line)
        if (s.value.notes !== undefined) notes.push(s.value.notes)
      } else {
        const msg = s.reason instanceof Error ? s.reason.message : String(s.reason)
        problems.push(`${name} did not start: ${msg.split('\n')[0]}`)
        console.log(`${name} did not start, measuring without it:\n  ${msg.split('\n').slice(0, 20).join('\n  ')}`)
      }
    }
    if (sides.length === 0) throw new Error('no database started')

    await scenario(`write 1 KB, ${concurrency} workers`, sides, 'write', concurrency, 100)
    await scenario(`read, ${concurrency} workers`, sides, 'read', concurrency, 200)
    await scenario('write 1 KB, 1 worker', sides, 'write', 1, 300)

    printTable()
    console.log(`total ${fmt((performance.now() - startedAt) / 1000)} s`)
    // Columns sharing a cluster share its notes: each line once.
    for (const line of new Set(notes.flatMap((note) => note()))) console.log(line)
  } finally {
    await stopAll()
  }
  if (problems.length > 0) {
    console.error('\nFAILED:')
    for (const p of problems) console.error(`  ${p}`)
    process.exitCode = 1
  }
}

await main()
