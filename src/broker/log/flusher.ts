// Group commit shared by all partition logs. Appends mark their file descriptors dirty; callers
// that need durability await flush(). One fsync round runs at a time: it collects every dirty fd
// and fdatasyncs them in parallel, then resolves everyone who asked before it started. Whoever
// asks while a round is running joins the next round, because their data may have been written
// after the running round's fdatasync calls were issued.
//
// With a journal (journal.ts), an append's bytes are also queued for the journal and its segment
// is synced only at the next checkpoint: a round writes the queued entries and syncs the journal
// file (plus whatever was marked dirty), so it costs one fdatasync however many partitions it
// covers. A segment with many bytes in the round, or the round's only one, is synced itself
// instead (Journal.writePending). A checkpoint round also syncs every segment written since the
// last one, then the journal moves to a new file.

import fs from 'node:fs'
import { LogStorageError } from './errors.ts'
import { type Journal, JOURNAL_DIRECT_BYTES, JOURNAL_PENDING_LIMIT_BYTES, type JournalKey } from './journal.ts'

export type FdatasyncFn = (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => void

export interface FlusherOptions {
  /** Injected for tests (slow or failing disks); defaults to fs.fdatasync. */
  fdatasync?: FdatasyncFn
  /**
   * The synchronous one, for rounds of one file on a fast disk; defaults to fs.fdatasyncSync, or
   * to none (every round on the thread pool) when only `fdatasync` is injected.
   */
  fdatasyncSync?: (fd: number) => void
  /** Write-ahead journal: appends are journaled and their segments synced at checkpoints. */
  journal?: Journal
  /** A segment with this many bytes in a round (or the round's only one) is synced itself; < 0: never. Default JOURNAL_DIRECT_BYTES. */
  journalDirectBytes?: number
  /** The clock rounds are timed by, in milliseconds; injected for tests. Default performance.now. */
  now?: () => number
}

/** A round slower than this sends the next single-file rounds to the thread pool. */
export const INLINE_SYNC_MAX_MS = 1

interface Round {
  promise: Promise<void>
  resolve: () => void
  reject: (err: Error) => void
}

export class Flusher {
  /** Called after each round with its duration and number of fds synced (e.g. for a histogram). */
  onRound: ((durationMs: number, fdCount: number) => void) | null = null

  private readonly fdatasync: FdatasyncFn
  private readonly fdatasyncSync: ((fd: number) => void) | undefined
  private readonly journalDirectBytes: number
  private readonly now: () => number
  private readonly dirty = new Set<number>()
  /** Segments whose appended bytes are in the journal: synced by the next checkpoint round. */
  private readonly journaled = new Set<number>()
  /** Fds released while a round syncs them (a failed checkpoint must not put them back). */
  private readonly releasedInRound = new Set<number>()
  private readonly inFlight = new Set<number>()
  /** Undefined without a journal, or after writing it failed (every append is then synced eagerly). */
  private journal: Journal | undefined
  private readonly releaseWaiters = new Map<number, (() => void)[]>()
  private next: Round | null = null
  private running = false
  private scheduled = false

  private roundCount = 0
  private fsyncCount = 0
  private errorCount = 0
  private totalMs = 0
  private lastMs = 0
  private maxMs = 0

  constructor(options: FlusherOptions = {}) {
    this.fdatasync = options.fdatasync ?? fs.fdatasync
    this.fdatasyncSync = options.fdatasyncSync ?? (options.fdatasync === undefined ? fs.fdatasyncSync : undefined)
    this.journal = options.journal
    this.journalDirectBytes = options.journalDirectBytes ?? JOURNAL_DIRECT_BYTES
    this.now = options.now ?? (() => performance.now())
    // The journal's new file needs its directory entry synced before its entries count.
    if (this.journal !== undefined) this.dirty.add(this.journal.dirFd)
  }

  /** The batches the journal's previous files hold for a partition (PartitionLog.open replays them). */
  recoveredFor(key: JournalKey): Buffer[] {
    return this.journal?.recoveredFor(key) ?? []
  }

  /** Whether appends are journaled (a segment is then only synced at checkpoints, roll or close). */
  get journaling(): boolean {
    return this.journal !== undefined
  }

  /** Completed fsync rounds. */
  get rounds(): number {
    return this.roundCount
  }
  /** fdatasync calls issued. */
  get fsyncs(): number {
    return this.fsyncCount
  }
  /** fdatasync calls that failed. */
  get errors(): number {
    return this.errorCount
  }
  /** Sum of round durations, in milliseconds. */
  get totalRoundMs(): number {
    return this.totalMs
  }
  get lastRoundMs(): number {
    return this.lastMs
  }
  get maxRoundMs(): number {
    return this.maxMs
  }
  /** Fds waiting for the next round. */
  get dirtyCount(): number {
    return this.dirty.size
  }
  /** Checkpoints completed (journal files moved past). */
  get checkpoints(): number {
    return this.journal?.checkpoints ?? 0
  }

  markDirty(fd: number): void {
    this.dirty.add(fd)
  }

  /**
   * A partition log appended `batches` to the segment open as `fd`: journaled (the segment synced
   * at the next checkpoint) when there is a journal and the log has a key in it, else marked dirty.
   */
  appended(key: JournalKey | undefined, batches: Buffer, fd: number): void {
    if (this.journal === undefined || key === undefined) {
      this.dirty.add(fd)
      return
    }
    this.journal.add(key, batches, fd)
    this.journaled.add(fd)
    // Appends nobody flushes (acks=0) must not pile up in memory.
    if (this.journal.pendingBytes >= JOURNAL_PENDING_LIMIT_BYTES) this.flush().catch(() => {})
  }

  /** Resolves once every fd marked dirty before this call has been fdatasync'ed. */
  flush(): Promise<void> {
    if (this.next === null) {
      const { promise, resolve, reject } = Promise.withResolvers<void>()
      this.next = { promise, resolve, reject }
    }
    this.schedule()
    return this.next.promise
  }

  /**
   * Forgets fd (it will not be synced by later rounds) and resolves once no fdatasync on it is in
   * flight, so the caller can close it without a later fsync hitting a closed or reused fd.
   */
  release(fd: number): Promise<void> {
    this.dirty.delete(fd)
    this.journaled.delete(fd)
    this.journal?.release(fd)
    if (!this.inFlight.has(fd)) return Promise.resolve()
    this.releasedInRound.add(fd)
    return new Promise((resolve) => {
      const waiters = this.releaseWaiters.get(fd)
      if (waiters === undefined) this.releaseWaiters.set(fd, [resolve])
      else waiters.push(resolve)
    })
  }

  private schedule(): void {
    if (this.running || this.scheduled) return
    this.scheduled = true
    // setImmediate lets every caller in the current turn of the event loop join this round.
    setImmediate(this.runRound)
  }

  private readonly runRound = (): void => {
    this.scheduled = false
    const round = this.next
    if (round === null) return
    this.next = null
    this.running = true
    const start = this.now()
    let failure: NodeJS.ErrnoException | null = null
    const journal = this.journal
    // A checkpoint round syncs the segments whose entries are in the current journal file.
    let checkpoint: number[] | null = null
    if (journal !== undefined) {
      try {
        const { wrote, direct } = journal.writePending(this.journalDirectBytes)
        if (wrote) this.dirty.add(journal.currentFd)
        for (const fd of direct) this.dirty.add(fd)
        if (journal.checkpointDue(start)) {
          checkpoint = [...this.journaled]
          this.journaled.clear()
          for (const fd of checkpoint) this.dirty.add(fd)
        }
      } catch (err) {
        // Queued entries may be torn in the file, and later ones would sit behind them: stop
        // journaling, and sync every segment the journal was covering, in this round and after.
        failure = err as NodeJS.ErrnoException
        this.journal = undefined
        for (const fd of this.journaled) this.dirty.add(fd)
        this.journaled.clear()
      }
    }
    const fds = [...this.dirty]
    this.dirty.clear()
    this.releasedInRound.clear()
    let pending = fds.length

    const finish = (): void => {
      const ms = this.now() - start
      this.roundCount++
      this.totalMs += ms
      this.lastMs = ms
      if (ms > this.maxMs) this.maxMs = ms
      this.running = false
      if (checkpoint !== null && journal !== undefined && this.journal === journal) {
        if (failure === null) {
          try {
            journal.rotate()
            this.dirty.add(journal.dirFd)
          } catch {
            // No new file (a full disk, say): every segment is synced now, so go on without one.
            this.journal = undefined
          }
        } else {
          for (const fd of checkpoint) if (!this.releasedInRound.has(fd)) this.journaled.add(fd)
        }
      }
      if (failure === null) round.resolve()
      else round.reject(new LogStorageError(`fdatasync failed: ${failure.message}`, failure))
      if (this.next !== null) this.schedule()
      try {
        this.onRound?.(ms, fds.length)
      } catch {
        // A metrics callback must not break group commit.
      }
    }

    if (pending === 0) {
      finish()
      return
    }
    // One file (the journal, most rounds) on a disk that answered the last round quickly: synced
    // here, on the event loop, not on the thread pool, which costs a wake-up of a pool thread and
    // another of this thread (a write at one client: ~0.2 ms sooner and ~150 µs less broker CPU,
    // docs/database.md "Performance"). A slow round sends the next ones back to the pool, so a
    // stalling disk blocks the event loop once at most.
    if (this.fdatasyncSync !== undefined && fds.length === 1 && this.lastMs < INLINE_SYNC_MAX_MS) {
      this.fsyncCount++
      try {
        this.fdatasyncSync(fds[0])
      } catch (err) {
        this.errorCount++
        failure ??= err as NodeJS.ErrnoException
      }
      finish()
      return
    }
    for (const fd of fds) {
      this.inFlight.add(fd)
      this.fsyncCount++
      this.fdatasync(fd, (err) => {
        this.inFlight.delete(fd)
        if (err !== null) {
          this.errorCount++
          failure ??= err
        }
        const waiters = this.releaseWaiters.get(fd)
        if (waiters !== undefined) {
          this.releaseWaiters.delete(fd)
          for (const w of waiters) w()
        }
        if (--pending === 0) finish()
      })
    }
  }
}
