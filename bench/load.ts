// The benchmark's load generator: raw Kafka protocol over TCP, no client library in the way.
//
// Produce: C connections, each keeping up to P Produce v7 requests in flight (pipelined; acks=-1,
// one uncompressed batch of K records of S bytes per request, the same bytes every time). Runs for
// a warm-up period and then a measured window; throughput counts the acknowledgements that arrive
// inside the window, latency is send → response of those requests.
// Consume: one connection, Fetch v11 from offset 0 to the high watermark seen by the first fetch,
// one fetch at a time with a large max bytes.
//
// The same code drives the broker and the baseline server; the only difference is how a fetch
// response's records are counted ('kafka': walk the record batches; 'baseline': the records field
// is raw bytes of the baseline's file of produce frames, so records = bytes / frame size × K).
import { connect, type Socket } from 'node:net'
import { FrameReader } from './frames.ts'
import {
  FETCH_VERSION,
  fetchBody,
  head,
  makeBatch,
  parseFetchResponse,
  produceResponseError,
  produceTemplate,
  requestFrame,
  type RequestTemplate,
  walkBatches,
} from './wire.ts'
import { ApiKey } from '../src/protocol/apis.ts'

export interface ProduceOptions {
  host: string
  port: number
  topic: string
  /** Records per request (one batch). */
  records: number
  /** Value bytes per record. */
  recordSize: number
  connections: number
  inflight: number
  warmupMs: number
  durationMs: number
  /** How to open each connection (default: plain TCP to host:port): TLS, SASL (bench:broker's security scenario). */
  connect?: () => Promise<Socket>
}

export interface LatencySummary {
  p50: number
  p99: number
  max: number
  mean: number
}

export interface ProduceResult {
  /** Requests acknowledged inside the measured window. */
  requests: number
  recordsPerSec: number
  /** Record value bytes per second, in MB (10^6). */
  mbPerSec: number
  requestsPerSec: number
  latencyMs: LatencySummary
  /** Every measured request's latency in ms, in completion order. */
  latencies: number[]
  /** Records acknowledged over the whole run, warm-up included (what a consumer should find). */
  totalRecords: number
  /** Produce responses with a non-zero error code (any at all makes the run invalid). */
  errors: number
  firstError: string | undefined
  /** The frame size of one request, size prefix included. */
  frameBytes: number
}

/** How long a server may leave a request unanswered before the run fails. */
const STALL_MS = 30_000

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
    max: sorted.length > 0 ? sorted[sorted.length - 1] : NaN,
    mean: sum / sorted.length,
  }
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true })
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/** Sends one request and resolves with its response frame (size prefix removed). */
export async function call(host: string, port: number, frame: Buffer): Promise<Buffer> {
  const socket = await open(host, port)
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const reader = new FrameReader()
      socket.on('data', (chunk: Buffer) => {
        reader.push(chunk)
        const f = reader.next()
        if (f !== null) resolve(f.subarray(4))
      })
      socket.once('error', reject)
      socket.once('close', () => reject(new Error('connection closed before the response')))
      socket.write(frame)
    })
  } finally {
    socket.destroy()
  }
}

export async function runProduce(o: ProduceOptions): Promise<ProduceResult> {
  const tpl: RequestTemplate = produceTemplate(o.topic, makeBatch(o.records, o.recordSize))
  const sockets = await Promise.all(
    Array.from({ length: o.connections }, () => (o.connect === undefined ? open(o.host, o.port) : o.connect())),
  )
  const start = performance.now()
  const measureFrom = start + o.warmupMs
  const stopAt = measureFrom + o.durationMs
  const latencies: number[] = []
  let measured = 0
  let totalRequests = 0
  let errors = 0
  let firstError: string | undefined
  let stopping = false

  const finished = sockets.map(
    (socket) =>
      new Promise<void>((resolve, reject) => {
        const reader = new FrameReader()
        // Correlation ids and send times of the requests in flight, oldest first.
        const ids: number[] = []
        const sentAt: number[] = []
        let nextId = 1
        let settled = false
        const done = (err?: Error) => {
          if (settled) return
          settled = true
          socket.destroy()
          if (err === undefined) resolve()
          else reject(err)
        }
        const fill = () => {
          if (stopping || ids.length >= o.inflight) return
          socket.cork()
          while (ids.length < o.inflight) {
            const id = nextId++
            ids.push(id)
            sentAt.push(performance.now())
            socket.write(head(tpl, id))
            socket.write(tpl.tail)
          }
          socket.uncork()
        }
        socket.on('data', (chunk: Buffer) => {
          reader.push(chunk)
          const now = performance.now()
          for (let f = reader.next(); f !== null; f = reader.next()) {
            const id = f.readInt32BE(4)
            const expected = ids.shift()
            const t0 = sentAt.shift()!
            if (id !== expected) {
              done(new Error(`response correlation id ${id}, expected ${expected}`))
              return
            }
            const code = produceResponseError(f.subarray(4))
            if (code !== 0) {
              errors++
              firstError ??= `produce error code ${code}`
              continue
            }
            totalRequests++
            if (now >= measureFrom && now <= stopAt) {
              measured++
              latencies.push(now - t0)
            }
          }
          if (now >= stopAt) stopping = true
          if (stopping && ids.length === 0) done()
          else fill()
        })
        socket.once('error', (err) => done(err))
        socket.once('close', () =>
          done(stopping && ids.length === 0 ? undefined : new Error('connection closed by the server')),
        )
        fill()
      }),
  )
  // A connection that gets no response for a while still has to notice the end of the window;
  // a server that stops answering altogether fails the run instead of hanging it.
  const timer = setInterval(() => {
    const now = performance.now()
    if (now >= stopAt) stopping = true
    if (now >= stopAt + STALL_MS)
      for (const s of sockets) s.destroy(new Error(`no response within ${STALL_MS / 1000} s`))
  }, 20)
  try {
    await Promise.all(finished)
  } finally {
    clearInterval(timer)
    for (const s of sockets) s.destroy()
  }
  const seconds = o.durationMs / 1000
  return {
    requests: measured,
    requestsPerSec: measured / seconds,
    recordsPerSec: (measured * o.records) / seconds,
    mbPerSec: (measured * o.records * o.recordSize) / seconds / 1e6,
    latencyMs: summarize(latencies),
    latencies,
    totalRecords: totalRequests * o.records,
    errors,
    firstError,
    frameBytes: tpl.frameBytes,
  }
}

export interface ConsumeOptions {
  host: string
  port: number
  topic: string
  maxBytes: number
  mode: 'kafka' | 'baseline'
  /** For 'baseline': produce frame size and records per frame, to turn bytes into records. */
  frameBytes: number
  recordsPerFrame: number
  recordSize: number
}

export interface ConsumeResult {
  records: number
  fetches: number
  seconds: number
  recordsPerSec: number
  mbPerSec: number
  /** Bytes of record data received (batches, or raw file bytes for the baseline). */
  bytes: number
  error: string | undefined
}

export async function runConsume(o: ConsumeOptions): Promise<ConsumeResult> {
  const socket = await open(o.host, o.port)
  const reader = new FrameReader()
  let waiter: { resolve: (f: Buffer) => void; reject: (err: Error) => void } | null = null
  let failure: Error | null = null
  const fail = (err: Error) => {
    failure ??= err
    const w = waiter
    waiter = null
    w?.reject(failure)
  }
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk)
    const f = reader.next()
    if (f !== null && waiter !== null) {
      const w = waiter
      waiter = null
      w.resolve(f.subarray(4))
    }
  })
  socket.on('close', () => fail(new Error('connection closed by the server')))
  socket.on('error', (err) => fail(err))
  const fetch = (id: number, offset: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      if (failure !== null) {
        reject(failure)
        return
      }
      const timer = setTimeout(() => fail(new Error(`no fetch response within ${STALL_MS / 1000} s`)), STALL_MS)
      waiter = {
        resolve: (f) => {
          clearTimeout(timer)
          resolve(f)
        },
        reject: (err) => {
          clearTimeout(timer)
          reject(err)
        },
      }
      socket.write(requestFrame(ApiKey.Fetch, FETCH_VERSION, id, fetchBody(o.topic, offset, o.maxBytes)))
    })

  const start = performance.now()
  let offset = 0
  let end = -1
  let records = 0
  let bytes = 0
  let fetches = 0
  let error: string | undefined
  try {
    while (end < 0 || offset < end) {
      const r = parseFetchResponse(await fetch(++fetches, offset))
      if (r.errorCode !== 0) {
        error = `fetch error code ${r.errorCode} at offset ${offset}`
        break
      }
      if (end < 0) end = r.highWatermark
      if (o.mode === 'kafka') {
        const w = walkBatches(r.records)
        if (w.records === 0) {
          if (offset < end) error = `fetch at offset ${offset} returned no whole batch (high watermark ${end})`
          break
        }
        if (w.nextOffset <= offset) {
          error = `fetch at offset ${offset} went backwards to ${w.nextOffset}`
          break
        }
        records += w.records
        bytes += w.bytes
        offset = w.nextOffset
      } else {
        if (r.records.length === 0) break
        bytes += r.records.length
        offset += r.records.length
      }
    }
  } finally {
    socket.removeAllListeners('close')
    socket.destroy()
  }
  const seconds = (performance.now() - start) / 1000
  if (o.mode === 'baseline') records = Math.floor(bytes / o.frameBytes) * o.recordsPerFrame
  return {
    records,
    fetches,
    seconds,
    bytes,
    error,
    recordsPerSec: records / seconds,
    mbPerSec: (records * o.recordSize) / seconds / 1e6,
  }
}
