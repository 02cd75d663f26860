// `npm run bench:failover`: how long writes stop when a master dies, and how far slaves trail
// their master under load.
//
//   node bench/failover.ts [--kills <n>] [--writers <n>] [--node-session-ms <ms>] [--retry-ms <ms>]
//                          [--lag-seconds <s>] [--quick] [--dir <parent of the temp dir>]
//
// The cluster (bench/failover-cluster.ts), every part its own process on a temp directory: a
// broker, the router (`--retry-ms`, default 200: a request to a partition without a master is
// answered 503 after that long, so the load generator sees the unavailability instead of the
// router hiding it in its retries), one controller (`--node-session-ms`, default the controller's
// own, 1500 ms) and 3 storage nodes. A database of 6 partitions × 3 replicas, one table keyed by
// `id`, ~1 KB documents (bench/db-load.ts).
//
// Throughout, `--writers` closed-loop writers upsert documents under random keys (10,000 keys,
// spread over the partitions by the server's own hashing).
//
// 1. Replication lag, no faults: for `--lag-seconds`, every ~100 ms, `GET /_admin/cluster`; for
//    every partition and every slave in the master's generation, the master's applied scn minus
//    the slave's (one scn per transaction, and each write here is one transaction).
// 2. `--kills` failovers: each time a node that masters at least one partition is SIGKILLed
//    (nodes in turn); for each partition it mastered, probe writers (3 per partition, staggered)
//    write keys of that partition continuously from the kill on; the partition's failover time is
//    kill → the first write answered 200, the kill's is the slowest of its partitions. The
//    controller's and nodes' logs give the steps in between. The node is then restarted on the
//    same data directory and the next kill waits until every replica has applied at least what
//    its master had when the node came back, and the placement has not changed for a second (the
//    controller may move masterships back to their preferred replicas). Failed load writes are
//    counted per kill, from the kill until then.
//
// Prints one table. `--quick` is a short smoke run (1 kill, short phases). Exits 1 if the cluster
// could not be started, a partition took no write within 30 s of a kill, a restarted node did
// not catch up or the placement did not settle; never on the figures themselves (the 2 s aim is
// reported, not enforced; failed writes are counted, and reported by kind).
import { availableParallelism, tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { partitionOf } from '../src/db/metadata/model.ts'
import { mulberry32 } from '../src/util/random.ts'
import { DOC_SCHEMA } from './db-cortado.ts'
import { docBytes, keyOf, makeDoc, summarize } from './db-load.ts'
import { type Cluster, type LogEvent, startCluster } from './failover-cluster.ts'

const DB = 'failover'
const TABLE = 'docs'
const PARTITIONS = 6
const REPLICAS = 3
const NODES = 3
const KEYS = 10_000
const AIM_MS = 2000
const PROBES_PER_PARTITION = 3
const PROBE_STAGGER_MS = 70
const PROBE_TIMEOUT_MS = 30_000
const CATCH_UP_TIMEOUT_MS = 60_000
const LAG_SAMPLE_MS = 100
/** The placement counts as settled after a kill once it has not changed for this long. */
const STABLE_MS = 1000
const SETTLE_TIMEOUT_MS = 30_000

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    kills: { type: 'string' },
    writers: { type: 'string' },
    'node-session-ms': { type: 'string' },
    'retry-ms': { type: 'string', default: '200' },
    'lag-seconds': { type: 'string' },
    dir: { type: 'string', default: tmpdir() },
  },
})

const quick = args.quick
const kills = Number(args.kills ?? (quick ? 1 : 5))
const writers = Number(args.writers ?? (quick ? 4 : 16))
const nodeSessionMs = args['node-session-ms'] === undefined ? undefined : Number(args['node-session-ms'])
const retryMs = Number(args['retry-ms'])
const lagMs = Number(args['lag-seconds'] ?? (quick ? 2 : 10)) * 1000
const warmupMs = quick ? 1000 : 3000
/** Steady load between a node's catch-up and the next kill. */
const settleMs = quick ? 500 : 1500
for (const [name, v] of [
  ['kills', kills],
  ['writers', writers],
  ['node-session-ms', nodeSessionMs ?? 1],
  ['retry-ms', retryMs],
  ['lag-seconds', lagMs],
] as const) {
  if (!(Number.isInteger(v) && v > 0)) {
    console.error(`--${name} must be a positive integer`)
    process.exit(2)
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** Aborted on Ctrl-C: loops end and nothing further starts. */
const interrupted = new AbortController()
const problems: string[] = []

// ---------------------------------------------------------------- HTTP

interface Answer {
  status: number
  /** The error code of a refusal (or the network error), '' on success. */
  code: string
  text: string
}

async function request(pool: Pool, method: 'GET' | 'PUT', path: string, body?: unknown): Promise<Answer> {
  try {
    const res = await pool.request({
      path,
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })
    const text = await res.body.text()
    let code = ''
    if (res.statusCode >= 300) {
      try {
        code = String((JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '')
      } catch {
        code = 'not JSON'
      }
    }
    return { status: res.statusCode, code, text }
  } catch (error) {
    const e = error as { code?: string; message?: string }
    return { status: 0, code: e.code ?? 'network', text: String(e.message ?? error) }
  }
}

const docPath = (key: string) => `/${DB}/${TABLE}/${encodeURIComponent(key)}`

interface ReplicaView {
  node: string
  role: string
  applied: { generation: number; scn: number } | null
}
interface PartitionView {
  partition: number
  generation: number
  master: string | null
  replicas: ReplicaView[]
}
interface ClusterView {
  nodes: { id: string; status: string }[]
  databases: { name: string; partitions: PartitionView[] }[]
}

async function partitionsView(admin: Pool): Promise<PartitionView[]> {
  const res = await request(admin, 'GET', '/_admin/cluster')
  if (res.status !== 200) throw new Error(`GET /_admin/cluster: HTTP ${res.status} ${res.text.slice(0, 300)}`)
  const d = (JSON.parse(res.text) as ClusterView).databases.find((x) => x.name === DB)
  if (d === undefined) throw new Error(`GET /_admin/cluster: no database ${DB}`)
  return d.partitions
}

const compare = (a: { generation: number; scn: number }, b: { generation: number; scn: number }) =>
  a.generation - b.generation || a.scn - b.scn

/** Keys of each partition, as the server places them. */
function keysByPartition(prefix: string, perPartition: number): string[][] {
  const keys: string[][] = Array.from({ length: PARTITIONS }, () => [])
  for (let i = 0; keys.some((k) => k.length < perPartition); i++) {
    const key = `${prefix}-${i}`
    const list = keys[partitionOf(key, PARTITIONS)]
    if (list.length < perPartition) list.push(key)
  }
  return keys
}

// ---------------------------------------------------------------- load

interface Load {
  /** Completion time (ms since the epoch) and latency (ms) of every write answered 200. */
  okAt: number[]
  okLatency: number[]
  /** Every write not answered 200: completion time, HTTP status (0: no answer), error code. */
  failures: { at: number; status: number; code: string }[]
  stop(): Promise<void>
}

function startLoad(pool: Pool, count: number): Load {
  const load: Load = { okAt: [], okLatency: [], failures: [], stop: async () => {} }
  let running = true
  const loops = Array.from({ length: count }, async (_, w) => {
    const random = mulberry32(1000 + w)
    for (let counter = 0; running && !interrupted.signal.aborted; counter++) {
      const key = keyOf(Math.floor(random() * KEYS))
      const t0 = performance.now()
      const res = await request(pool, 'PUT', docPath(key), makeDoc(key, counter))
      const at = Date.now()
      if (res.status === 200) {
        load.okAt.push(at)
        load.okLatency.push(performance.now() - t0)
      } else {
        load.failures.push({ at, status: res.status, code: res.code })
        await sleep(20)
      }
    }
  })
  load.stop = async () => {
    running = false
    await Promise.all(loops)
  }
  return load
}

const okBetween = (load: Load, from: number, to: number) => load.okAt.filter((t) => t >= from && t <= to).length
const failuresBetween = (load: Load, from: number, to: number) =>
  load.failures.filter((f) => f.at >= from && f.at <= to)

function describeFailures(failures: { status: number; code: string }[]): string {
  const byKind = new Map<string, number>()
  for (const f of failures) {
    const kind = `${f.status === 0 ? 'no answer' : f.status} ${f.code}`.trim()
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1)
  }
  return [...byKind]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${n}× ${k}`)
    .join(', ')
}

// ---------------------------------------------------------------- phases

async function createDatabase(admin: Pool, probes: Pool, probeKeys: string[][]): Promise<void> {
  const spec = {
    partitions: PARTITIONS,
    replicas: REPLICAS,
    tables: { [TABLE]: { key: ['id'], schema: DOC_SCHEMA, indexes: [] } },
  }
  const deadline = Date.now() + 60_000
  for (;;) {
    const res = await request(admin, 'PUT', `/_admin/databases/${DB}`, spec)
    if (res.status >= 200 && res.status <= 299) break
    if (Date.now() > deadline || (res.status !== 503 && res.status !== 0))
      throw new Error(`PUT /_admin/databases/${DB}: HTTP ${res.status} ${res.text.slice(0, 500)}`)
    await sleep(200)
  }
  // Every partition takes writes before the clock starts.
  await Promise.all(
    probeKeys.map(async (keys, p) => {
      for (;;) {
        const res = await request(probes, 'PUT', docPath(keys[0]), makeDoc(keys[0], 0))
        if (res.status === 200) return
        if (Date.now() > deadline)
          throw new Error(`partition ${p} takes no writes: HTTP ${res.status} ${res.text.slice(0, 300)}`)
        await sleep(100)
      }
    }),
  )
}

interface LagResult {
  /** master scn − slave scn, one per (sample, slave) in the master's generation. */
  lags: number[]
  samples: number
  /** Slaves left out of a sample: offline, nothing applied yet, or in another generation. */
  skipped: number
  /** Slave ahead of its master in a sample (statuses are read from the nodes in parallel, not atomically). */
  ahead: number
}

async function sampleLag(admin: Pool, durationMs: number): Promise<LagResult> {
  const result: LagResult = { lags: [], samples: 0, skipped: 0, ahead: 0 }
  const end = Date.now() + durationMs
  while (Date.now() < end && !interrupted.signal.aborted) {
    const t0 = Date.now()
    const partitions = await partitionsView(admin)
    result.samples++
    for (const p of partitions) {
      const master = p.replicas.find((r) => r.node === p.master && r.role === 'master')?.applied
      for (const r of p.replicas) {
        if (r.node === p.master) continue
        if (
          master === undefined ||
          master === null ||
          r.applied === null ||
          r.role === 'offline' ||
          r.applied.generation !== master.generation
        ) {
          result.skipped++
          continue
        }
        const lag = master.scn - r.applied.scn
        if (lag < 0) result.ahead++
        result.lags.push(Math.max(0, lag))
      }
    }
    await sleep(Math.max(0, LAG_SAMPLE_MS - (Date.now() - t0)))
  }
  return result
}

/** Until every replica of every partition has applied at least what its master had at the start. */
async function waitCaughtUp(admin: Pool): Promise<boolean> {
  const deadline = Date.now() + CATCH_UP_TIMEOUT_MS
  const targets: ({ generation: number; scn: number } | null)[] = Array.from({ length: PARTITIONS }, () => null)
  let last = ''
  while (Date.now() < deadline && !interrupted.signal.aborted) {
    const partitions = await partitionsView(admin)
    const behind: string[] = []
    for (const p of partitions) {
      const master = p.replicas.find((r) => r.node === p.master && r.role === 'master')?.applied ?? null
      targets[p.partition] ??= master
      const target = targets[p.partition]
      const late = p.replicas.filter(
        (r) => target === null || r.role === 'offline' || r.applied === null || compare(r.applied, target) < 0,
      )
      if (late.length > 0)
        behind.push(
          `p${p.partition}: ${late.map((r) => `${r.node} ${r.role} ${r.applied === null ? '-' : `${r.applied.generation}.${r.applied.scn}`}`).join(', ')} < ${target === null ? '?' : `${target.generation}.${target.scn}`}`,
        )
    }
    if (behind.length === 0) return true
    last = behind.join('; ')
    await sleep(100)
  }
  if (!interrupted.signal.aborted)
    problems.push(`replicas not caught up within ${CATCH_UP_TIMEOUT_MS / 1000} s: ${last}`)
  return false
}

/**
 * Until the placement has not changed for `STABLE_MS` and every partition's master is taking
 * writes (the controller may move masterships back to their preferred replicas once a restarted
 * node has caught up). Returns the placement then, or undefined after the timeout.
 */
async function waitSettled(admin: Pool): Promise<PartitionView[] | undefined> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS
  let signature = ''
  let since = Date.now()
  while (Date.now() < deadline && !interrupted.signal.aborted) {
    const partitions = await partitionsView(admin)
    const now = partitions
      .map(
        (p) =>
          `${p.partition}:${p.generation}:${p.master}:${p.replicas.map((r) => r.node).join('+')}:${p.replicas.find((r) => r.node === p.master)?.role}`,
      )
      .join(' ')
    if (now !== signature) {
      signature = now
      since = Date.now()
    } else if (
      Date.now() - since >= STABLE_MS &&
      partitions.every((p) => p.replicas.find((r) => r.node === p.master)?.role === 'master')
    ) {
      return partitions
    }
    await sleep(200)
  }
  if (!interrupted.signal.aborted)
    problems.push(`placement not settled within ${SETTLE_TIMEOUT_MS / 1000} s: ${signature}`)
  return undefined
}

interface PartitionFailover {
  partition: number
  generation: number
  /** ms from the kill: the controller's decision, the new master's promotion, it taking writes, the first write answered 200. */
  decided: number
  promoting: number
  takingWrites: number
  firstWrite: number
  newMaster: string
}

interface KillResult {
  victim: string
  partitions: PartitionFailover[]
  /** Slowest partition's first write after the kill (ms). */
  failoverMs: number
  killedAt: number
  /** Restart of the node → it printed its ready line, → every replica caught up (ms). */
  restartMs: number
  caughtUpMs: number
  /** Mastership changes after the failover itself, until the placement settled (moves back to preferred masters). */
  laterMoves: number
  /** The placement settled: the end of the kill's window. */
  endAt: number
  /** Load writes failed from the kill until writes were accepted again on every partition. */
  failures: { at: number; status: number; code: string }[]
  /** Load writes failed after that, until the placement settled (restart, catch-up, moves back). */
  laterFailures: { at: number; status: number; code: string }[]
}

/** The first write answered 200 on `partition`, sent after `killedAt`: ms from the kill, NaN if none in time. */
async function probe(pool: Pool, keys: string[], killedAt: number): Promise<number> {
  let first = NaN
  await Promise.all(
    Array.from({ length: PROBES_PER_PARTITION }, async (_, j) => {
      await sleep(j * PROBE_STAGGER_MS)
      for (
        let i = j;
        Number.isNaN(first) && Date.now() - killedAt < PROBE_TIMEOUT_MS && !interrupted.signal.aborted;
        i += PROBES_PER_PARTITION
      ) {
        const key = keys[i % keys.length]
        const sentAt = Date.now()
        const res = await request(pool, 'PUT', docPath(key), makeDoc(key, i))
        if (res.status === 200 && sentAt >= killedAt) {
          if (Number.isNaN(first)) first = Date.now() - killedAt
        } else if (res.status !== 503) {
          await sleep(10)
        }
      }
    }),
  )
  return first
}

function eventTime(
  events: LogEvent[],
  msg: string,
  match: Record<string, unknown>,
  after: number,
): { time: number; event: LogEvent } | undefined {
  const e = events.find(
    (x) => x.msg === msg && x.time >= after - 5 && Object.entries(match).every(([k, v]) => x.fields[k] === v),
  )
  return e === undefined ? undefined : { time: e.time, event: e }
}

async function killOnce(
  cluster: Cluster,
  admin: Pool,
  probes: Pool,
  load: Load,
  probeKeys: string[][],
  round: number,
): Promise<KillResult | undefined> {
  const before = await partitionsView(admin)
  const order = Array.from({ length: NODES }, (_, i) => `n${((round + i) % NODES) + 1}`)
  const victim = order.find((id) => before.some((p) => p.master === id))
  if (victim === undefined) {
    problems.push(`kill ${round + 1}: no node masters a partition`)
    return undefined
  }
  const mastered = before.filter((p) => p.master === victim)
  const service = cluster.nodes.get(victim)!
  const killedAt = Date.now()
  const dead = service.kill()
  const firsts = await Promise.all(mastered.map((p) => probe(probes, probeKeys[p.partition], killedAt)))
  await dead
  for (const [i, f] of firsts.entries())
    if (Number.isNaN(f) && !interrupted.signal.aborted)
      problems.push(
        `kill ${round + 1} (${victim}): partition ${mastered[i].partition} took no write within ${PROBE_TIMEOUT_MS / 1000} s`,
      )
  const restartAt = Date.now()
  await cluster.startNode(victim)
  const restartMs = Date.now() - restartAt
  await waitCaughtUp(admin)
  const caughtUpMs = Date.now() - restartAt
  const settled = await waitSettled(admin)
  const endAt = Date.now()
  const failedOver = new Set(mastered.map((p) => p.partition))
  const generationBefore = new Map(before.map((p) => [p.partition, p.generation]))
  const laterMoves =
    settled === undefined
      ? NaN
      : settled.reduce(
          (n, p) =>
            n +
            p.generation -
            (generationBefore.get(p.partition) ?? p.generation) -
            (failedOver.has(p.partition) ? 1 : 0),
          0,
        )

  // The steps in between, from the logs (same clock: every process runs on this machine).
  const nodeEvents = cluster
    .services()
    .filter((s) => s.name.startsWith('node '))
    .flatMap((s) => s.events)
  const partitions = mastered.map((p, i): PartitionFailover => {
    const generation = p.generation + 1
    const match = { db: DB, partition: p.partition, generation }
    const decided = eventTime(cluster.controller.events, 'failover: new master', { ...match, from: victim }, killedAt)
    const promoting = eventTime(nodeEvents, 'promoting to master', match, killedAt)
    const taking = eventTime(nodeEvents, 'master: taking writes', match, killedAt)
    const since = (e: { time: number } | undefined) => (e === undefined ? NaN : e.time - killedAt)
    return {
      partition: p.partition,
      generation,
      decided: since(decided),
      promoting: since(promoting),
      takingWrites: since(taking),
      firstWrite: firsts[i],
      newMaster: typeof decided?.event.fields.to === 'string' ? decided.event.fields.to : '?',
    }
  })
  return {
    victim,
    partitions,
    failoverMs: Math.max(...firsts),
    killedAt,
    restartMs,
    caughtUpMs,
    laterMoves,
    endAt,
    failures: failuresBetween(load, killedAt, killedAt + Math.max(...firsts)),
    laterFailures: failuresBetween(load, killedAt + Math.max(...firsts) + 1, endAt),
  }
}

// ---------------------------------------------------------------- table

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-'
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Number.isInteger(v) || Math.abs(v) >= 100) return v.toFixed(0)
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const maxOf = (values: number[]) =>
  values.length === 0 || values.some((v) => Number.isNaN(v)) ? NaN : Math.max(...values)

interface Row {
  metric: string
  value: string
  notes: string
}

function printTable(rows: Row[]): void {
  const header = { metric: 'metric', value: 'value', notes: 'notes' }
  const w = [
    Math.max(...[header, ...rows].map((r) => r.metric.length)),
    Math.max(...[header, ...rows].map((r) => r.value.length)),
  ]
  const render = (r: Row) => `${r.metric.padEnd(w[0])}  ${r.value.padStart(w[1])}  ${r.notes}`.trimEnd()
  console.log('')
  console.log(render(header))
  console.log(`${'-'.repeat(w[0])}  ${'-'.repeat(w[1])}  ${'-'.repeat(5)}`)
  for (const r of rows) console.log(render(r))
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = performance.now()
  const cleanups: (() => Promise<void>)[] = []
  const stopAll = () =>
    Promise.all(cleanups.map((stop) => stop().catch((e: unknown) => console.error(`cleanup: ${String(e)}`))))
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the cluster and removing its data...`)
      interrupted.abort()
      setTimeout(() => process.exit(code), 30_000).unref()
      void stopAll().then(() => process.exit(code))
    })
  }

  try {
    const cluster = await startCluster(
      { parentDir: args.dir, nodes: NODES, nodeSessionMs, routerRetryMs: retryMs },
      (stop) => cleanups.push(stop),
    )
    const pools = {
      load: new Pool(cluster.url, { connections: writers, pipelining: 1, keepAliveTimeout: 60_000 }),
      probes: new Pool(cluster.url, {
        connections: PARTITIONS * PROBES_PER_PARTITION,
        pipelining: 1,
        keepAliveTimeout: 60_000,
      }),
      admin: new Pool(cluster.url, { connections: 2, pipelining: 1, keepAliveTimeout: 60_000 }),
    }
    cleanups.unshift(async () => {
      await Promise.all(Object.values(pools).map((p) => p.destroy()))
    })
    const probeKeys = keysByPartition('probe', 16)
    await createDatabase(pools.admin, pools.probes, probeKeys)
    console.log(
      `cluster: broker, router (--retry-ms ${retryMs}), controller (--node-session-ms ${nodeSessionMs ?? 'default, 1500'}), ${NODES} storage nodes, each its own process; data under ${cluster.dir}`,
    )
    console.log(
      `database: ${PARTITIONS} partitions × ${REPLICAS} replicas; load: ${writers} writers upserting ${docBytes()}-byte documents under ${KEYS.toLocaleString('en-US')} random keys; ${availableParallelism()} CPUs`,
    )

    const load = startLoad(pools.load, writers)
    await sleep(warmupMs)

    process.stdout.write(`replication lag, no faults (${lagMs / 1000} s) `)
    const lagStart = Date.now()
    const lag = await sampleLag(pools.admin, lagMs)
    const lagEnd = Date.now()
    console.log(`: ${lag.samples} samples`)

    const results: KillResult[] = []
    const faultStart = Date.now()
    for (let k = 0; k < kills && !interrupted.signal.aborted; k++) {
      const r = await killOnce(cluster, pools.admin, pools.probes, load, probeKeys, k)
      if (r === undefined) break
      results.push(r)
      const steps = r.partitions.map((p) => `p${p.partition}→${p.newMaster} ${fmt(p.firstWrite)}`).join(', ')
      console.log(
        `kill ${k + 1}: ${r.victim} SIGKILLed, writes accepted again after ${fmt(r.failoverMs)} ms (${steps}); restarted and caught up in ${fmt(r.caughtUpMs)} ms`,
      )
      if (k + 1 < kills) await sleep(settleMs)
    }
    const faultEnd = Date.now()
    await load.stop()
    if (interrupted.signal.aborted) return

    // ------------------------------------------------------------ figures
    const rows: Row[] = []
    const failovers = results.map((r) => r.failoverMs)
    const worst = maxOf(failovers)
    const allPartitions = results.flatMap((r) => r.partitions)
    rows.push({
      metric: 'failover median (ms)',
      value: fmt(median(failovers)),
      notes: `kill → writes accepted again on every partition the dead node mastered; ${results.length} kill${results.length === 1 ? '' : 's'}`,
    })
    rows.push({ metric: 'failover worst (ms)', value: fmt(worst), notes: '' })
    for (const [i, r] of results.entries()) {
      const step = (f: (p: PartitionFailover) => number) => fmt(maxOf(r.partitions.map(f)))
      rows.push({
        metric: `  kill ${i + 1}: ${r.victim} (ms)`,
        value: fmt(r.failoverMs),
        notes: `${r.partitions.length} partition${r.partitions.length === 1 ? '' : 's'} (${r.partitions.map((p) => `p${p.partition}→${p.newMaster}`).join(' ')}); decided +${step((p) => p.decided)}, promoting +${step((p) => p.promoting)}, taking writes +${step((p) => p.takingWrites)}, first write +${step((p) => p.firstWrite)}`,
      })
    }
    rows.push({
      metric: 'failover steps, median (ms)',
      value: fmt(median(allPartitions.map((p) => p.firstWrite))),
      notes: `per partition: controller decided +${fmt(median(allPartitions.map((p) => p.decided)))}, new master promoting +${fmt(median(allPartitions.map((p) => p.promoting)))}, taking writes +${fmt(median(allPartitions.map((p) => p.takingWrites)))}, first write +${fmt(median(allPartitions.map((p) => p.firstWrite)))}`,
    })
    const within = failovers.filter((f) => f <= AIM_MS).length
    rows.push({
      metric: `2 s aim met`,
      value: results.length > 0 && within === results.length ? 'yes' : 'no',
      notes: `${within} of ${results.length} kills had writes accepted again within ${fmt(AIM_MS)} ms (worst ${fmt(worst)} ms)`,
    })

    const lagSeconds = (lagEnd - lagStart) / 1000
    const steady = load.okLatency.filter((_, i) => load.okAt[i] >= lagStart && load.okAt[i] <= lagEnd)
    const steadyRate = okBetween(load, lagStart, lagEnd) / lagSeconds
    const lat = summarize(steady)
    rows.push({
      metric: 'writes/s, no faults',
      value: fmt(steadyRate),
      notes: `${writers} writers, during the lag measurement (${fmt(lagSeconds)} s)`,
    })
    rows.push({ metric: 'write latency p50 (ms)', value: fmt(lat.p50), notes: 'no faults; client call → answer' })
    rows.push({ metric: 'write latency p99 (ms)', value: fmt(lat.p99), notes: '' })
    const faultSeconds = (faultEnd - faultStart) / 1000
    rows.push({
      metric: 'writes/s, kill phase',
      value: fmt(okBetween(load, faultStart, faultEnd) / faultSeconds),
      notes: `over the ${fmt(faultSeconds)} s of kills, restarts and catch-ups`,
    })
    const l = summarize(lag.lags)
    const perPartitionRate = steadyRate / PARTITIONS
    const asMs = (txns: number) =>
      `≈ ${fmt((txns / perPartitionRate) * 1000)} ms at ${fmt(perPartitionRate)} writes/s per partition`
    rows.push({
      metric: 'replication lag p50 (txns)',
      value: fmt(l.p50),
      notes: `master's applied scn − slave's, ${lag.lags.length} slave samples (${lag.samples} views every ~${LAG_SAMPLE_MS} ms); ${asMs(l.p50)}`,
    })
    rows.push({ metric: 'replication lag p99 (txns)', value: fmt(l.p99), notes: asMs(l.p99) })
    rows.push({
      metric: 'replication lag max (txns)',
      value: fmt(l.max),
      notes: `${asMs(l.max)}; ${lag.ahead} samples had a slave ahead (counted 0), ${lag.skipped} left out`,
    })
    const inFailover = results.flatMap((r) => r.failures)
    rows.push({
      metric: 'failed writes, failovers',
      value: fmt(inFailover.length),
      notes: `load writers, all kills, kill → writes accepted again${inFailover.length === 0 ? '' : `: ${describeFailures(inFailover)}`}`,
    })
    const after = results.flatMap((r) => r.laterFailures)
    rows.push({
      metric: 'failed writes, after failovers',
      value: fmt(after.length),
      notes: `load writers, all kills, writes accepted again → node restarted, caught up, placement settled${after.length === 0 ? '' : `: ${describeFailures(after)}`}`,
    })
    const outside = load.failures.filter((f) => !results.some((r) => f.at >= r.killedAt && f.at <= r.endAt))
    rows.push({
      metric: 'failed writes, outside',
      value: fmt(outside.length),
      notes: outside.length === 0 ? 'load writers, no fault in progress' : describeFailures(outside),
    })
    rows.push({
      metric: 'mastership moves after failover',
      value: fmt(results.reduce((n, r) => n + r.laterMoves, 0)),
      notes:
        'over all kills: further generation changes until the placement settled (the controller moving masters back to preferred replicas)',
    })
    rows.push({
      metric: 'restart → ready (ms), median',
      value: fmt(median(results.map((r) => r.restartMs))),
      notes: 'the killed node restarted on its data directory, to its ready line',
    })
    rows.push({
      metric: 'restart → caught up (ms), median',
      value: fmt(median(results.map((r) => r.caughtUpMs))),
      notes: 'every replica applied what its master had when the node was back',
    })

    printTable(rows)
    console.log('')
    console.log(
      'failover: from the SIGKILL to the first write answered 200 on each partition the node mastered (probe writers per',
    )
    console.log(
      `partition, ${PROBES_PER_PARTITION} staggered by ${PROBE_STAGGER_MS} ms, retrying at once; the router gives up on a partition after --retry-ms and`,
    )
    console.log(
      're-reads the placement between attempts at 25-200 ms intervals, so the resolution is about 100 ms); a kill counts',
    )
    console.log(
      "its slowest partition. Steps (from the controller's and nodes' logs, ms after the kill, slowest partition):",
    )
    console.log(
      '"decided": the controller found the node\'s heartbeat (every 250 ms) older than the node session and wrote the',
    )
    console.log(
      'new placement; "promoting": the new master read it; "taking writes": it read its own GENERATION_START back;',
    )
    console.log('"first write": the router read the placement too and a probe write went through.')
    console.log(
      "lag: scn difference between each partition's master and its slaves (one scn per transaction), in the same",
    )
    console.log(
      'generation, sampled from GET /_admin/cluster; the ms equivalent divides by the per-partition write rate.',
    )
    const warnings = cluster.services().reduce((n, s) => n + s.warningCount(), 0)
    if (warnings > 0) {
      const first = cluster.services().flatMap((s) => s.warnings.map((w) => `${s.name}: ${w}`))
      console.log(
        `processes logged ${warnings} warnings/errors; first: ${first
          .slice(0, 3)
          .map((w) => w.slice(0, 300))
          .join('\n  ')}`,
      )
    }
    console.log(`total ${fmt((performance.now() - startedAt) / 1000)} s`)
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error))
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
