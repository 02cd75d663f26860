// `npm run bench:broker`: the broker against a minimal Node baseline, same load, same durability.
//
//   node bench/broker.ts [--quick] [--slice <s>] [--pairs <n>] [--connections <n>] [--inflight <n>]
//                        [--batch <records per request>] [--fsync ack|none] [--only <scenarios>]
//                        [--cpu-prof <dir>]
//
// Starts the broker (src/cli/main.ts broker) and bench/baseline-server.ts as child processes on
// temp data dirs and drives both with the same raw-protocol load (bench/load.ts), never both at
// once, so they do not compete for the CPU. Prints one table: scenario, broker figure, baseline
// figure, broker/baseline.
//
// Scenarios (--only takes a comma-separated subset of produce-100, produce-1024, latency, security):
//   produce 100 B and 1 KB records: `--batch` records per request (one batch), `--connections`
//     connections each keeping `--inflight` requests in flight, acks=-1;
//   consume: Fetch v11 of everything the produce scenario wrote, 8 MiB per fetch;
//   latency: 1 record of 100 B per request, 1 connection, 1 request in flight;
//   security: the produce 1 KB load against a second broker, over its PLAINTEXT, SSL and SASL_SSL
//     listeners in turn, with an authorizer and an ACL for the SASL user: the cost of TLS and of
//     ACL checks beside plaintext, in a table of its own (no baseline server).
// Shared and virtual machines drift (CPU steal, disk), so each scenario runs as `--pairs` pairs
// of short slices alternating broker and baseline (AB BA AB ...), each slice a fresh set of
// connections with its own warm-up; figures are totals over all slices, and the "pairs" column
// shows the spread of the per-pair ratios.
//
// `--quick` is a ~10 s smoke run. Exits 1 if the broker answered a produce with an error or a
// consumer did not read back exactly the records the broker acknowledged; there are no timing
// assertions. `--cpu-prof <dir>` runs both servers with node --cpu-prof, writing profiles under
// <dir>/broker and <dir>/baseline (summarize them with bench/cpuprofile-top.ts).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ApiKey } from '../src/protocol/apis.ts'
import { type CreateTopicsResponse } from '../src/protocol/messages/create-topics-response.ts'
import { makeCertificates } from '../test/helpers/tls-certs.ts'
import { call, runConsume, runProduce, summarize } from './load.ts'
import { openSaslSsl, openTls } from './secure-connections.ts'
import { BASELINE_STATS_API_KEY, decodeResponse, makeBatch, produceTemplate, requestFrame } from './wire.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const HOST = '127.0.0.1'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    slice: { type: 'string' },
    pairs: { type: 'string' },
    connections: { type: 'string', default: '4' },
    inflight: { type: 'string', default: '8' },
    batch: { type: 'string', default: '100' },
    fsync: { type: 'string', default: 'ack' },
    'fetch-bytes': { type: 'string', default: String(8 * 1024 * 1024) },
    'cpu-prof': { type: 'string' },
    only: { type: 'string' },
  },
})

const quick = args.quick
/** Measured seconds per slice, and warm-up before each. */
const sliceMs = args.slice !== undefined ? Number(args.slice) * 1000 : quick ? 500 : 1250
const warmupMs = quick ? 150 : 250
const pairs = args.pairs !== undefined ? Number(args.pairs) : quick ? 2 : 4
const consumePasses = quick ? 1 : 2
const connections = Number(args.connections)
const inflight = Number(args.inflight)
const batch = Number(args.batch)
const fetchBytes = Number(args['fetch-bytes'])
const fsyncMode = args.fsync === 'none' ? 'none' : 'ack'
const only = args.only?.split(',')
const want = (name: string) => only === undefined || only.includes(name)

// ---------------------------------------------------------------- child processes

interface Server {
  readonly name: string
  readonly port: number
  readonly proc: ChildProcess
  readonly dataDir: string
  readonly metricsPort: number | undefined
  /** Port of each listener by name, from the ready line (`listeners NAME://host:port,...`). */
  readonly listeners: ReadonlyMap<string, number>
  stderr(): string
  /** CPU seconds (user + system) the process has used so far, or NaN off Linux. */
  cpuSeconds(): number
  stop(): Promise<void>
}

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

function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (USER_HZ=100)
  } catch {
    return NaN
  }
}

async function startServer(
  name: string,
  script: string,
  extraArgs: string[],
  nodeArgs: string[],
  metricsPort?: number,
): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), `cortado-bench-${name}-`))
  // With `listeners` the ports are in it.
  const ports = extraArgs.some((a) => a.startsWith('listeners=')) ? [] : ['--port', '0']
  const argv = [...nodeArgs, join(ROOT, script), ...extraArgs, ...ports, '--data-dir', dataDir]
  if (metricsPort !== undefined) argv.push('--metrics-port', String(metricsPort))
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
  try {
    const ready = await new Promise<string>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${err}`)), 30_000)
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /ready on [^\s]+:(\d+).*\n/.exec(out)
        if (m !== null) {
          clearTimeout(timer)
          resolve(m[0])
        }
      })
      void exited.then(() => {
        clearTimeout(timer)
        reject(new Error(`${name} exited (code ${proc.exitCode}) before it was ready:\n${err}`))
      })
    })
    const port = Number(/ready on [^\s]+:(\d+)/.exec(ready)?.[1])
    const listeners = new Map([...ready.matchAll(/([A-Z0-9_]+):\/\/[^,)\s]+:(\d+)/g)].map((m) => [m[1], Number(m[2])]))
    return {
      name,
      port,
      listeners,
      proc,
      dataDir,
      metricsPort,
      stderr: () => err,
      cpuSeconds: () => cpuSeconds(proc.pid),
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM')
          const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
          await exited
          clearTimeout(timer)
        }
        rmSync(dataDir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    proc.kill('SIGKILL')
    await exited
    rmSync(dataDir, { recursive: true, force: true })
    throw e
  }
}

async function createTopic(server: Server, topic: string): Promise<void> {
  const frame = requestFrame(ApiKey.CreateTopics, 4, 1, {
    topics: [{ name: topic, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  })
  const { body } = decodeResponse<CreateTopicsResponse>(ApiKey.CreateTopics, 4, await call(HOST, server.port, frame))
  const t = body.topics[0]
  if (t === undefined || t.errorCode !== 0)
    throw new Error(`CreateTopics ${topic} failed: ${t?.errorCode} ${t?.errorMessage}`)
}

interface GroupCommitStats {
  rounds: number
  roundSeconds: number
  produceRequests: number
}

/**
 * Group-commit counters: the broker's from its Prometheus endpoint, the baseline's from its stats
 * request. NaN when unavailable.
 */
async function groupCommitStats(server: Server): Promise<GroupCommitStats> {
  try {
    if (server.metricsPort === undefined) {
      const frame = Buffer.alloc(14)
      frame.writeInt32BE(10, 0)
      frame.writeInt16BE(BASELINE_STATS_API_KEY, 4)
      frame.writeInt32BE(1, 8)
      frame.writeInt16BE(-1, 12)
      const s = JSON.parse((await call(HOST, server.port, frame)).subarray(4).toString()) as {
        rounds: number
        roundMs: number
        produceRequests: number
      }
      return { rounds: s.rounds, roundSeconds: s.roundMs / 1000, produceRequests: s.produceRequests }
    }
    const text = await (await fetch(`http://${HOST}:${server.metricsPort}/metrics`)).text()
    const m = new Map<string, number>()
    for (const line of text.split('\n')) {
      const match = /^(cortado_\S+)\s+(\S+)$/.exec(line)
      if (match !== null) m.set(match[1], Number(match[2]))
    }
    return {
      rounds: m.get('cortado_broker_fsync_round_seconds_count') ?? 0,
      roundSeconds: m.get('cortado_broker_fsync_round_seconds_sum') ?? 0,
      produceRequests: m.get('cortado_broker_requests_total{api="Produce"}') ?? 0,
    }
  } catch {
    return { rounds: NaN, roundSeconds: NaN, produceRequests: NaN }
  }
}

// ---------------------------------------------------------------- table

interface Row {
  scenario: string
  metric: string
  broker: number
  baseline: number
  /** 'up': higher is better; 'down': lower is better; 'info': no judgement. */
  better: 'up' | 'down' | 'info'
  /** Per-pair broker/baseline ratios, for the spread column. */
  pairs?: number[]
}

const rows: Row[] = []
const notes: string[] = []
const problems: string[] = []

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-'
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
  const header = ['scenario', 'metric', 'broker', 'baseline', 'broker/baseline', 'pairs']
  const lines = rows.map((r) => {
    const ratio = r.broker / r.baseline
    const flagged = r.better === 'up' ? ratio < 0.7 : r.better === 'down' ? ratio > 1 / 0.7 : false
    const spread =
      r.pairs === undefined || r.pairs.length < 2
        ? ''
        : `${Math.min(...r.pairs).toFixed(2)}-${Math.max(...r.pairs).toFixed(2)}, med ${median(r.pairs).toFixed(2)}`
    return [
      r.scenario,
      r.metric,
      fmt(r.broker),
      fmt(r.baseline),
      Number.isFinite(ratio) ? `${ratio.toFixed(2)}x${flagged ? ' <' : '  '}` : '-',
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
  console.log('Throughput rows: higher is better; latency rows (ms): lower is better. "<" marks the broker below 0.7x')
  console.log(
    'the baseline (latency: above 1/0.7x). "pairs": min-max and median of the per-pair broker/baseline ratios.',
  )
  console.log('MB/s counts record values (10^6 bytes). Server CPU % is the server process (user+sys, all threads;')
  console.log('100% = one core); load gen CPU % is this process. The baseline appends each produce frame to one file')
  console.log('with writeSync and answers after a group-committed fdatasync, and serves fetches with readSync.')
  for (const n of notes) console.log(n)
}

// ---------------------------------------------------------------- scenarios

interface Totals {
  requests: number
  seconds: number
  latencies: number[]
  serverCpu: number
  clientCpu: number
  wall: number
  /** Records acknowledged, warm-ups included. */
  acked: number
  fsyncRounds: number
  fsyncSeconds: number
  produceRequests: number
}

const emptyTotals = (): Totals => ({
  requests: 0,
  seconds: 0,
  latencies: [],
  serverCpu: 0,
  clientCpu: 0,
  wall: 0,
  acked: 0,
  fsyncRounds: 0,
  fsyncSeconds: 0,
  produceRequests: 0,
})

async function produceSlice(
  server: Server,
  t: Totals,
  topic: string,
  records: number,
  recordSize: number,
  conns: number,
  perConn: number,
): Promise<number> {
  const before = await groupCommitStats(server)
  const cpu0 = server.cpuSeconds()
  const client0 = process.cpuUsage()
  const t0 = performance.now()
  const r = await runProduce({
    host: HOST,
    port: server.port,
    topic,
    records,
    recordSize,
    connections: conns,
    inflight: perConn,
    warmupMs,
    durationMs: sliceMs,
  })
  const wall = (performance.now() - t0) / 1000
  const client = process.cpuUsage(client0)
  t.serverCpu += server.cpuSeconds() - cpu0
  t.clientCpu += (client.user + client.system) / 1e6
  t.wall += wall
  const after = await groupCommitStats(server)
  t.fsyncRounds += after.rounds - before.rounds
  t.fsyncSeconds += after.roundSeconds - before.roundSeconds
  t.produceRequests += after.produceRequests - before.produceRequests
  t.requests += r.requests
  t.seconds += sliceMs / 1000
  for (const l of r.latencies) t.latencies.push(l)
  t.acked += r.totalRecords
  if (r.errors > 0) problems.push(`${server.name} ${topic}: ${r.errors} produce errors (${r.firstError})`)
  return r.requests
}

/** Runs `pairs` AB/BA pairs of produce slices; returns totals and per-pair throughput ratios. */
async function produceScenario(
  broker: Server,
  baseline: Server,
  topic: string,
  records: number,
  recordSize: number,
  conns: number,
  perConn: number,
) {
  const b = emptyTotals()
  const base = emptyTotals()
  const ratios: number[] = []
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      const x = await produceSlice(broker, b, topic, records, recordSize, conns, perConn)
      ratios.push(x / (await produceSlice(baseline, base, topic, records, recordSize, conns, perConn)))
    } else {
      const y = await produceSlice(baseline, base, topic, records, recordSize, conns, perConn)
      ratios.push((await produceSlice(broker, b, topic, records, recordSize, conns, perConn)) / y)
    }
    process.stdout.write('.')
  }
  return { b, base, ratios }
}

function produceRows(
  scenario: string,
  records: number,
  recordSize: number,
  b: Totals,
  base: Totals,
  ratios: number[],
  withRecords: boolean,
): void {
  const rate = (t: Totals) => t.requests / t.seconds
  if (withRecords) {
    rows.push({
      scenario,
      metric: 'records/s',
      broker: rate(b) * records,
      baseline: rate(base) * records,
      better: 'up',
      pairs: ratios,
    })
    rows.push({
      scenario,
      metric: 'MB/s',
      broker: (rate(b) * records * recordSize) / 1e6,
      baseline: (rate(base) * records * recordSize) / 1e6,
      better: 'up',
    })
  } else {
    rows.push({ scenario, metric: 'requests/s', broker: rate(b), baseline: rate(base), better: 'up', pairs: ratios })
  }
  const lb = summarize(b.latencies)
  const lbase = summarize(base.latencies)
  rows.push({ scenario, metric: 'p50 ms', broker: lb.p50, baseline: lbase.p50, better: 'down' })
  rows.push({ scenario, metric: 'p99 ms', broker: lb.p99, baseline: lbase.p99, better: 'down' })
  rows.push({ scenario, metric: 'max ms', broker: lb.max, baseline: lbase.max, better: 'down' })
  rows.push({
    scenario,
    metric: 'server CPU %',
    broker: (b.serverCpu / b.wall) * 100,
    baseline: (base.serverCpu / base.wall) * 100,
    better: 'info',
  })
  rows.push({
    scenario,
    metric: 'load gen CPU %',
    broker: (b.clientCpu / b.wall) * 100,
    baseline: (base.clientCpu / base.wall) * 100,
    better: 'info',
  })
  const rounds = (t: Totals) =>
    `${fmt(t.fsyncRounds / t.wall)}/s, ${fmt((t.fsyncSeconds / t.fsyncRounds) * 1000)} ms mean, ${fmt(t.produceRequests / t.fsyncRounds)} requests each`
  notes.push(`${scenario}: fdatasync rounds: broker ${rounds(b)}; baseline ${rounds(base)}`)
}

interface ConsumeTotals {
  records: number
  seconds: number
  fetches: number
  serverCpu: number
}

async function consumePass(
  server: Server,
  t: ConsumeTotals,
  topic: string,
  mode: 'kafka' | 'baseline',
  frameBytes: number,
  recordSize: number,
  expected: number,
): Promise<number> {
  const cpu0 = server.cpuSeconds()
  const r = await runConsume({
    host: HOST,
    port: server.port,
    topic,
    maxBytes: fetchBytes,
    mode,
    frameBytes,
    recordsPerFrame: batch,
    recordSize,
  })
  t.serverCpu += server.cpuSeconds() - cpu0
  t.records += r.records
  t.seconds += r.seconds
  t.fetches += r.fetches
  if (r.error !== undefined) problems.push(`${server.name} consume ${topic}: ${r.error}`)
  else if (mode === 'kafka' && r.records !== expected) {
    problems.push(`${server.name} ${topic}: acknowledged ${expected} records but a consumer read back ${r.records}`)
  }
  return r.recordsPerSec
}

async function consumeScenario(
  scenario: string,
  broker: Server,
  baseline: Server,
  topic: string,
  recordSize: number,
  frameBytes: number,
  expected: number,
): Promise<void> {
  const b: ConsumeTotals = { records: 0, seconds: 0, fetches: 0, serverCpu: 0 }
  const base: ConsumeTotals = { records: 0, seconds: 0, fetches: 0, serverCpu: 0 }
  const ratios: number[] = []
  for (let i = 0; i < consumePasses; i++) {
    const pass = (s: Server, t: ConsumeTotals) =>
      consumePass(s, t, topic, s === broker ? 'kafka' : 'baseline', frameBytes, recordSize, expected)
    if (i % 2 === 0) {
      const x = await pass(broker, b)
      ratios.push(x / (await pass(baseline, base)))
    } else {
      const y = await pass(baseline, base)
      ratios.push((await pass(broker, b)) / y)
    }
    process.stdout.write('.')
  }
  rows.push({
    scenario,
    metric: 'records/s',
    broker: b.records / b.seconds,
    baseline: base.records / base.seconds,
    better: 'up',
    pairs: ratios,
  })
  rows.push({
    scenario,
    metric: 'MB/s',
    broker: (b.records * recordSize) / b.seconds / 1e6,
    baseline: (base.records * recordSize) / base.seconds / 1e6,
    better: 'up',
  })
  rows.push({
    scenario,
    metric: 'server CPU %',
    broker: (b.serverCpu / b.seconds) * 100,
    baseline: (base.serverCpu / base.seconds) * 100,
    better: 'info',
  })
  notes.push(
    `${scenario}: per pass broker ${fmt(b.records / consumePasses)} records in ${fmt(b.fetches / consumePasses)} fetches, ` +
      `baseline ${fmt(base.records / consumePasses)} in ${fmt(base.fetches / consumePasses)}`,
  )
}

/** One listener of the security scenario: how its connections are opened, and its totals. */
interface SecureLane {
  name: string
  connect: () => Promise<Socket>
  requests: number
  seconds: number
  latencies: number[]
  serverCpu: number
}

/**
 * The security scenario: one broker with an authorizer and three listeners, the produce-1 KB load
 * over each in turn (rotating order), so the cost of TLS and of SASL with ACL checks shows beside
 * plaintext in the same run. PLAINTEXT and SSL clients are ANONYMOUS, a super user (the
 * authorizer answers them at once); the SASL_SSL client is `bench`, allowed by an ACL on the topic,
 * so each of its requests goes through the ACL decision (cached, as in production).
 */
async function securityScenario(servers: Server[]): Promise<void> {
  const certs = makeCertificates(mkdtempSync(join(tmpdir(), 'cortado-bench-certs-')))
  try {
    const secure = await startServer(
      'broker-secure',
      'src/cli/main.ts',
      [
        'broker',
        ...['--config', `cortado.fsync=${fsyncMode}`],
        ...['--config', 'listeners=PLAINTEXT://:0,SSL://:0,SASL_SSL://:0'],
        ...['--config', `ssl.keystore.location=${certs.brokerPemFile}`],
        ...['--config', 'authorizer.class.name=kafka.security.authorizer.AclAuthorizer'],
        ...['--config', 'super.users=User:ANONYMOUS'],
        ...['--config', 'sasl.enabled.mechanisms=PLAIN'],
        ...[
          '--config',
          'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_bench="bench-secret";',
        ],
      ],
      [],
    )
    servers.push(secure)
    const topic = 'bench-secure'
    await createTopic(secure, topic)
    const acl = {
      resourceType: 2,
      resourceName: topic,
      resourcePatternType: 3,
      principal: 'User:bench',
      host: '*',
      operation: 4,
      permissionType: 3,
    }
    const created = decodeResponse<{ results: { errorCode: number }[] }>(
      ApiKey.CreateAcls,
      3,
      await call(HOST, secure.port, requestFrame(ApiKey.CreateAcls, 3, 1, { creations: [acl] })),
    )
    if (created.body.results[0]?.errorCode !== 0) throw new Error(`CreateAcls failed: ${JSON.stringify(created.body)}`)
    const port = (name: string) => secure.listeners.get(name)!
    const lane = (name: string, connect: () => Promise<Socket>): SecureLane => ({
      name,
      connect,
      requests: 0,
      seconds: 0,
      latencies: [],
      serverCpu: 0,
    })
    const lanes = [
      lane('PLAINTEXT', () => openPlain(port('PLAINTEXT'))),
      lane('SSL (TLS)', () => openTls(HOST, port('SSL'), certs.caPem)),
      lane('SASL_SSL + ACLs', () => openSaslSsl(HOST, port('SASL_SSL'), certs.caPem, 'bench', 'bench-secret')),
    ]
    for (let i = 0; i < pairs; i++) {
      for (const l of i % 2 === 0 ? lanes : [...lanes].reverse()) {
        const cpu0 = secure.cpuSeconds()
        const r = await runProduce({
          host: HOST,
          port: 0,
          topic,
          records: batch,
          recordSize: 1024,
          connections,
          inflight,
          warmupMs,
          durationMs: sliceMs,
          connect: l.connect,
        })
        if (r.errors > 0) problems.push(`security ${l.name}: ${r.errors} produce errors (${r.firstError})`)
        l.serverCpu += secure.cpuSeconds() - cpu0
        l.requests += r.requests
        l.seconds += sliceMs / 1000
        for (const x of r.latencies) l.latencies.push(x)
      }
      process.stdout.write('.')
    }
    console.log('')
    printSecurityTable(lanes)
  } finally {
    rmSync(certs.dir, { recursive: true, force: true })
  }
}

function openPlain(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port, noDelay: true }, () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

function printSecurityTable(lanes: SecureLane[]): void {
  const plain = lanes[0].requests / lanes[0].seconds
  console.log(`\nsecurity: produce 1 KB x${batch}/req, ${connections}x${inflight}, one broker with an authorizer`)
  const header = ['listener', 'requests/s', 'MB/s', 'p50 ms', 'p99 ms', 'server CPU µs/request', 'vs PLAINTEXT']
  const rows = lanes.map((l) => {
    const rate = l.requests / l.seconds
    const lat = summarize(l.latencies)
    return [
      l.name,
      fmt(rate),
      fmt((rate * batch * 1024) / 1e6),
      fmt(lat.p50),
      fmt(lat.p99),
      fmt((l.serverCpu * 1e6) / Math.max(1, l.requests)),
      `${(rate / plain).toFixed(2)}x`,
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  for (const r of [header, ...rows])
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  const prof = args['cpu-prof']
  const profArgs = (name: string) => (prof !== undefined ? ['--cpu-prof', '--cpu-prof-dir', join(prof, name)] : [])
  const servers: Server[] = []
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.stop()))
  }
  process.once('SIGINT', () => {
    void stopAll().then(() => process.exit(130))
  })
  try {
    const metricsPort = await freePort()
    const started = await Promise.allSettled([
      startServer(
        'broker',
        'src/cli/main.ts',
        ['broker', '--config', `cortado.fsync=${fsyncMode}`],
        profArgs('broker'),
        metricsPort,
      ),
      startServer('baseline', 'bench/baseline-server.ts', ['--fsync', fsyncMode], profArgs('baseline')),
    ])
    for (const r of started) if (r.status === 'fulfilled') servers.push(r.value)
    for (const r of started) if (r.status === 'rejected') throw r.reason
    const [broker, baseline] = servers
    console.log(
      `broker on ${HOST}:${broker.port}, baseline on ${HOST}:${baseline.port}; fsync=${fsyncMode}; ` +
        `${pairs} AB/BA pairs of ${sliceMs / 1000} s slices (+${warmupMs / 1000} s warm-up each)`,
    )

    for (const size of [100, 1024]) {
      if (!want(`produce-${size}`)) continue
      const label = size === 1024 ? '1 KB' : `${size} B`
      const topic = `bench-${size}`
      await createTopic(broker, topic)
      const scenario = `produce ${label} x${batch}/req, ${connections}x${inflight}`
      process.stdout.write(`${scenario} `)
      const { b, base, ratios } = await produceScenario(broker, baseline, topic, batch, size, connections, inflight)
      console.log('')
      produceRows(scenario, batch, size, b, base, ratios, true)

      const cscenario = `consume ${label} (${fmt(fetchBytes / 1048576)} MiB fetches)`
      process.stdout.write(`${cscenario} `)
      const frameBytes = produceTemplate(topic, makeBatch(batch, size)).frameBytes
      await consumeScenario(cscenario, broker, baseline, topic, size, frameBytes, b.acked)
      console.log('')
    }

    if (want('latency')) {
      const topic = 'bench-latency'
      await createTopic(broker, topic)
      const scenario = 'latency 100 B x1/req, 1x1'
      process.stdout.write(`${scenario} `)
      const { b, base, ratios } = await produceScenario(broker, baseline, topic, 1, 100, 1, 1)
      console.log('')
      produceRows(scenario, 1, 100, b, base, ratios, false)
    }

    printTable()
    if (want('security')) {
      process.stdout.write('security ')
      await securityScenario(servers)
    }
    console.log(`total ${fmt((performance.now() - startedAt) / 1000)} s`)
    const warnings = broker
      .stderr()
      .split('\n')
      .filter((l) => /"level":"(warn|error)"/.test(l))
    if (warnings.length > 0)
      console.log(`broker logged ${warnings.length} warnings/errors, first: ${warnings[0].slice(0, 300)}`)
  } finally {
    await stopAll()
    if (prof !== undefined) console.log(`CPU profiles written to ${join(prof, 'broker')} and ${join(prof, 'baseline')}`)
  }
  if (problems.length > 0) {
    console.error('\nFAILED:')
    for (const p of problems) console.error(`  ${p}`)
    process.exitCode = 1
  }
}

await main()
