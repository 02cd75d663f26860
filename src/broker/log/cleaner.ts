// Log compaction (cleanup.policy=compact, and compact,delete), after Kafka's LogCleaner and
// LogCleanerManager (core/src/main/scala/kafka/log/LogCleaner.scala, LogCleanerManager.scala,
// clients/.../MemoryRecords.filterTo; apache/kafka 3.8/3.9).
//
// One round on one partition log:
//  1. Range. The dirty section starts at the first dirty offset (checkpointed per partition in
//     `cleaner-offset-checkpoint`, else the log start) and ends at the first uncleanable offset:
//     the active segment's base offset, or earlier, the first segment holding a record newer than
//     min.compaction.lag.ms. The active segment is never read for the map nor rewritten, exactly
//     as in Kafka (its keys supersede older records only once it has rolled and been cleaned).
//  2. Offset map. key -> latest offset over the dirty section's records (control batches are
//     never keys). Keys of up to 32 bytes are held as they are, longer ones as SHA-256 digests
//     (Kafka hashes every key with MD5). The map's budget is log.cleaner.dedupe.buffer.size bytes
//     at about 100 bytes an entry (a JS Map entry; Kafka's slots take 24). If the map reaches its
//     budget it stops at the end of a segment (Kafka stops mid-segment); the rest stays dirty for
//     the next round.
//  3. Rewrite. Every segment below the end of the mapped range (the clean section too, so
//     tombstones whose delete horizon has passed go away) is recopied, in groups whose total size
//     fits segment.bytes, into one `.cleaned` segment per group. A record is kept when no later
//     offset has its key, and, for a tombstone (null value), while its batch's delete horizon has
//     not passed. Records without a key are kept (Kafka drops them; produce refuses them on
//     compacted topics, so they only exist if written before the policy changed).
//  4. Batches. A batch keeping all its records is copied byte for byte. Otherwise it is rebuilt
//     with the same base offset, last offset delta, producer id / epoch / base sequence, leader
//     epoch and codec (recompressed, as Kafka does); its records keep their offsets and
//     timestamps, so offset deltas have gaps. A batch losing every record disappears, except
//     (Kafka's RETAIN_EMPTY) an idempotent producer's last batch, which stays as a header-only
//     batch so the producer's sequence survives, and the last batch of the round, so the end
//     offset of the cleaned range survives (Kafka's cleanInto does both). Control batches are
//     copied unchanged (no transactions). Header-only batches are kept to those two cases on
//     purpose: librdkafka 2.0.2 takes a fetch response holding no record for "message too large",
//     doubles its fetch size and, the tenth time, reports an error to the application.
//  5. Tombstones. Kafka's KIP-534 mechanism: the first time a batch holding a tombstone is
//     rewritten it gets the delete-horizon attribute and its base timestamp becomes
//     now + delete.retention.ms; a later round drops its tombstones once that time has passed.
//  6. Swap, crash-safe (swap.ts): sync the .cleaned files, rename them to .swap (the commit),
//     replace the segments in memory in one synchronous step, delete the old files, rename the
//     .swap files into place.
//
// Nothing blocks produce or fetch: the round reads and writes in slices of about 1 MiB with an
// event-loop turn in between (gzip and zstd run on the thread pool), the active segment is never
// touched, and the in-memory swap is one splice of the segment list. Retention on the log waits
// while it is being cleaned (it runs in the cleaner thread in Kafka); closing the log waits for
// the round to stop.

import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import * as prom from 'prom-client'
import { type Registry } from 'prom-client'
import { recordsSectionAsync } from '../../protocol/batch-records.ts'
import { compressAsync, MAX_DECOMPRESSED_BYTES } from '../../protocol/compression.ts'
import {
  assembleBatch,
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL_MASK,
  ATTR_DELETE_HORIZON_MASK,
  ATTR_TIMESTAMP_TYPE_MASK,
  ATTR_TRANSACTIONAL_MASK,
  BATCH_HEADER_SIZE,
  type BatchHeader,
  encodeEmptyBatch,
  encodeRecordsSection,
  LOG_OVERHEAD,
  type RawRecord,
  readBatchHeader,
  scanRecords,
} from '../../protocol/record-batch.ts'
import { type Logger } from '../../util/log.ts'
import { readFully } from './files.ts'
import { type PartitionLog } from './partition-log.ts'
import { INT32_MAX, Segment } from './segment.ts'
import { CLEANED_SUFFIX, commitSwap, deleteReplacedFiles, discardCleaned, finishSwap } from './swap.ts'

/** A partition's compaction settings (topic configs). */
export interface CompactionConfig {
  /** delete.retention.ms: how long tombstones survive once cleaned. */
  deleteRetentionMs: number
  /** min.compaction.lag.ms */
  minCompactionLagMs: number
  /** max.compaction.lag.ms */
  maxCompactionLagMs: number
  /** min.cleanable.dirty.ratio */
  minCleanableRatio: number
  /** segment.bytes: cleaned segments are grouped up to this size. */
  segmentBytes: number
}

export const DEFAULT_COMPACTION_CONFIG: CompactionConfig = {
  deleteRetentionMs: 86400000,
  minCompactionLagMs: 0,
  maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
  minCleanableRatio: 0.5,
  segmentBytes: 1073741824,
}

/** Per partition, beside the segments: the first dirty offset after the last round. */
export const CLEANER_CHECKPOINT_FILE = 'cleaner-offset-checkpoint'

/** Heap taken by one offset map entry (a short string key and a number in a Map), measured. */
export const MAP_ENTRY_BYTES = 100

/** The offset map's key budget for a memory budget (log.cleaner.dedupe.buffer.size). */
export function mapKeysForBuffer(bytes: number): number {
  return Math.max(1, Math.floor(bytes / MAP_ENTRY_BYTES))
}

/** Kafka's default dedupe buffer, 128 MiB. */
export const DEFAULT_MAX_MAP_KEYS = mapKeysForBuffer(128 * 1024 * 1024)

const SLICE_BYTES = 1024 * 1024
const SHORT_KEY = 32

export type SwapStage = 'written' | 'committed' | 'old-files-deleted' | 'finished'

export interface CleanOptions {
  /** The time the round runs at (tombstone horizons, compaction lag). */
  now?: number
  /** First dirty offset; default: the checkpoint file, else the log start. */
  firstDirtyOffset?: number
  maxMapKeys?: number
  maxDecompressedBytes?: number
  /**
   * Producer id -> last offset of its last batch, for producers whose state must survive
   * (Kafka's lastRecordsOfActiveProducers). Default: the log's producer state table.
   */
  activeProducers?: ReadonlyMap<number, number>
  /** Test hook, called synchronously as a group's swap passes each stage. */
  onSwapStage?: (stage: SwapStage, baseOffset: number) => void
}

export interface CleanStats {
  firstDirtyOffset: number
  /** The next first dirty offset (end of the mapped range). */
  endOffset: number
  segmentsRead: number
  segmentsWritten: number
  bytesRead: number
  bytesWritten: number
  recordsRead: number
  recordsRemoved: number
  mapKeys: number
}

/** Thrown inside a round when the log is closed under it. */
export class CleaningAbortedError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CleaningAbortedError'
  }
}

// ---- choosing what to clean (LogCleanerManager.cleanableOffsets / LogToClean) ----

export interface CleanableRange {
  firstDirtyOffset: number
  firstUncleanableOffset: number
  cleanBytes: number
  cleanableBytes: number
  /** cleanableBytes / (cleanBytes + cleanableBytes) */
  ratio: number
  /** A dirty segment is older than max.compaction.lag.ms. */
  needCompactionNow: boolean
}

/** Reads the checkpointed first dirty offset of a partition, or null. */
export function readCleanerCheckpoint(dir: string): number | null {
  try {
    const text = fs.readFileSync(path.join(dir, CLEANER_CHECKPOINT_FILE), 'utf8').trim()
    if (!/^\d+$/.test(text)) return null
    const n = Number(text)
    return Number.isSafeInteger(n) ? n : null
  } catch {
    return null
  }
}

/**
 * Writes the checkpoint (write to a temporary file, rename). Not synced: losing it only means the
 * next round cleans more than it needs to.
 */
export function writeCleanerCheckpoint(dir: string, offset: number): void {
  const file = path.join(dir, CLEANER_CHECKPOINT_FILE)
  fs.writeFileSync(file + '.tmp', `${offset}\n`)
  fs.renameSync(file + '.tmp', file)
}

/** The first batch's max timestamp of a segment, or -1. */
function firstBatchTimestamp(s: Segment): number {
  if (s.size < BATCH_HEADER_SIZE) return -1
  const h = Buffer.allocUnsafe(BATCH_HEADER_SIZE)
  if (readFully(s.fd, h, 0, BATCH_HEADER_SIZE, 0) < BATCH_HEADER_SIZE) return -1
  return readBatchHeader(h, 0).maxTimestamp
}

/** What a round on this log would cover, and how dirty the log is. */
export function cleanableRange(
  segments: readonly Segment[],
  logEndOffset: number,
  checkpoint: number | null,
  config: CompactionConfig,
  now: number,
): CleanableRange {
  const logStart = segments[0].baseOffset
  const active = segments[segments.length - 1]
  let firstDirty = checkpoint ?? logStart
  if (firstDirty < logStart || firstDirty > logEndOffset) firstDirty = logStart
  const nonActive = segments.slice(0, -1)
  // Non-active segments from the one holding firstDirty on.
  const dirtyNonActive = nonActive.filter((_, i) => segments[i + 1].baseOffset > firstDirty)
  let uncleanable = active.baseOffset
  if (config.minCompactionLagMs > 0) {
    const young = dirtyNonActive.find((s) => s.largestTimestamp > now - config.minCompactionLagMs)
    if (young !== undefined) uncleanable = Math.min(uncleanable, young.baseOffset)
  }
  const firstUncleanable = Math.max(firstDirty, uncleanable)
  // The uncleanable boundary rounded down to a segment start.
  const fuSegment = nonActive.find((s, i) => segments[i + 1].baseOffset > firstUncleanable) ?? active
  const fuBase = Math.max(fuSegment.baseOffset, firstDirty)
  let cleanBytes = 0
  let cleanableBytes = 0
  for (const s of segments) {
    if (s.baseOffset < firstDirty) cleanBytes += s.size
    else if (s.baseOffset < fuBase) cleanableBytes += s.size
  }
  const total = cleanBytes + cleanableBytes
  let needCompactionNow = false
  const cleanUntil = now - Math.max(config.maxCompactionLagMs, 0)
  if (cleanUntil > 0) {
    for (const s of dirtyNonActive) {
      const ts = firstBatchTimestamp(s)
      if (ts > 0 && ts < cleanUntil) needCompactionNow = true
    }
  }
  return {
    firstDirtyOffset: firstDirty,
    firstUncleanableOffset: fuBase,
    cleanBytes,
    cleanableBytes,
    ratio: total === 0 ? 0 : cleanableBytes / total,
    needCompactionNow,
  }
}

/** Whether a round is due (LogCleanerManager.grabFilthiestCompactedLog: ratio strictly above the minimum). */
export function shouldClean(range: CleanableRange, config: CompactionConfig): boolean {
  if (range.cleanBytes + range.cleanableBytes === 0) return false
  return (range.needCompactionNow && range.cleanableBytes > 0) || range.ratio > config.minCleanableRatio
}

// ---- reading segments ----

interface SourceBatch {
  /** Buffer holding the batch at [pos, pos + size). */
  buf: Buffer
  pos: number
  size: number
  h: BatchHeader
}

/**
 * The batches of a (non-active, immutable) segment in order, read in slices of about 1 MiB with
 * an event-loop turn (and a check that the log is still open) after each slice.
 */
async function* segmentBatches(log: PartitionLog, s: Segment): AsyncGenerator<SourceBatch> {
  const end = s.size
  let pos = 0
  let chunk = Buffer.allocUnsafe(Math.min(SLICE_BYTES, Math.max(end, BATCH_HEADER_SIZE)))
  while (end - pos >= BATCH_HEADER_SIZE) {
    const n = readFully(s.fd, chunk, 0, Math.min(chunk.length, end - pos), pos)
    let p = 0
    while (n - p >= BATCH_HEADER_SIZE) {
      const size = chunk.readInt32BE(p + 8) + LOG_OVERHEAD
      if (size < BATCH_HEADER_SIZE || size > end - (pos + p))
        throw new Error(`segment ${s.baseOffset}: bad batch length at position ${pos + p}`)
      if (p + size > n) break
      yield { buf: chunk, pos: p, size, h: readBatchHeader(chunk, p) }
      p += size
    }
    if (p === 0) {
      // One batch larger than the chunk: read it whole.
      const size = chunk.readInt32BE(8) + LOG_OVERHEAD
      chunk = Buffer.allocUnsafe(size)
      continue
    }
    pos += p
    await nextTurn()
    if (log.isClosed) throw new CleaningAbortedError(`log ${log.dir} closed during cleaning`)
    if (chunk.length > SLICE_BYTES)
      chunk = Buffer.allocUnsafe(Math.min(SLICE_BYTES, Math.max(end - pos, BATCH_HEADER_SIZE)))
  }
  if (pos !== end) throw new Error(`segment ${s.baseOffset}: ${end - pos} trailing bytes`)
}

/** The map key of a record key: the key itself when short, else its SHA-256 and one more byte. */
function keyId(key: Buffer): string {
  if (key.length <= SHORT_KEY) return key.toString('latin1')
  // 33 characters: longer than any short key, so the two kinds never collide.
  return createHash('sha256').update(key).digest().toString('latin1') + '\u0000'
}

async function readRecords(b: SourceBatch, maxBytes: number): Promise<RawRecord[]> {
  const section = await recordsSectionAsync(b.buf, b.pos, b.h, maxBytes)
  return scanRecords(section, b.h.recordsCount, b.h.lastOffsetDelta)
}

// ---- one round ----

function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err === null ? resolve() : reject(err))))
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Groups consecutive segments into runs whose total size fits maxSize (Cleaner.groupSegmentsBySize). */
export function groupSegmentsBySize(segments: readonly Segment[], maxSize: number, endOffset: number): Segment[][] {
  const groups: Segment[][] = []
  let i = 0
  while (i < segments.length) {
    const group = [segments[i]]
    let size = segments[i].size
    i++
    while (i < segments.length) {
      const next = segments[i]
      const lastOffsetOfNext = (i + 1 < segments.length ? segments[i + 1].baseOffset : endOffset) - 1
      if (size + next.size > maxSize || (next.size > 0 && lastOffsetOfNext - group[0].baseOffset > INT32_MAX)) break
      group.push(next)
      size += next.size
      i++
    }
    groups.push(group)
  }
  return groups
}

function activeProducersOf(log: PartitionLog): Map<number, number> {
  const out = new Map<number, number>()
  for (const e of log.producerState.entries()) {
    const last = e.batches[e.batches.length - 1]
    if (last !== undefined) out.set(e.producerId, last.lastOffset)
  }
  return out
}

/**
 * Runs one cleaning round on a log (whatever its dirty ratio), holding the log's cleaning slot.
 * Returns what it did; the caller checkpoints stats.endOffset.
 */
export function cleanLog(log: PartitionLog, config: CompactionConfig, options: CleanOptions = {}): Promise<CleanStats> {
  return log.runCleaning(() => cleanRound(log, config, options))
}

async function cleanRound(log: PartitionLog, config: CompactionConfig, options: CleanOptions): Promise<CleanStats> {
  const now = options.now ?? Date.now()
  const maxKeys = Math.max(1, options.maxMapKeys ?? DEFAULT_MAX_MAP_KEYS)
  const maxDecompressed = options.maxDecompressedBytes ?? MAX_DECOMPRESSED_BYTES
  const segments = log.segmentsSnapshot()
  const checkpoint = options.firstDirtyOffset ?? readCleanerCheckpoint(log.dir)
  const range = cleanableRange(segments, log.logEndOffset, checkpoint, config, now)
  const stats: CleanStats = {
    firstDirtyOffset: range.firstDirtyOffset,
    endOffset: range.firstDirtyOffset,
    segmentsRead: 0,
    segmentsWritten: 0,
    bytesRead: 0,
    bytesWritten: 0,
    recordsRead: 0,
    recordsRemoved: 0,
    mapKeys: 0,
  }
  const dirty = segments.filter(
    (s) => s.baseOffset >= range.firstDirtyOffset && s.baseOffset < range.firstUncleanableOffset,
  )
  if (dirty.length === 0) return stats

  // 2. The offset map over the dirty section.
  const map = new Map<string, number>()
  let latestOffset = range.firstDirtyOffset - 1
  for (const s of dirty) {
    for await (const b of segmentBatches(log, s)) {
      if ((b.h.attributes & ATTR_CONTROL_MASK) === 0) {
        for (const r of await readRecords(b, maxDecompressed)) {
          if (r.key !== null) map.set(keyId(r.key), b.h.baseOffset + r.offsetDelta)
        }
      }
      latestOffset = Math.max(latestOffset, b.h.baseOffset + b.h.lastOffsetDelta)
    }
    const i = segments.indexOf(s)
    latestOffset = Math.max(latestOffset, segments[i + 1].baseOffset - 1) // gaps at the end of a segment
    if (map.size >= maxKeys) break
  }
  const endOffset = latestOffset + 1
  stats.endOffset = endOffset
  stats.mapKeys = map.size

  // 3-6. Rewrite every segment below endOffset, group by group.
  const producers = options.activeProducers ?? activeProducersOf(log)
  const toClean = segments.filter((s, i) => i < segments.length - 1 && segments[i + 1].baseOffset <= endOffset)
  for (const group of groupSegmentsBySize(toClean, config.segmentBytes, endOffset)) {
    await cleanGroup(log, group, {
      map,
      latestOffset,
      now,
      config,
      producers,
      maxDecompressed,
      stats,
      onSwapStage: options.onSwapStage,
    })
  }
  return stats
}

interface GroupContext {
  map: Map<string, number>
  latestOffset: number
  now: number
  config: CompactionConfig
  producers: ReadonlyMap<number, number>
  maxDecompressed: number
  stats: CleanStats
  onSwapStage: ((stage: SwapStage, baseOffset: number) => void) | undefined
}

/** Decides one batch: the bytes to write (the original, a rebuilt batch, an empty header) or null. */
async function filterBatch(
  b: SourceBatch,
  ctx: GroupContext,
): Promise<{ out: Buffer | null; records: number; kept: number }> {
  const h = b.h
  const original = (): Buffer => Buffer.from(b.buf.subarray(b.pos, b.pos + b.size))
  if ((h.attributes & ATTR_CONTROL_MASK) !== 0) return { out: original(), records: 0, kept: 0 }
  const records = await readRecords(b, ctx.maxDecompressed)
  const hasHorizon = (h.attributes & ATTR_DELETE_HORIZON_MASK) !== 0
  const retainDeletes = !hasHorizon || ctx.now < h.baseTimestamp
  const kept = records.filter((r) => {
    const offset = h.baseOffset + r.offsetDelta
    if (offset > ctx.latestOffset || r.key === null) return true
    const latest = ctx.map.get(keyId(r.key)) ?? -1
    return offset >= latest && (r.hasValue || retainDeletes)
  })
  if (kept.length === 0) {
    const lastOffset = h.baseOffset + h.lastOffsetDelta
    const lastOfProducer = h.producerId >= 0 && ctx.producers.get(h.producerId) === lastOffset
    const lastOfRound = lastOffset === ctx.latestOffset
    return { out: lastOfProducer || lastOfRound ? encodeEmptyBatch(h) : null, records: records.length, kept: 0 }
  }
  const needHorizon = !hasHorizon && kept.some((r) => r.key !== null && !r.hasValue)
  if (kept.length === records.length && !needHorizon)
    return { out: original(), records: records.length, kept: kept.length }
  const horizon = needHorizon ? ctx.now + ctx.config.deleteRetentionMs : hasHorizon ? h.baseTimestamp : null
  const baseTimestamp = horizon ?? h.baseTimestamp + kept[0].timestampDelta
  let maxTimestamp = h.maxTimestamp // LogAppendTime: the batch's append time
  if ((h.attributes & ATTR_TIMESTAMP_TYPE_MASK) === 0) {
    maxTimestamp = -1
    for (const r of kept) maxTimestamp = Math.max(maxTimestamp, h.baseTimestamp + r.timestampDelta)
  }
  const codec = h.attributes & ATTR_COMPRESSION_MASK
  const section = await compressAsync(codec, encodeRecordsSection(kept, h.baseTimestamp, baseTimestamp))
  const attributes =
    (h.attributes & (ATTR_COMPRESSION_MASK | ATTR_TIMESTAMP_TYPE_MASK | ATTR_TRANSACTIONAL_MASK)) |
    (horizon !== null ? ATTR_DELETE_HORIZON_MASK : 0)
  const out = assembleBatch(
    {
      baseOffset: h.baseOffset,
      partitionLeaderEpoch: h.partitionLeaderEpoch,
      attributes,
      lastOffsetDelta: h.lastOffsetDelta,
      baseTimestamp,
      maxTimestamp,
      producerId: h.producerId,
      producerEpoch: h.producerEpoch,
      baseSequence: h.baseSequence,
      recordsCount: kept.length,
    },
    section,
  )
  return { out, records: records.length, kept: kept.length }
}

async function cleanGroup(log: PartitionLog, group: Segment[], ctx: GroupContext): Promise<void> {
  const dir = log.dir
  const base = group[0].baseOffset
  const cleaned = Segment.create(dir, base, log.config.indexIntervalBytes, CLEANED_SUFFIX)
  let committed = false
  try {
    let pending: Buffer[] = []
    let pendingBytes = 0
    const flush = (): void => {
      if (pending.length === 0) return
      const buf = pending.length === 1 ? pending[0] : Buffer.concat(pending)
      cleaned.appendCleaned(buf)
      ctx.stats.bytesWritten += buf.length
      pending = []
      pendingBytes = 0
    }
    for (const s of group) {
      for await (const b of segmentBatches(log, s)) {
        const r = await filterBatch(b, ctx)
        ctx.stats.bytesRead += b.size
        ctx.stats.recordsRead += r.records
        ctx.stats.recordsRemoved += r.records - r.kept
        if (r.out === null) continue
        pending.push(r.out)
        pendingBytes += r.out.length
        if (pendingBytes >= SLICE_BYTES) flush()
      }
      ctx.stats.segmentsRead++
    }
    flush()
    cleaned.finish()
    // Kafka keeps the last modified time of the newest replaced segment.
    const mtime = group[group.length - 1].mtimeMs() / 1000
    fs.futimesSync(cleaned.fd, mtime, mtime)
    await Promise.all(cleaned.fds().map((fd) => fsyncAsync(fd)))
    ctx.onSwapStage?.('written', base)

    // Commit and swap in memory, in one synchronous step.
    if (log.isClosed) throw new CleaningAbortedError(`log ${dir} closed during cleaning`)
    if (!log.canReplaceSegments(group)) throw new CleaningAbortedError(`log ${dir}: segments changed during cleaning`)
    commitSwap(dir, base)
    committed = true
    log.replaceSegments(group, cleaned)
    ctx.onSwapStage?.('committed', base)
  } catch (err) {
    if (!committed) {
      cleaned.close()
      discardCleaned(dir, base)
    }
    throw err
  }
  ctx.stats.segmentsWritten++
  await syncDir(dir)
  deleteReplacedFiles(
    dir,
    base,
    group.map((s) => s.baseOffset),
  )
  ctx.onSwapStage?.('old-files-deleted', base)
  await syncDir(dir)
  finishSwap(dir, base)
  await syncDir(dir)
  ctx.onSwapStage?.('finished', base)
}

// ---- the background cleaner (LogCleaner.CleanerThread) ----

export interface CleanerTarget {
  /** topic-partition, for logs and metrics */
  name: string
  log: PartitionLog
  config: CompactionConfig
  /**
   * compact,delete: retention to run right after a round (retention skips a log while it is being
   * cleaned; Kafka runs the deletion of such logs in the cleaner thread after cleaning too).
   */
  afterRound?: () => void
}

export interface LogCleanerOptions {
  /** The partitions whose cleanup.policy includes compact, asked afresh every round. */
  targets: () => Iterable<CleanerTarget>
  /** log.cleaner.backoff.ms: sleep when nothing needed cleaning. */
  backoffMs: number
  logger: Logger
  registry?: Registry
  maxMapKeys?: number
  now?: () => number
}

export class LogCleaner {
  private readonly options: LogCleanerOptions
  private readonly logger: Logger
  private readonly uncleanable = new WeakMap<PartitionLog, string>()
  private running = false
  private loopDone: Promise<void> | null = null
  private wake: (() => void) | null = null
  private readonly metrics: {
    bytesRead: prom.Counter
    bytesWritten: prom.Counter
    recordsRemoved: prom.Counter
    rounds: prom.Counter
    failures: prom.Counter
  } | null

  constructor(options: LogCleanerOptions) {
    this.options = options
    this.logger = options.logger.child({ component: 'log-cleaner' })
    const reg = options.registry === undefined ? null : [options.registry]
    this.metrics =
      reg === null
        ? null
        : {
            bytesRead: new prom.Counter({
              name: 'cortado_broker_log_cleaner_bytes_cleaned_total',
              help: 'Segment bytes read and recopied by log compaction',
              registers: reg,
            }),
            bytesWritten: new prom.Counter({
              name: 'cortado_broker_log_cleaner_bytes_written_total',
              help: 'Bytes written to cleaned segments by log compaction',
              registers: reg,
            }),
            recordsRemoved: new prom.Counter({
              name: 'cortado_broker_log_cleaner_records_removed_total',
              help: 'Records removed by log compaction (superseded values and expired tombstones)',
              registers: reg,
            }),
            rounds: new prom.Counter({
              name: 'cortado_broker_log_cleaner_rounds_total',
              help: 'Log compaction rounds completed',
              registers: reg,
            }),
            failures: new prom.Counter({
              name: 'cortado_broker_log_cleaner_failures_total',
              help: 'Log compaction rounds that failed (the partition is then left uncleaned until restart)',
              registers: reg,
            }),
          }
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loopDone = this.loop()
  }

  /** Stops the loop; resolves once the round in progress (if any) has finished or aborted. */
  async stop(): Promise<void> {
    this.running = false
    this.wake?.()
    await this.loopDone
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let cleaned = false
      try {
        cleaned = await this.runOnce()
      } catch (err) {
        this.logger.error('log cleaner round failed', { err })
      }
      if (!this.running) break
      if (cleaned) {
        await nextTurn()
        continue
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.backoffMs)
        timer.unref()
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wake = null
    }
  }

  /**
   * Picks the dirtiest partition that needs cleaning and cleans it. Returns whether it cleaned
   * one. A partition whose round fails is marked uncleanable and skipped until restart (Kafka's
   * uncleanable partitions).
   */
  async runOnce(): Promise<boolean> {
    const now = this.options.now?.() ?? Date.now()
    let best: { target: CleanerTarget; range: CleanableRange; checkpoint: number | null } | null = null
    for (const target of this.options.targets()) {
      const log = target.log
      if (log.isClosed || log.isCleaning || this.uncleanable.has(log)) continue
      let range: CleanableRange
      let checkpoint: number | null
      try {
        checkpoint = readCleanerCheckpoint(log.dir)
        range = cleanableRange(log.segmentsSnapshot(), log.logEndOffset, checkpoint, target.config, now)
      } catch {
        continue // closed meanwhile
      }
      if (!shouldClean(range, target.config)) continue
      if (best === null || range.ratio > best.range.ratio) best = { target, range, checkpoint }
    }
    if (best === null) return false
    const { target, range } = best
    const started = performance.now()
    try {
      const stats = await cleanLog(target.log, target.config, {
        now,
        firstDirtyOffset: range.firstDirtyOffset,
        maxMapKeys: this.options.maxMapKeys,
      })
      if (!target.log.isClosed) {
        writeCleanerCheckpoint(target.log.dir, stats.endOffset)
        try {
          target.afterRound?.()
        } catch (err) {
          this.logger.warn('retention after cleaning failed', { partition: target.name, err })
        }
      }
      this.metrics?.bytesRead.inc(stats.bytesRead)
      this.metrics?.bytesWritten.inc(stats.bytesWritten)
      this.metrics?.recordsRemoved.inc(stats.recordsRemoved)
      this.metrics?.rounds.inc()
      this.logger.info('log cleaned', {
        partition: target.name,
        dirtyRatio: Number(range.ratio.toFixed(3)),
        firstDirtyOffset: stats.firstDirtyOffset,
        endOffset: stats.endOffset,
        segmentsRead: stats.segmentsRead,
        segmentsWritten: stats.segmentsWritten,
        bytesRead: stats.bytesRead,
        bytesWritten: stats.bytesWritten,
        recordsRead: stats.recordsRead,
        recordsRemoved: stats.recordsRemoved,
        keys: stats.mapKeys,
        ms: Math.round(performance.now() - started),
      })
    } catch (err) {
      if (err instanceof CleaningAbortedError || target.log.isClosed) {
        this.logger.info('log cleaning aborted', { partition: target.name, reason: (err as Error).message })
        return false
      }
      this.uncleanable.set(target.log, (err as Error).message)
      this.metrics?.failures.inc()
      this.logger.error('log cleaning failed; partition marked uncleanable until restart', {
        partition: target.name,
        err,
      })
      return false
    }
    return true
  }
}
