// Kafka record batch v2 (magic 2): header layout, produce-side validation, a simple encoder and a
// decoder for uncompressed batches. Layout per docs/reference/kafka-protocol.md §3
// (DefaultRecordBatch). Everything here is bounded: malformed input yields a RecordBatchError /
// error result, never a crash or an unbounded loop.

import { ErrorCode } from './errors.ts'
import { crc32c } from './crc32c.ts'

export const BATCH_HEADER_SIZE = 61
/** baseOffset (8) + batchLength (4): bytes before the part counted by batchLength. */
export const LOG_OVERHEAD = 12
/** Smallest legal batchLength: a header with no records. */
export const MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD

export const BASE_OFFSET_OFFSET = 0
export const BATCH_LENGTH_OFFSET = 8
export const PARTITION_LEADER_EPOCH_OFFSET = 12
export const MAGIC_OFFSET = 16
export const CRC_OFFSET = 17
export const ATTRIBUTES_OFFSET = 21
export const LAST_OFFSET_DELTA_OFFSET = 23
export const BASE_TIMESTAMP_OFFSET = 27
export const MAX_TIMESTAMP_OFFSET = 35
export const PRODUCER_ID_OFFSET = 43
export const PRODUCER_EPOCH_OFFSET = 51
export const BASE_SEQUENCE_OFFSET = 53
export const RECORDS_COUNT_OFFSET = 57

export const ATTR_COMPRESSION_MASK = 0x07
export const ATTR_TIMESTAMP_TYPE_MASK = 0x08
export const ATTR_TRANSACTIONAL_MASK = 0x10
export const ATTR_CONTROL_MASK = 0x20
export const ATTR_DELETE_HORIZON_MASK = 0x40

export const COMPRESSION_NONE = 0
export const COMPRESSION_GZIP = 1
export const COMPRESSION_SNAPPY = 2
export const COMPRESSION_LZ4 = 3
export const COMPRESSION_ZSTD = 4

export class RecordBatchError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.name = 'RecordBatchError'
    this.code = code
  }
}

export interface BatchHeader {
  baseOffset: number
  batchLength: number
  partitionLeaderEpoch: number
  magic: number
  crc: number
  attributes: number
  lastOffsetDelta: number
  baseTimestamp: number
  maxTimestamp: number
  producerId: number
  producerEpoch: number
  baseSequence: number
  recordsCount: number
}

export interface RecordHeader {
  key: string
  value: Buffer | null
}

export interface DecodedRecord {
  offset: number
  timestamp: number
  /** Views into the batch buffer (not copies). */
  key: Buffer | null
  value: Buffer | null
  headers: RecordHeader[]
}

export interface RecordInput {
  key: Buffer | null
  value: Buffer | null
  headers?: RecordHeader[]
  timestamp?: number
}

export interface EncodeBatchOptions {
  baseOffset?: number
  records: RecordInput[]
  producerId?: number
  producerEpoch?: number
  baseSequence?: number
  attributes?: number
  partitionLeaderEpoch?: number
}

const TWO_32 = 4294967296

/** Big-endian int64 as a Number without allocating a BigInt (exact below 2^53). */
export function readInt64(buf: Uint8Array, pos: number): number {
  const hi = (buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3] | 0
  const lo = ((buf[pos + 4] << 24) | (buf[pos + 5] << 16) | (buf[pos + 6] << 8) | buf[pos + 7]) >>> 0
  return hi * TWO_32 + lo
}

/** Writes a Number (integer, |v| < 2^53) as a big-endian int64. */
export function writeInt64(buf: Buffer, value: number, pos: number): void {
  const hi = Math.floor(value / TWO_32)
  buf.writeInt32BE(hi, pos)
  buf.writeUInt32BE(value - hi * TWO_32, pos + 4)
}

/** Total bytes a batch occupies on the wire / on disk. */
export function batchSize(h: BatchHeader): number {
  return h.batchLength + LOG_OVERHEAD
}

/** Reads the 61-byte header at pos. The caller must ensure buf holds at least pos + 61 bytes. */
export function readBatchHeader(buf: Buffer, pos: number): BatchHeader {
  return {
    baseOffset: Number(buf.readBigInt64BE(pos + BASE_OFFSET_OFFSET)),
    batchLength: buf.readInt32BE(pos + BATCH_LENGTH_OFFSET),
    partitionLeaderEpoch: buf.readInt32BE(pos + PARTITION_LEADER_EPOCH_OFFSET),
    magic: buf.readInt8(pos + MAGIC_OFFSET),
    crc: buf.readUInt32BE(pos + CRC_OFFSET),
    attributes: buf.readInt16BE(pos + ATTRIBUTES_OFFSET),
    lastOffsetDelta: buf.readInt32BE(pos + LAST_OFFSET_DELTA_OFFSET),
    baseTimestamp: Number(buf.readBigInt64BE(pos + BASE_TIMESTAMP_OFFSET)),
    maxTimestamp: Number(buf.readBigInt64BE(pos + MAX_TIMESTAMP_OFFSET)),
    producerId: Number(buf.readBigInt64BE(pos + PRODUCER_ID_OFFSET)),
    producerEpoch: buf.readInt16BE(pos + PRODUCER_EPOCH_OFFSET),
    baseSequence: buf.readInt32BE(pos + BASE_SEQUENCE_OFFSET),
    recordsCount: buf.readInt32BE(pos + RECORDS_COUNT_OFFSET),
  }
}

/**
 * Assigns a batch's base offset and partition leader epoch in place. Neither field is covered by
 * the CRC, so the batch stays valid.
 */
export function setBatchOffsets(buf: Buffer, pos: number, baseOffset: number, partitionLeaderEpoch: number): void {
  writeInt64(buf, baseOffset, pos + BASE_OFFSET_OFFSET)
  buf.writeInt32BE(partitionLeaderEpoch, pos + PARTITION_LEADER_EPOCH_OFFSET)
}

// ---- varints (protobuf-style zig-zag, DefaultRecord / ByteUtils) ----

// Reads varints within [pos, end); every read is bounds-checked and throws RecordBatchError.
class Cursor {
  buf: Buffer
  pos: number
  end: number
  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  private unsigned(maxBytes: number): number {
    let raw = 0
    let mul = 1
    for (let i = 0; i < maxBytes; i++) {
      if (this.pos >= this.end) throw invalid('varint runs past the end of the record')
      const b = this.buf[this.pos++]
      raw += (b & 0x7f) * mul
      if (b < 0x80) return raw
      mul *= 128
    }
    throw invalid('varint is too long')
  }

  /** Zig-zag int32 (at most 5 bytes). */
  varint(): number {
    const raw = this.unsigned(5)
    if (raw >= TWO_32) throw invalid('varint overflows int32')
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2
  }

  /** Zig-zag int64 (at most 10 bytes), as a Number. */
  varlong(): number {
    const raw = this.unsigned(10)
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2
  }

  /** Returns a view of the next n bytes, or null when n < 0 (Kafka's null encoding). */
  bytes(n: number): Buffer | null {
    if (n < 0) return null
    if (n > this.end - this.pos) throw invalid('field runs past the end of the record')
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  skip(n: number): void {
    if (n > this.end - this.pos) throw invalid('field runs past the end of the record')
    if (n > 0) this.pos += n
  }
}

function invalid(message: string): RecordBatchError {
  return new RecordBatchError(ErrorCode.INVALID_RECORD, message)
}

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1
}

function sizeOfVarint(v: number): number {
  let u = zigzag(v)
  let n = 1
  while (u >= 128) {
    u = Math.floor(u / 128)
    n++
  }
  return n
}

function writeVarint(buf: Buffer, pos: number, v: number): number {
  let u = zigzag(v)
  while (u >= 128) {
    buf[pos++] = (u % 128) | 0x80
    u = Math.floor(u / 128)
  }
  buf[pos++] = u
  return pos
}

/**
 * Walks `count` records in [pos, end), checking every length and that they exactly fill the
 * range. With `out`, also decodes them (key/value are views into buf). Offset deltas must be
 * 0..count-1 (as produced) unless maxOffsetDelta is given: stored batches rewritten by the log
 * cleaner keep their original deltas, so they only strictly increase up to lastOffsetDelta.
 */
function walkRecords(
  buf: Buffer,
  pos: number,
  end: number,
  count: number,
  baseOffset: number,
  baseTimestamp: number,
  logAppendTime: number | null,
  out: DecodedRecord[] | null,
  maxOffsetDelta: number | null = null,
): void {
  const c = new Cursor(buf, pos, end)
  let prevDelta = -1
  for (let i = 0; i < count; i++) {
    c.end = end
    const length = c.varint()
    if (length < 0 || length > end - c.pos) throw invalid(`record ${i} length ${length} overruns the batch`)
    const recordEnd = c.pos + length
    c.end = recordEnd
    c.skip(1) // attributes (unused)
    const timestampDelta = c.varlong()
    const offsetDelta = c.varint()
    if (maxOffsetDelta === null ? offsetDelta !== i : offsetDelta <= prevDelta || offsetDelta > maxOffsetDelta) {
      throw invalid(`record ${i} has offset delta ${offsetDelta}`)
    }
    prevDelta = offsetDelta
    if (out === null) {
      // Validation only (the produce path): check the structure without building views.
      c.skip(c.varint()) // key
      c.skip(c.varint()) // value
      const headerCount = c.varint()
      if (headerCount < 0) throw invalid(`record ${i} has a negative header count`)
      for (let h = 0; h < headerCount; h++) {
        const keyLength = c.varint()
        if (keyLength < 0) throw invalid(`record ${i} has a header with a null key`)
        c.skip(keyLength)
        c.skip(c.varint())
      }
      if (c.pos !== recordEnd) throw invalid(`record ${i} length does not match its contents`)
      continue
    }
    const key = c.bytes(c.varint())
    const value = c.bytes(c.varint())
    const headerCount = c.varint()
    if (headerCount < 0) throw invalid(`record ${i} has a negative header count`)
    const headers: RecordHeader[] = []
    for (let h = 0; h < headerCount; h++) {
      const keyLength = c.varint()
      if (keyLength < 0) throw invalid(`record ${i} has a header with a null key`)
      const headerKey = c.bytes(keyLength)
      const headerValue = c.bytes(c.varint())
      headers.push({ key: headerKey === null ? '' : headerKey.toString('utf8'), value: headerValue })
    }
    if (c.pos !== recordEnd) throw invalid(`record ${i} length does not match its contents`)
    out.push({
      offset: baseOffset + offsetDelta,
      timestamp: logAppendTime ?? baseTimestamp + timestampDelta,
      key,
      value,
      headers,
    })
  }
  if (c.pos !== end) throw invalid(`records do not fill the batch (${end - c.pos} bytes left over)`)
}

export type ValidationResult = { batches: BatchHeader[] } | { error: number; message: string }

/**
 * Checks a produce request's records blob: one or more complete, well-formed v2 batches as a
 * client may send them. Never throws.
 */
export function validateProducedBatches(records: Buffer): ValidationResult {
  try {
    return validate(records)
  } catch (err) {
    if (err instanceof RecordBatchError) return { error: err.code, message: err.message }
    return { error: ErrorCode.CORRUPT_MESSAGE, message: `malformed record batch: ${String(err)}` }
  }
}

function validate(records: Buffer): ValidationResult {
  const len = records.length
  if (len === 0) return { error: ErrorCode.INVALID_RECORD, message: 'no record batches' }
  const batches: BatchHeader[] = []
  let pos = 0
  while (pos < len) {
    const remaining = len - pos
    // The magic byte sits at offset 16 in every message format, so look at it first.
    if (remaining <= MAGIC_OFFSET) {
      return { error: ErrorCode.CORRUPT_MESSAGE, message: `truncated record batch at byte ${pos}` }
    }
    const magic = records.readInt8(pos + MAGIC_OFFSET)
    if (magic === 0 || magic === 1)
      return { error: ErrorCode.INVALID_RECORD, message: 'message format v0/v1 not supported' }
    if (magic !== 2) return { error: ErrorCode.INVALID_RECORD, message: `unknown record batch magic ${magic}` }
    if (remaining < BATCH_HEADER_SIZE) {
      return { error: ErrorCode.CORRUPT_MESSAGE, message: `truncated record batch header at byte ${pos}` }
    }
    const batchLength = records.readInt32BE(pos + BATCH_LENGTH_OFFSET)
    if (batchLength < MIN_BATCH_LENGTH) {
      return { error: ErrorCode.CORRUPT_MESSAGE, message: `record batch length ${batchLength} is too small` }
    }
    if (batchLength > remaining - LOG_OVERHEAD) {
      return { error: ErrorCode.CORRUPT_MESSAGE, message: `record batch length ${batchLength} overruns the request` }
    }
    const end = pos + LOG_OVERHEAD + batchLength
    const h = readBatchHeader(records, pos)
    if (crc32c(records, pos + ATTRIBUTES_OFFSET, end) !== h.crc) {
      return { error: ErrorCode.CORRUPT_MESSAGE, message: `record batch CRC mismatch at byte ${pos}` }
    }
    const codec = h.attributes & ATTR_COMPRESSION_MASK
    if (codec > COMPRESSION_ZSTD) {
      return { error: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, message: `unknown compression codec ${codec}` }
    }
    if ((h.attributes & ATTR_CONTROL_MASK) !== 0) {
      return { error: ErrorCode.INVALID_RECORD, message: 'clients may not produce control batches' }
    }
    if (h.recordsCount <= 0) return { error: ErrorCode.INVALID_RECORD, message: 'record batch has no records' }
    if (h.lastOffsetDelta + 1 !== h.recordsCount) {
      return {
        error: ErrorCode.INVALID_RECORD,
        message: `lastOffsetDelta ${h.lastOffsetDelta} does not match record count ${h.recordsCount}`,
      }
    }
    if (h.producerId >= 0 && h.baseSequence < 0) {
      return { error: ErrorCode.INVALID_RECORD, message: 'idempotent batch without a base sequence' }
    }
    if (codec === COMPRESSION_NONE) {
      // Every record takes at least 7 bytes, which bounds the walk before it starts.
      if (h.recordsCount > (end - pos - BATCH_HEADER_SIZE) / 7) {
        return { error: ErrorCode.INVALID_RECORD, message: `record count ${h.recordsCount} does not fit the batch` }
      }
      walkRecords(records, pos + BATCH_HEADER_SIZE, end, h.recordsCount, 0, 0, null, null)
    }
    batches.push(h)
    pos = end
  }
  return { batches }
}

/**
 * Decodes the records of the uncompressed batch at the start of `batch` (as stored: offset deltas
 * may have gaps after compaction). Throws RecordBatchError.
 */
export function decodeRecords(batch: Buffer): DecodedRecord[] {
  if (batch.length < BATCH_HEADER_SIZE)
    throw new RecordBatchError(ErrorCode.CORRUPT_MESSAGE, 'truncated record batch header')
  const h = readBatchHeader(batch, 0)
  if (h.magic !== 2) throw invalid(`unknown record batch magic ${h.magic}`)
  if (h.batchLength < MIN_BATCH_LENGTH || h.batchLength > batch.length - LOG_OVERHEAD) {
    throw new RecordBatchError(ErrorCode.CORRUPT_MESSAGE, `record batch length ${h.batchLength} is out of bounds`)
  }
  const codec = h.attributes & ATTR_COMPRESSION_MASK
  if (codec !== COMPRESSION_NONE) {
    throw new RecordBatchError(
      ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
      `cannot decode compressed batch (codec ${codec})`,
    )
  }
  const end = LOG_OVERHEAD + h.batchLength
  if (h.recordsCount < 0 || h.recordsCount > (end - BATCH_HEADER_SIZE) / 7) {
    throw invalid(`record count ${h.recordsCount} does not fit the batch`)
  }
  const logAppendTime = (h.attributes & ATTR_TIMESTAMP_TYPE_MASK) !== 0 ? h.maxTimestamp : null
  const out: DecodedRecord[] = []
  walkRecords(
    batch,
    BATCH_HEADER_SIZE,
    end,
    h.recordsCount,
    h.baseOffset,
    h.baseTimestamp,
    logAppendTime,
    out,
    h.lastOffsetDelta,
  )
  return out
}

/** Encodes an uncompressed v2 batch with a correct CRC. */
export function encodeRecordBatch(opts: EncodeBatchOptions): Buffer {
  const records = opts.records
  if (records.length === 0) throw invalid('a record batch needs at least one record')
  const attributes = opts.attributes ?? 0
  if ((attributes & ATTR_COMPRESSION_MASK) !== 0) throw invalid('encodeRecordBatch only writes uncompressed batches')
  const now = Date.now()
  const baseTimestamp = records[0].timestamp ?? now
  let maxTimestamp = -1

  // First pass: sizes, so the batch is written into one exact allocation.
  const headerKeys: Buffer[][] = []
  const bodySizes: number[] = []
  let total = BATCH_HEADER_SIZE
  for (let i = 0; i < records.length; i++) {
    const r = records[i]
    const ts = r.timestamp ?? now
    if (ts > maxTimestamp) maxTimestamp = ts
    let body = 1 + sizeOfVarint(ts - baseTimestamp) + sizeOfVarint(i)
    body += r.key === null ? 1 : sizeOfVarint(r.key.length) + r.key.length
    body += r.value === null ? 1 : sizeOfVarint(r.value.length) + r.value.length
    const headers = r.headers ?? []
    const keys: Buffer[] = []
    body += sizeOfVarint(headers.length)
    for (const h of headers) {
      const k = Buffer.from(h.key, 'utf8')
      keys.push(k)
      body += sizeOfVarint(k.length) + k.length
      body += h.value === null ? 1 : sizeOfVarint(h.value.length) + h.value.length
    }
    headerKeys.push(keys)
    bodySizes.push(body)
    total += sizeOfVarint(body) + body
  }

  const buf = Buffer.allocUnsafe(total)
  writeInt64(buf, opts.baseOffset ?? 0, BASE_OFFSET_OFFSET)
  buf.writeInt32BE(total - LOG_OVERHEAD, BATCH_LENGTH_OFFSET)
  buf.writeInt32BE(opts.partitionLeaderEpoch ?? -1, PARTITION_LEADER_EPOCH_OFFSET)
  buf.writeInt8(2, MAGIC_OFFSET)
  buf.writeInt16BE(attributes, ATTRIBUTES_OFFSET)
  buf.writeInt32BE(records.length - 1, LAST_OFFSET_DELTA_OFFSET)
  writeInt64(buf, baseTimestamp, BASE_TIMESTAMP_OFFSET)
  writeInt64(buf, maxTimestamp, MAX_TIMESTAMP_OFFSET)
  writeInt64(buf, opts.producerId ?? -1, PRODUCER_ID_OFFSET)
  buf.writeInt16BE(opts.producerEpoch ?? -1, PRODUCER_EPOCH_OFFSET)
  buf.writeInt32BE(opts.baseSequence ?? -1, BASE_SEQUENCE_OFFSET)
  buf.writeInt32BE(records.length, RECORDS_COUNT_OFFSET)

  let pos = BATCH_HEADER_SIZE
  for (let i = 0; i < records.length; i++) {
    const r = records[i]
    pos = writeVarint(buf, pos, bodySizes[i])
    buf[pos++] = 0
    pos = writeVarint(buf, pos, (r.timestamp ?? now) - baseTimestamp)
    pos = writeVarint(buf, pos, i)
    pos = writeBytes(buf, pos, r.key)
    pos = writeBytes(buf, pos, r.value)
    const headers = r.headers ?? []
    pos = writeVarint(buf, pos, headers.length)
    for (let h = 0; h < headers.length; h++) {
      pos = writeBytes(buf, pos, headerKeys[i][h])
      pos = writeBytes(buf, pos, headers[h].value)
    }
  }
  buf.writeUInt32BE(crc32c(buf, ATTRIBUTES_OFFSET, total), CRC_OFFSET)
  return buf
}

function writeBytes(buf: Buffer, pos: number, b: Buffer | null): number {
  if (b === null) return writeVarint(buf, pos, -1)
  pos = writeVarint(buf, pos, b.length)
  b.copy(buf, pos)
  return pos + b.length
}

// ---- records as the log cleaner sees them ----

/** One record of a (decompressed) records section, with its key and the bytes after it. */
export interface RawRecord {
  attributes: number
  timestampDelta: number
  offsetDelta: number
  /** View of the key, or null. */
  key: Buffer | null
  /** False for a tombstone (null value). */
  hasValue: boolean
  /** View of everything from the key length to the end of the headers, copied verbatim on rewrite. */
  tail: Buffer
}

/**
 * Walks the `count` records of an uncompressed records section (the bytes after a batch header,
 * decompressed if need be), checking every length, that they exactly fill the section and that
 * offset deltas strictly increase up to lastOffsetDelta. Throws RecordBatchError.
 */
export function scanRecords(section: Buffer, count: number, lastOffsetDelta: number): RawRecord[] {
  if (count < 0 || count > section.length / 7) throw invalid(`record count ${count} does not fit the batch`)
  const out: RawRecord[] = []
  const end = section.length
  const c = new Cursor(section, 0, end)
  let prevDelta = -1
  for (let i = 0; i < count; i++) {
    c.end = end
    const length = c.varint()
    if (length < 0 || length > end - c.pos) throw invalid(`record ${i} length ${length} overruns the batch`)
    const recordEnd = c.pos + length
    c.end = recordEnd
    if (c.pos >= recordEnd) throw invalid(`record ${i} is empty`)
    const attributes = section[c.pos++]
    const timestampDelta = c.varlong()
    const offsetDelta = c.varint()
    if (offsetDelta <= prevDelta || offsetDelta > lastOffsetDelta)
      throw invalid(`record ${i} has offset delta ${offsetDelta}`)
    prevDelta = offsetDelta
    const tailStart = c.pos
    const key = c.bytes(c.varint())
    const valueLength = c.varint()
    c.skip(valueLength)
    const headerCount = c.varint()
    if (headerCount < 0) throw invalid(`record ${i} has a negative header count`)
    for (let h = 0; h < headerCount; h++) {
      const keyLength = c.varint()
      if (keyLength < 0) throw invalid(`record ${i} has a header with a null key`)
      c.skip(keyLength)
      c.skip(c.varint())
    }
    if (c.pos !== recordEnd) throw invalid(`record ${i} length does not match its contents`)
    out.push({
      attributes,
      timestampDelta,
      offsetDelta,
      key,
      hasValue: valueLength >= 0,
      tail: section.subarray(tailStart, recordEnd),
    })
  }
  if (c.pos !== end) throw invalid(`records do not fill the batch (${end - c.pos} bytes left over)`)
  return out
}

/**
 * Encodes records (as returned by scanRecords, original timestamp deltas relative to
 * `oldBaseTimestamp`) into an uncompressed records section whose deltas are relative to
 * `newBaseTimestamp`. Offset deltas are kept as they are.
 */
export function encodeRecordsSection(
  records: readonly RawRecord[],
  oldBaseTimestamp: number,
  newBaseTimestamp: number,
): Buffer {
  let total = 0
  const deltas: number[] = []
  for (const r of records) {
    const ts = oldBaseTimestamp + r.timestampDelta - newBaseTimestamp
    deltas.push(ts)
    const body = 1 + sizeOfVarint(ts) + sizeOfVarint(r.offsetDelta) + r.tail.length
    total += sizeOfVarint(body) + body
  }
  const buf = Buffer.allocUnsafe(total)
  let pos = 0
  for (let i = 0; i < records.length; i++) {
    const r = records[i]
    const body = 1 + sizeOfVarint(deltas[i]) + sizeOfVarint(r.offsetDelta) + r.tail.length
    pos = writeVarint(buf, pos, body)
    buf[pos++] = r.attributes
    pos = writeVarint(buf, pos, deltas[i])
    pos = writeVarint(buf, pos, r.offsetDelta)
    pos += r.tail.copy(buf, pos)
  }
  return buf
}

export interface BatchHeaderFields {
  baseOffset: number
  partitionLeaderEpoch: number
  attributes: number
  lastOffsetDelta: number
  baseTimestamp: number
  maxTimestamp: number
  producerId: number
  producerEpoch: number
  baseSequence: number
  recordsCount: number
}

/** A v2 batch from header fields and an (already compressed, if need be) records section, with its CRC. */
export function assembleBatch(f: BatchHeaderFields, section: Buffer): Buffer {
  const total = BATCH_HEADER_SIZE + section.length
  const buf = Buffer.allocUnsafe(total)
  writeInt64(buf, f.baseOffset, BASE_OFFSET_OFFSET)
  buf.writeInt32BE(total - LOG_OVERHEAD, BATCH_LENGTH_OFFSET)
  buf.writeInt32BE(f.partitionLeaderEpoch, PARTITION_LEADER_EPOCH_OFFSET)
  buf.writeInt8(2, MAGIC_OFFSET)
  buf.writeInt16BE(f.attributes, ATTRIBUTES_OFFSET)
  buf.writeInt32BE(f.lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET)
  writeInt64(buf, f.baseTimestamp, BASE_TIMESTAMP_OFFSET)
  writeInt64(buf, f.maxTimestamp, MAX_TIMESTAMP_OFFSET)
  writeInt64(buf, f.producerId, PRODUCER_ID_OFFSET)
  buf.writeInt16BE(f.producerEpoch, PRODUCER_EPOCH_OFFSET)
  buf.writeInt32BE(f.baseSequence, BASE_SEQUENCE_OFFSET)
  buf.writeInt32BE(f.recordsCount, RECORDS_COUNT_OFFSET)
  section.copy(buf, BATCH_HEADER_SIZE)
  buf.writeUInt32BE(crc32c(buf, ATTRIBUTES_OFFSET, total), CRC_OFFSET)
  return buf
}

/**
 * The header-only batch Kafka's cleaner keeps when it removes every record of a batch whose
 * producer state must survive (DefaultRecordBatch.writeEmptyHeader): same offsets, producer id,
 * epoch and base sequence, no records, uncompressed, base timestamp -1.
 */
export function encodeEmptyBatch(h: BatchHeader): Buffer {
  return assembleBatch(
    {
      baseOffset: h.baseOffset,
      partitionLeaderEpoch: h.partitionLeaderEpoch,
      attributes: h.attributes & (ATTR_TIMESTAMP_TYPE_MASK | ATTR_TRANSACTIONAL_MASK | ATTR_CONTROL_MASK),
      lastOffsetDelta: h.lastOffsetDelta,
      baseTimestamp: -1,
      maxTimestamp: h.maxTimestamp,
      producerId: h.producerId,
      producerEpoch: h.producerEpoch,
      baseSequence: h.baseSequence,
      recordsCount: 0,
    },
    Buffer.alloc(0),
  )
}
