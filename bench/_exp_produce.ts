import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiKey } from '../src/protocol/apis.ts'
import { call, runProduce } from './load.ts'
import { requestFrame } from './wire.ts'

async function start(script: string, args: string[], prof?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'exp-'))
  const pre = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []
  const proc = spawn(process.execPath, [...pre, script, ...args, '--port', '0', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, CORTADO_LOG_LEVEL: 'warn' } })
  const port = await new Promise<number>((resolve) => {
    let out = ''
    proc.stdout.on('data', (d: Buffer) => { out += d.toString(); const m = /ready on [^\s]+:(\d+)/.exec(out); if (m) resolve(Number(m[1])) })
  })
  return { port, proc, dir }
}
const cpu = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100 }
const size = Number(process.argv[2] ?? 1024)
const conns = Number(process.argv[3] ?? 4)
const infl = Number(process.argv[4] ?? 8)
const reps = Number(process.env.REPS ?? 2)
const dur = Number(process.env.DUR ?? 3000)
const b = await start('src/cli/main.ts', ['broker', ...(process.env.BCONF ? ['--config', process.env.BCONF] : [])], process.env.PROF)
const base = await start('bench/baseline-server.ts', process.env.BASEARGS ? process.env.BASEARGS.split(' ') : [], process.env.PROFBASE)
await call('127.0.0.1', b.port, requestFrame(ApiKey.CreateTopics, 4, 1, { topics: [{ name: 't', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 10000, validateOnly: false }))
const only = process.env.ONLY
for (let i = 0; i < reps; i++) {
  for (const [name, s] of (i % 2 === 0 ? [['broker', b], ['baseline', base]] : [['baseline', base], ['broker', b]]) as [string, typeof b][]) {
    if (only && only !== name) continue
    const c0 = cpu(s.proc.pid!)
    const t0 = performance.now()
    const r = await runProduce({ host: '127.0.0.1', port: s.port, topic: 't', records: Number(process.env.BATCH ?? 100), recordSize: size, connections: conns, inflight: infl, warmupMs: 500, durationMs: dur })
    const c = (cpu(s.proc.pid!) - c0) / ((performance.now() - t0) / 1000) * 100
    console.log(name.padEnd(8), 'MB/s', r.mbPerSec.toFixed(0).padStart(4), 'rec/s', r.recordsPerSec.toFixed(0).padStart(8), 'p50', r.latencyMs.p50.toFixed(2), 'p99', r.latencyMs.p99.toFixed(2), 'cpu%', c.toFixed(0), r.errors)
  }
}
for (const s of [b, base]) { s.proc.kill('SIGTERM') }
await new Promise((r) => setTimeout(r, 1500))
for (const s of [b, base]) rmSync(s.dir, { recursive: true, force: true })
