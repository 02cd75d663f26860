// Stopping the local cluster as users and supervisors do: a signal to the npm process of
// `npm start` (npm passes it on only to the process of the script), a signal to `cortado start`
// itself, or its parent dying with SIGKILL. Each time, every process of the cluster must be gone
// within seconds and its ports free.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { test } from 'node:test'
import { MAIN, ROOT, removeDir, tempDir } from '../helpers/broker-process.ts'

const STOP_WITHIN_MS = 15_000

interface Running {
  proc: ChildProcess
  dataDir: string
  ports: number[]
  /** The cluster's structured log (stderr of every process). */
  log: () => string
}

async function launch(command: string, args: string[]): Promise<Running> {
  const dataDir = tempDir('shutdown')
  const cluster = ['--data-dir', dataDir, '--broker-port', '0', '--http-port', '0', '--metrics-port', '0']
  const proc = spawn(command, [...args, ...cluster], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  const deadline = Date.now() + 60_000
  let ready: RegExpExecArray | null = null
  while (
    (ready =
      /^cortado ready http=http:\/\/127\.0\.0\.1:(\d+) broker=127\.0\.0\.1:(\d+) nodes=3 metrics=http:\/\/127\.0\.0\.1:(\d+)\//m.exec(
        out,
      )) === null
  ) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      killAll(dataDir)
      assert.fail(`the cluster did not start:\n${out}\n${err.slice(-3000)}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { proc, dataDir, ports: ready.slice(1).map(Number), log: () => err }
}

/** Pids of the processes whose command line names the data directory: npm, `cortado start`, its nodes. */
function clusterPids(dataDir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      const state = /^State:\s+(\w)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]
      if (cmdline.includes(dataDir) && state !== 'Z') pids.push(Number(entry))
    } catch {
      // The process went away while we looked.
    }
  }
  return pids
}

function killAll(dataDir: string): void {
  for (const pid of clusterPids(dataDir)) process.kill(pid, 'SIGKILL')
  removeDir(dataDir)
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

async function assertAllGone(c: Running, what: string): Promise<void> {
  const deadline = Date.now() + STOP_WITHIN_MS
  for (;;) {
    const pids = clusterPids(c.dataDir)
    const open = (await Promise.all(c.ports.map(async (p) => ((await portInUse(p)) ? p : null)))).filter(
      (p) => p !== null,
    )
    if (pids.length === 0 && open.length === 0) break
    if (Date.now() > deadline) {
      killAll(c.dataDir)
      assert.fail(
        `${what}: after ${STOP_WITHIN_MS} ms, processes ${pids.join(',')} remain and ports ${open.join(',')} are held`,
      )
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

const npmStart = () => launch('npm', ['start', '--'])

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  void test(
    `${signal} to the npm process of \`npm start\` stops the whole cluster and frees its ports`,
    { timeout: 120_000 },
    async (t) => {
      const c = await npmStart()
      t.after(() => killAll(c.dataDir))
      assert.equal(clusterPids(c.dataDir).length, 5, 'npm, cortado start and three storage nodes')
      c.proc.kill(signal)
      await assertAllGone(c, `${signal} to npm`)
      assert.match(
        c.log(),
        new RegExp(`"component":"start","reason":"${signal}"`),
        'cortado start ran its clean shutdown',
      )
      assert.match(c.log(), /"msg":"broker stopped"/)
    },
  )
}

void test(
  'SIGKILL of the npm process of `npm start`: the cluster notices its parent is gone and stops',
  { timeout: 120_000 },
  async (t) => {
    const c = await npmStart()
    t.after(() => killAll(c.dataDir))
    c.proc.kill('SIGKILL')
    await assertAllGone(c, 'SIGKILL to npm')
    assert.match(c.log(), /"component":"start","reason":"parent process exited"/)
  },
)

void test('SIGINT to `cortado start` stops the whole cluster', { timeout: 120_000 }, async (t) => {
  const c = await launch(process.execPath, [MAIN, 'start'])
  t.after(() => killAll(c.dataDir))
  c.proc.kill('SIGINT')
  await assertAllGone(c, 'SIGINT to cortado start')
})

void test('SIGKILL of `cortado start`: its storage nodes stop by themselves', { timeout: 120_000 }, async (t) => {
  const c = await launch(process.execPath, [MAIN, 'start'])
  t.after(() => killAll(c.dataDir))
  const nodes = clusterPids(c.dataDir).filter((pid) => pid !== c.proc.pid)
  assert.equal(nodes.length, 3)
  c.proc.kill('SIGKILL')
  await assertAllGone(c, 'SIGKILL to cortado start')
  assert.equal(
    c.log().match(/"component":"node","node":"node-\d","reason":"parent process exited"/g)?.length,
    3,
    'each node ran its clean shutdown',
  )
})
