// Reassembly of in-line large messages on the consumer side, after li-apache-kafka-clients'
// MessageAssemblerImpl, LargeMessageBufferPool, LargeMessageOffsetTracker and
// DeliveredMessageOffsetTracker (docs/reference/anchors.md §4.2-4.3). Pure: no I/O, no clock.
//
// - Segments are collected per partition and message id; a message is complete when all its
//   segments have arrived and their bytes add up to its size. Duplicated segments are ignored.
// - The offset of a large message is that of its last segment (the one that completed it); its
//   starting offset is that of its first segment.
// - Memory is bounded: one buffer pool for all partitions; while the buffered bytes exceed the
//   capacity the eldest incomplete message (by first-segment arrival) is evicted. An incomplete
//   message whose starting offset is more than `expirationOffsetGap` behind its partition's
//   current offset expires. Either drop is counted, or thrown as LargeMessageDroppedError.
// - The safe offset of a partition (the offset to commit) is the smallest starting offset of its
//   incomplete messages, else the next offset to read. Commits never pass it, so nothing
//   incomplete is lost by a restart or a rebalance. To not redeliver what was delivered before
//   the commit, the commit also records the delivered high watermark (the end offset + 1 of the
//   last message delivered): after a restore, a message completing below it is skipped, as is the
//   tail of a message whose head lies before the committed offset.

import { type LargeMessageHeader, messageIdToString } from './segment.ts'

export type DropPolicy = 'count' | 'throw'

export interface AssemblerOptions {
  /** Bytes of incomplete messages buffered across all partitions (default 32,000,000). */
  bufferCapacity?: number
  /** An incomplete message this many offsets behind its partition expires (default 1000). */
  expirationOffsetGap?: number
  /** On eviction or expiry: count it (default), or throw LargeMessageDroppedError. */
  onDrop?: DropPolicy
  /** Ids of completed messages remembered per partition, to ignore late duplicates (default 1000). */
  completedIdsPerPartition?: number
}

export class LargeMessageDroppedError extends Error {
  override readonly name = 'LargeMessageDroppedError'
  readonly reason: 'capacity' | 'expired'
  readonly partition: string
  readonly messageId: string
  readonly startOffset: number
  constructor(reason: 'capacity' | 'expired', partition: string, messageId: string, startOffset: number) {
    super(
      `incomplete large message ${messageId} of ${partition} (starting at offset ${startOffset}) dropped: ${reason === 'capacity' ? 'buffer capacity exceeded' : 'offset gap exceeded'}`,
    )
    this.reason = reason
    this.partition = partition
    this.messageId = messageId
    this.startOffset = startOffset
  }
}

/** One record as the consumer reads it: the decoded `_lm` header, or null for a plain record. */
export interface SegmentInput {
  offset: number
  header: LargeMessageHeader | null
  value: Buffer | null
}

export interface AssembledMessage {
  value: Buffer | null
  /** Offset of the first segment. */
  startOffset: number
  /** Offset of the last segment: the offset of the message. */
  offset: number
}

export type ProcessResult =
  | { kind: 'message'; message: AssembledMessage }
  | { kind: 'incomplete' }
  | { kind: 'skipped'; reason: 'duplicate' | 'delivered' | 'invalid' | 'stale' }

export interface AssemblerStats {
  delivered: number
  duplicates: number
  skippedDelivered: number
  invalid: number
  evicted: number
  expired: number
  bufferUsed: number
}

interface Incomplete {
  partition: string
  id: string
  startOffset: number
  numberOfSegments: number
  size: number
  segments: (Buffer | undefined)[]
  received: number
  bytes: number
}

interface PartitionState {
  /** Next offset to read: one past the last record processed. */
  next: number
  /** One past the end offset of the last message delivered (or restored from a commit). */
  highWatermark: number
  /** Offset the partition was restored at: heads of messages before it were not read. */
  restoredAt: number
  completed: Map<string, number>
}

export interface CommitPoint {
  /** The offset safe to commit. */
  offset: number
  /** The delivered high watermark, to store with the commit (see encodeCommitMetadata). */
  highWatermark: number
}

/** Commit metadata as li-apache-kafka-clients writes it: `<hw>,<user metadata>`. */
export function encodeCommitMetadata(highWatermark: number, user = ''): string {
  return `${highWatermark},${user}`
}

/** The high watermark in commit metadata, or undefined when there is none. */
export function decodeCommitMetadata(metadata: string | null | undefined): number | undefined {
  if (metadata === null || metadata === undefined) return undefined
  const m = /^(\d+),/.exec(metadata)
  return m === null ? undefined : Number(m[1])
}

export class MessageAssembler {
  readonly #capacity: number
  readonly #gap: number
  readonly #onDrop: DropPolicy
  readonly #completedLimit: number
  /** Incomplete messages in first-segment arrival order (Map keeps insertion order). */
  readonly #pool = new Map<string, Incomplete>()
  readonly #partitions = new Map<string, PartitionState>()
  readonly #stats: AssemblerStats = {
    delivered: 0,
    duplicates: 0,
    skippedDelivered: 0,
    invalid: 0,
    evicted: 0,
    expired: 0,
    bufferUsed: 0,
  }

  constructor(options: AssemblerOptions = {}) {
    this.#capacity = options.bufferCapacity ?? 32_000_000
    this.#gap = options.expirationOffsetGap ?? 1000
    this.#onDrop = options.onDrop ?? 'count'
    this.#completedLimit = options.completedIdsPerPartition ?? 1000
  }

  get stats(): Readonly<AssemblerStats> {
    return { ...this.#stats }
  }

  /**
   * Starts (or restarts) a partition from a commit: `committedOffset` is where reading resumes,
   * `highWatermark` the delivered high watermark stored with it (defaults to the offset).
   * Incomplete messages of the partition are forgotten.
   */
  restore(partition: string, committedOffset: number, highWatermark = committedOffset): void {
    this.revoke(partition)
    const hw = Math.max(committedOffset, highWatermark)
    this.#partitions.set(partition, {
      next: committedOffset,
      highWatermark: hw,
      restoredAt: committedOffset,
      completed: new Map(),
    })
  }

  /** Forgets a partition (no longer assigned). */
  revoke(partition: string): void {
    this.#partitions.delete(partition)
    for (const [k, m] of this.#pool) if (m.partition === partition) this.#remove(k, m)
  }

  #state(partition: string, offset: number): PartitionState {
    let s = this.#partitions.get(partition)
    if (s === undefined) {
      s = { next: offset, highWatermark: offset, restoredAt: offset, completed: new Map() }
      this.#partitions.set(partition, s)
    }
    return s
  }

  /**
   * Processes one record of a partition, in offset order (a re-read of earlier offsets, after a
   * seek or rebalance, is allowed). Returns the whole message it completes, if any.
   * Throws LargeMessageDroppedError (after the drop) when the drop policy is 'throw'.
   */
  process(partition: string, input: SegmentInput): ProcessResult {
    const s = this.#state(partition, input.offset)
    const { offset, header } = input
    s.next = Math.max(s.next, offset + 1)
    let result: ProcessResult
    if (header === null || header.numberOfSegments === 1) {
      if (
        header !== null &&
        input.value !== null &&
        header.messageSizeInBytes >= 0 &&
        input.value.length !== header.messageSizeInBytes
      ) {
        this.#stats.invalid++
        result = { kind: 'skipped', reason: 'invalid' }
      } else {
        result = this.#deliver(s, { value: input.value, startOffset: offset, offset })
      }
    } else {
      result = this.#segment(partition, s, input, header)
    }
    this.#expire(partition, offset)
    this.#evict()
    return result
  }

  #deliver(s: PartitionState, message: AssembledMessage): ProcessResult {
    if (message.offset < s.highWatermark) {
      this.#stats.skippedDelivered++
      return { kind: 'skipped', reason: 'delivered' }
    }
    s.highWatermark = message.offset + 1
    this.#stats.delivered++
    return { kind: 'message', message }
  }

  #segment(partition: string, s: PartitionState, input: SegmentInput, header: LargeMessageHeader): ProcessResult {
    const id = messageIdToString(header.messageId)
    const payload = input.value ?? Buffer.alloc(0)
    if (s.completed.has(id)) {
      this.#stats.duplicates++
      return { kind: 'skipped', reason: 'duplicate' }
    }
    const key = `${partition}\u0000${id}`
    let m = this.#pool.get(key)
    if (m === undefined) {
      // The tail of a message whose head lies before the offset the partition was restored at:
      // it was complete (else the commit would not have passed its head), hence delivered.
      if (header.segmentNumber !== 0 && input.offset < s.highWatermark && input.offset >= s.restoredAt) {
        this.#stats.skippedDelivered++
        return { kind: 'skipped', reason: 'stale' }
      }
      if (header.messageSizeInBytes < 0 || payload.length > header.messageSizeInBytes) {
        this.#stats.invalid++
        return { kind: 'skipped', reason: 'invalid' }
      }
      m = {
        partition,
        id,
        startOffset: input.offset,
        numberOfSegments: header.numberOfSegments,
        size: header.messageSizeInBytes,
        segments: new Array<Buffer | undefined>(header.numberOfSegments),
        received: 0,
        bytes: 0,
      }
      this.#pool.set(key, m)
    } else if (
      m.numberOfSegments !== header.numberOfSegments ||
      m.size !== header.messageSizeInBytes ||
      input.offset < m.startOffset
    ) {
      this.#stats.invalid++ // UUID conflict, or out of order segment offsets
      return { kind: 'skipped', reason: 'invalid' }
    }
    if (m.segments[header.segmentNumber] !== undefined) {
      this.#stats.duplicates++
      return { kind: 'skipped', reason: 'duplicate' }
    }
    if (m.bytes + payload.length > m.size) {
      this.#stats.invalid++
      return { kind: 'skipped', reason: 'invalid' }
    }
    m.segments[header.segmentNumber] = payload
    m.received++
    m.bytes += payload.length
    this.#stats.bufferUsed += payload.length
    if (m.received < m.numberOfSegments) return { kind: 'incomplete' }
    this.#remove(key, m)
    if (m.bytes !== m.size) {
      this.#stats.invalid++
      return { kind: 'skipped', reason: 'invalid' }
    }
    s.completed.set(id, input.offset)
    if (s.completed.size > this.#completedLimit) s.completed.delete(s.completed.keys().next().value!)
    return this.#deliver(s, {
      value: Buffer.concat(m.segments as Buffer[], m.size),
      startOffset: m.startOffset,
      offset: input.offset,
    })
  }

  #remove(key: string, m: Incomplete): void {
    if (this.#pool.delete(key)) this.#stats.bufferUsed -= m.bytes
  }

  #expire(partition: string, current: number): void {
    let first: LargeMessageDroppedError | undefined
    for (const [k, m] of this.#pool) {
      if (m.partition !== partition || current - m.startOffset <= this.#gap) continue
      this.#remove(k, m)
      this.#stats.expired++
      first ??= new LargeMessageDroppedError('expired', partition, m.id, m.startOffset)
    }
    if (first !== undefined && this.#onDrop === 'throw') throw first
  }

  #evict(): void {
    let first: LargeMessageDroppedError | undefined
    while (this.#stats.bufferUsed > this.#capacity) {
      const [k, m] = this.#pool.entries().next().value!
      this.#remove(k, m)
      this.#stats.evicted++
      first ??= new LargeMessageDroppedError('capacity', m.partition, m.id, m.startOffset)
    }
    if (first !== undefined && this.#onDrop === 'throw') throw first
  }

  /** Smallest starting offset of the partition's incomplete messages, or undefined. */
  eldestIncomplete(partition: string): number | undefined {
    let min: number | undefined
    for (const m of this.#pool.values())
      if (m.partition === partition && (min === undefined || m.startOffset < min)) min = m.startOffset
    return min
  }

  /**
   * What to commit for a partition now: the safe offset (never past the start of an incomplete
   * message) and the delivered high watermark. Undefined for a partition never read or restored.
   * Runs expiry first, like LargeMessageBufferPool.safeOffset.
   */
  commitPoint(partition: string): CommitPoint | undefined {
    const s = this.#partitions.get(partition)
    if (s === undefined) return undefined
    this.#expire(partition, s.next - 1)
    const eldest = this.eldestIncomplete(partition)
    const offset = eldest === undefined ? s.next : Math.min(eldest, s.next)
    return { offset, highWatermark: Math.max(offset, s.highWatermark) }
  }
}
