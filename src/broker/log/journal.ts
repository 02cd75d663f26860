// The broker's write-ahead journal. Every append to a partition log is also written here, so a
// group-commit round fdatasyncs this one file instead of the segment of every partition written
// since the last round (PostgreSQL's WAL: one disk flush per group commit). Each fdatasync of a
// file is a thread-pool task with its wake-ups and a journal commit of the file system, and a
// round used to sync one per partition written; now it syncs one.
//
// The segments are synced later, at a checkpoint (the Flusher's round that also syncs every
// segment written since the last one), after which the journal moves to a new file and the old
// one is removed. On open, a partition log whose segment lost its tail in a machine crash gets the
// journal's batches beyond its recovered end appended again (PartitionLog.open).
//
//   file   <dir>/<sequence, 20 digits>.journal, replayed in sequence order
//   entry  length     uint32  bytes after the checksum
//          checksum   uint32  CRC-32 (IEEE, node:zlib) of the bytes after it
//          topic id   16 bytes  (a re-created topic has a new id: old entries never reach it)
//          partition  int32
//          batches    v2 record batches with their offsets assigned, as appended
//
// A torn or corrupt entry ends a file's replay: it was never acknowledged, because a round
// answers only after the whole write is synced.
import fs from 'node:fs'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import { closeQuietly, readFully, unlinkIfExists } from './files.ts'

export interface JournalKey {
  topicId: Buffer
  partition: number
}

/** Journal bytes after which the next round is a checkpoint. */
export const JOURNAL_CHECKPOINT_BYTES = 64 * 1024 * 1024
/** Time after which the next round that writes the journal is a checkpoint, so that files do not linger. */
export const JOURNAL_CHECKPOINT_MS = 10_000
/** A segment with this many bytes queued in a round is synced itself instead of journaled. */
export const JOURNAL_DIRECT_BYTES = 32 * 1024
/** Entries waiting for a round beyond which the Flusher starts one (appends nobody flushes, acks=0). */
export const JOURNAL_PENDING_LIMIT_BYTES = 16 * 1024 * 1024

const HEADER_SIZE = 4 + 4 + 16 + 4
/** Where release() puts the queued entries of a segment being closed. */
const RELEASED = -1
const SUFFIX = '.journal'
const FILE = /^(\d{20})\.journal$/

const keyOf = (topicId: Buffer, partition: number) => `${topicId.toString('hex')}/${partition}`

export interface JournalOptions {
  /** Default JOURNAL_CHECKPOINT_BYTES. */
  checkpointBytes?: number
  /** Default JOURNAL_CHECKPOINT_MS. */
  checkpointMs?: number
}

export interface JournalRecovery {
  files: number
  entries: number
  /** Files whose replay stopped at a torn or corrupt entry. */
  tornFiles: number
}

export class Journal {
  readonly dir: string
  readonly dirFd: number
  /** Entries read from the files a previous run left, by partition, in journal order. */
  private readonly recovered = new Map<string, Buffer[]>()
  private readonly oldFiles: string[]
  readonly recovery: JournalRecovery
  private sequence: number
  private fd: number
  /** Entries waiting for the next round, by the segment fd they were appended to. */
  private pending = new Map<number, { entries: { key: JournalKey; batches: Buffer }[]; bytes: number }>()
  private pendingSize = 0
  /** Bytes written to the current file. */
  private written = 0
  private openedAt = performance.now()
  private checkpointCount = 0
  private readonly checkpointBytes: number
  private readonly checkpointMs: number

  private constructor(
    dir: string,
    dirFd: number,
    oldFiles: string[],
    recovery: JournalRecovery,
    sequence: number,
    options: JournalOptions,
  ) {
    this.dir = dir
    this.dirFd = dirFd
    this.checkpointBytes = options.checkpointBytes ?? JOURNAL_CHECKPOINT_BYTES
    this.checkpointMs = options.checkpointMs ?? JOURNAL_CHECKPOINT_MS
    this.oldFiles = oldFiles
    this.recovery = recovery
    this.sequence = sequence
    this.fd = this.create(sequence)
  }

  /**
   * Opens the journal in dir: reads the files a previous run left (for recoveredFor()), and starts
   * a new file. The new file's directory entry is synced by the first round (the caller marks
   * dirFd dirty through the Flusher, which does that for every file it starts).
   */
  static open(dir: string, options: JournalOptions = {}): Journal {
    fs.mkdirSync(dir, { recursive: true })
    const dirFd = fs.openSync(dir, 'r')
    try {
      const files = fs
        .readdirSync(dir)
        .filter((name) => FILE.test(name))
        .sort()
      const recovery: JournalRecovery = { files: files.length, entries: 0, tornFiles: 0 }
      const entries: { key: string; batches: Buffer }[] = []
      for (const name of files) {
        if (!readFile(path.join(dir, name), entries)) recovery.tornFiles++
      }
      recovery.entries = entries.length
      const last = files.length > 0 ? Number(FILE.exec(files[files.length - 1])?.[1]) : 0
      const journal = new Journal(
        dir,
        dirFd,
        files.map((f) => path.join(dir, f)),
        recovery,
        last + 1,
        options,
      )
      for (const e of entries) {
        const list = journal.recovered.get(e.key)
        if (list === undefined) journal.recovered.set(e.key, [e.batches])
        else list.push(e.batches)
      }
      return journal
    } catch (err) {
      closeQuietly(dirFd)
      throw err
    }
  }

  /** The batches a previous run journaled for a partition (concatenated v2 batches per entry), oldest first. */
  recoveredFor(key: JournalKey): Buffer[] {
    return this.recovered.get(keyOf(key.topicId, key.partition)) ?? []
  }

  /**
   * Removes the files a previous run left, once every partition has replayed them and the
   * replayed data is synced. (Removing them is not urgent: replaying a file twice appends nothing.)
   */
  dropRecovered(): void {
    this.recovered.clear()
    for (const file of this.oldFiles.splice(0)) unlinkIfExists(file)
  }

  /** The current file's fd, synced by every round that wrote to it. */
  get currentFd(): number {
    return this.fd
  }
  get pendingBytes(): number {
    return this.pendingSize
  }
  get checkpoints(): number {
    return this.checkpointCount
  }

  /** Queues an entry for the next round; `fd` is the segment the batches were appended to. */
  add(key: JournalKey, batches: Buffer, fd: number): void {
    let group = this.pending.get(fd)
    if (group === undefined) {
      group = { entries: [], bytes: 0 }
      this.pending.set(fd, group)
    }
    group.entries.push({ key, batches })
    group.bytes += HEADER_SIZE + batches.length
    this.pendingSize += HEADER_SIZE + batches.length
  }

  /**
   * The segment open as `fd` is being closed (deleted by retention, say): its queued entries go to
   * the journal whatever their size, as no round may sync an fd that is closed or reused.
   */
  release(fd: number): void {
    const group = this.pending.get(fd)
    if (group === undefined) return
    this.pending.delete(fd)
    const orphans = this.pending.get(RELEASED)
    if (orphans === undefined) this.pending.set(RELEASED, group)
    else {
      orphans.entries.push(...group.entries)
      orphans.bytes += group.bytes
    }
  }

  /**
   * Writes the queued entries to the current file (page cache), in one system call, except those
   * of a segment that is better synced itself: the only segment of the round (one fdatasync
   * either way, and its bytes written once), or one with `directBytes` or more queued (writing
   * that much twice costs more than the fdatasync it spares); with `directBytes` < 0, none.
   * Returns whether it wrote, and the segments to sync directly in this round.
   */
  writePending(directBytes: number): { wrote: boolean; direct: number[] } {
    const groups = this.pending
    this.pending = new Map()
    this.pendingSize = 0
    const direct: number[] = []
    const parts: Buffer[] = []
    let size = 0
    for (const [fd, group] of groups) {
      if (fd >= 0 && directBytes >= 0 && (groups.size === 1 || group.bytes >= directBytes)) {
        direct.push(fd)
        continue
      }
      for (const { key, batches } of group.entries) {
        const header = Buffer.allocUnsafe(HEADER_SIZE)
        header.writeUInt32BE(HEADER_SIZE - 8 + batches.length, 0)
        key.topicId.copy(header, 8, 0, 16)
        header.writeInt32BE(key.partition, 24)
        header.writeUInt32BE(crc32(batches, crc32(header.subarray(8))), 4)
        parts.push(header, batches)
      }
      size += group.bytes
    }
    if (size === 0) return { wrote: false, direct }
    const data = Buffer.concat(parts, size)
    let done = 0
    while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, this.written + done)
    this.written += data.length
    return { wrote: true, direct }
  }

  /** Whether the round about to run should sync every segment and then move to a new file. */
  checkpointDue(now = performance.now()): boolean {
    return this.written >= this.checkpointBytes || (this.written > 0 && now - this.openedAt >= this.checkpointMs)
  }

  /**
   * After a checkpoint round synced every segment written since the current file began: moves to
   * a new file and removes the old one. The caller must have the directory synced before the new
   * file's entries are relied upon (the Flusher marks dirFd dirty).
   */
  rotate(): void {
    const old = this.fd
    const oldPath = this.filePath(this.sequence)
    this.sequence++
    this.fd = this.create(this.sequence)
    closeQuietly(old)
    unlinkIfExists(oldPath)
    this.checkpointCount++
  }

  /** Closes the journal; with `redundant` (every log closed cleanly, all synced), removes its file. */
  close(redundant: boolean): void {
    closeQuietly(this.fd)
    if (redundant) {
      unlinkIfExists(this.filePath(this.sequence))
      try {
        fs.fsyncSync(this.dirFd)
      } catch {
        // A leftover file only costs a replay that appends nothing.
      }
    }
    closeQuietly(this.dirFd)
  }

  private create(sequence: number): number {
    const fd = fs.openSync(this.filePath(sequence), 'w')
    this.written = 0
    this.openedAt = performance.now()
    return fd
  }

  private filePath(sequence: number): string {
    return path.join(this.dir, String(sequence).padStart(20, '0') + SUFFIX)
  }
}

/** Appends a file's whole, intact entries to `out`; returns false if it ended in a torn or corrupt one. */
function readFile(file: string, out: { key: string; batches: Buffer }[]): boolean {
  const fd = fs.openSync(file, 'r')
  try {
    const size = fs.fstatSync(fd).size
    const data = Buffer.allocUnsafe(size)
    const n = readFully(fd, data, 0, size, 0)
    let pos = 0
    while (pos < n) {
      if (pos + HEADER_SIZE > n) return false
      const length = data.readUInt32BE(pos)
      if (length < HEADER_SIZE - 8 || pos + 8 + length > n) return false
      const body = data.subarray(pos + 8, pos + 8 + length)
      if (crc32(body) !== data.readUInt32BE(pos + 4)) return false
      out.push({ key: keyOf(body.subarray(0, 16), body.readInt32BE(16)), batches: body.subarray(20) })
      pos += 8 + length
    }
    return true
  } finally {
    closeQuietly(fd)
  }
}
