// Idempotent producers' state for one partition: per producer id, its epoch and the metadata of
// its last five batches, as Kafka keeps them (storage/.../ProducerStateEntry.java,
// ProducerAppendInfo.java, UnifiedLog.analyzeAndValidateProducerState;
// docs/reference/kafka-protocol.md §4). Pure: no I/O and no clock. The produce path asks check()
// before appending and calls recordAppend() after; opening a log replays batch headers through
// record(); snapshots are encoded and decoded here and written by producer-snapshot.ts.
//
// Rules for a batch with producerId >= 0 (batches with producerId -1 are never looked at):
//   unknown producer                     -> append, whatever its sequence (Kafka 3.8 does the same)
//   epoch below the producer's           -> INVALID_PRODUCER_EPOCH (47), as Kafka >= 2.7 answers
//                                           produce (not PRODUCER_FENCED, which clients treat as
//                                           fatal for the transactional path)
//   same epoch, (firstSeq, lastSeq) equal to one of the last five batches
//                                        -> duplicate: answer with that batch's offsets, no append
//   same epoch, firstSeq == lastSeq + 1 (0 after Int32.MAX)
//                                        -> append
//   same epoch otherwise                 -> OUT_OF_ORDER_SEQUENCE_NUMBER (45)
//   higher epoch (a bump: InitProducerId with KIP-360, or librdkafka's local bump)
//                                        -> append if firstSeq == 0, else 45
import { ErrorCode } from '../../protocol/errors.ts'
import { crc32c } from '../../protocol/crc32c.ts'

/** Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN. */
export const NUM_BATCHES_TO_RETAIN = 5
export const INT32_MAX = 0x7fffffff

/** The header fields the state machine looks at (a subset of BatchHeader). */
export interface ProducerBatch {
  readonly producerId: number
  readonly producerEpoch: number
  readonly baseSequence: number
  readonly lastOffsetDelta: number
  readonly maxTimestamp: number
}

export interface BatchMetadata {
  readonly firstSeq: number
  readonly lastSeq: number
  readonly firstOffset: number
  readonly lastOffset: number
  /** The batch's max timestamp (the broker's clock for LogAppendTime topics). */
  readonly timestamp: number
}

export interface ProducerEntry {
  readonly producerId: number
  epoch: number
  /** Oldest first, at most NUM_BATCHES_TO_RETAIN. */
  batches: BatchMetadata[]
  /** Broker time of the last append (or of the restart that rebuilt it), for expiry. */
  lastSeenMs: number
}

export type ProducerCheck =
  | { readonly kind: 'append' }
  | { readonly kind: 'duplicate'; readonly batch: BatchMetadata }
  | { readonly kind: 'error'; readonly errorCode: number; readonly message: string }

const APPEND: ProducerCheck = { kind: 'append' }

/** baseSequence + delta, wrapping past Int32.MAX to 0 (DefaultRecordBatch.incrementSequence). */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > INT32_MAX - increment) return increment - (INT32_MAX - sequence) - 1
  return sequence + increment
}

export function lastSequence(b: ProducerBatch): number {
  return incrementSequence(b.baseSequence, b.lastOffsetDelta)
}

function inSequence(lastSeq: number, nextSeq: number): boolean {
  return nextSeq === lastSeq + 1 || (nextSeq === 0 && lastSeq === INT32_MAX)
}

export class ProducerStateTable {
  private readonly producers = new Map<number, ProducerEntry>()
  private lastExpiryCheckMs = -1

  get size(): number {
    return this.producers.size
  }

  get(producerId: number): ProducerEntry | undefined {
    return this.producers.get(producerId)
  }

  entries(): IterableIterator<ProducerEntry> {
    return this.producers.values()
  }

  /**
   * Decides what to do with the batches of one append (one batch for produce v3+). Batches of the
   * same producer within the append must chain. A duplicate of any batch makes the whole append a
   * duplicate of that batch, as in Kafka; nothing is appended then.
   */
  check(batches: readonly ProducerBatch[]): ProducerCheck {
    // Per producer: epoch and last sequence as the earlier batches of this append leave them.
    let pending: Map<number, { epoch: number; lastSeq: number }> | null = null
    for (const b of batches) {
      if (b.producerId < 0) continue
      const seen = pending?.get(b.producerId)
      const entry = this.producers.get(b.producerId)
      if (seen === undefined && entry !== undefined) {
        const dup = findDuplicate(entry, b)
        if (dup !== undefined) return { kind: 'duplicate', batch: dup }
      }
      const epoch = seen?.epoch ?? entry?.epoch
      const lastSeq =
        seen?.lastSeq ??
        (entry !== undefined && entry.batches.length > 0 ? entry.batches[entry.batches.length - 1].lastSeq : -1)
      const error = checkBatch(b, epoch, lastSeq)
      if (error !== null) return error
      pending ??= new Map()
      pending.set(b.producerId, { epoch: b.producerEpoch, lastSeq: lastSequence(b) })
    }
    return APPEND
  }

  /** After an append that check() allowed: records each batch, offsets assigned from baseOffset. */
  recordAppend(batches: readonly ProducerBatch[], baseOffset: number, nowMs: number): void {
    let offset = baseOffset
    for (const b of batches) {
      const last = offset + b.lastOffsetDelta
      if (b.producerId >= 0) this.record(b, offset, last, nowMs)
      offset = last + 1
    }
  }

  /** Records one batch at [firstOffset, lastOffset] unchecked (appends, and replay on open). */
  record(b: ProducerBatch, firstOffset: number, lastOffset: number, nowMs: number): void {
    let entry = this.producers.get(b.producerId)
    if (entry === undefined) {
      entry = { producerId: b.producerId, epoch: b.producerEpoch, batches: [], lastSeenMs: nowMs }
      this.producers.set(b.producerId, entry)
    } else if (entry.epoch !== b.producerEpoch) {
      // A new epoch starts a new sequence space: the old batches can no longer be duplicates.
      entry.epoch = b.producerEpoch
      entry.batches = []
    }
    entry.batches.push({
      firstSeq: b.baseSequence,
      lastSeq: lastSequence(b),
      firstOffset,
      lastOffset,
      timestamp: b.maxTimestamp,
    })
    if (entry.batches.length > NUM_BATCHES_TO_RETAIN) entry.batches.shift()
    entry.lastSeenMs = Math.max(entry.lastSeenMs, nowMs)
  }

  /** Adds an entry as read from a snapshot (replacing any entry for the same producer). */
  load(entry: ProducerEntry): void {
    this.producers.set(entry.producerId, entry)
  }

  /** Forgets producers idle for expirationMs or longer (producer.id.expiration.ms). Returns how many. */
  removeExpired(nowMs: number, expirationMs: number): number {
    let removed = 0
    for (const [id, entry] of this.producers) {
      if (nowMs - entry.lastSeenMs >= expirationMs) {
        this.producers.delete(id)
        removed++
      }
    }
    return removed
  }

  /** removeExpired at most once per intervalMs (producer.id.expiration.check.interval.ms). */
  maybeRemoveExpired(nowMs: number, expirationMs: number, intervalMs: number): number {
    if (this.lastExpiryCheckMs >= 0 && nowMs - this.lastExpiryCheckMs < intervalMs) return 0
    this.lastExpiryCheckMs = nowMs
    return this.removeExpired(nowMs, expirationMs)
  }

  clear(): void {
    this.producers.clear()
  }
}

function findDuplicate(entry: ProducerEntry, b: ProducerBatch): BatchMetadata | undefined {
  if (b.producerEpoch !== entry.epoch) return undefined
  const last = lastSequence(b)
  return entry.batches.find((m) => m.firstSeq === b.baseSequence && m.lastSeq === last)
}

/** Kafka's checkProducerEpoch + checkSequence for a batch against the producer's current state. */
function checkBatch(b: ProducerBatch, epoch: number | undefined, lastSeq: number): ProducerCheck | null {
  if (epoch === undefined) return null // unknown producer: any sequence
  const pid = b.producerId
  if (b.producerEpoch < epoch) {
    return {
      kind: 'error',
      errorCode: ErrorCode.INVALID_PRODUCER_EPOCH,
      message: `producer ${pid} epoch ${b.producerEpoch} is older than its current epoch ${epoch}`,
    }
  }
  if (b.producerEpoch !== epoch) {
    if (b.baseSequence === 0) return null
    return {
      kind: 'error',
      errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
      message: `producer ${pid} started epoch ${b.producerEpoch} (was ${epoch}) at sequence ${b.baseSequence}; a new epoch starts at 0`,
    }
  }
  if (lastSeq < 0 || inSequence(lastSeq, b.baseSequence)) return null
  return {
    kind: 'error',
    errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
    message: `producer ${pid} epoch ${epoch}: sequence ${b.baseSequence} does not follow ${lastSeq}`,
  }
}

// ---- Snapshot encoding ------------------------------------------------------------------------
//
//   int16  version (1)
//   uint32 crc32c of everything after this field
//   int64  offset: the state covers every batch below it
//   int32  producer count, then per producer:
//     int64 producerId, int16 epoch, int64 lastSeenMs, int8 batch count, then per batch:
//       int32 firstSeq, int32 lastSeq, int64 firstOffset, int64 lastOffset, int64 timestamp
//
// Unlike Kafka's snapshot (which keeps only each producer's last batch) all five batches are kept,
// so a retry of any of them is still recognised after a restart.

const SNAPSHOT_VERSION = 1
const HEADER_BYTES = 2 + 4 + 8 + 4
const ENTRY_BYTES = 8 + 2 + 8 + 1
const BATCH_BYTES = 4 + 4 + 8 + 8 + 8

export class SnapshotError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SnapshotError'
  }
}

export function encodeSnapshot(offset: number, entries: Iterable<ProducerEntry>): Buffer {
  const list = [...entries]
  let size = HEADER_BYTES
  for (const e of list) size += ENTRY_BYTES + e.batches.length * BATCH_BYTES
  const buf = Buffer.alloc(size)
  let p = 0
  buf.writeInt16BE(SNAPSHOT_VERSION, p)
  p += 6 // version, crc (written last)
  p = writeLong(buf, offset, p)
  buf.writeInt32BE(list.length, p)
  p += 4
  for (const e of list) {
    p = writeLong(buf, e.producerId, p)
    buf.writeInt16BE(e.epoch, p)
    p = writeLong(buf, e.lastSeenMs, p + 2)
    buf.writeInt8(e.batches.length, p++)
    for (const b of e.batches) {
      buf.writeInt32BE(b.firstSeq, p)
      buf.writeInt32BE(b.lastSeq, p + 4)
      p = writeLong(buf, b.firstOffset, p + 8)
      p = writeLong(buf, b.lastOffset, p)
      p = writeLong(buf, b.timestamp, p)
    }
  }
  buf.writeUInt32BE(crc32c(buf, 6, size), 2)
  return buf
}

/** Decodes a snapshot; throws SnapshotError if it is torn, corrupt or of an unknown version. */
export function decodeSnapshot(buf: Buffer): { offset: number; entries: ProducerEntry[] } {
  if (buf.length < HEADER_BYTES) throw new SnapshotError(`snapshot of ${buf.length} bytes is too short`)
  const version = buf.readInt16BE(0)
  if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`unknown snapshot version ${version}`)
  if (crc32c(buf, 6, buf.length) !== buf.readUInt32BE(2)) throw new SnapshotError('snapshot CRC mismatch')
  const offset = readLong(buf, 6)
  const count = buf.readInt32BE(14)
  let p = HEADER_BYTES
  const entries: ProducerEntry[] = []
  for (let i = 0; i < count; i++) {
    if (p + ENTRY_BYTES > buf.length) throw new SnapshotError('snapshot truncated')
    const producerId = readLong(buf, p)
    const epoch = buf.readInt16BE(p + 8)
    const lastSeenMs = readLong(buf, p + 10)
    const n = buf.readInt8(p + 18)
    p += ENTRY_BYTES
    if (n < 0 || n > NUM_BATCHES_TO_RETAIN || p + n * BATCH_BYTES > buf.length)
      throw new SnapshotError('snapshot batch list out of bounds')
    const batches: BatchMetadata[] = []
    for (let j = 0; j < n; j++) {
      batches.push({
        firstSeq: buf.readInt32BE(p),
        lastSeq: buf.readInt32BE(p + 4),
        firstOffset: readLong(buf, p + 8),
        lastOffset: readLong(buf, p + 16),
        timestamp: readLong(buf, p + 24),
      })
      p += BATCH_BYTES
    }
    entries.push({ producerId, epoch, batches, lastSeenMs })
  }
  if (p !== buf.length) throw new SnapshotError('trailing bytes after snapshot entries')
  return { offset, entries }
}

function writeLong(buf: Buffer, value: number, pos: number): number {
  buf.writeBigInt64BE(BigInt(value), pos)
  return pos + 8
}

function readLong(buf: Buffer, pos: number): number {
  return Number(buf.readBigInt64BE(pos))
}
