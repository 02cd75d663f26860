// The on-disk log of one partition: a directory of segments named by base offset, the newest
// of which (the active segment) takes appends. Durability comes from the shared Flusher (group
// commit, through the broker's journal when it has one); crash safety from recovery on open (see
// open()).

import fs from 'node:fs'
import path from 'node:path'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BatchHeader, LOG_OVERHEAD, readBatchHeader } from '../../protocol/record-batch.ts'
import { LogClosedError, LogError, OffsetOutOfRangeError } from './errors.ts'
import {
  closeQuietly,
  INDEX_SUFFIX,
  LOG_SUFFIX,
  parseSegmentFileName,
  segmentPath,
  TIME_INDEX_SUFFIX,
  unlinkIfExists,
} from './files.ts'
import { type Flusher } from './flusher.ts'
import { type JournalKey } from './journal.ts'
import { INT32_MAX, Segment } from './segment.ts'
import { completeInterruptedSwaps } from './swap.ts'
import { ProducerStateTable } from './producer-state.ts'
import { loadLatestSnapshot, writeSnapshot } from './producer-snapshot.ts'

export interface LogConfig {
  segmentBytes: number
  segmentMs: number
  /** -1 = unlimited */
  retentionMs: number
  /** -1 = unlimited */
  retentionBytes: number
  indexIntervalBytes: number
  /**
   * Consumers see only what is on disk (the high watermark is the durable end): set when
   * acknowledgements wait for fsync, so no reader acts on a record a machine crash could take back.
   */
  visibleWhenDurable?: boolean
}

export interface JournalReplay {
  /** Batches appended again from the journal (lost from the segment, acknowledged from the journal). */
  batches: number
  /** Set when the journal's batches did not continue the recovered log (a gap): the rest were not replayed. */
  gapAt: number | null
}

export interface ProducerStateLoad {
  /** Offset of the snapshot used, or -1 when the state was rebuilt from the log alone. */
  snapshotOffset: number
  scannedFromOffset: number
  scannedBatches: number
  /** Snapshots found unusable (torn, corrupt, beyond the log end) and deleted. */
  discardedSnapshots: string[]
  ms: number
}

export const DEFAULT_LOG_CONFIG: LogConfig = {
  segmentBytes: 1073741824,
  segmentMs: 604800000,
  retentionMs: 604800000,
  retentionBytes: -1,
  indexIntervalBytes: 4096,
}

/** Present only while the log is cleanly closed; its absence on open means "recover". */
export const CLEAN_SHUTDOWN_FILE = '.clean-shutdown'
const EMPTY = Buffer.alloc(0)

export class PartitionLog {
  readonly dir: string
  readonly config: LogConfig
  private readonly flusher: Flusher
  /** This log's name in the broker's journal; undefined: appends are synced by the next round. */
  private readonly journalKey: JournalKey | undefined
  private readonly dirFd: number
  private readonly segments: Segment[]
  private endOffset: number
  /** Offsets below this were fdatasync'ed (flush() resolved after they were appended). */
  private durableEnd: number
  private totalBytes: number
  private closing: Promise<void> | null = null
  // The snapshot written by a clean close, synced and closed with the other files.
  private snapshotFd = -1
  // Closes of deleted segments' fds, which wait for in-flight fsyncs on them.
  private readonly pendingCloses = new Set<Promise<void>>()
  // The log cleaner's task on this log (cleaner.ts), settled-safe; close waits for it.
  private cleaningTask: Promise<void> | null = null
  /** Bytes cut off by recovery when this log was opened (0 after a clean shutdown). */
  readonly recoveredTruncatedBytes: number
  /** Idempotent producers' state (producer-state.ts): rebuilt on open, snapshotted at roll and close. */
  readonly producerState = new ProducerStateTable()
  /** How open() rebuilt producerState: from which snapshot, and how many batch headers it replayed. */
  producerStateLoad: ProducerStateLoad = {
    snapshotOffset: -1,
    scannedFromOffset: 0,
    scannedBatches: 0,
    discardedSnapshots: [],
    ms: 0,
  }
  /** What open() appended again from the journal. */
  journalReplay: JournalReplay = { batches: 0, gapAt: null }

  private constructor(
    dir: string,
    config: LogConfig,
    flusher: Flusher,
    journalKey: JournalKey | undefined,
    dirFd: number,
    segments: Segment[],
    truncated: number,
  ) {
    this.dir = dir
    this.config = config
    this.flusher = flusher
    this.journalKey = journalKey
    this.dirFd = dirFd
    this.segments = segments
    this.endOffset = segments[segments.length - 1].nextOffset
    // What a crashed process left may be in the page cache only: the next flush round syncs it
    // (the broker awaits one before it listens).
    this.durableEnd = this.endOffset
    for (const fd of segments[segments.length - 1].fds()) flusher.markDirty(fd)
    this.totalBytes = segments.reduce((sum, s) => sum + s.size, 0)
    this.recoveredTruncatedBytes = truncated
  }

  /**
   * Opens (creating if missing) the log in dir. After a clean shutdown the indexes are loaded
   * from their files (a segment whose indexes do not match its log is rescanned). Otherwise the
   * last segment is scanned batch by batch and truncated at the first torn or corrupt batch. A
   * segment truncated that way drops every later segment, and a segment overlapping the previous
   * one's offsets is dropped, so offsets always increase through the log. With a journal key, the
   * batches the broker's journal holds beyond the recovered end are then appended again (a machine
   * crash took them from the page cache after the journal had acknowledged them).
   */
  static open(
    dir: string,
    config: LogConfig,
    flusher: Flusher,
    now: number = Date.now(),
    journalKey?: JournalKey,
  ): PartitionLog {
    fs.mkdirSync(dir, { recursive: true })
    const dirFd = fs.openSync(dir, 'r')
    try {
      const marker = path.join(dir, CLEAN_SHUTDOWN_FILE)
      const clean = fs.existsSync(marker)
      let dirChanged = false
      if (clean) {
        // Remove it durably first: a crash from here on must lead to recovery.
        fs.unlinkSync(marker)
        fs.fsyncSync(dirFd)
      }

      // A log cleaner swap interrupted by a crash: finish it or roll it back (swap.ts).
      if (completeInterruptedSwaps(dir)) dirChanged = true

      const logs = new Set<number>()
      const others: { name: string; baseOffset: number }[] = []
      for (const name of fs.readdirSync(dir)) {
        const parsed = parseSegmentFileName(name)
        if (parsed === null) continue
        if (parsed.suffix === LOG_SUFFIX) logs.add(parsed.baseOffset)
        else others.push({ name, baseOffset: parsed.baseOffset })
      }
      // Index files without a log: left over from an interrupted delete.
      for (const o of others) {
        if (!logs.has(o.baseOffset)) {
          unlinkIfExists(path.join(dir, o.name))
          dirChanged = true
        }
      }
      const bases = [...logs].sort((a, b) => a - b)
      const segments: Segment[] = []
      let truncated = 0
      for (let i = 0; i < bases.length; i++) {
        const isLast = i === bases.length - 1
        const prev = segments.length > 0 ? segments[segments.length - 1] : null
        let opened: { segment: Segment; truncatedBytes: number } | null = null
        if (prev === null || bases[i] >= prev.nextOffset) {
          opened = Segment.open(dir, bases[i], config.indexIntervalBytes, !clean && isLast)
        }
        if (opened === null) {
          // Overlaps the previous segment's offsets (never written that way): drop it.
          deleteSegmentFiles(dir, bases[i])
          dirChanged = true
          continue
        }
        segments.push(opened.segment)
        truncated += opened.truncatedBytes
        if (opened.truncatedBytes > 0 && !isLast) {
          for (const base of bases.slice(i + 1)) deleteSegmentFiles(dir, base)
          dirChanged = true
          break
        }
      }
      if (segments.length === 0) {
        segments.push(Segment.create(dir, 0, config.indexIntervalBytes))
        dirChanged = true
      }
      if (dirChanged) fs.fsyncSync(dirFd)
      segments[segments.length - 1].initRollBaseTime(now)
      const log = new PartitionLog(dir, config, flusher, journalKey, dirFd, segments, truncated)
      log.loadProducerState(now)
      if (journalKey !== undefined) log.replayJournal(flusher.recoveredFor(journalKey), now)
      return log
    } catch (err) {
      closeQuietly(dirFd)
      throw err
    }
  }

  get logStartOffset(): number {
    return this.segments[0].baseOffset
  }
  /** The next offset to assign. */
  get logEndOffset(): number {
    return this.endOffset
  }
  /**
   * The end of what consumers may read (Kafka's high watermark): with visibleWhenDurable, the end
   * of what is on disk; otherwise the log end.
   */
  get highWatermark(): number {
    return this.config.visibleWhenDurable === true ? this.durableEnd : this.endOffset
  }
  get sizeInBytes(): number {
    return this.totalBytes
  }
  get segmentCount(): number {
    return this.segments.length
  }
  /** Base offsets of the segments, oldest first. */
  get segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset)
  }
  get isClosed(): boolean {
    return this.closing !== null
  }

  /**
   * Appends already-validated v2 batches (concatenated in `batches`, one header each) in order,
   * assigning offsets in place, with one synchronous write. Durable once flush() resolves.
   */
  append(batches: Buffer, headers: BatchHeader[], now: number): { baseOffset: number; lastOffset: number } {
    this.checkOpen()
    let bytes = 0
    let count = 0
    for (const h of headers) {
      bytes += h.batchLength + LOG_OVERHEAD
      count += h.lastOffsetDelta + 1
    }
    if (bytes !== batches.length || (count <= 0 && headers.length > 0)) {
      throw new LogError(ErrorCode.CORRUPT_MESSAGE, 'batch headers do not match the appended bytes')
    }
    const baseOffset = this.endOffset
    if (headers.length === 0) return { baseOffset, lastOffset: baseOffset - 1 }
    if (this.shouldRoll(bytes, count, now)) this.roll()
    const active = this.segments[this.segments.length - 1]
    this.endOffset = active.append(batches, headers, baseOffset, now)
    this.totalBytes += bytes
    this.flusher.appended(this.journalKey, batches, active.fd)
    return { baseOffset, lastOffset: this.endOffset - 1 }
  }

  /**
   * Appends the journal's batches that continue the recovered log, in order, skipping those it
   * already holds; they are synced by the broker's first round (marked dirty, not journaled again).
   * A batch that neither is in the log nor continues it stops the replay (recorded in journalReplay).
   */
  private replayJournal(entries: Buffer[], now: number): void {
    for (const batches of entries) {
      let pos = 0
      while (pos + LOG_OVERHEAD <= batches.length) {
        const h = readBatchHeader(batches, pos)
        const size = LOG_OVERHEAD + h.batchLength
        if (h.batchLength <= 0 || pos + size > batches.length) {
          this.journalReplay.gapAt = this.endOffset // not batches as appended: replay nothing more
          return
        }
        const batch = batches.subarray(pos, pos + size)
        pos += size
        const last = h.baseOffset + h.lastOffsetDelta
        if (last < this.endOffset) continue
        if (h.baseOffset !== this.endOffset) {
          this.journalReplay.gapAt = this.endOffset
          return
        }
        if (this.shouldRoll(batch.length, h.lastOffsetDelta + 1, now)) this.roll()
        const active = this.segments[this.segments.length - 1]
        this.endOffset = active.append(batch, [h], h.baseOffset, now)
        this.totalBytes += batch.length
        this.durableEnd = this.endOffset
        this.flusher.markDirty(active.fd)
        if (h.producerId >= 0) this.producerState.record(h, h.baseOffset, last, now)
        this.journalReplay.batches++
      }
    }
  }

  private shouldRoll(bytes: number, count: number, now: number): boolean {
    const active = this.segments[this.segments.length - 1]
    if (active.size === 0) return false
    return (
      active.size + bytes > this.config.segmentBytes ||
      active.size + bytes > INT32_MAX || // index positions are int32
      (this.config.segmentMs > 0 && active.rollBaseTime >= 0 && now - active.rollBaseTime > this.config.segmentMs) ||
      this.endOffset + count - 1 - active.baseOffset > INT32_MAX // relative offsets are int32
    )
  }

  /**
   * Starts a new active segment at the log end offset. The old one and the directory are synced
   * by the next flush round, which is kicked off here; appends to the new segment can only be
   * acknowledged by that round or a later one, so they are never durable before the old data.
   */
  private roll(): void {
    const old = this.segments[this.segments.length - 1]
    // With a journal, the old segment's tail may be on disk only there; it is synced now, before
    // a newer segment exists: recovery scans only the last segment for a lost tail.
    if (this.journalKey !== undefined && this.flusher.journaling) fs.fdatasyncSync(old.fd)
    old.finish()
    for (const fd of old.fds()) this.flusher.markDirty(fd)
    this.segments.push(Segment.create(this.dir, this.endOffset, this.config.indexIntervalBytes))
    this.snapshotProducerState(false)
    this.flusher.markDirty(this.dirFd)
    this.flusher.flush().catch(() => {
      // Failures also reject every waiter of the same round, which reports them.
    })
  }

  /** Resolves when everything appended so far is on disk. */
  flush(): Promise<void> {
    if (this.closing !== null) return this.closing // close() syncs everything appended before it
    const end = this.endOffset
    return this.flusher.flush().then(() => {
      if (end > this.durableEnd) this.durableEnd = end
    })
  }

  /**
   * Whole batches starting with the one that contains fetchOffset, from a single segment, at most
   * maxBytes in total, except that with minOneBatch the first batch comes whole even if larger
   * (KIP-74). Only batches that start below `upTo` (default: the log end; appends are whole
   * batches, so a high watermark always falls between two). Empty at the log end. Throws
   * OffsetOutOfRangeError outside [logStartOffset, logEndOffset].
   */
  read(fetchOffset: number, maxBytes: number, minOneBatch: boolean, upTo: number = this.endOffset): Buffer {
    this.checkOpen()
    if (fetchOffset < this.logStartOffset || fetchOffset > this.endOffset) {
      throw new OffsetOutOfRangeError(fetchOffset, this.logStartOffset, this.endOffset)
    }
    if (fetchOffset >= upTo) return EMPTY
    for (let i = this.segmentIndexFor(fetchOffset); i < this.segments.length; i++) {
      const segment = this.segments[i]
      // Past this segment's end (e.g. a gap), or a segment the log cleaner emptied: continue at
      // the next segment's first batch.
      const from = Math.max(fetchOffset, segment.baseOffset)
      if (from < segment.nextOffset) {
        const batches = segment.read(from, maxBytes, minOneBatch)
        return upTo >= segment.nextOffset ? batches : batchesBelow(batches, upTo)
      }
    }
    return EMPTY
  }

  /** Index of the last segment whose base offset is <= offset (0 if none). */
  private segmentIndexFor(offset: number): number {
    const segments = this.segments
    let lo = 0
    let hi = segments.length - 1
    let found = 0
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (segments[mid].baseOffset <= offset) {
        found = mid
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    return found
  }

  /**
   * First offset whose record timestamp is >= ts, with that timestamp (for a compressed batch,
   * its base offset and max timestamp), or null if there is none.
   */
  offsetForTimestamp(ts: number): { offset: number; timestamp: number } | null {
    this.checkOpen()
    const start = this.logStartOffset
    for (const segment of this.segments) {
      if (segment.largestTimestamp < ts) continue
      const found = segment.findOffsetByTimestamp(ts, start)
      if (found !== null) return found
    }
    return null
  }

  /**
   * Deletes whole segments, oldest first: those whose largest timestamp (file mtime when they have
   * none) is older than retention.ms, then more while the log stays at or above
   * retention.bytes without them. The active segment is never deleted: if it would be and holds
   * data, the log rolls first. Returns the number of segments deleted.
   */
  applyRetention(now: number): number {
    this.checkOpen()
    if (this.cleaningTask !== null) return 0 // the cleaner holds segments; retention runs next time
    const { retentionMs, retentionBytes } = this.config
    const segments = this.segments
    let count = 0
    if (retentionMs >= 0) {
      while (count < segments.length) {
        const s = segments[count]
        if (s.size === 0 && count === segments.length - 1) break
        const age = now - (s.largestTimestamp >= 0 ? s.largestTimestamp : s.mtimeMs())
        if (age <= retentionMs) break
        count++
      }
    }
    if (retentionBytes >= 0) {
      let remaining = this.totalBytes
      for (let i = 0; i < count; i++) remaining -= segments[i].size
      while (count < segments.length) {
        const s = segments[count]
        if (s.size === 0 && count === segments.length - 1) break
        if (remaining - s.size < retentionBytes) break
        remaining -= s.size
        count++
      }
    }
    if (count === 0) return 0
    if (count === segments.length) this.roll() // keeps an (empty) active segment at the log end
    const deleted = segments.splice(0, count)
    for (const s of deleted) {
      this.totalBytes -= s.size
      s.deleteFiles()
      const closed = Promise.all(s.fds().map((fd) => this.flusher.release(fd))).then(() => s.close())
      this.pendingCloses.add(closed)
      void closed.finally(() => this.pendingCloses.delete(closed))
    }
    // Make the deletions durable at the next flush round (a crash before just resurrects them).
    this.flusher.markDirty(this.dirFd)
    return deleted.length
  }

  /**
   * Syncs everything, writes the clean-shutdown marker and closes all files. Waits for in-flight
   * fsyncs on this log's fds first. Later calls (other than flush) throw LogClosedError.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown(true)
    return this.closing
  }

  /** Closes without the marker and removes the directory. */
  async delete(): Promise<void> {
    this.closing ??= this.shutdown(false)
    try {
      await this.closing
    } catch {
      // The data is going away anyway.
    }
    fs.rmSync(this.dir, { recursive: true, force: true })
  }

  private async shutdown(clean: boolean): Promise<void> {
    // A running cleaner sees isClosed and stops (or finishes a swap it has committed) first.
    if (this.cleaningTask !== null) await this.cleaningTask
    let failure: Error | null = null
    const active = this.segments[this.segments.length - 1]
    if (clean) {
      try {
        active.finish()
        for (const fd of active.fds()) this.flusher.markDirty(fd)
        this.snapshotProducerState(true)
        this.flusher.markDirty(this.dirFd)
        await this.flusher.flush()
        // The marker only after the data and indexes it vouches for are durable.
        const marker = path.join(this.dir, CLEAN_SHUTDOWN_FILE)
        const markerFd = fs.openSync(marker, 'w')
        this.flusher.markDirty(markerFd)
        this.flusher.markDirty(this.dirFd)
        try {
          await this.flusher.flush()
        } catch (err) {
          unlinkIfExists(marker)
          throw err
        } finally {
          await this.flusher.release(markerFd)
          closeQuietly(markerFd)
        }
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err))
      }
    }
    const fds = [this.dirFd]
    if (this.snapshotFd >= 0) fds.push(this.snapshotFd)
    for (const s of this.segments) fds.push(...s.fds())
    await Promise.all(fds.map((fd) => this.flusher.release(fd)))
    await Promise.all(this.pendingCloses)
    for (const s of this.segments) s.close()
    if (this.snapshotFd >= 0) closeQuietly(this.snapshotFd)
    closeQuietly(this.dirFd)
    if (failure !== null) throw failure
  }

  /**
   * Calls visit with the header of every batch whose last offset is >= fromOffset, in offset
   * order, reading only the 61-byte batch headers. visit must not read this log (the walk reuses
   * the segments' scratch buffer).
   */
  forEachBatchHeader(fromOffset: number, visit: (header: BatchHeader) => void): void {
    this.checkOpen()
    for (let i = this.segmentIndexFor(fromOffset); i < this.segments.length; i++) {
      this.segments[i].forEachBatchHeader(fromOffset, (buf, off) => {
        const h = readBatchHeader(buf, off)
        if (h.baseOffset + h.lastOffsetDelta >= fromOffset) visit(h)
      })
    }
  }

  /**
   * Rebuilds producerState: the newest usable snapshot, then the batch headers from its offset (or
   * from the log start without one) to the log end. Producers found in the replayed headers count
   * as seen `now` for expiry (the headers carry only client timestamps); those from the snapshot
   * keep the time they were last seen.
   */
  private loadProducerState(now: number): void {
    const started = performance.now()
    const { snapshot, discarded } = loadLatestSnapshot(this.dir, this.endOffset)
    let from = this.logStartOffset
    if (snapshot !== null) {
      for (const entry of snapshot.entries) this.producerState.load(entry)
      from = Math.max(from, snapshot.offset)
    }
    let scanned = 0
    this.forEachBatchHeader(from, (h) => {
      scanned++
      if (h.producerId >= 0) this.producerState.record(h, h.baseOffset, h.baseOffset + h.lastOffsetDelta, now)
    })
    this.producerStateLoad = {
      snapshotOffset: snapshot?.offset ?? -1,
      scannedFromOffset: from,
      scannedBatches: scanned,
      discardedSnapshots: discarded,
      ms: performance.now() - started,
    }
  }

  /**
   * Writes the producer state snapshot at the log end. At roll it is not synced (a torn one is
   * detected and skipped on open); on close its fd is synced by the same flush round as the data.
   * A failure to write it only costs a longer scan on the next open.
   */
  private snapshotProducerState(sync: boolean): void {
    let fd: number
    try {
      fd = writeSnapshot(this.dir, this.endOffset, this.producerState.entries())
    } catch {
      return
    }
    if (!sync) {
      closeQuietly(fd)
      return
    }
    this.snapshotFd = fd
    this.flusher.markDirty(fd)
  }

  // ---- log cleaner support (cleaner.ts) ----

  /** The segments, oldest first; the last one is active. A copy, for the log cleaner to plan on. */
  segmentsSnapshot(): Segment[] {
    this.checkOpen()
    return this.segments.slice()
  }

  get isCleaning(): boolean {
    return this.cleaningTask !== null
  }

  /**
   * Runs a log cleaning task on this log, one at a time. Retention waits for it (applyRetention
   * does nothing meanwhile) and close() waits for it before closing any file; the task must stop
   * early once isClosed is true, unless it has committed a swap, which it finishes.
   */
  async runCleaning<T>(task: () => Promise<T>): Promise<T> {
    this.checkOpen()
    if (this.cleaningTask !== null)
      throw new LogError(ErrorCode.CORRUPT_MESSAGE, `log ${this.dir} is already being cleaned`)
    const running = task()
    this.cleaningTask = running.then(
      () => undefined,
      () => undefined,
    )
    try {
      return await running
    } finally {
      this.cleaningTask = null
    }
  }

  /** Whether `old` is still a run of consecutive segments of this log, none of them active. */
  canReplaceSegments(old: readonly Segment[]): boolean {
    if (old.length === 0) return false
    const i = this.segments.indexOf(old[0])
    if (i < 0 || i + old.length >= this.segments.length) return false
    return old.every((s, k) => this.segments[i + k] === s)
  }

  /**
   * Puts `replacement` (a cleaned segment covering the same offsets) in place of `old` in one
   * synchronous step, so a read sees either the old segments or the new one, never a mix. The
   * old segments' fds are closed once no fsync is in flight on them; their files are the
   * caller's to remove.
   */
  replaceSegments(old: readonly Segment[], replacement: Segment): void {
    if (!this.canReplaceSegments(old))
      throw new LogError(ErrorCode.CORRUPT_MESSAGE, 'replaceSegments: the segments to replace are no longer in the log')
    this.segments.splice(this.segments.indexOf(old[0]), old.length, replacement)
    this.totalBytes += replacement.size
    for (const s of old) {
      this.totalBytes -= s.size
      const closed = Promise.all(s.fds().map((fd) => this.flusher.release(fd))).then(() => s.close())
      this.pendingCloses.add(closed)
      void closed.finally(() => this.pendingCloses.delete(closed))
    }
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new LogClosedError(this.dir)
  }
}

function deleteSegmentFiles(dir: string, baseOffset: number): void {
  for (const suffix of [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX])
    unlinkIfExists(segmentPath(dir, baseOffset, suffix))
}

/** The leading batches of `batches` (whole v2 batches, back to back) whose base offset is below `upTo`. */
function batchesBelow(batches: Buffer, upTo: number): Buffer {
  let pos = 0
  while (pos + LOG_OVERHEAD <= batches.length && Number(batches.readBigInt64BE(pos)) < upTo)
    pos += LOG_OVERHEAD + batches.readInt32BE(pos + 8)
  return pos >= batches.length ? batches : batches.subarray(0, pos)
}
