// A minimal Kafka wire client over a raw socket, for tests that need exact bytes on the wire:
// malformed frames, pipelining, old versions.
import { connect, type Socket } from 'node:net'
import { APIS } from '../../src/protocol/apis.ts'
import { type FetchResponse } from '../../src/protocol/messages/fetch-response.ts'
import {
  BATCH_HEADER_SIZE,
  type DecodedRecord,
  decodeRecords,
  readBatchHeader,
} from '../../src/protocol/record-batch.ts'
import { Reader } from '../../src/protocol/reader.ts'
import { decode, encode, isFlexible } from '../../src/protocol/schema.ts'
import { Writer } from '../../src/protocol/writer.ts'

export class RawClient {
  readonly socket: Socket
  /** Received bytes not yet framed, kept as chunks so a large response is joined once, not per chunk. */
  private chunks: Buffer[] = []
  private chunkBytes = 0
  private waiting: ((frame: Buffer) => void)[] = []
  private frames: Buffer[] = []
  readonly closed: Promise<void>

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d)
      this.chunkBytes += d.length
      while (this.chunkBytes >= 4) {
        if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)]
        const size = this.chunks[0].readInt32BE(0)
        if (this.chunkBytes < 4 + size) break
        const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks)
        const frame = all.subarray(4, 4 + size)
        const rest = all.subarray(4 + size)
        this.chunks = rest.length > 0 ? [rest] : []
        this.chunkBytes = rest.length
        const w = this.waiting.shift()
        if (w) w(frame)
        else this.frames.push(frame)
      }
    })
    socket.on('error', () => undefined)
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawClient(s)))
      s.once('error', reject)
    })
  }

  /** The next response frame (after the size prefix). */
  nextFrame(timeoutMs = 5000): Promise<Buffer> {
    const ready = this.frames.shift()
    if (ready) return Promise.resolve(ready)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response within timeout')), timeoutMs)
      timer.unref()
      this.waiting.push((f) => {
        clearTimeout(timer)
        resolve(f)
      })
    })
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Encodes a complete request frame (size prefix, header, body) for an API the broker knows. */
export function requestFrame(
  apiKey: number,
  version: number,
  correlationId: number,
  body: unknown,
  clientId: string | null = 'raw-test',
): Buffer {
  const spec = APIS.get(apiKey)
  if (spec === undefined) throw new Error(`unknown api ${apiKey}`)
  const w = new Writer()
  w.writeInt32(0).writeInt16(apiKey).writeInt16(version).writeInt32(correlationId).writeString(clientId)
  if (isFlexible(spec.request, version)) w.writeUVarint(0)
  encode(spec.request, version, body, w)
  const buf = w.toBuffer()
  buf.writeInt32BE(buf.length - 4, 0)
  return buf
}

/** A frame with arbitrary header fields and body bytes. */
export function rawFrame(apiKey: number, version: number, correlationId: number, body: Buffer): Buffer {
  const w = new Writer()
  w.writeInt32(0)
    .writeInt16(apiKey)
    .writeInt16(version)
    .writeInt32(correlationId)
    .writeString('raw-test')
    .writeRaw(body)
  const buf = w.toBuffer()
  buf.writeInt32BE(buf.length - 4, 0)
  return buf
}

/** Decodes a response frame: correlation id and body. */
export function parseResponse<T>(apiKey: number, version: number, frame: Buffer): { correlationId: number; body: T } {
  const spec = APIS.get(apiKey)!
  const r = new Reader(frame)
  const correlationId = r.readInt32()
  if (isFlexible(spec.response, version) && apiKey !== 18) {
    const tags = r.readUVarint()
    for (let i = 0; i < tags; i++) {
      r.readUVarint()
      r.readRaw(r.readUVarint())
    }
  }
  return { correlationId, body: decode<T>(spec.response, version, r) }
}

/** A stored record with the producer id of its batch. */
export interface StoredRecord extends DecodedRecord {
  producerId: number
}

/** Every record of a partition, from its start to the end, read with raw Fetch v4 requests. */
export async function readPartitionRecords(port: number, topic: string, partition: number): Promise<StoredRecord[]> {
  const c = await RawClient.connect(port)
  const out: StoredRecord[] = []
  try {
    let offset = 0
    for (let corr = 1; ; corr++) {
      c.write(
        requestFrame(1, 4, corr, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 4 << 20,
          isolationLevel: 0,
          topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 4 << 20 }] }],
        }),
      )
      const p = parseResponse<FetchResponse>(1, 4, await c.nextFrame()).body.responses[0].partitions[0]
      if (p.errorCode !== 0)
        throw new Error(`fetch of ${topic}-${partition} at ${offset} failed with error ${p.errorCode}`)
      const records = p.records ?? Buffer.alloc(0)
      if (records.length === 0) return out
      for (let pos = 0; pos + BATCH_HEADER_SIZE <= records.length;) {
        const h = readBatchHeader(records, pos)
        const size = h.batchLength + 12
        if (pos + size > records.length) break
        for (const r of decodeRecords(records.subarray(pos, pos + size))) {
          if (r.offset >= offset) out.push({ ...r, producerId: h.producerId })
        }
        offset = h.baseOffset + h.lastOffsetDelta + 1
        pos += size
      }
      if (offset >= p.highWatermark) return out
    }
  } finally {
    c.close()
  }
}
