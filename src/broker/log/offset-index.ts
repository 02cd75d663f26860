// Sparse offset index of one segment, in Kafka's .index format: 8-byte big-endian entries
// (int32 offset relative to the segment's base offset, int32 byte position of a batch starting at
// that offset). Entries live in memory for lookups; the file is written behind in small groups and
// never fsync'ed: after an unclean shutdown the active segment's index is rebuilt from the log.

import fs from 'node:fs'
import { closeQuietly, readFully, writeFully } from './files.ts'

export const OFFSET_INDEX_ENTRY_SIZE = 8
// Unwritten entries are written in one write once this many pile up (and on roll / close).
const WRITE_BEHIND = 64

export class OffsetIndex {
  readonly path: string
  readonly fd: number
  private rel: Int32Array
  private pos: Int32Array
  private n = 0
  private persisted = 0

  private constructor(path: string, fd: number, capacity: number) {
    this.path = path
    this.fd = fd
    this.rel = new Int32Array(Math.max(capacity, 16))
    this.pos = new Int32Array(Math.max(capacity, 16))
  }

  /** A new, empty index (truncates any existing file). */
  static create(path: string): OffsetIndex {
    return new OffsetIndex(path, fs.openSync(path, 'w+'), 16)
  }

  /**
   * Loads an index file, or returns null when it is missing or inconsistent (wrong size, entries
   * not strictly increasing, positions beyond the log file): the caller then rebuilds it.
   */
  static load(path: string, logSize: number): OffsetIndex | null {
    let fd: number
    try {
      fd = fs.openSync(path, 'r+')
    } catch {
      return null
    }
    try {
      const size = fs.fstatSync(fd).size
      if (size % OFFSET_INDEX_ENTRY_SIZE !== 0) return fail(fd)
      const count = size / OFFSET_INDEX_ENTRY_SIZE
      const buf = Buffer.allocUnsafe(size)
      if (readFully(fd, buf, 0, size, 0) !== size) return fail(fd)
      const index = new OffsetIndex(path, fd, count)
      let prevRel = -1
      let prevPos = -1
      for (let i = 0; i < count; i++) {
        const rel = buf.readInt32BE(i * 8)
        const pos = buf.readInt32BE(i * 8 + 4)
        if (rel <= prevRel || pos <= prevPos || pos >= logSize) return fail(fd)
        index.rel[i] = rel
        index.pos[i] = pos
        prevRel = rel
        prevPos = pos
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
  /** Relative offset of the last entry, or -1. */
  get lastRelOffset(): number {
    return this.n === 0 ? -1 : this.rel[this.n - 1]
  }
  /** Position of the last entry, or 0 (the start of the segment). */
  get lastPosition(): number {
    return this.n === 0 ? 0 : this.pos[this.n - 1]
  }

  append(relOffset: number, position: number): void {
    if (this.n === this.rel.length) {
      this.rel = grow(this.rel)
      this.pos = grow(this.pos)
    }
    this.rel[this.n] = relOffset
    this.pos[this.n] = position
    this.n++
    if (this.n - this.persisted >= WRITE_BEHIND) this.persist()
  }

  /** Position of the last indexed batch starting at or before relOffset (0 if none). */
  lookup(relOffset: number): number {
    let lo = 0
    let hi = this.n - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.rel[mid] <= relOffset) {
        found = mid
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    return found < 0 ? 0 : this.pos[found]
  }

  /** Writes entries not yet in the file. */
  persist(): void {
    const pending = this.n - this.persisted
    if (pending === 0) return
    const buf = Buffer.allocUnsafe(pending * OFFSET_INDEX_ENTRY_SIZE)
    for (let i = 0; i < pending; i++) {
      buf.writeInt32BE(this.rel[this.persisted + i], i * 8)
      buf.writeInt32BE(this.pos[this.persisted + i], i * 8 + 4)
    }
    writeFully(this.fd, buf, 0, buf.length, this.persisted * OFFSET_INDEX_ENTRY_SIZE)
    this.persisted = this.n
  }

  /** Drops all entries, in memory and on disk (before a rebuild). */
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

function grow(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2)
  b.set(a)
  return b
}
