// Sparse time index of one segment, in Kafka's .timeindex format: 12-byte big-endian entries
// (int64 timestamp, int32 relative offset). An entry (T, o) says that the largest timestamp in the
// segment up to and including the batch at offset o is T; timestamps strictly increase. Like the
// offset index it is kept in memory, written behind and rebuilt after an unclean shutdown.

import fs from 'node:fs'
import { readInt64, writeInt64 } from '../../protocol/record-batch.ts'
import { closeQuietly, readFully, writeFully } from './files.ts'

export const TIME_INDEX_ENTRY_SIZE = 12
const WRITE_BEHIND = 64

export class TimeIndex {
  readonly path: string
  readonly fd: number
  private ts: Float64Array
  private rel: Int32Array
  private n = 0
  private persisted = 0

  private constructor(path: string, fd: number, capacity: number) {
    this.path = path
    this.fd = fd
    this.ts = new Float64Array(Math.max(capacity, 16))
    this.rel = new Int32Array(Math.max(capacity, 16))
  }

  static create(path: string): TimeIndex {
    return new TimeIndex(path, fs.openSync(path, 'w+'), 16)
  }

  /** Loads an index file, or returns null when it is missing or inconsistent. */
  static load(path: string): TimeIndex | null {
    let fd: number
    try {
      fd = fs.openSync(path, 'r+')
    } catch {
      return null
    }
    try {
      const size = fs.fstatSync(fd).size
      if (size % TIME_INDEX_ENTRY_SIZE !== 0) return fail(fd)
      const count = size / TIME_INDEX_ENTRY_SIZE
      const buf = Buffer.allocUnsafe(size)
      if (readFully(fd, buf, 0, size, 0) !== size) return fail(fd)
      const index = new TimeIndex(path, fd, count)
      let prevTs = -1
      let prevRel = 0
      for (let i = 0; i < count; i++) {
        const ts = readInt64(buf, i * 12)
        const rel = buf.readInt32BE(i * 12 + 8)
        if (ts <= prevTs || rel < prevRel) return fail(fd)
        index.ts[i] = ts
        index.rel[i] = rel
        prevTs = ts
        prevRel = rel
      }
      index.n = count
      index.persisted = count
      return index
    } catch {
      return fail(fd)
    }
  }

  get count(): number {
    return this.n
  }
  /** Timestamp of the last entry, or -1. */
  get lastTimestamp(): number {
    return this.n === 0 ? -1 : this.ts[this.n - 1]
  }
  /** Relative offset of the last entry, or -1. */
  get lastRelOffset(): number {
    return this.n === 0 ? -1 : this.rel[this.n - 1]
  }

  /** Appends (timestamp, relOffset) if timestamp is larger than the last entry's. */
  maybeAppend(timestamp: number, relOffset: number): void {
    if (timestamp <= this.lastTimestamp) return
    if (this.n === this.ts.length) {
      const ts = new Float64Array(this.n * 2)
      ts.set(this.ts)
      this.ts = ts
      const rel = new Int32Array(this.n * 2)
      rel.set(this.rel)
      this.rel = rel
    }
    this.ts[this.n] = timestamp
    this.rel[this.n] = relOffset
    this.n++
    if (this.n - this.persisted >= WRITE_BEHIND) this.persist()
  }

  /**
   * Relative offset of the last entry whose timestamp is < target, or -1. Every record up to that
   * entry's batch is older than target, so a search for target can start there.
   */
  lookupBefore(target: number): number {
    let lo = 0
    let hi = this.n - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.ts[mid] < target) {
        found = mid
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    return found < 0 ? -1 : this.rel[found]
  }

  persist(): void {
    const pending = this.n - this.persisted
    if (pending === 0) return
    const buf = Buffer.allocUnsafe(pending * TIME_INDEX_ENTRY_SIZE)
    for (let i = 0; i < pending; i++) {
      writeInt64(buf, this.ts[this.persisted + i], i * 12)
      buf.writeInt32BE(this.rel[this.persisted + i], i * 12 + 8)
    }
    writeFully(this.fd, buf, 0, buf.length, this.persisted * TIME_INDEX_ENTRY_SIZE)
    this.persisted = this.n
  }

  reset(): void {
    fs.ftruncateSync(this.fd, 0)
    this.n = 0
    this.persisted = 0
  }

  close(): void {
    closeQuietly(this.fd)
  }
}

function fail(fd: number): null {
  closeQuietly(fd)
  return null
}
