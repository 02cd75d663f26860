// Group commit shared by all partition logs. Appends mark their file descriptors dirty; callers
// that need durability await flush(). One fsync round runs at a time: it collects every dirty fd
// and fdatasyncs them in parallel, then resolves everyone who asked before it started. Whoever
// asks while a round is running joins the next round, because their data may have been written
// after the running round's fdatasync calls were issued.

import fs from 'node:fs'
import { LogStorageError } from './errors.ts'

export type FdatasyncFn = (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => void

export interface FlusherOptions {
  /** Injected for tests (slow or failing disks); defaults to fs.fdatasync. */
  fdatasync?: FdatasyncFn
}

interface Round {
  promise: Promise<void>
  resolve: () => void
  reject: (err: Error) => void
}

export class Flusher {
  /** Called after each round with its duration and number of fds synced (e.g. for a histogram). */
  onRound: ((durationMs: number, fdCount: number) => void) | null = null

  private readonly fdatasync: FdatasyncFn
  private readonly dirty = new Set<number>()
  private readonly inFlight = new Set<number>()
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

  markDirty(fd: number): void {
    this.dirty.add(fd)
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
    if (!this.inFlight.has(fd)) return Promise.resolve()
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
    const fds = [...this.dirty]
    this.dirty.clear()
    const start = performance.now()
    let pending = fds.length
    let failure: NodeJS.ErrnoException | null = null

    const finish = (): void => {
      const ms = performance.now() - start
      this.roundCount++
      this.totalMs += ms
      this.lastMs = ms
      if (ms > this.maxMs) this.maxMs = ms
      this.running = false
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
