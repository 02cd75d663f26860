// The failover benchmark's cluster (bench/failover.ts): every part its own process, as in
// production: `cortado broker`, `cortado router`, `cortado controller` and `cortado node`s, all on
// a temp directory. Nodes can be SIGKILLed and restarted on the same data directory. Each
// process's structured log (stderr, JSON lines) is read line by line: the lines the benchmark
// explains failover with (the controller's decision, a node's promotion) are kept with their
// timestamps, warnings and errors are counted, and the last lines are kept for error messages.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const MAIN = join(ROOT, 'src', 'cli', 'main.ts')

/** Log messages kept with their time (everything else only counted or kept in the tail). */
const KEPT_MESSAGES = new Set([
  'failover: new master',
  'promoting to master',
  'master: taking writes',
  'mastership released',
  'active controller',
])

export interface LogEvent {
  /** ms since the epoch, from the line's `time`. */
  time: number
  msg: string
  fields: Record<string, unknown>
}

export interface Service {
  readonly name: string
  /** The first capture group of the ready line (a URL or an address). */
  readonly address: string
  readonly proc: ChildProcess
  /** Kept log events (KEPT_MESSAGES), in order. */
  readonly events: LogEvent[]
  /** Warning and error lines seen so far (at most the first 50 kept). */
  readonly warnings: string[]
  warningCount(): number
  /** The last lines of stderr. */
  tail(): string
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>
  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>
}

function running(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null
}

/** Every child started, so that an exit of any kind can take them down. */
const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of children) if (running(c)) c.kill('SIGKILL')
})

function spawnService(
  name: string,
  args: string[],
  ready: RegExp,
  logLevel: string,
  timeoutMs = 60_000,
): Promise<Service> {
  const proc = spawn(process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CORTADO_LOG_LEVEL: logLevel },
  })
  children.add(proc)
  const events: LogEvent[] = []
  const warnings: string[] = []
  let warningCount = 0
  const tail: string[] = []
  createInterface({ input: proc.stderr }).on('line', (line) => {
    tail.push(line)
    if (tail.length > 100) tail.shift()
    if (!line.startsWith('{')) return
    let parsed: Record<string, unknown>
    try {
      parsed = JSON.parse(line) as Record<string, unknown>
    } catch {
      return
    }
    const { time, level, msg, ...fields } = parsed
    if (level === 'warn' || level === 'error') {
      warningCount++
      if (warnings.length < 50) warnings.push(line)
    }
    if (typeof msg === 'string' && KEPT_MESSAGES.has(msg) && typeof time === 'string')
      events.push({ time: Date.parse(time), msg, fields })
  })
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      children.delete(proc)
      resolve()
    }),
  )
  const service = (address: string): Service => ({
    name,
    address,
    proc,
    events,
    warnings,
    warningCount: () => warningCount,
    tail: () => tail.join('\n'),
    async kill() {
      if (running(proc)) proc.kill('SIGKILL')
      await exited
    },
    async stop(graceMs = 10_000) {
      if (!running(proc)) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`${name} printed no ready line within ${timeoutMs} ms:\n${tail.join('\n')}`))
    }, timeoutMs)
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = ready.exec(line)
      if (m === null) return
      clearTimeout(timer)
      resolve(service(m[1]))
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(
        new Error(
          `${name} exited (code ${proc.exitCode}, signal ${proc.signalCode}) before it was ready:\n${tail.join('\n')}`,
        ),
      )
    })
  })
}

export interface ClusterOptions {
  /** Parent of the temp directory. */
  parentDir: string
  nodes: number
  /** The controller's and the nodes' `--node-session-ms` (the default when undefined). */
  nodeSessionMs?: number
  /** The router's `--retry-ms`. */
  routerRetryMs: number
}

export interface Cluster {
  readonly dir: string
  readonly broker: Service
  readonly router: Service
  readonly controller: Service
  readonly nodes: Map<string, Service>
  /** The router's base URL, without a trailing slash. */
  readonly url: string
  /** Starts (or restarts, on the same data directory) a storage node. */
  startNode(id: string): Promise<Service>
  /** Every service, for their logs. */
  services(): Service[]
  /** Stops everything (SIGTERM, then SIGKILL) and removes the directory; safe to call twice. */
  stop(): Promise<void>
}

/**
 * Starts a broker, the router, one controller and `nodes` storage nodes (`n1`…), in that order
 * (the router creates the metadata topic the others follow). `onCleanup` gets the cleanup as soon
 * as there is something to clean up, so a failure half-way leaves nothing behind.
 */
export async function startCluster(
  o: ClusterOptions,
  onCleanup: (stop: () => Promise<void>) => void,
): Promise<Cluster> {
  const dir = mkdtempSync(join(o.parentDir, 'cortado-bench-failover-'))
  const started: Service[] = []
  const nodes = new Map<string, Service>()
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      // Clients of the broker first, the broker last.
      const others = started.filter((s) => s.name !== 'broker')
      await Promise.all(others.map((s) => s.stop()))
      await Promise.all(started.map((s) => s.stop()))
      rmSync(dir, { recursive: true, force: true })
    })()
    return stopping
  }
  onCleanup(stop)
  const track = (s: Service) => {
    started.push(s)
    return s
  }

  const broker = track(
    await spawnService(
      'broker',
      ['broker', '--port', '0', '--data-dir', join(dir, 'broker')],
      /ready on ([^\s(]+)/,
      'warn',
    ),
  )
  const bootstrap = broker.address
  const router = track(
    await spawnService(
      'router',
      ['router', '--bootstrap', bootstrap, '--http-port', '0', '--retry-ms', String(o.routerRetryMs), '--insecure'],
      /^cortado router ready http=(\S+)/,
      'warn',
    ),
  )
  const controllerArgs = ['controller', '--id', 'c1', '--bootstrap', bootstrap]
  if (o.nodeSessionMs !== undefined) controllerArgs.push('--node-session-ms', String(o.nodeSessionMs))
  const controller = track(
    await spawnService('controller c1', controllerArgs, /^cortado controller ready id=(\S+)/, 'info'),
  )
  const startNode = async (id: string) => {
    const node = track(
      await spawnService(
        `node ${id}`,
        [
          'node',
          '--id',
          id,
          '--data-dir',
          join(dir, 'nodes', id),
          '--bootstrap',
          bootstrap,
          // The master lease is cut from the same session the controller uses.
          ...(o.nodeSessionMs === undefined ? [] : ['--node-session-ms', String(o.nodeSessionMs)]),
        ],
        /^cortado node ready id=\S+ url=(\S+)/,
        'info',
      ),
    )
    nodes.set(id, node)
    return node
  }
  await Promise.all(Array.from({ length: o.nodes }, (_, i) => startNode(`n${i + 1}`)))
  return {
    dir,
    broker,
    router,
    controller,
    nodes,
    url: router.address.replace(/\/$/, ''),
    startNode,
    services: () => [...started],
    stop,
  }
}
