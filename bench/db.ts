// `npm run bench:db`: Cortado's document writes and reads beside PostgreSQL 15 in the same run.
//
//   node bench/db.ts [--duration <s>] [--concurrency <n>] [--keys <k>] [--pairs <n>] [--quick]
//                    [--only cortado|postgres] [--dir <parent of the temp data dirs>]
//
// Cortado: `cortado start` (broker, 3 storage nodes, router; bench/db-cortado.ts), a database of
// 8 partitions × 3 replicas, documents PUT and GET through the router's HTTP API.
// PostgreSQL: Debian's PostgreSQL 15, a primary plus one synchronous streaming standby
// (synchronous_commit=on, fsync=on; bench/db-postgres.ts), JSONB rows upserted and selected by
// key on the primary. If it is not installed, it is installed with apt-get when running as root;
// otherwise the run says what to install and measures Cortado alone.
// Both are driven by the same load generator (bench/db-load.ts): `--concurrency` closed-loop
// workers, ~1 KB documents under random keys among `--keys`.
//
// Scenarios: writes at `--concurrency`, then reads of the written keys at `--concurrency`, then
// writes from one worker (latency without queueing). Shared and virtual machines drift, so each
// scenario runs as `--pairs` pairs of slices alternating the two (AB BA AB ...), each slice with
// its own warm-up; `--duration` is the measured seconds per scenario and database, split over the
// slices. Figures are totals over all slices; the "pairs" column shows the spread of the per-pair
// ratios. Prints one table: scenario, metric, cortado, postgres, cortado/postgres.
//
// `--quick` is a short smoke run. Exits 1 if any operation failed (or a read found nothing where
// a write had been acknowledged) or a database could not be started; no timing assertions.
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { startCortado, PARTITIONS, REPLICAS } from './db-cortado.ts'
import { docBytes, runPhase, summarize, WrittenKeys, type Target } from './db-load.ts'
import { ensurePostgres, startPostgres } from './db-postgres.ts'

const HOST = '127.0.0.1'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    keys: { type: 'string' },
    pairs: { type: 'string' },
    only: { type: 'string' },
    dir: { type: 'string', default: tmpdir() },
  },
})

const quick = args.quick
const durationMs = (args.duration !== undefined ? Number(args.duration) : quick ? 1 : 10) * 1000
const pairs = args.pairs !== undefined ? Number(args.pairs) : quick ? 1 : 4
/** Measured ms per slice: each database gets `pairs` slices per scenario. */
const sliceMs = durationMs / pairs
const warmupMs = quick ? 200 : 500
const concurrency = Number(args.concurrency)
const keys = args.keys !== undefined ? Number(args.keys) : quick ? 1000 : 10_000
if (args.only !== undefined && args.only !== 'cortado' && args.only !== 'postgres') {
  console.error(`--only takes cortado or postgres, not ${args.only}`)
  process.exit(2)
}
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
const wantCortado = args.only !== 'postgres'
const wantPostgres = args.only !== 'cortado'

// ---------------------------------------------------------------- processes and their CPU

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, HOST, () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

/**
 * CPU seconds (user + system) used so far by each of the given processes and all their
 * descendants (PostgreSQL's backends, walsender and walreceiver; Cortado's nodes if they are
 * processes), by pid; empty off Linux.
 */
function treeCpu(roots: number[]): Map<number, number> {
  const parent = new Map<number, number>()
  const cpu = new Map<number, number>()
  let procs: string[] = []
  try {
    procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    // not Linux
  }
  for (const p of procs) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      parent.set(Number(p), Number(fields[1]))
      cpu.set(Number(p), (Number(fields[11]) + Number(fields[12])) / 100) // utime, stime in USER_HZ=100 ticks
    } catch {
      // exited while we looked
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, depth = 0; p > 1 && depth < 64; p = parent.get(p) ?? 0, depth++)
      if (roots.includes(p)) return true
    return false
  }
  const tree = new Map<number, number>()
  for (const [pid, s] of cpu) if (inTree(pid)) tree.set(pid, s)
  return tree
}

/**
 * CPU seconds the tree used between two snapshots: a process that exited in between takes its
 * time with it (a lower bound then), one that started counts from zero. NaN off Linux.
 */
function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  if (after.size === 0) return NaN
  let sum = 0
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0)
  return sum
}

// ---------------------------------------------------------------- table

interface Side {
  name: 'cortado' | 'postgres'
  target: Target
  pids(): number[]
  written: WrittenKeys
}

interface Totals {
  ops: number
  seconds: number
  latencies: number[]
  errors: number
  firstError: string | undefined
  serverCpu: number
  clientCpu: number
  wall: number
}

const emptyTotals = (): Totals => ({
  ops: 0,
  seconds: 0,
  latencies: [],
  errors: 0,
  firstError: undefined,
  serverCpu: 0,
  clientCpu: 0,
  wall: 0,
})

interface Row {
  scenario: string
  metric: string
  cortado: number
  postgres: number
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
  const header = ['scenario', 'metric', 'cortado', 'postgres', 'cortado/postgres', 'pairs']
  const lines = rows.map((r) => {
    const ratio = r.cortado / r.postgres
    const worse = r.better === 'up' ? ratio < 1 : r.better === 'down' ? ratio > 1 : false
    const spread =
      r.pairs === undefined || r.pairs.length < 2
        ? ''
        : `${Math.min(...r.pairs).toFixed(2)}-${Math.max(...r.pairs).toFixed(2)}, med ${median(r.pairs).toFixed(2)}`
    return [
      r.scenario,
      r.metric,
      fmt(r.cortado),
      fmt(r.postgres),
      Number.isFinite(ratio) ? `${ratio.toFixed(2)}x${worse ? ' <' : '  '}` : '-',
      spread,
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const render = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  let previous = ''
  console.log('')
  console.log(render(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const l of lines) {
    const shown = l[0] === previous ? ['', ...l.slice(1)] : l
    previous = l[0]
    console.log(render(shown))
  }
  console.log('')
  console.log(
    'ops/s: higher is better; latency rows (ms, call to completion in the client): lower is better. "<" marks',
  )
  console.log(
    'Cortado worse than PostgreSQL. "pairs": min-max and median of the per-pair cortado/postgres ops/s ratios.',
  )
  console.log('Server CPU % is every process of the database (PostgreSQL: primary, standby and their backends;')
  console.log('Cortado: `cortado start` and its children), user+sys, 100% = one core, over each slice including its')
  console.log('warm-up; load gen CPU % is this process.')
}

// ---------------------------------------------------------------- scenarios

async function slice(side: Side, t: Totals, kind: 'write' | 'read', workers: number, seed: number): Promise<number> {
  const pids = side.pids()
  const cpu0 = treeCpu(pids)
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
  t.wall += (performance.now() - t0) / 1000
  const client = process.cpuUsage(client0)
  t.serverCpu += cpuBetween(cpu0, treeCpu(pids))
  t.clientCpu += (client.user + client.system) / 1e6
  t.ops += r.ops
  t.seconds += r.seconds
  for (const l of r.latencies) t.latencies.push(l)
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
    // AB, BA, AB, ...: drift over the run hits both sides alike.
    const order = i % 2 === 0 ? sides : [...sides].reverse()
    const rate = new Map<string, number>()
    for (const s of order)
      if (!interrupted.signal.aborted)
        rate.set(s.name, await slice(s, totals.get(s.name)!, kind, workers, seedBase + i))
    if (sides.length === 2) ratios.push(rate.get('cortado')! / rate.get('postgres')!)
    process.stdout.write('.')
  }
  console.log('')
  const get = (name: string, f: (t: Totals) => number) => {
    const t = totals.get(name as Side['name'])
    return t === undefined ? NaN : f(t)
  }
  const lat = (name: string) => summarize(totals.get(name as Side['name'])?.latencies ?? [])
  const row = (metric: string, better: Row['better'], f: (t: Totals) => number, withPairs = false) => {
    rows.push({
      scenario: label,
      metric,
      cortado: get('cortado', f),
      postgres: get('postgres', f),
      better,
      ...(withPairs ? { pairs: ratios } : {}),
    })
  }
  row('ops/s', 'up', (t) => t.ops / t.seconds, true)
  for (const [metric, q] of [
    ['p50 ms', 'p50'],
    ['p99 ms', 'p99'],
    ['p99.9 ms', 'p999'],
    ['max ms', 'max'],
  ] as const) {
    rows.push({ scenario: label, metric, cortado: lat('cortado')[q], postgres: lat('postgres')[q], better: 'down' })
  }
  row('errors', 'info', (t) => t.errors)
  row('server CPU %', 'info', (t) => (t.serverCpu / t.wall) * 100)
  row('load gen CPU %', 'info', (t) => (t.clientCpu / t.wall) * 100)
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

  const sides: Side[] = []
  try {
    const log = (line: string) => console.log(line)
    const havePostgres = wantPostgres && (await ensurePostgres(log))
    if (wantPostgres && !havePostgres) {
      if (!wantCortado) throw new Error('PostgreSQL 15 is not installed (see above)')
      console.log('Measuring Cortado alone.')
    }
    const [httpPort, brokerPort, metricsPort, primaryPort, standbyPort] = await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    )
    const [cortado, postgres] = await Promise.allSettled([
      wantCortado
        ? startCortado({ parentDir: args.dir, httpPort, brokerPort, metricsPort, concurrency }, defer)
        : Promise.resolve(undefined),
      havePostgres
        ? startPostgres({ parentDir: args.dir, primaryPort, standbyPort, concurrency }, defer)
        : Promise.resolve(undefined),
    ])

    console.log(
      `load: ${concurrency} workers (and 1 for the latency scenario), ${keys} keys, documents of ${docBytes()} bytes of JSON; ` +
        `${pairs} AB/BA pair${pairs === 1 ? '' : 's'} of ${fmt(sliceMs / 1000)} s slices (+${warmupMs / 1000} s warm-up each) per scenario; ` +
        `${availableParallelism()} CPUs; data under ${args.dir}`,
    )
    if (cortado.status === 'fulfilled' && cortado.value !== undefined) {
      const c = cortado.value
      sides.push({ name: 'cortado', target: c.target, pids: () => c.pids(), written: new WrittenKeys(keys) })
      console.log(`cortado: ${c.ready}; database ${PARTITIONS} partitions x ${REPLICAS} replicas`)
    } else if (cortado.status === 'rejected') {
      const msg = cortado.reason instanceof Error ? cortado.reason.message : String(cortado.reason)
      problems.push(`cortado did not start: ${msg.split('\n')[0]}`)
      console.log(`cortado did not start, measuring PostgreSQL alone:\n  ${msg.split('\n').slice(0, 20).join('\n  ')}`)
    }
    if (postgres.status === 'fulfilled' && postgres.value !== undefined) {
      const p = postgres.value
      sides.push({ name: 'postgres', target: p.target, pids: () => p.pids(), written: new WrittenKeys(keys) })
      console.log(`postgres: ${p.version}`)
      console.log(
        `postgres: primary ${HOST}:${primaryPort}, standby ${HOST}:${standbyPort}; pg_stat_replication: ${p.replication}`,
      )
      console.log(`postgres settings: ${p.settings.join(', ')}`)
      console.log(
        'postgres: write = INSERT INTO docs (key, doc) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET doc = excluded.doc; ' +
          'read = SELECT doc FROM docs WHERE key = $1 (primary); docs(key text primary key, doc jsonb not null); ' +
          `pg driver, pool of ${concurrency}`,
      )
    } else if (postgres.status === 'rejected') {
      throw postgres.reason
    }
    if (sides.length === 0) throw new Error('nothing to measure')
    // A fixed order (cortado first) keeps the AB/BA alternation the same from run to run.
    sides.sort((a, b) => a.name.localeCompare(b.name))

    await scenario(`write 1 KB, ${concurrency} workers`, sides, 'write', concurrency, 100)
    await scenario(`read, ${concurrency} workers`, sides, 'read', concurrency, 200)
    await scenario('write 1 KB, 1 worker', sides, 'write', 1, 300)

    printTable()
    console.log(`total ${fmt((performance.now() - startedAt) / 1000)} s`)
    if (cortado.status === 'fulfilled' && cortado.value !== undefined) {
      const warnings = cortado.value
        .stderr()
        .split('\n')
        .filter((l) => /"level":"(warn|error)"/.test(l))
      if (warnings.length > 0)
        console.log(`cortado logged ${warnings.length} warnings/errors, first: ${warnings[0].slice(0, 300)}`)
    }
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
