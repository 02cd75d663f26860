// A real multi-broker Kafka for tests: librdkafka's mock cluster (rdkafka_mock.h), run by
// test/mock-kafka/mock-cluster.c as a child process and driven over its stdin. Its brokers listen
// on 127.0.0.1 ephemeral ports. The C program is built with gcc on first use (and again when the
// .c is newer than the binary) into test/mock-kafka/build/, which git ignores; it needs the Debian
// package librdkafka-dev (scripts/system-tools.sh).
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ROOT } from './broker-process.ts'

const SOURCE = join(ROOT, 'test', 'mock-kafka', 'mock-cluster.c')
const BUILD_DIR = join(ROOT, 'test', 'mock-kafka', 'build')
const BINARY = join(BUILD_DIR, 'mock-cluster')

/** Builds the mock cluster program unless an up-to-date binary exists; returns its path. */
export function buildMockCluster(): string {
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return BINARY
  mkdirSync(BUILD_DIR, { recursive: true })
  // Built under a temporary name and renamed, so a concurrent test never runs a half-written binary.
  const tmp = `${BINARY}.${process.pid}.tmp`
  execFileSync('gcc', ['-O1', '-Wall', '-Wextra', '-Werror', '-o', tmp, SOURCE, '-lrdkafka'], { stdio: 'pipe' })
  renameSync(tmp, BINARY)
  return BINARY
}

export interface MockKafka {
  /** host:port of every broker, comma-separated as Kafka clients take it. */
  readonly bootstrap: string
  /** The same, one entry per broker. */
  readonly brokers: string[]
  /**
   * Creates a topic (the mock's own admin path, as an operator would beforehand). librdkafka 2.0.2
   * ignores `replication`: every partition has every broker as a replica.
   */
  topic(name: string, partitions: number, replication: number): Promise<void>
  /** Makes `broker` (1-based id) the leader of a partition. */
  leader(topic: string, partition: number, broker: number): Promise<void>
  /** Closes the broker's connections and refuses new ones until `up`. */
  down(broker: number): Promise<void>
  up(broker: number): Promise<void>
  /** The next requests of `apiKey` (any broker) are answered with these error codes, in order. */
  errors(apiKey: number, ...codes: number[]): Promise<void>
  /** `type` is 'group' or 'transaction'. */
  coordinator(type: string, key: string, broker: number): Promise<void>
  rtt(broker: number, ms: number): Promise<void>
  rack(broker: number, rack: string): Promise<void>
  /** The versions of `apiKey` every broker offers in ApiVersions from now on (-1, -1: not offered). */
  apiVersion(apiKey: number, min: number, max: number): Promise<void>
  /** What the mock wrote to stderr. */
  stderr(): string
  stop(): Promise<void>
}

/** Starts a mock cluster of `brokers` brokers and resolves once it prints its bootstrap address. */
export async function startMockKafka(brokers = 3): Promise<MockKafka> {
  const proc = spawn(buildMockCluster(), [String(brokers)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let err = ''
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
    if (err.length > 1_000_000) err = err.slice(-500_000)
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const lines = createInterface({ input: proc.stdout })
  // Answers come one line per command, in order: each command waits for the next line.
  const waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = []
  let first: ((line: string) => void) | undefined
  const firstLine = new Promise<string>((resolve) => (first = resolve))
  lines.on('line', (line) => {
    if (first !== undefined) {
      first(line)
      first = undefined
      return
    }
    waiting.shift()?.resolve(line)
  })
  void exited.then((code) => {
    const e = new Error(`mock cluster exited with ${code}:\n${err.slice(-5000)}`)
    for (const w of waiting.splice(0)) w.reject(e)
  })
  const bootstrap = await Promise.race([
    firstLine,
    exited.then((code) => Promise.reject(new Error(`mock cluster exited with ${code} before starting:\n${err}`))),
  ])

  const command = (...words: (string | number)[]): Promise<void> => {
    if (proc.exitCode !== null) return Promise.reject(new Error(`mock cluster has exited (${proc.exitCode})`))
    const text = words.join(' ')
    const answer = new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }))
    proc.stdin.write(`${text}\n`)
    return answer.then((line) => {
      if (line !== 'ok') throw new Error(`mock cluster: ${text}: ${line}`)
    })
  }

  return {
    bootstrap,
    brokers: bootstrap.split(','),
    topic: (name, partitions, replication) => command('topic', name, partitions, replication),
    leader: (topic, partition, broker) => command('leader', topic, partition, broker),
    down: (broker) => command('down', broker),
    up: (broker) => command('up', broker),
    errors: (apiKey, ...codes) => command('errors', apiKey, ...codes),
    coordinator: (type, key, broker) => command('coordinator', type, key, broker),
    rtt: (broker, ms) => command('rtt', broker, ms),
    rack: (broker, rack) => command('rack', broker, rack),
    apiVersion: (apiKey, min, max) => command('apiversion', apiKey, min, max),
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.stdin.end()
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
