// `npm run bench:broker`: the broker against a minimal Node baseline, same load, same durability.
//
//   node bench/broker.ts [--quick] [--duration <s>] [--connections <n>] [--inflight <n>]
//                        [--batch <records per request>] [--fsync ack|none] [--cpu-prof <dir>]
//
// Starts the broker (src/cli/main.ts broker) and bench/baseline-server.ts as child processes on
// temp data dirs, drives both with the same raw-protocol load (bench/load.ts), one after the
// other so they never compete for CPU, and prints one table: scenario, broker figure, baseline
// figure, broker/baseline. Scenarios: produce throughput with 100 B and 1 KB records (a batch of
// `--batch` records per request, several pipelined connections), consume throughput of what was
// produced (Fetch v11, 8 MiB per fetch), and produce latency (1 record per request, 1 connection,
// 1 request in flight). `--quick` is a ~10 s smoke run. Exits non-zero if the broker answered
// with an error or a consumer did not read back every acknowledged record; there are no timing
// assertions.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ApiKey } from '../src/protocol/apis.ts'
import { type CreateTopicsResponse } from '../src/protocol/messages/create-topics-response.ts'
import { call, runConsume, runProduce, type ConsumeResult, type ProduceResult } from './load.ts'
import { decodeResponse, requestFrame } from './wire.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const HOST = '127.0.0.1'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
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
const durationMs = args.duration !== undefined ? Number(args.duration) * 1000 : quick ? 1000 : 5000
const warmupMs = quick ? 250 : 1000
const latencyDurationMs = args.duration !== undefined ? durationMs : quick ? 1000 : 4000
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

async function startServer(name: string, script: string, extraArgs: string[], nodeArgs: string[], metricsPort?: number): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), `cortado-bench-${name}-`))
  const argv = [...nodeArgs, join(ROOT, script), ...extraArgs, '--port', '0', '--data-dir', dataDir]
  if (metricsPort !== undefined) argv.push('--metrics-port', String(metricsPort))
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CORTADO_LOG_LEVEL: 'warn' } })
  let err = ''
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
    if (err.length > 200_000) err = err.slice(-100_000)
  })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${err}`)), 30_000)
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /ready on [^\s]+:(\d+)/.exec(out)
        if (m !== null) {
          clearTimeout(timer)
          resolve(Number(m[1]))
        }
      })
      void exited.then(() => {
        clearTimeout(timer)
        reject(new Error(`${name} exited (code ${proc.exitCode}) before it was ready:\n${err}`))
      })
    })
    return {
      name, port, proc, dataDir, metricsPort,
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
  if (t === undefined || t.errorCode !== 0) throw new Error(`CreateTopics ${topic} failed: ${t?.errorCode} ${t?.errorMessage}`)
}

/** A few counters from the broker's Prometheus endpoint (empty if unavailable). */
async function brokerMetrics(server: Server): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (server.metricsPort === undefined) return out
  try {
    const text = await (await fetch(`http://${HOST}:${server.metricsPort}/metrics`)).text()
    for (const line of text.split('\n')) {
      const m = /^(cortado_\S+)\s+(\S+)$/.exec(line)
      if (m !== null) out.set(m[1], Number(m[2]))
    }
  } catch {
    // metrics are a nice-to-have
  }
  return out
}

// ---------------------------------------------------------------- table

interface Row {
  scenario: string
  metric: string
  broker: number
  baseline: number
  /** 'up': higher is better; 'down': lower is better. */
  better: 'up' | 'down' | 'info'
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

function printTable(): void {
  const header = ['scenario', 'metric', 'broker', 'baseline', 'broker/baseline']
  const lines = rows.map((r) => {
    const ratio = r.broker / r.baseline
    const mark = r.better === 'info' || !Number.isFinite(ratio) ? '' : (r.better === 'up' ? ratio < 0.7 : ratio > 1 / 0.7) ? '  <' : ''
    return [r.scenario, r.metric, fmt(r.broker), fmt(r.baseline), Number.isFinite(ratio) ? `${ratio.toFixed(2)}x${mark}` : '-']
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const render = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
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
  console.log('Throughput rows: higher is better; latency rows (ms): lower is better. "<" marks the broker below 0.7x of the')
  console.log('baseline (for latency: above 1/0.7x). MB/s counts record values (10^6 bytes). CPU% is the server process')
  console.log('(100% = one core); "load gen CPU %" is this process driving the load. The baseline appends each request frame to one file with writeSync, group-commits with')
  console.log('fdatasync like the broker, and serves fetches with readSync of the same sizes.')
  for (const n of notes) console.log(n)
}

// ---------------------------------------------------------------- scenarios

interface ProduceMeasurement {
  r: ProduceResult
  /** Server and load-generator CPU, % of one core. */
  cpu: number
  clientCpu: number
  /** Broker only: produce requests per fdatasync round. */
  perRound: number
}

async function measureProduce(server: Server, topic: string, records: number, recordSize: number, conns: number, inflightPerConn: number, duration: number): Promise<ProduceMeasurement> {
  const before = await brokerMetrics(server)
  const cpu0 = server.cpuSeconds()
  const client0 = process.cpuUsage()
  const t0 = performance.now()
  const r = await runProduce({ host: HOST, port: server.port, topic, records, recordSize, connections: conns, inflight: inflightPerConn, warmupMs, durationMs: duration })
  const wall = (performance.now() - t0) / 1000
  const cpu = ((server.cpuSeconds() - cpu0) / wall) * 100
  const clientUsage = process.cpuUsage(client0)
  const clientCpu = ((clientUsage.user + clientUsage.system) / 1e6 / wall) * 100
  const after = await brokerMetrics(server)
  const delta = (name: string) => (after.get(name) ?? NaN) - (before.get(name) ?? 0)
  const rounds = delta('cortado_broker_fsync_round_seconds_count')
  const produced = delta('cortado_broker_requests_total{api="Produce"}')
  if (r.errors > 0) problems.push(`${server.name} ${topic}: ${r.errors} produce errors (${r.firstError})`)
  return { r, cpu, clientCpu, perRound: produced / rounds }
}

async function measureConsume(server: Server, topic: string, mode: 'kafka' | 'baseline', frameBytes: number, recordSize: number): Promise<{ r: ConsumeResult; cpu: number }> {
  const cpu0 = server.cpuSeconds()
  const r = await runConsume({ host: HOST, port: server.port, topic, maxBytes: fetchBytes, mode, frameBytes, recordsPerFrame: batch, recordSize })
  const cpu = ((server.cpuSeconds() - cpu0) / r.seconds) * 100
  if (r.error !== undefined) problems.push(`${server.name} consume ${topic}: ${r.error}`)
  return { r, cpu }
}

function produceRows(scenario: string, b: ProduceMeasurement, base: ProduceMeasurement, withRecords: boolean): void {
  if (withRecords) {
    rows.push({ scenario, metric: 'records/s', broker: b.r.recordsPerSec, baseline: base.r.recordsPerSec, better: 'up' })
    rows.push({ scenario, metric: 'MB/s', broker: b.r.mbPerSec, baseline: base.r.mbPerSec, better: 'up' })
  } else {
    rows.push({ scenario, metric: 'requests/s', broker: b.r.requestsPerSec, baseline: base.r.requestsPerSec, better: 'up' })
  }
  rows.push({ scenario, metric: 'p50 ms', broker: b.r.latencyMs.p50, baseline: base.r.latencyMs.p50, better: 'down' })
  rows.push({ scenario, metric: 'p99 ms', broker: b.r.latencyMs.p99, baseline: base.r.latencyMs.p99, better: 'down' })
  rows.push({ scenario, metric: 'max ms', broker: b.r.latencyMs.max, baseline: base.r.latencyMs.max, better: 'down' })
  rows.push({ scenario, metric: 'server CPU %', broker: b.cpu, baseline: base.cpu, better: 'info' })
  rows.push({ scenario, metric: 'load gen CPU %', broker: b.clientCpu, baseline: base.clientCpu, better: 'info' })
}

async function main(): Promise<void> {
  const started = performance.now()
  const nodeArgs = args['cpu-prof'] !== undefined ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : []
  const servers: Server[] = []
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.stop()))
  }
  process.once('SIGINT', () => {
    void stopAll().then(() => process.exit(130))
  })
  try {
    const metricsPort = await freePort()
    const brokerArgs = ['broker', '--config', `cortado.fsync=${fsyncMode}`]
    const [broker, baseline] = await Promise.all([
      startServer('broker', 'src/cli/main.ts', brokerArgs, nodeArgs, metricsPort),
      startServer('baseline', 'bench/baseline-server.ts', ['--fsync', fsyncMode], []),
    ])
    servers.push(broker, baseline)
    console.log(`broker on ${HOST}:${broker.port}, baseline on ${HOST}:${baseline.port}; fsync=${fsyncMode}; ` +
      `${connections} connections x ${inflight} in flight, ${batch} records/request, ${durationMs / 1000} s measured after ${warmupMs / 1000} s warm-up`)

    const sizes = [{ label: '100 B', size: 100 }, { label: '1 KB', size: 1024 }]
    for (const { label, size } of sizes) {
      const topic = `bench-${size}`
      if (!want(`produce-${size}`) && !want('throughput')) continue
      await createTopic(broker, topic)
      const scenario = `produce ${label} x${batch}/req, ${connections}x${inflight}`
      process.stdout.write(`${scenario}: broker...`)
      const b = await measureProduce(broker, topic, batch, size, connections, inflight, durationMs)
      process.stdout.write(' baseline...')
      const base = await measureProduce(baseline, topic, batch, size, connections, inflight, durationMs)
      console.log(' done')
      produceRows(scenario, b, base, true)
      notes.push(`${scenario}: produce requests per fdatasync round (broker) ${fmt(b.perRound)}`)

      const cscenario = `consume ${label} (${fmt(fetchBytes / 1048576)} MiB fetches)`
      process.stdout.write(`${cscenario}: broker...`)
      const cb = await measureConsume(broker, topic, 'kafka', b.r.frameBytes, size)
      process.stdout.write(' baseline...')
      const cbase = await measureConsume(baseline, topic, 'baseline', base.r.frameBytes, size)
      console.log(' done')
      rows.push({ scenario: cscenario, metric: 'records/s', broker: cb.r.recordsPerSec, baseline: cbase.r.recordsPerSec, better: 'up' })
      rows.push({ scenario: cscenario, metric: 'MB/s', broker: cb.r.mbPerSec, baseline: cbase.r.mbPerSec, better: 'up' })
      rows.push({ scenario: cscenario, metric: 'server CPU %', broker: cb.cpu, baseline: cbase.cpu, better: 'info' })
      notes.push(`${cscenario}: broker read ${cb.r.records.toLocaleString('en-US')} records in ${cb.r.fetches} fetches (${fmt(cb.r.seconds)} s); ` +
        `baseline ${cbase.r.records.toLocaleString('en-US')} in ${cbase.r.fetches} (${fmt(cbase.r.seconds)} s)`)
      if (cb.r.error === undefined && cb.r.records !== b.r.totalRecords) {
        problems.push(`broker ${topic}: acknowledged ${b.r.totalRecords} records but a consumer read back ${cb.r.records}`)
      }
    }

    if (want('latency')) {
      const topic = 'bench-latency'
      await createTopic(broker, topic)
      const scenario = 'latency 100 B x1/req, 1x1'
      process.stdout.write(`${scenario}: broker...`)
      const b = await measureProduce(broker, topic, 1, 100, 1, 1, latencyDurationMs)
      process.stdout.write(' baseline...')
      const base = await measureProduce(baseline, topic, 1, 100, 1, 1, latencyDurationMs)
      console.log(' done')
      produceRows(scenario, b, base, false)
    }

    printTable()
    console.log(`total ${fmt((performance.now() - started) / 1000)} s`)
    const brokerWarnings = broker.stderr().split('\n').filter((l) => /"level":"(warn|error)"/.test(l))
    if (brokerWarnings.length > 0) {
      console.log(`broker logged ${brokerWarnings.length} warnings/errors, first: ${brokerWarnings[0].slice(0, 300)}`)
    }
  } finally {
    await stopAll()
    if (args['cpu-prof'] !== undefined) console.log(`broker CPU profile written to ${args['cpu-prof']}`)
  }
  if (problems.length > 0) {
    console.error('\nFAILED:')
    for (const p of problems) console.error(`  ${p}`)
    process.exitCode = 1
  }
}

await main()
