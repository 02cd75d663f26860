// One log segment: a .log file of v2 record batches starting at baseOffset, with its sparse
// .index and .timeindex. All I/O is synchronous and positional on open fds; the in-memory `size`
// only ever covers complete batches, so readers never see a partial write.

import fs from 'node:fs'
import { crc32c } from '../../protocol/crc32c.ts'
import {
  ATTR_COMPRESSION_MASK,
  ATTRIBUTES_OFFSET,
  BATCH_HEADER_SIZE,
  BATCH_LENGTH_OFFSET,
  type BatchHeader,
  CRC_OFFSET,
  decodeRecords,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  MIN_BATCH_LENGTH,
  readInt64,
  setBatchOffsets,
} from '../../protocol/record-batch.ts'
import { LogStorageError } from './errors.ts'
import {
  closeQuietly,
  INDEX_SUFFIX,
  LOG_SUFFIX,
  readFully,
  segmentPath,
  TIME_INDEX_SUFFIX,
  unlinkIfExists,
  writeFully,
} from './files.ts'
import { OffsetIndex } from './offset-index.ts'
import { TimeIndex } from './time-index.ts'

export const INT32_MAX = 0x7fffffff
const EMPTY = Buffer.alloc(0)
// Scratch space for walking batch headers. Sharing it is safe: all segment I/O is synchronous.
const scratch = Buffer.allocUnsafe(16 * 1024)
const RECOVERY_CHUNK = 1 << 20

/** Visits a batch header held in buf[off, off + 61) for the batch at file position `position`. */
type HeaderVisitor = (buf: Buffer, off: number, position: number) => boolean

/**
 * Walks batch headers in [start, end) of a file, reading in chunks. Stops when visit returns false
 * or at a batch whose header is cut short or whose length is invalid or overruns `end`. Returns
 * the position it stopped at (`end` when it walked exactly to the end).
 */
function walkHeaders(fd: number, start: number, end: number, visit: HeaderVisitor): number {
  let pos = start
  while (pos < end) {
    if (end - pos < BATCH_HEADER_SIZE) return pos
    const n = readFully(fd, scratch, 0, Math.min(scratch.length, end - pos), pos)
    if (n < BATCH_HEADER_SIZE) return pos
    let p = 0
    while (p + BATCH_HEADER_SIZE <= n) {
      const length = scratch.readInt32BE(p + BATCH_LENGTH_OFFSET)
      if (length < MIN_BATCH_LENGTH || length > end - (pos + p) - LOG_OVERHEAD) return pos + p
      if (!visit(scratch, p, pos + p)) return pos + p
      p += LOG_OVERHEAD + length
    }
    pos += p
  }
  return pos
}

/**
 * Offsets strictly increase through a segment: each batch starts at or after the end of the
 * previous one (and the first at or after the segment's base offset). Appends leave no gaps; the
 * log cleaner (cleaner.ts) leaves gaps where it removed whole batches, as Kafka's does.
 */
function follows(batchBaseOffset: number, expected: number): boolean {
  return batchBaseOffset >= expected
}

export class Segment {
  readonly dir: string
  readonly baseOffset: number
  readonly fd: number
  readonly offsetIndex: OffsetIndex
  readonly timeIndex: TimeIndex
  private readonly indexIntervalBytes: number
  /** Bytes of complete batches in the .log file. */
  size = 0
  /** Offset after the last batch (= baseOffset when empty). */
  nextOffset: number
  /** Largest batch maxTimestamp in the segment, or -1. */
  largestTimestamp = -1
  private offsetOfLargestTimestamp = -1
  private bytesSinceIndexEntry = 0
  /** Time the segment's age is measured from for segment.ms rolling; -1 until the first append. */
  rollBaseTime = -1
  // Where the last read ended, so a consumer reading sequentially skips the index lookup and walk.
  private cachedOffset = -1
  private cachedPosition = 0

  private constructor(
    dir: string,
    baseOffset: number,
    fd: number,
    offsetIndex: OffsetIndex,
    timeIndex: TimeIndex,
    indexIntervalBytes: number,
  ) {
    this.dir = dir
    this.baseOffset = baseOffset
    this.fd = fd
    this.offsetIndex = offsetIndex
    this.timeIndex = timeIndex
    this.indexIntervalBytes = indexIntervalBytes
    this.nextOffset = baseOffset
  }

  /**
   * Creates a new empty segment (truncating leftovers with the same name). fileSuffix is appended
   * to the three file names (the log cleaner writes `.cleaned` segments and renames them later).
   */
  static create(dir: string, baseOffset: number, indexIntervalBytes: number, fileSuffix = ''): Segment {
    const fd = fs.openSync(segmentPath(dir, baseOffset, LOG_SUFFIX) + fileSuffix, 'w+')
    const offsetIndex = OffsetIndex.create(segmentPath(dir, baseOffset, INDEX_SUFFIX) + fileSuffix)
    const timeIndex = TimeIndex.create(segmentPath(dir, baseOffset, TIME_INDEX_SUFFIX) + fileSuffix)
    return new Segment(dir, baseOffset, fd, offsetIndex, timeIndex, indexIntervalBytes)
  }

  /**
   * Opens an existing segment. With `recover`, or when its index files are missing or do not
   * match the log, scans every batch (length, magic, CRC, offsets), truncates the file at the
   * first bad one and rebuilds the indexes. Returns how many bytes recovery cut off.
   */
  static open(
    dir: string,
    baseOffset: number,
    indexIntervalBytes: number,
    recover: boolean,
  ): { segment: Segment; truncatedBytes: number } {
    const fd = fs.openSync(segmentPath(dir, baseOffset, LOG_SUFFIX), 'r+')
    const fileSize = fs.fstatSync(fd).size
    const indexPath = segmentPath(dir, baseOffset, INDEX_SUFFIX)
    const timeIndexPath = segmentPath(dir, baseOffset, TIME_INDEX_SUFFIX)
    let offsetIndex = recover ? null : OffsetIndex.load(indexPath, fileSize)
    let timeIndex = recover ? null : TimeIndex.load(timeIndexPath)
    if (offsetIndex !== null && timeIndex !== null) {
      const segment = new Segment(dir, baseOffset, fd, offsetIndex, timeIndex, indexIntervalBytes)
      if (segment.loadTail(fileSize)) return { segment, truncatedBytes: 0 }
    }
    offsetIndex?.close()
    timeIndex?.close()
    offsetIndex = OffsetIndex.create(indexPath)
    timeIndex = TimeIndex.create(timeIndexPath)
    const segment = new Segment(dir, baseOffset, fd, offsetIndex, timeIndex, indexIntervalBytes)
    return { segment, truncatedBytes: segment.recover(fileSize) }
  }

  /**
   * After loading indexes: walks the batch headers after the last index entry to find the end
   * offset and largest timestamp, checking the file ends exactly at a batch boundary and agrees
   * with the indexes. False means the indexes or the tail cannot be trusted.
   */
  private loadTail(fileSize: number): boolean {
    const base = this.baseOffset
    const lastRel = this.offsetIndex.lastRelOffset
    const start = this.offsetIndex.lastPosition
    let next = lastRel >= 0 ? base + lastRel : base
    let largest = this.timeIndex.lastTimestamp
    let offsetOfLargest = largest >= 0 ? base + this.timeIndex.lastRelOffset : -1
    let ok = true
    const stop = walkHeaders(this.fd, start, fileSize, (b, off) => {
      const batchBase = readInt64(b, off)
      const delta = b.readInt32BE(off + LAST_OFFSET_DELTA_OFFSET)
      if (
        b[off + MAGIC_OFFSET] !== 2 ||
        delta < 0 ||
        !follows(batchBase, next) ||
        batchBase + delta - base > INT32_MAX
      ) {
        ok = false
        return false
      }
      const maxTs = readInt64(b, off + MAX_TIMESTAMP_OFFSET)
      if (maxTs > largest) {
        largest = maxTs
        offsetOfLargest = batchBase
      }
      next = batchBase + delta + 1
      return true
    })
    if (!ok || stop !== fileSize) return false
    // Index entries must point inside the batches we just found.
    if (this.timeIndex.lastRelOffset >= next - base || lastRel >= next - base) return false
    this.size = fileSize
    this.nextOffset = next
    this.largestTimestamp = largest
    this.offsetOfLargestTimestamp = offsetOfLargest
    this.bytesSinceIndexEntry = fileSize - start
    return true
  }

  /** Full scan with CRC checks; truncates at the first bad batch and rebuilds both indexes. */
  private recover(fileSize: number): number {
    const base = this.baseOffset
    this.offsetIndex.reset()
    this.timeIndex.reset()
    this.largestTimestamp = -1
    this.offsetOfLargestTimestamp = -1
    this.bytesSinceIndexEntry = 0
    let chunk = Buffer.allocUnsafe(Math.min(RECOVERY_CHUNK, Math.max(fileSize, BATCH_HEADER_SIZE)))
    let chunkStart = 0
    let chunkLen = 0
    let pos = 0
    let next = base
    while (fileSize - pos >= BATCH_HEADER_SIZE) {
      if (pos + BATCH_HEADER_SIZE > chunkStart + chunkLen) {
        chunkLen = readFully(this.fd, chunk, 0, Math.min(chunk.length, fileSize - pos), pos)
        chunkStart = pos
        if (chunkLen < BATCH_HEADER_SIZE) break
      }
      let off = pos - chunkStart
      const length = chunk.readInt32BE(off + BATCH_LENGTH_OFFSET)
      if (length < MIN_BATCH_LENGTH || length > fileSize - pos - LOG_OVERHEAD) break
      const total = LOG_OVERHEAD + length
      if (pos + total > chunkStart + chunkLen) {
        if (total > chunk.length) chunk = Buffer.allocUnsafe(total)
        chunkLen = readFully(this.fd, chunk, 0, Math.min(chunk.length, fileSize - pos), pos)
        chunkStart = pos
        off = 0
        if (chunkLen < total) break
      }
      if (chunk[off + MAGIC_OFFSET] !== 2) break
      if (crc32c(chunk, off + ATTRIBUTES_OFFSET, off + total) !== chunk.readUInt32BE(off + CRC_OFFSET)) break
      const batchBase = readInt64(chunk, off)
      const delta = chunk.readInt32BE(off + LAST_OFFSET_DELTA_OFFSET)
      if (delta < 0 || !follows(batchBase, next) || batchBase + delta - base > INT32_MAX) break
      this.indexBatch(batchBase, pos, total, readInt64(chunk, off + MAX_TIMESTAMP_OFFSET))
      next = batchBase + delta + 1
      pos += total
    }
    const truncated = fileSize - pos
    if (truncated > 0) {
      // Everything from the first bad batch on is dropped, durably before anything is appended.
      fs.ftruncateSync(this.fd, pos)
      fs.fsyncSync(this.fd)
    }
    this.size = pos
    this.nextOffset = next
    this.finish()
    return truncated
  }

  /** Index bookkeeping for a batch at `position`, the same rule on append and on rebuild. */
  private indexBatch(batchBaseOffset: number, position: number, size: number, maxTimestamp: number): void {
    if (maxTimestamp > this.largestTimestamp) {
      this.largestTimestamp = maxTimestamp
      this.offsetOfLargestTimestamp = batchBaseOffset
    }
    if (this.bytesSinceIndexEntry >= this.indexIntervalBytes) {
      this.offsetIndex.append(batchBaseOffset - this.baseOffset, position)
      if (this.largestTimestamp >= 0) {
        this.timeIndex.maybeAppend(this.largestTimestamp, this.offsetOfLargestTimestamp - this.baseOffset)
      }
      this.bytesSinceIndexEntry = 0
    }
    this.bytesSinceIndexEntry += size
  }

  /** Sets rollBaseTime for a segment loaded from disk: its first batch's timestamp, capped at now. */
  initRollBaseTime(now: number): void {
    if (this.size === 0) return
    if (readFully(this.fd, scratch, 0, BATCH_HEADER_SIZE, 0) < BATCH_HEADER_SIZE) return
    const ts = readInt64(scratch, MAX_TIMESTAMP_OFFSET)
    this.rollBaseTime = ts >= 0 ? Math.min(ts, now) : now
  }

  /**
   * Appends validated batches (concatenated in buf), assigning offsets from firstOffset in place,
   * in one positional write. Returns the next offset.
   */
  append(buf: Buffer, headers: BatchHeader[], firstOffset: number, now: number): number {
    let offset = firstOffset
    let p = 0
    for (const h of headers) {
      setBatchOffsets(buf, p, offset, 0)
      offset += h.lastOffsetDelta + 1
      p += h.batchLength + LOG_OVERHEAD
    }
    try {
      writeFully(this.fd, buf, 0, buf.length, this.size)
    } catch (err) {
      // Drop any partial write so the file still ends at a batch boundary.
      try {
        fs.ftruncateSync(this.fd, this.size)
      } catch {
        // Recovery will truncate it on the next open.
      }
      throw new LogStorageError(`write to ${segmentPath(this.dir, this.baseOffset, LOG_SUFFIX)} failed`, err)
    }
    if (this.size === 0) this.rollBaseTime = now
    offset = firstOffset
    p = 0
    for (const h of headers) {
      const size = h.batchLength + LOG_OVERHEAD
      // maxTimestamp from the bytes, in case the caller rewrote it (LogAppendTime).
      this.indexBatch(offset, this.size + p, size, readInt64(buf, p + MAX_TIMESTAMP_OFFSET))
      offset += h.lastOffsetDelta + 1
      p += size
    }
    this.size += buf.length
    this.nextOffset = offset
    return offset
  }

  /**
   * Appends complete batches that already carry their final offsets, e.g. the log cleaner's
   * output, whose offsets may have gaps. Each batch must start at or after nextOffset.
   */
  appendCleaned(buf: Buffer): void {
    const metas: { base: number; pos: number; size: number; maxTs: number; next: number }[] = []
    let next = this.nextOffset
    let p = 0
    while (p < buf.length) {
      if (buf.length - p < BATCH_HEADER_SIZE) throw new LogStorageError('appendCleaned: truncated batch')
      const size = buf.readInt32BE(p + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD
      const base = readInt64(buf, p)
      const delta = buf.readInt32BE(p + LAST_OFFSET_DELTA_OFFSET)
      if (
        size < BATCH_HEADER_SIZE ||
        size > buf.length - p ||
        delta < 0 ||
        !follows(base, next) ||
        base + delta - this.baseOffset > INT32_MAX
      ) {
        throw new LogStorageError(
          `appendCleaned: bad batch at offset ${base} (segment ${this.baseOffset}, next ${next})`,
        )
      }
      metas.push({ base, pos: p, size, maxTs: readInt64(buf, p + MAX_TIMESTAMP_OFFSET), next: base + delta + 1 })
      next = base + delta + 1
      p += size
    }
    writeFully(this.fd, buf, 0, buf.length, this.size)
    for (const m of metas) this.indexBatch(m.base, this.size + m.pos, m.size, m.maxTs)
    this.size += buf.length
    this.nextOffset = next
  }

  /** Position of the batch containing offset (this.size if none). */
  private findPosition(offset: number): number {
    if (offset === this.cachedOffset && this.cachedPosition <= this.size) return this.cachedPosition
    const start = this.offsetIndex.lookup(offset - this.baseOffset)
    let found = this.size
    walkHeaders(this.fd, start, this.size, (b, off, position) => {
      if (readInt64(b, off) + b.readInt32BE(off + LAST_OFFSET_DELTA_OFFSET) >= offset) {
        found = position
        return false
      }
      return true
    })
    return found
  }

  /**
   * Whole batches from the one containing offset, at most maxBytes in total; when even the first
   * batch is larger, returns it alone if minOneBatch, else nothing.
   */
  read(offset: number, maxBytes: number, minOneBatch: boolean): Buffer {
    const start = this.findPosition(offset)
    const available = this.size - start
    if (available <= 0) return EMPTY
    const want = Math.min(Math.max(maxBytes, 0), available)
    let firstSize: number
    if (want >= LOG_OVERHEAD) {
      // One read of everything that may fit, then cut at the last complete batch.
      const buf = Buffer.allocUnsafe(want)
      const n = readFully(this.fd, buf, 0, want, start)
      let end = 0
      let last = -1
      while (end + LOG_OVERHEAD <= n) {
        const size = buf.readInt32BE(end + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD
        if (size < BATCH_HEADER_SIZE || end + size > n) break
        last = end
        end += size
      }
      if (end > 0) {
        this.cachedOffset = readInt64(buf, last) + buf.readInt32BE(last + LAST_OFFSET_DELTA_OFFSET) + 1
        this.cachedPosition = start + end
        return end === want ? buf : buf.subarray(0, end)
      }
      if (!minOneBatch) return EMPTY
      firstSize = buf.readInt32BE(BATCH_LENGTH_OFFSET) + LOG_OVERHEAD
    } else {
      if (!minOneBatch) return EMPTY
      if (readFully(this.fd, scratch, 0, LOG_OVERHEAD, start) < LOG_OVERHEAD) return EMPTY
      firstSize = scratch.readInt32BE(BATCH_LENGTH_OFFSET) + LOG_OVERHEAD
    }
    // KIP-74: the first batch goes out whole even when larger than maxBytes.
    const size = Math.min(firstSize, available)
    const buf = Buffer.allocUnsafe(size)
    return buf.subarray(0, readFully(this.fd, buf, 0, size, start))
  }

  /**
   * First record at or after minOffset whose timestamp is >= target (for compressed batches, the
   * batch's base offset and max timestamp), or null.
   */
  findOffsetByTimestamp(target: number, minOffset: number): { offset: number; timestamp: number } | null {
    const rel = this.timeIndex.lookupBefore(target)
    let pos = rel >= 0 ? this.offsetIndex.lookup(rel) : 0
    while (pos < this.size) {
      let candidate = -1
      let candidateSize = 0
      walkHeaders(this.fd, pos, this.size, (b, off, position) => {
        const lastOffset = readInt64(b, off) + b.readInt32BE(off + LAST_OFFSET_DELTA_OFFSET)
        if (readInt64(b, off + MAX_TIMESTAMP_OFFSET) >= target && lastOffset >= minOffset) {
          candidate = position
          candidateSize = b.readInt32BE(off + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD
          return false
        }
        return true
      })
      if (candidate < 0) return null
      const batch = Buffer.allocUnsafe(candidateSize)
      if (readFully(this.fd, batch, 0, candidateSize, candidate) < candidateSize) return null
      const batchBase = readInt64(batch, 0)
      const maxTimestamp = readInt64(batch, MAX_TIMESTAMP_OFFSET)
      if ((batch.readInt16BE(ATTRIBUTES_OFFSET) & ATTR_COMPRESSION_MASK) !== 0) {
        return { offset: Math.max(batchBase, minOffset), timestamp: maxTimestamp }
      }
      try {
        for (const r of decodeRecords(batch)) {
          if (r.offset >= minOffset && r.timestamp >= target) return { offset: r.offset, timestamp: r.timestamp }
        }
      } catch {
        // Undecodable records: fall back to the batch-level answer, as for compressed batches.
        return { offset: Math.max(batchBase, minOffset), timestamp: maxTimestamp }
      }
      pos = candidate + candidateSize
    }
    return null
  }

  /**
   * Visits the header of every batch from the one containing fromOffset to the end, reading
   * headers only. buf[off, off + 61) is shared scratch space, valid during the call only.
   */
  forEachBatchHeader(fromOffset: number, visit: (buf: Buffer, off: number) => void): void {
    const start = fromOffset > this.baseOffset ? this.findPosition(fromOffset) : 0
    walkHeaders(this.fd, start, this.size, (b, off) => {
      visit(b, off)
      return true
    })
  }

  /** On roll and close: record the final largest timestamp and write pending index entries. */
  finish(): void {
    if (this.largestTimestamp >= 0) {
      this.timeIndex.maybeAppend(this.largestTimestamp, this.offsetOfLargestTimestamp - this.baseOffset)
    }
    this.offsetIndex.persist()
    this.timeIndex.persist()
  }

  /** All fds of this segment (for fsync and release). */
  fds(): number[] {
    return [this.fd, this.offsetIndex.fd, this.timeIndex.fd]
  }

  mtimeMs(): number {
    return fs.fstatSync(this.fd).mtimeMs
  }

  close(): void {
    closeQuietly(this.fd)
    this.offsetIndex.close()
    this.timeIndex.close()
  }

  deleteFiles(): void {
    unlinkIfExists(segmentPath(this.dir, this.baseOffset, LOG_SUFFIX))
    unlinkIfExists(segmentPath(this.dir, this.baseOffset, INDEX_SUFFIX))
    unlinkIfExists(segmentPath(this.dir, this.baseOffset, TIME_INDEX_SUFFIX))
  }
}
