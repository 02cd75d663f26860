// Shared helpers for the partition log tests.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  decodeRecords,
  encodeRecordBatch,
  LOG_OVERHEAD,
  readBatchHeader,
  type BatchHeader,
} from '../../../src/protocol/record-batch.ts'
import { Flusher } from '../../../src/broker/log/flusher.ts'
import { type LogConfig, PartitionLog } from '../../../src/broker/log/partition-log.ts'

export function tempDir(prefix = 'cortado-log-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

export function config(overrides: Partial<LogConfig> = {}): LogConfig {
  return {
    segmentBytes: 1 << 20,
    segmentMs: 7 * 24 * 3600 * 1000,
    retentionMs: -1,
    retentionBytes: -1,
    indexIntervalBytes: 4096,
    ...overrides,
  }
}

/** A batch of string values (one record each), with optional timestamps. */
export function batch(values: string[], timestamps?: number[]): { buf: Buffer; headers: BatchHeader[] } {
  const buf = encodeRecordBatch({
    records: values.map((v, i) => ({
      key: Buffer.from(`key-${v}`),
      value: Buffer.from(v),
      timestamp: timestamps?.[i] ?? 1_000_000,
    })),
  })
  return { buf, headers: [readBatchHeader(buf, 0)] }
}

/** Several batches concatenated as one append. */
export function batches(groups: string[][], timestamps?: number[][]): { buf: Buffer; headers: BatchHeader[] } {
  const parts = groups.map((g, i) => batch(g, timestamps?.[i]))
  return { buf: Buffer.concat(parts.map((p) => p.buf)), headers: parts.map((p) => p.headers[0]) }
}

export function appendValues(
  log: PartitionLog,
  values: string[],
  now = Date.now(),
  timestamps?: number[],
): { baseOffset: number; lastOffset: number } {
  const b = batch(values, timestamps)
  return log.append(b.buf, b.headers, now)
}

/** Splits a read result into its batches. */
export function splitBatches(buf: Buffer): Buffer[] {
  const out: Buffer[] = []
  let pos = 0
  while (pos < buf.length) {
    const size = buf.readInt32BE(pos + 8) + LOG_OVERHEAD
    out.push(buf.subarray(pos, pos + size))
    pos += size
  }
  return out
}

/** Reads the whole log from logStartOffset: [offset, value] for every record. */
export function readAll(log: PartitionLog, maxBytes = 64 * 1024): [number, string][] {
  const out: [number, string][] = []
  let offset = log.logStartOffset
  while (offset < log.logEndOffset) {
    const data = log.read(offset, maxBytes, true)
    if (data.length === 0) throw new Error(`empty read at ${offset} before log end ${log.logEndOffset}`)
    for (const b of splitBatches(data)) {
      for (const r of decodeRecords(b)) {
        if (r.offset >= offset) out.push([r.offset, r.value?.toString() ?? ''])
      }
      const h = readBatchHeader(b, 0)
      offset = h.baseOffset + h.lastOffsetDelta + 1
    }
  }
  return out
}

export function openLog(dir: string, overrides: Partial<LogConfig> = {}, flusher = new Flusher()): PartitionLog {
  return PartitionLog.open(dir, config(overrides), flusher)
}

export function copyDir(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true })
}
