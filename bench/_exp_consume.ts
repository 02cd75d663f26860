import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiKey } from '../src/protocol/apis.ts'
import { call, runConsume, runProduce } from './load.ts'
import { requestFrame } from './wire.ts'

async function start(script: string, args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'exp-'))
  const proc = spawn(process.execPath, [script, ...args, '--port', '0', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve) => {
    let out = ''
    proc.stdout.on('data', (d: Buffer) => { out += d.toString(); const m = /ready on [^\s]+:(\d+)/.exec(out); if (m) resolve(Number(m[1])) })
  })
  return { port, proc, dir }
}
const b = await start(process.env.PROF ? '--cpu-prof' : 'src/cli/main.ts', process.env.PROF ? ['--cpu-prof-dir', process.env.PROF, 'src/cli/main.ts', 'broker'] : ['broker'])
const base = await start(process.env.PROFBASE ? '--cpu-prof' : 'bench/baseline-server.ts', process.env.PROFBASE ? ['--cpu-prof-dir', process.env.PROFBASE, 'bench/baseline-server.ts'] : [])
await call('127.0.0.1', b.port, requestFrame(ApiKey.CreateTopics, 4, 1, { topics: [{ name: 't', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 10000, validateOnly: false }))
const size = Number(process.argv[2] ?? 1024)
const fetchBytes = Number(process.argv[3] ?? 8388608)
let frameBytes = 0
for (const s of [b, base]) {
  const r = await runProduce({ host: '127.0.0.1', port: s.port, topic: 't', records: 100, recordSize: size, connections: 4, inflight: 8, warmupMs: 0, durationMs: 3000 })
  frameBytes = r.frameBytes
  console.log('produced', r.totalRecords)
}
for (let i = 0; i < Number(process.env.REPS ?? 3); i++) {
  for (const [name, s, mode] of [['broker', b, 'kafka'], ['baseline', base, 'baseline']] as const) {
    const r = await runConsume({ host: '127.0.0.1', port: s.port, topic: 't', maxBytes: fetchBytes, mode, frameBytes, recordsPerFrame: 100, recordSize: size })
    console.log(name, 'MB/s', r.mbPerSec.toFixed(0), 'fetches', r.fetches, 's', r.seconds.toFixed(2), 'ms/fetch', (r.seconds * 1000 / r.fetches).toFixed(1), r.error ?? '')
  }
}
for (const s of [b, base]) { s.proc.kill('SIGTERM') }
await new Promise((r) => setTimeout(r, 1000))
for (const s of [b, base]) rmSync(s.dir, { recursive: true, force: true })
