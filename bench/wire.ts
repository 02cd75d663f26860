// Kafka wire helpers for the benchmark's load generator: request frames built with the project's
// own schema encoder (src/protocol), and the few response fields the benchmark reads.
//
// Hot-path requests are split into a 12-byte head (size, api key, version, correlation id) that
// is fresh per request and an immutable body shared by every request of a run, so the load
// generator sends them with one writev and never copies or mutates a large buffer.
import { APIS, ApiKey } from '../src/protocol/apis.ts'
import { Reader } from '../src/protocol/reader.ts'
import { encodeRecordBatch, LOG_OVERHEAD, readInt64, type RecordInput } from '../src/protocol/record-batch.ts'
import { decode, encode, isFlexible } from '../src/protocol/schema.ts'
import { Writer } from '../src/protocol/writer.ts'
import { type FetchResponse } from '../src/protocol/messages/fetch-response.ts'

export const CLIENT_ID = 'cortado-bench'
export const PRODUCE_VERSION = 7
export const FETCH_VERSION = 11

function spec(apiKey: number) {
  const s = APIS.get(apiKey)
  if (s === undefined) throw new Error(`unknown api ${apiKey}`)
  return s
}

/** A whole request frame (size prefix included) for any API the broker speaks. */
export function requestFrame(apiKey: number, version: number, correlationId: number, body: unknown): Buffer {
  const s = spec(apiKey)
  const w = new Writer()
  w.writeInt32(0).writeInt16(apiKey).writeInt16(version).writeInt32(correlationId).writeString(CLIENT_ID)
  if (isFlexible(s.request, version)) w.writeUVarint(0) // request header v2: tagged fields
  encode(s.request, version, body, w)
  const frame = w.toBuffer()
  frame.writeInt32BE(frame.length - 4, 0)
  return frame
}

/** Decodes a response frame (size prefix already removed). */
export function decodeResponse<T>(apiKey: number, version: number, frame: Buffer): { correlationId: number; body: T } {
  const s = spec(apiKey)
  const r = new Reader(frame)
  const correlationId = r.readInt32()
  if (isFlexible(s.response, version) && apiKey !== ApiKey.ApiVersions) {
    const n = r.readUVarint()
    for (let i = 0; i < n; i++) {
      r.readUVarint()
      r.readRaw(r.readUVarint())
    }
  }
  return { correlationId, body: decode<T>(s.response, version, r) }
}

/** Not Kafka: a request key bench/baseline-server.ts answers with its counters as JSON. */
export const BASELINE_STATS_API_KEY = 32767

/** The 12-byte head of a request: size, api key, version, correlation id. */
export const HEAD_SIZE = 12

/** A request whose body (everything after the correlation id) is identical every time. */
export interface RequestTemplate {
  /** Bytes after the correlation id: client id, then the request body. */
  readonly tail: Buffer
  readonly apiKey: number
  readonly version: number
  /** Whole frame length, size prefix included. */
  readonly frameBytes: number
}

export function template(apiKey: number, version: number, body: unknown): RequestTemplate {
  const frame = requestFrame(apiKey, version, 0, body)
  return { tail: frame.subarray(HEAD_SIZE), apiKey, version, frameBytes: frame.length }
}

export function head(t: RequestTemplate, correlationId: number): Buffer {
  const h = Buffer.allocUnsafe(HEAD_SIZE)
  h.writeInt32BE(t.frameBytes - 4, 0)
  h.writeInt16BE(t.apiKey, 4)
  h.writeInt16BE(t.version, 6)
  h.writeInt32BE(correlationId, 8)
  return h
}

/** One uncompressed v2 batch of `count` records with null keys and `size`-byte values. */
export function makeBatch(count: number, size: number): Buffer {
  const records: RecordInput[] = []
  for (let i = 0; i < count; i++) {
    const value = Buffer.alloc(size)
    for (let j = 0; j < size; j++) value[j] = 97 + ((i + j) % 26)
    records.push({ key: null, value })
  }
  return encodeRecordBatch({ records })
}

/** Produce v7 template: acks=-1, one batch for partition 0 of `topic`. */
export function produceTemplate(topic: string, batch: Buffer): RequestTemplate {
  return template(ApiKey.Produce, PRODUCE_VERSION, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30_000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }],
  })
}

/**
 * Reads the first partition's error code of a Produce v7 response (header v0, then responses[0]:
 * name, partitionResponses[0]: index, errorCode, baseOffset...). Returns -1000 if the frame is too
 * short to hold one.
 */
export function produceResponseError(frame: Buffer): number {
  // correlationId(4) topics(4) nameLen(2) name partitions(4) index(4) errorCode(2)
  if (frame.length < 10) return -1000
  const nameLen = frame.readInt16BE(8)
  const at = 10 + Math.max(0, nameLen) + 8
  if (frame.length < at + 2) return -1000
  return frame.readInt16BE(at)
}

/** Fetch v11 request body for partition 0 of `topic` from `offset`. */
export function fetchBody(topic: string, offset: number, maxBytes: number): unknown {
  return {
    replicaId: -1,
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: -1,
            fetchOffset: offset,
            logStartOffset: -1,
            partitionMaxBytes: maxBytes,
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  }
}

export interface FetchResult {
  errorCode: number
  highWatermark: number
  records: Buffer
}

export function parseFetchResponse(frame: Buffer): FetchResult {
  const { body } = decodeResponse<FetchResponse>(ApiKey.Fetch, FETCH_VERSION, frame)
  if (body.errorCode !== 0) return { errorCode: body.errorCode, highWatermark: -1, records: Buffer.alloc(0) }
  const p = body.responses[0]?.partitions[0]
  if (p === undefined) return { errorCode: -1000, highWatermark: -1, records: Buffer.alloc(0) }
  return { errorCode: p.errorCode, highWatermark: p.highWatermark, records: p.records ?? Buffer.alloc(0) }
}

/** Whole batches in a fetched records blob: record count and the offset after the last one. */
export function walkBatches(records: Buffer): { records: number; nextOffset: number; bytes: number } {
  let pos = 0
  let count = 0
  let nextOffset = -1
  while (records.length - pos >= 61) {
    const batchLength = records.readInt32BE(pos + 8)
    const end = pos + LOG_OVERHEAD + batchLength
    if (end > records.length) break // a partial batch at the end of a fetch
    const baseOffset = readInt64(records, pos)
    const lastOffsetDelta = records.readInt32BE(pos + 23)
    count += records.readInt32BE(pos + 57)
    nextOffset = baseOffset + lastOffsetDelta + 1
    pos = end
  }
  return { records: count, nextOffset, bytes: pos }
}
