// The replication stream's record envelope (versioned, in the record value):
//
//   Envelope v1 =>
//     magic        int8   0x43 ('C')
//     version      int8   1
//     type         int8   1 BEGIN | 2 DATA | 3 END | 4 TXN | 10 GENERATION_START
//     generation   int32  the master's generation
//     scn          int48  sequence number within the generation (BEGIN, DATA, END of one
//                         transaction share it)
//     producerGuid 16 bytes  one per master incarnation and producer (Venice-style integrity:
//                            per guid, sequences must be contiguous)
//     sequence     int32  position of this record in its producer's stream
//     checksum     int32  CRC-32 of the payload
//     payload      JSON (UTF-8) — BEGIN {count, principal?}, DATA {op}, END {count},
//                  TXN {ops, principal?}, GENERATION_START {node, nonce}
//                  (principal: the user whose request made the transaction; absent in records
//                  written before it was recorded, or by a client that writes to nodes directly)
//
// TXN is a whole transaction in one record: BEGIN, its DATA and END folded together, used when it
// fits in one segment (the common case: a third of the records to write, read and apply). A
// larger transaction is written as BEGIN, DATA…, END, and a DATA record larger than the segment
// size travels as large-message segments (client layer); the envelope is inside the reassembled
// value.
import { crc32 } from 'node:zlib'
import { type Operation } from './operation.ts'

export const MAGIC = 0x43
export const VERSION = 1
export const HEADER_SIZE = 2 + 1 + 4 + 6 + 16 + 4 + 4

export const RecordType = { BEGIN: 1, DATA: 2, END: 3, TXN: 4, GENERATION_START: 10 } as const
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType]

export type Payload =
  | { type: typeof RecordType.BEGIN; count: number; principal?: string }
  | { type: typeof RecordType.DATA; op: Operation }
  | { type: typeof RecordType.END; count: number }
  | { type: typeof RecordType.TXN; ops: Operation[]; principal?: string }
  | { type: typeof RecordType.GENERATION_START; node: string; nonce: string }

export interface Envelope {
  generation: number
  scn: number
  producerGuid: Buffer
  sequence: number
  payload: Payload
}

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; error: string }

export function encodeEnvelope(e: Envelope): Buffer {
  // A shorter guid would leave bytes of the unzeroed buffer in the record.
  if (e.producerGuid.length !== 16) throw new RangeError(`producer guid must be 16 bytes, got ${e.producerGuid.length}`)
  const { type, ...rest } = e.payload
  const body = Buffer.from(JSON.stringify(rest))
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length)
  out[0] = MAGIC
  out[1] = VERSION
  out[2] = type
  out.writeInt32BE(e.generation, 3)
  out.writeUIntBE(e.scn, 7, 6)
  e.producerGuid.copy(out, 13, 0, 16)
  out.writeInt32BE(e.sequence, 29)
  out.writeUInt32BE(crc32(body), 33)
  body.copy(out, HEADER_SIZE)
  return out
}

/** Decodes an envelope; anything malformed is an error value, never an exception. */
export function decodeEnvelope(bytes: Buffer | null): DecodeResult {
  if (bytes === null || bytes.length < HEADER_SIZE)
    return { ok: false, error: 'record shorter than the envelope header' }
  if (bytes[0] !== MAGIC) return { ok: false, error: `bad magic ${bytes[0]}` }
  if (bytes[1] !== VERSION) return { ok: false, error: `unsupported envelope version ${bytes[1]}` }
  const type = bytes[2]
  const body = bytes.subarray(HEADER_SIZE)
  if (crc32(body) !== bytes.readUInt32BE(33)) return { ok: false, error: 'checksum mismatch' }
  let fields: Record<string, unknown>
  try {
    fields = JSON.parse(body.toString('utf8')) as Record<string, unknown>
  } catch {
    return { ok: false, error: 'payload is not JSON' }
  }
  if (typeof fields !== 'object' || fields === null) return { ok: false, error: 'payload is not an object' }
  let payload: Payload
  switch (type) {
    case RecordType.BEGIN:
    case RecordType.END:
      if (!Number.isInteger(fields.count)) return { ok: false, error: 'BEGIN/END without a count' }
      payload =
        type === RecordType.BEGIN
          ? { type, count: fields.count as number, ...principalOf(fields) }
          : { type, count: fields.count as number }
      break
    case RecordType.DATA:
      if (typeof fields.op !== 'object' || fields.op === null) return { ok: false, error: 'DATA without an operation' }
      payload = { type, op: fields.op as Operation }
      break
    case RecordType.TXN:
      if (!Array.isArray(fields.ops) || fields.ops.length === 0) return { ok: false, error: 'TXN without operations' }
      payload = { type, ops: fields.ops as Operation[], ...principalOf(fields) }
      break
    case RecordType.GENERATION_START:
      if (typeof fields.node !== 'string' || typeof fields.nonce !== 'string')
        return { ok: false, error: 'GENERATION_START without node/nonce' }
      payload = { type, node: fields.node, nonce: fields.nonce }
      break
    default:
      return { ok: false, error: `unknown record type ${type}` }
  }
  return {
    ok: true,
    envelope: {
      generation: bytes.readInt32BE(3),
      scn: bytes.readUIntBE(7, 6),
      producerGuid: Buffer.from(bytes.subarray(13, 29)),
      sequence: bytes.readInt32BE(29),
      payload,
    },
  }
}

const principalOf = (fields: Record<string, unknown>): { principal?: string } =>
  typeof fields.principal === 'string' ? { principal: fields.principal } : {}
