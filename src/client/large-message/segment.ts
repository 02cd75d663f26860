// In-line large messages: the `_lm` record header of LinkedIn's li-apache-kafka-clients
// (common/LargeMessageHeaderValue.java), and the splitting of a large value into segment records.
//
// Header value, big-endian (PrimitiveEncoderDecoder), 29 bytes for types LEGACY_V2 and V3:
//   1B type | 8B uuid.lsb | 8B uuid.msb | 4B segmentNumber | 4B numberOfSegments | 4B messageSizeInBytes
// (25 bytes for LEGACY, without the size). Note the UUID is lsb first here, while the key that
// the splitter gives a null-keyed large message is LiKafkaClientsUtils.uuidToBytes: msb then lsb,
// i.e. the RFC 4122 byte order that `messageId` below holds. We write V3 ("header only": the
// value of a segment record is raw payload bytes, no payload header), which LinkedIn's consumers
// assemble without a segment deserializer.
//
// Pure: no I/O. Decoding never throws: it returns a typed error (invariant 6, docs/invariants.md).

export const LARGE_MESSAGE_HEADER = '_lm'

export const HEADER_TYPE_LEGACY = 0
export const HEADER_TYPE_LEGACY_V2 = 1
export const HEADER_TYPE_V3 = 2

export const LEGACY_HEADER_SIZE = 25
export const V3_HEADER_SIZE = 29
/** li-apache-kafka-clients' default max.message.segment.bytes. */
export const DEFAULT_SEGMENT_SIZE = 800_000
const MAX_INT32 = 0x7fffffff

export interface LargeMessageHeader {
  type: number
  /** 16 bytes, RFC 4122 order (uuid.msb then uuid.lsb). */
  messageId: Buffer
  /** 0-based. */
  segmentNumber: number
  numberOfSegments: number
  /** Size of the whole message; -1 when absent (LEGACY). */
  messageSizeInBytes: number
}

export type DecodeResult = { ok: true; header: LargeMessageHeader } | { ok: false; error: string }

export function encodeLargeMessageHeader(h: LargeMessageHeader): Buffer {
  if (h.messageId.length !== 16) throw new RangeError(`message id must be 16 bytes, got ${h.messageId.length}`)
  const legacy = h.type === HEADER_TYPE_LEGACY
  const out = Buffer.alloc(legacy ? LEGACY_HEADER_SIZE : V3_HEADER_SIZE)
  out.writeInt8(h.type, 0)
  h.messageId.copy(out, 1, 8, 16) // lsb
  h.messageId.copy(out, 9, 0, 8) // msb
  out.writeInt32BE(h.segmentNumber, 17)
  out.writeInt32BE(h.numberOfSegments, 21)
  if (!legacy) out.writeInt32BE(h.messageSizeInBytes, 25)
  return out
}

/** Decodes and sanity-checks (LargeMessageSegment.sanityCheck) a `_lm` header value. */
export function decodeLargeMessageHeader(bytes: Uint8Array): DecodeResult {
  if (bytes.length !== LEGACY_HEADER_SIZE && bytes.length !== V3_HEADER_SIZE) {
    return {
      ok: false,
      error: `_lm header of ${bytes.length} bytes (expected ${LEGACY_HEADER_SIZE} or ${V3_HEADER_SIZE})`,
    }
  }
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const type = b.readInt8(0)
  if (type < HEADER_TYPE_LEGACY || type > HEADER_TYPE_V3) return { ok: false, error: `unknown _lm header type ${type}` }
  const messageId = Buffer.alloc(16)
  b.copy(messageId, 0, 9, 17)
  b.copy(messageId, 8, 1, 9)
  const segmentNumber = b.readInt32BE(17)
  const numberOfSegments = b.readInt32BE(21)
  const messageSizeInBytes = b.length === V3_HEADER_SIZE ? b.readInt32BE(25) : -1
  if (numberOfSegments <= 0) return { ok: false, error: `numberOfSegments ${numberOfSegments} must be > 0` }
  if (segmentNumber < 0 || segmentNumber >= numberOfSegments)
    return { ok: false, error: `segment ${segmentNumber} out of range [0, ${numberOfSegments})` }
  if (b.length === V3_HEADER_SIZE && messageSizeInBytes < 0)
    return { ok: false, error: `negative message size ${messageSizeInBytes}` }
  return { ok: true, header: { type, messageId, segmentNumber, numberOfSegments, messageSizeInBytes } }
}

/** Message id as the canonical 8-4-4-4-12 UUID string. */
export function messageIdToString(id: Buffer): string {
  const h = id.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** The record shape the producer sends (that of ReliableProducer.send). */
export interface OutgoingRecord {
  topic: string
  partition?: number
  key: Buffer | null
  value: Buffer | null
  headers?: [string, Buffer][]
  timestamp?: number | bigint
}

/**
 * Splits a record whose value is larger than `segmentSize` into V3 segment records (each with
 * an `_lm` header, the caller's other headers kept, no copying of the value). A null key becomes
 * the message id so that every segment hashes to the same partition; an explicit partition is
 * kept. A value no larger than `segmentSize` (or null or empty) is returned unchanged, alone.
 */
export function splitRecord(record: OutgoingRecord, segmentSize: number, messageId: Buffer): OutgoingRecord[] {
  if (!Number.isInteger(segmentSize) || segmentSize <= 0)
    throw new RangeError(`segment size must be a positive integer, got ${segmentSize}`)
  const value = record.value
  if (value === null || value.length <= segmentSize) return [record]
  if (value.length > MAX_INT32)
    throw new RangeError(`a large message is at most ${MAX_INT32} bytes, got ${value.length}`)
  const numberOfSegments = Math.ceil(value.length / segmentSize)
  const key = record.key ?? messageId
  const others = (record.headers ?? []).filter(([k]) => k !== LARGE_MESSAGE_HEADER)
  const out: OutgoingRecord[] = []
  for (let seq = 0; seq < numberOfSegments; seq++) {
    const header = encodeLargeMessageHeader({
      type: HEADER_TYPE_V3,
      messageId,
      segmentNumber: seq,
      numberOfSegments,
      messageSizeInBytes: value.length,
    })
    const segment: OutgoingRecord = {
      topic: record.topic,
      key,
      value: value.subarray(seq * segmentSize, Math.min(value.length, (seq + 1) * segmentSize)),
      headers: [...others, [LARGE_MESSAGE_HEADER, header]],
    }
    if (record.partition !== undefined) segment.partition = record.partition
    if (record.timestamp !== undefined) segment.timestamp = record.timestamp
    out.push(segment)
  }
  return out
}
