// The database benchmark's load generator (`npm run bench:db`): target-agnostic, so Cortado and
// the baselines get exactly the same documents, keys and concurrency, and the client work (building
// and serializing a document, parsing the one read back) is the same for all, but for what each
// database's own client adds (etcd's base64, say).
//
// A phase runs `concurrency` workers, each a closed loop of one operation at a time: a write
// upserts a ~1 KB document under a random key among `keys`; a read fetches a random key this
// target has already written (a miss counts as an error). Each phase has a warm-up and then a
// measured window; throughput counts the operations that complete inside the window, latency is
// call → completion of those operations.
import { mulberry32 } from '../src/util/random.ts'

/** What the load generator drives: one database, reached through its ordinary client. */
export interface Target {
  name: string
  write(key: string, doc: object): Promise<void>
  /** The document stored under `key`, or null if there is none. */
  read(key: string): Promise<object | null>
}

/** A database's processes of one kind (a role), for counting their CPU apart; each pid with its descendants. */
export interface ProcessGroup {
  role: string
  pids: number[]
}

/** The benchmark's document; every field is also in Cortado's Avro table schema (db-cortado.ts). */
export interface Doc {
  id: string
  name: string
  counter: number
  payload: string
  tags: string[]
}

export const PAYLOAD_CHARS = 900

// Payload variants, built once: the load generator should spend its CPU on the requests, not on
// making strings, and a few variants are enough that consecutive writes of a key differ.
const PAYLOADS = Array.from({ length: 64 }, (_, v) => {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '
  let s = ''
  for (let i = 0; s.length < PAYLOAD_CHARS; i++) s += alphabet[(i * 7 + v * 13) % alphabet.length]
  return s
})

export function keyOf(i: number): string {
  return `doc-${String(i).padStart(7, '0')}`
}

/** A deterministic document for a key: ~1 KB of JSON (see docBytes()). */
export function makeDoc(key: string, counter: number): Doc {
  return {
    id: key,
    name: `document ${key}`,
    counter,
    payload: PAYLOADS[counter % PAYLOADS.length],
    tags: ['bench', `v${counter % 10}`, `k${key.slice(-2)}`],
  }
}

/** The serialized size of a benchmark document, in bytes. */
export function docBytes(): number {
  return Buffer.byteLength(JSON.stringify(makeDoc(keyOf(0), 123_456)))
}

/** Which keys a target holds (set by its write phases), for its read phases to pick from. */
export class WrittenKeys {
  private readonly seen: Uint8Array
  /** The indexes of the written keys, in first-write order. */
  readonly list: number[] = []
  constructor(keys: number) {
    this.seen = new Uint8Array(keys)
  }
  add(i: number): void {
    if (this.seen[i] === 0) {
      this.seen[i] = 1
      this.list.push(i)
    }
  }
  has(i: number): boolean {
    return this.seen[i] === 1
  }
}

export interface PhaseOptions {
  target: Target
  kind: 'write' | 'read'
  concurrency: number
  /** Size of the key space. */
  keys: number
  /** Keys the target holds: writes add to it, reads pick from it. */
  written: WrittenKeys
  warmupMs: number
  durationMs: number
  /** Seeds the workers' key sequences; vary it per slice so slices do not repeat each other. */
  seed: number
  /** Ends the phase early (Ctrl-C): workers finish the operation in hand and stop. */
  signal?: AbortSignal
}

export interface LatencySummary {
  p50: number
  p99: number
  p999: number
  max: number
  mean: number
}

export interface PhaseResult {
  /** Operations completed inside the measured window. */
  ops: number
  seconds: number
  opsPerSec: number
  /** Every measured operation's latency in ms, in completion order. */
  latencies: number[]
  latencyMs: LatencySummary
  /** Operations that succeeded in the whole phase, warm-up included: what CPU measured around the phase paid for. */
  completed: number
  /** Operations that threw (or reads that found nothing), warm-up included. */
  errors: number
  firstError: string | undefined
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]
}

export function summarize(latencies: number[]): LatencySummary {
  const sorted = Float64Array.from(latencies).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: sorted.length > 0 ? sorted[sorted.length - 1] : NaN,
    mean: sum / sorted.length,
  }
}

/** How long one operation may take before the phase fails instead of hanging. */
const STALL_MS = 30_000

function withStallTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const stall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${STALL_MS / 1000} s`)), STALL_MS)
  })
  return Promise.race([p, stall]).finally(() => clearTimeout(timer))
}

export async function runPhase(o: PhaseOptions): Promise<PhaseResult> {
  if (o.kind === 'read' && o.written.list.length === 0)
    throw new Error(`${o.target.name}: read phase before any key was written`)
  const start = performance.now()
  const measureFrom = start + o.warmupMs
  const stopAt = measureFrom + o.durationMs
  const latencies: number[] = []
  let completed = 0
  let errors = 0
  let firstError: string | undefined
  // A target failing at once (connection refused, client closed) must not spin the workers in
  // microtasks and starve timers and I/O, so a failure yields to the event loop.
  const fail = (msg: string) => {
    errors++
    firstError ??= msg
    return new Promise((resolve) => setImmediate(resolve))
  }
  // Counters make successive writes of a key differ, so an upsert is never a no-op.
  let counter = 0

  const worker = async (w: number) => {
    // Seeded, so every run draws the same key sequence per worker.
    const random = mulberry32(o.seed * 1000 + w + 1)
    for (;;) {
      const t0 = performance.now()
      if (t0 >= stopAt || o.signal?.aborted === true) return
      if (o.kind === 'write') {
        const i = Math.floor(random() * o.keys)
        const key = keyOf(i)
        try {
          await withStallTimeout(o.target.write(key, makeDoc(key, counter++)))
          o.written.add(i)
        } catch (err) {
          await fail(`write ${key}: ${err instanceof Error ? err.message : String(err)}`)
          continue
        }
      } else {
        const i = o.written.list[Math.floor(random() * o.written.list.length)]
        const key = keyOf(i)
        try {
          const doc = await withStallTimeout(o.target.read(key))
          if (doc === null) {
            await fail(`read ${key}: not found, though it was written`)
            continue
          }
          if ((doc as Partial<Doc>).id !== key) {
            await fail(`read ${key}: got a document with id ${JSON.stringify((doc as Partial<Doc>).id)}`)
            continue
          }
        } catch (err) {
          await fail(`read ${key}: ${err instanceof Error ? err.message : String(err)}`)
          continue
        }
      }
      completed++
      const t1 = performance.now()
      if (t1 >= measureFrom && t1 <= stopAt) latencies.push(t1 - t0)
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, (_, w) => worker(w)))
  const seconds = o.durationMs / 1000
  return {
    ops: latencies.length,
    seconds,
    opsPerSec: latencies.length / seconds,
    latencies,
    latencyMs: summarize(latencies),
    completed,
    errors,
    firstError,
  }
}
