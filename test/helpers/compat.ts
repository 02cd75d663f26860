// Shared pieces of the third-party client compatibility tests (test/compat/): running a client
// command line, and reading back how the broker stored batches (raw Fetch), which no client shows.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { type ApiVersionsResponse } from '../../src/protocol/messages/api-versions-response.ts'
import { type FetchResponse } from '../../src/protocol/messages/fetch-response.ts'
import { RawClient, parseResponse, requestFrame } from './raw-client.ts'

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  input?: string | Buffer
  /** Kill the process after this long (a safety net against hangs, not an assertion). */
  timeoutMs?: number
  env?: Record<string, string>
}

/** Runs a command to completion and collects its output. Never rejects on a non-zero exit. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.once('error', reject)
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })
    })
    child.stdin.on('error', () => undefined)
    child.stdin.end(options.input ?? '')
  })
}

/** Throws with the command's output when it did not exit 0. */
export function expectSuccess(what: string, r: RunResult): RunResult {
  if (r.code !== 0)
    throw new Error(`${what} exited with ${r.code ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`)
  return r
}

/** A topic name no other test uses. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}

/** Polls `check` until it returns a value other than undefined. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export interface StoredBatch {
  baseOffset: number
  records: number
  /** Attributes bits 0-2: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
  codec: number
  magic: number
}

export const CODECS: Readonly<Record<string, number>> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 }

/**
 * The record batches stored in one partition, read with a raw Fetch v4 from offset 0 (one
 * request; enough for the few small batches a compat test writes).
 */
export async function storedBatches(port: number, topic: string, partition: number): Promise<StoredBatch[]> {
  const c = await RawClient.connect(port)
  try {
    c.write(
      requestFrame(1, 4, 1, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 16 * 1024 * 1024,
        isolationLevel: 0,
        topics: [{ topic, partitions: [{ partition, fetchOffset: 0, partitionMaxBytes: 16 * 1024 * 1024 }] }],
      }),
    )
    const { body } = parseResponse<FetchResponse>(1, 4, await c.nextFrame())
    const p = body.responses[0].partitions[0]
    if (p.errorCode !== 0) throw new Error(`raw fetch of ${topic}-${partition}: error ${p.errorCode}`)
    const records = p.records ?? Buffer.alloc(0)
    const batches: StoredBatch[] = []
    let pos = 0
    while (pos + 61 <= records.length) {
      const length = records.readInt32BE(pos + 8)
      if (pos + 12 + length > records.length) break // a partial batch at the end of the response
      batches.push({
        baseOffset: Number(records.readBigInt64BE(pos)),
        magic: records.readInt8(pos + 16),
        codec: records.readInt16BE(pos + 21) & 0x07,
        records: records.readInt32BE(pos + 57),
      })
      pos += 12 + length
    }
    return batches
  } finally {
    c.close()
  }
}

/** The broker's advertised API ranges (ApiVersions v0), by api key. */
export async function advertisedApis(port: number): Promise<Map<number, [number, number]>> {
  const c = await RawClient.connect(port)
  try {
    c.write(requestFrame(18, 0, 1, {}))
    const { body } = parseResponse<ApiVersionsResponse>(18, 0, await c.nextFrame())
    return new Map(body.apiKeys.map((a) => [a.apiKey, [a.minVersion, a.maxVersion]]))
  } finally {
    c.close()
  }
}

/** /usr/bin/python3: the Debian interpreter that has python3-kafka and python3-confluent-kafka. */
export const PYTHON = '/usr/bin/python3'

/** Runs one of the test/compat/python scripts and parses the JSON object it prints. */
export async function runPythonJson<T>(script: string, args: readonly string[], timeoutMs = 40_000): Promise<T> {
  const r = expectSuccess(`${script} ${args.join(' ')}`, await run(PYTHON, [script, ...args], { timeoutMs }))
  const lines = r.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1]) as T
}

export interface Acked {
  key: string | null
  value: string
  partition: number
  offset: number
}

/**
 * What a producer was told (partition and offset per message, in send order) against what a
 * consumer read: the same messages exactly once, offsets dense from 0 in each partition, the
 * producer's send order kept within each partition, and the consumer reading each partition
 * in offset order.
 */
export function assertRoundTrip(sent: readonly Acked[], consumed: readonly Acked[]): void {
  assert.equal(consumed.length, sent.length, 'consumed as many messages as were acknowledged')
  const partitions = [...new Set(sent.map((m) => m.partition))].sort((a, b) => a - b)
  assert.deepEqual(
    [...new Set(consumed.map((m) => m.partition))].sort((a, b) => a - b),
    partitions,
  )
  for (const p of partitions) {
    const acked = sent.filter((m) => m.partition === p)
    assert.deepEqual(
      acked.map((m) => m.offset),
      acked.map((_, i) => i),
      `partition ${p}: acknowledged offsets are 0.. in send order`,
    )
    const read = consumed.filter((m) => m.partition === p)
    assert.deepEqual(
      read.map((m) => [m.offset, m.key, m.value]),
      acked.map((m) => [m.offset, m.key, m.value]),
      `partition ${p}: read back in offset order with the same keys and values`,
    )
  }
}

/**
 * The batches of a partition hold `count` records and were stored with `codec`. librdkafka sends
 * a batch uncompressed when compressing does not make it smaller, which happens to the odd tiny
 * batch (one message split off while a new topic's messages are being partitioned), so batches
 * of fewer than 5 records may also be uncompressed; at least one batch must carry the codec.
 */
export function assertStoredCodec(batches: readonly StoredBatch[], codec: string, count: number): void {
  assert.equal(
    batches.reduce((s, b) => s + b.records, 0),
    count,
    'stored batches hold every record',
  )
  for (const b of batches) {
    assert.equal(b.magic, 2)
    if (b.records < 5 && b.codec === 0) continue
    assert.equal(b.codec, CODECS[codec], `batch at offset ${b.baseOffset} (${b.records} records) stored ${codec}`)
  }
  assert.ok(
    batches.some((b) => b.codec === CODECS[codec]),
    `some batch is ${codec}`,
  )
}
