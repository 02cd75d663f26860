// The records of a v2 batch of any codec: decompressing the records section, and the check that
// a compacted topic's records all carry a key (Kafka's LogValidator refuses null keys there).

import { ErrorCode } from './errors.ts'
import { CompressionError, decompress, decompressAsync, MAX_DECOMPRESSED_BYTES } from './compression.ts'
import {
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL_MASK,
  BATCH_HEADER_SIZE,
  type BatchHeader,
  LOG_OVERHEAD,
  type RawRecord,
  RecordBatchError,
  scanRecords,
} from './record-batch.ts'

/** The records section of the batch at batch[pos, pos + size), decompressed. */
export function recordsSection(batch: Buffer, pos: number, h: BatchHeader, maxBytes = MAX_DECOMPRESSED_BYTES): Buffer {
  const body = batch.subarray(pos + BATCH_HEADER_SIZE, pos + LOG_OVERHEAD + h.batchLength)
  return decompress(h.attributes & ATTR_COMPRESSION_MASK, body, maxBytes)
}

/** Like recordsSection, off the event loop for gzip and zstd. */
export function recordsSectionAsync(
  batch: Buffer,
  pos: number,
  h: BatchHeader,
  maxBytes = MAX_DECOMPRESSED_BYTES,
): Promise<Buffer> {
  const body = batch.subarray(pos + BATCH_HEADER_SIZE, pos + LOG_OVERHEAD + h.batchLength)
  return decompressAsync(h.attributes & ATTR_COMPRESSION_MASK, body, maxBytes)
}

/** Scans the records of a batch of any codec. Throws RecordBatchError or CompressionError. */
export function batchRecords(
  batch: Buffer,
  pos: number,
  h: BatchHeader,
  maxBytes = MAX_DECOMPRESSED_BYTES,
): RawRecord[] {
  return scanRecords(recordsSection(batch, pos, h, maxBytes), h.recordsCount, h.lastOffsetDelta)
}

/**
 * For produce to a compacted topic: an error (Kafka code and message) when a record of the
 * validated batches has a null key or the records cannot be read, else undefined. Compressed
 * batches are decompressed to look, as Kafka does.
 */
export function nullKeyProblem(
  records: Buffer,
  headers: readonly BatchHeader[],
): { code: number; message: string } | undefined {
  let pos = 0
  for (const h of headers) {
    const size = h.batchLength + LOG_OVERHEAD
    if ((h.attributes & ATTR_CONTROL_MASK) === 0) {
      let scanned: RawRecord[]
      try {
        scanned = batchRecords(records, pos, h)
      } catch (err) {
        if (err instanceof RecordBatchError || err instanceof CompressionError)
          return { code: err.code, message: err.message }
        throw err
      }
      for (const r of scanned) {
        if (r.key === null) {
          return {
            code: ErrorCode.INVALID_RECORD,
            message: `compacted topic: the record at offset delta ${r.offsetDelta} of a batch has a null key; records sent to a compacted topic must have a key`,
          }
        }
      }
    }
    pos += size
  }
  return undefined
}
