// Runs the real broker as a child process (`cortado broker`), as users do, for integration,
// compatibility and crash tests.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const MAIN = join(ROOT, 'src', 'cli', 'main.ts')

export interface BrokerProcess {
  readonly port: number
  readonly dataDir: string
  readonly bootstrap: string
  /** The /metrics port, when started with `metrics: true`. */
  readonly metricsPort: number | undefined
  /** host:port of each listener, by name (the `listeners` config; PLAINTEXT alone without it). */
  readonly listeners: ReadonlyMap<string, string>
  readonly proc: ChildProcess
  /** Everything the broker wrote to stderr (its structured log). */
  readonly stderr: () => string
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cortado-${prefix}-`))
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

export interface StartOptions {
  dataDir?: string
  port?: number
  config?: Record<string, string>
  /** Serve Prometheus metrics on an ephemeral port. */
  metrics?: boolean
  /** The address to listen on (default 127.0.0.1). */
  host?: string
  /** How to start the process (default child_process.spawn; a test network runs it in a namespace). */
  spawn?: SpawnFunction
}

export type SpawnFunction = (command: string, args: string[], options: SpawnOptions) => ChildProcess

/** Starts `cortado broker` and resolves once it prints its ready line. */
export async function startBroker(options: StartOptions = {}): Promise<BrokerProcess> {
  const dataDir = options.dataDir ?? tempDir('broker')
  const host = options.host ?? '127.0.0.1'
  const args = [MAIN, 'broker', '--host', host, '--data-dir', dataDir]
  // With `listeners`, the ports are in it.
  if (options.config?.listeners === undefined) args.push('--port', String(options.port ?? 0))
  for (const [k, v] of Object.entries(options.config ?? {})) args.push('--config', `${k}=${v}`)
  if (options.metrics === true) args.push('--metrics-port', '0')
  const proc = (options.spawn ?? spawn)(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CORTADO_LOG_LEVEL: process.env.CORTADO_LOG_LEVEL ?? 'info' },
  })
  const { stdout, stderr } = proc
  assert.ok(stdout !== null && stderr !== null)
  let err = ''
  stderr.on('data', (d: Buffer) => {
    err += d.toString()
    if (err.length > 1_000_000) err = err.slice(-500_000)
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const [port, metricsPort, listeners] = await new Promise<[number, number | undefined, Map<string, string>]>(
    (resolve, reject) => {
      let out = ''
      const onData = (d: Buffer) => {
        out += d.toString()
        const m = /ready on [^:\s]+:(\d+).*\n/.exec(out)
        if (m !== null) {
          stdout.off('data', onData)
          const metrics = /metrics on :(\d+)/.exec(m[0])
          const named = [...m[0].matchAll(/([A-Z0-9_]+):\/\/([^,)\s]+)/g)].map((l): [string, string] => [l[1], l[2]])
          resolve([Number(m[1]), metrics === null ? undefined : Number(metrics[1]), new Map(named)])
        }
      }
      stdout.on('data', onData)
      void exited.then((code) => reject(new Error(`broker exited with ${code} before it was ready:\n${err}`)))
    },
  )
  return {
    port,
    metricsPort,
    listeners,
    dataDir,
    bootstrap: `${host}:${port}`,
    proc,
    stderr: () => err,
    async stop() {
      proc.kill('SIGTERM')
      return exited
    },
    async kill() {
      proc.kill('SIGKILL')
      await exited
    },
  }
}
