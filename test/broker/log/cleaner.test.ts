// The log cleaner (src/broker/log/cleaner.ts) on a PartitionLog in a temporary directory: the
// latest value per key survives in order with its offset and timestamp, offsets keep their
// gaps, tombstones live exactly delete.retention.ms after their first cleaning, the active
// segment and lag-protected segments are untouched, compressed batches of every codec, idempotent
// producers' last batches, crashes at every stage of a swap, and produce / fetch running
// concurrently with a round.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { afterEach, test } from 'node:test'
import { Registry } from 'prom-client'
import { batchRecords } from '../../../src/protocol/batch-records.ts'
import {
  compress,
  CODEC_GZIP,
  CODEC_LZ4,
  CODEC_NONE,
  CODEC_SNAPPY,
  CODEC_ZSTD,
} from '../../../src/protocol/compression.ts'
import {
  assembleBatch,
  ATTR_COMPRESSION_MASK,
  ATTR_DELETE_HORIZON_MASK,
  ATTR_TIMESTAMP_TYPE_MASK,
  BATCH_HEADER_SIZE,
  type BatchHeader,
  encodeRecordBatch,
  readBatchHeader,
} from '../../../src/protocol/record-batch.ts'
import {
  cleanableRange,
  CLEANER_CHECKPOINT_FILE,
  cleanLog,
  type CompactionConfig,
  DEFAULT_COMPACTION_CONFIG,
  LogCleaner,
  readCleanerCheckpoint,
  shouldClean,
  type SwapStage,
} from '../../../src/broker/log/cleaner.ts'
import { type PartitionLog } from '../../../src/broker/log/partition-log.ts'
import { Logger } from '../../../src/util/log.ts'
import { copyDir, openLog, removeDir, splitBatches, tempDir } from './helpers.ts'
import { recordTailValue } from '../../helpers/record-tail.ts'

const dirs: string[] = []
function dir(): string {
  const d = tempDir('cortado-cleaner-')
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d)
})

const T0 = 1_700_000_000_000
const LOG = { segmentBytes: 1024, indexIntervalBytes: 128 }
const COMPACT: CompactionConfig = {
  ...DEFAULT_COMPACTION_CONFIG,
  minCleanableRatio: 0,
  deleteRetentionMs: 60_000,
  segmentBytes: LOG.segmentBytes,
}

interface Rec {
  key: string | null
  value: string | null
  ts?: number
}

interface BatchOptions {
  codec?: number
  producerId?: number
  producerEpoch?: number
  baseSequence?: number
  logAppendTime?: number
}

/** A v2 batch of records, compressed with `codec`. */
function makeBatch(recs: Rec[], o: BatchOptions = {}): Buffer {
  const plain = encodeRecordBatch({
    records: recs.map((r, i) => ({
      key: r.key === null ? null : Buffer.from(r.key),
      value: r.value === null ? null : Buffer.from(r.value),
      timestamp: r.ts ?? T0 + i,
    })),
    producerId: o.producerId,
    producerEpoch: o.producerEpoch,
    baseSequence: o.baseSequence,
  })
  const h = readBatchHeader(plain, 0)
  const codec = o.codec ?? CODEC_NONE
  if (codec === CODEC_NONE && o.logAppendTime === undefined) return plain
  const tsType = o.logAppendTime === undefined ? 0 : ATTR_TIMESTAMP_TYPE_MASK
  return assembleBatch(
    { ...h, attributes: codec | tsType, maxTimestamp: o.logAppendTime ?? h.maxTimestamp },
    compress(codec, plain.subarray(BATCH_HEADER_SIZE)),
  )
}

function append(log: PartitionLog, recs: Rec[], o: BatchOptions = {}): number {
  const b = makeBatch(recs, o)
  return log.append(b, [readBatchHeader(b, 0)], T0).baseOffset
}

interface Read {
  offset: number
  key: string | null
  value: string | null
  ts: number
}

/** Every record from the log start, any codec, with offsets and timestamps; checks offsets increase. */
function readLog(log: PartitionLog): Read[] {
  const out: Read[] = []
  let offset = log.logStartOffset
  while (offset < log.logEndOffset) {
    const data = log.read(offset, 1 << 20, true)
    assert.ok(data.length > 0, `empty read at ${offset}`)
    for (const b of splitBatches(data)) {
      const h = readBatchHeader(b, 0)
      const logAppend = (h.attributes & ATTR_TIMESTAMP_TYPE_MASK) !== 0
      for (const r of batchRecords(b, 0, h)) {
        const o = h.baseOffset + r.offsetDelta
        if (o < offset) continue
        assert.ok(out.length === 0 || o > out[out.length - 1].offset, 'offsets strictly increase')
        out.push({
          offset: o,
          key: r.key?.toString() ?? null,
          value: valueOf(r.tail),
          ts: logAppend ? h.maxTimestamp : h.baseTimestamp + r.timestampDelta,
        })
      }
      offset = h.baseOffset + h.lastOffsetDelta + 1
    }
  }
  return out
}

const valueOf = recordTailValue

/** All batch headers of the log, oldest first. */
function headers(log: PartitionLog): BatchHeader[] {
  const out: BatchHeader[] = []
  log.forEachBatchHeader(log.logStartOffset, (h) => out.push(h))
  return out
}

/** What compaction must leave: below `cleanedBelow`, only the last record per key (and keyless ones). */
function compacted(all: Read[], cleanedBelow: number): Read[] {
  const last = new Map<string, number>()
  for (const r of all) if (r.offset < cleanedBelow && r.key !== null) last.set(r.key, r.offset)
  return all.filter((r) => r.offset >= cleanedBelow || r.key === null || last.get(r.key) === r.offset)
}

/** A log of `n` keyed records over `keys` keys, 3 records a batch, in many small segments. */
function fill(log: PartitionLog, n: number, keys: number, prefix = 'v'): void {
  for (let i = 0; i < n; i += 3) {
    append(
      log,
      Array.from({ length: Math.min(3, n - i) }, (_, j) => ({
        key: `k${(i + j) % keys}`,
        value: `${prefix}${i + j}`,
        ts: T0 + i + j,
      })),
    )
  }
}

function activeBase(log: PartitionLog): number {
  return log.segmentBaseOffsets[log.segmentCount - 1]
}

test('keeps the latest value per key in order, with offsets and timestamps, leaving gaps; never touches the active segment', async () => {
  const d = dir()
  const log = openLog(d, LOG)
  fill(log, 300, 10)
  append(log, [{ key: null, value: 'keyless' }]) // kept: Cortado keeps records without a key
  fill(log, 30, 10, 'w')
  const before = readLog(log)
  const active = activeBase(log)
  const activeFile = path.join(d, `${String(active).padStart(20, '0')}.log`)
  const activeBytes = fs.readFileSync(activeFile)
  const segmentsBefore = log.segmentCount
  assert.ok(segmentsBefore > 8)

  const stats = await cleanLog(log, COMPACT, { now: T0 })
  assert.equal(stats.endOffset, active, 'the round covers everything below the active segment')
  const after = readLog(log)
  const expected = compacted(before, active)
  assert.deepEqual(after, expected)
  assert.ok(after.length < before.length / 5)
  assert.equal(stats.recordsRemoved, before.length - after.length)
  assert.ok(
    after.some((r, i) => i > 0 && r.offset > after[i - 1].offset + 1),
    'offsets have gaps',
  )
  assert.ok(after.some((r) => r.key === null && r.value === 'keyless'))
  // The active segment's records (keys k0..k9 again) supersede nothing yet: Kafka maps only up to the active segment.
  assert.equal(after.filter((r) => r.offset < active).length, 11)
  assert.deepEqual(fs.readFileSync(activeFile), activeBytes, 'active segment untouched')
  assert.equal(log.logStartOffset, 0)
  assert.equal(log.logEndOffset, 331)
  for (const f of fs.readdirSync(d)) assert.doesNotMatch(f, /\.(cleaned|swap)$/)
  // Reads from inside a removed range land on the next retained record.
  const data = log.read(1, 1 << 20, true)
  assert.ok(readBatchHeader(data, 0).baseOffset + readBatchHeader(data, 0).lastOffsetDelta >= 1)

  // Appends continue at the log end; a second round with nothing new removes nothing.
  assert.equal(append(log, [{ key: 'k1', value: 'after' }]), 331)
  const again = await cleanLog(log, COMPACT, { now: T0, firstDirtyOffset: stats.endOffset })
  assert.equal(again.recordsRemoved, 0)
  assert.equal(again.segmentsWritten, 0)
  // Recleaning the whole log groups the now small cleaned segments up to segment.bytes.
  const cleanedSegments = log.segmentCount
  const full = await cleanLog(log, COMPACT, { now: T0 })
  assert.equal(full.recordsRemoved, 0)
  assert.ok(
    log.segmentCount < cleanedSegments,
    `small cleaned segments are grouped (${cleanedSegments} -> ${log.segmentCount})`,
  )
  assert.ok(log.segmentCount < segmentsBefore)
  const final = readLog(log)
  assert.deepEqual(
    final.filter((r) => r.offset < 331),
    expected,
  )
  await log.close()

  // Clean reopen, and a reopen as after a crash (every segment rescanned with gaps allowed).
  const reopened = openLog(d, LOG)
  assert.deepEqual(readLog(reopened), final)
  assert.equal(reopened.logEndOffset, 332)
  // A copy taken while open has no clean-shutdown marker: as after kill -9. Without index files
  // every segment is rescanned.
  const crashed = dir()
  copyDir(d, crashed)
  await reopened.close()
  assert.ok(!fs.existsSync(path.join(crashed, '.clean-shutdown')))
  for (const f of fs.readdirSync(crashed))
    if (f.endsWith('.index') || f.endsWith('.timeindex')) fs.unlinkSync(path.join(crashed, f))
  const recovered = openLog(crashed, LOG)
  assert.equal(recovered.recoveredTruncatedBytes, 0)
  assert.deepEqual(readLog(recovered), final)
  assert.equal(append(recovered, [{ key: 'x', value: 'y' }]), 332)
  await recovered.close()
})

test('a small offset map budget spreads the work over rounds, each ending at a segment boundary; long keys are hashed', async () => {
  const d = dir()
  const log = openLog(d, LOG)
  const long = (i: number): string => `a-key-longer-than-thirty-two-bytes-${i % 12}`
  for (let i = 0; i < 240; i += 3)
    append(
      log,
      Array.from({ length: 3 }, (_, j) => ({ key: long(i + j), value: `v${i + j}` })),
    )
  const before = readLog(log)
  const active = activeBase(log)
  let first = 0
  let rounds = 0
  while (first < active) {
    const stats = await cleanLog(log, COMPACT, { now: T0, firstDirtyOffset: first, maxMapKeys: 5 })
    assert.ok(log.segmentBaseOffsets.includes(stats.endOffset), `round ${rounds} ends at a segment boundary`)
    assert.ok(stats.endOffset > first)
    first = stats.endOffset
    rounds++
  }
  assert.ok(rounds > 1, `${rounds} rounds`)
  assert.deepEqual(readLog(log), compacted(before, active))
  await log.close()
})

test('tombstones delete earlier values and are themselves removed delete.retention.ms after their first cleaning', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 300, indexIntervalBytes: 64 })
  append(log, [
    { key: 'a', value: 'a1' },
    { key: 'b', value: 'b1' },
  ])
  append(log, [
    { key: 'a', value: null, ts: T0 + 5 },
    { key: 'c', value: 'c1', ts: T0 + 6 },
  ]) // tombstone for a
  for (let i = 0; i < 8; i++) append(log, [{ key: `f${i}`, value: 'x'.repeat(80) }]) // pushes the above out of the active segment
  const cfg = { ...COMPACT, deleteRetentionMs: 1000, segmentBytes: 300 }

  await cleanLog(log, cfg, { now: T0 + 100 })
  let recs = readLog(log)
  assert.deepEqual(
    recs.filter((r) => ['a', 'b', 'c'].includes(r.key ?? '')).map((r) => [r.offset, r.key, r.value, r.ts]),
    [
      [1, 'b', 'b1', T0 + 1],
      [2, 'a', null, T0 + 5],
      [3, 'c', 'c1', T0 + 6],
    ],
  )
  const marked = headers(log).find((h) => h.baseOffset === 2)!
  assert.ok(
    (marked.attributes & ATTR_DELETE_HORIZON_MASK) !== 0,
    'the batch with the tombstone carries a delete horizon',
  )
  assert.equal(marked.baseTimestamp, T0 + 100 + 1000, 'horizon = time of first cleaning + delete.retention.ms')

  // Before the horizon (whole log recleaned): the tombstone stays, its horizon unchanged.
  await cleanLog(log, cfg, { now: T0 + 1099 })
  recs = readLog(log)
  assert.ok(recs.some((r) => r.key === 'a' && r.value === null))
  assert.equal(headers(log).find((h) => h.baseOffset === 2)!.baseTimestamp, T0 + 1100)

  // At the horizon: gone; c (same batch) keeps its offset and timestamp.
  await cleanLog(log, cfg, { now: T0 + 1100 })
  recs = readLog(log)
  assert.ok(!recs.some((r) => r.key === 'a'))
  assert.deepEqual(
    recs.find((r) => r.key === 'c'),
    { offset: 3, key: 'c', value: 'c1', ts: T0 + 6 },
  )
  await log.close()
})

test('compressed batches of every codec are read, filtered and recompressed with their codec', async () => {
  for (const codec of [CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD]) {
    const d = dir()
    const log = openLog(d, { segmentBytes: 2000, indexIntervalBytes: 128 })
    for (let i = 0; i < 40; i++) {
      append(
        log,
        Array.from({ length: 10 }, (_, j) => ({
          key: `k${(i * 10 + j) % 15}`,
          value: `c${codec}-${i * 10 + j}-${'p'.repeat(50)}`,
          ts: T0 + i * 10 + j,
        })),
        { codec },
      )
    }
    const before = readLog(log)
    const active = activeBase(log)
    await cleanLog(log, { ...COMPACT, segmentBytes: 2000 }, { now: T0 })
    assert.deepEqual(readLog(log), compacted(before, active), `codec ${codec}`)
    const kept = headers(log).filter((h) => h.baseOffset < active)
    assert.ok(kept.length > 0)
    // (Header-only batches are written uncompressed, as Kafka's writeEmptyHeader does.)
    for (const h of kept)
      if (h.recordsCount > 0)
        assert.equal(h.attributes & ATTR_COMPRESSION_MASK, codec, 'recompressed with the original codec')
    assert.ok(
      kept.some((h) => h.recordsCount < h.lastOffsetDelta + 1),
      'a rebuilt batch keeps its last offset delta, with gaps inside',
    )
    await log.close()
  }
})

test('LogAppendTime batches keep their append time', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 400, indexIntervalBytes: 64 })
  for (let i = 0; i < 12; i++)
    append(
      log,
      [
        { key: 'k', value: `v${i}`, ts: 5 },
        { key: `u${i}`, value: 'u', ts: 6 },
      ],
      { logAppendTime: T0 + 1000 + i },
    )
  await cleanLog(log, { ...COMPACT, segmentBytes: 400 }, { now: T0 })
  for (const h of headers(log)) {
    assert.ok((h.attributes & ATTR_TIMESTAMP_TYPE_MASK) !== 0)
    assert.equal(h.maxTimestamp, T0 + 1000 + h.baseOffset / 2)
  }
  await log.close()
})

test("producer metadata survives: rebuilt batches keep id, epoch and sequence; an active producer's emptied last batch stays as a header", async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 500, indexIntervalBytes: 64 })
  append(
    log,
    [
      { key: 'a', value: '1' },
      { key: 'b', value: '1' },
    ],
    { producerId: 7, producerEpoch: 2, baseSequence: 0 },
  ) // 0-1
  append(
    log,
    [
      { key: 'a', value: '2' },
      { key: 'c', value: '1' },
    ],
    { producerId: 7, producerEpoch: 2, baseSequence: 2 },
  ) // 2-3
  append(log, [{ key: 'b', value: '2' }], { producerId: 8, producerEpoch: 0, baseSequence: 0 }) // 4: producer 8's last
  append(log, [{ key: 'x', value: '1' }], { producerId: 9, producerEpoch: 0, baseSequence: 0 }) // 5: producer 9 (expired)
  append(log, [
    { key: 'b', value: '3' },
    { key: 'x', value: '2' },
  ]) // 6-7: b and x superseded
  for (let i = 0; i < 10; i++) append(log, [{ key: `f${i}`, value: 'y'.repeat(60) }])
  await cleanLog(
    log,
    { ...COMPACT, segmentBytes: 500 },
    {
      now: T0,
      activeProducers: new Map([
        [7, 3],
        [8, 4],
      ]),
    },
  )
  const hs = headers(log)
  const at = (o: number): BatchHeader | undefined => hs.find((h) => h.baseOffset === o)
  // Batch 0-1: a and b superseded; producer 7's last batch is 2-3, so 0-1 goes.
  assert.equal(at(0), undefined)
  // Batch 2-3 keeps both records (latest a, c) and its producer fields.
  assert.deepEqual(
    [at(2)!.producerId, at(2)!.producerEpoch, at(2)!.baseSequence, at(2)!.recordsCount, at(2)!.lastOffsetDelta],
    [7, 2, 2, 2, 1],
  )
  // Batch 4: b superseded, but it is producer 8's last batch: an empty header remains.
  assert.deepEqual(
    [
      at(4)!.producerId,
      at(4)!.producerEpoch,
      at(4)!.baseSequence,
      at(4)!.recordsCount,
      at(4)!.lastOffsetDelta,
      at(4)!.baseTimestamp,
    ],
    [8, 0, 0, 0, 0, -1],
  )
  // Batch 5: x superseded, producer 9 not active: removed.
  assert.equal(at(5), undefined)
  assert.deepEqual(
    readLog(log)
      .filter((r) => r.offset < 8)
      .map((r) => [r.offset, r.key, r.value]),
    [
      [2, 'a', '2'],
      [3, 'c', '1'],
      [6, 'b', '3'],
      [7, 'x', '2'],
    ],
  )
  await log.close()
})

test("by default the active producers are those of the log's producer state, which a reopen rebuilds from the retained headers", async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 400, indexIntervalBytes: 64 })
  const produce = (recs: Rec[], o: BatchOptions = {}): void => {
    const b = makeBatch(recs, o)
    const h = readBatchHeader(b, 0)
    const base = log.append(b, [h], T0).baseOffset
    if (h.producerId >= 0) log.producerState.record(h, base, base + h.lastOffsetDelta, T0)
  }
  produce(
    [
      { key: 'a', value: '1' },
      { key: 'b', value: '1' },
    ],
    { producerId: 3, producerEpoch: 1, baseSequence: 0 },
  ) // 0-1
  produce(
    [
      { key: 'a', value: '2' },
      { key: 'b', value: '2' },
    ],
    { producerId: 4, producerEpoch: 0, baseSequence: 0 },
  ) // 2-3
  produce([
    { key: 'a', value: '3' },
    { key: 'b', value: '3' },
  ]) // 4-5: supersedes both producers' records
  for (let i = 0; i < 10; i++) produce([{ key: `f${i}`, value: 'y'.repeat(60) }])
  await cleanLog(log, { ...COMPACT, segmentBytes: 400 }, { now: T0 })
  const hs = headers(log)
  assert.deepEqual(
    hs.filter((h) => h.producerId >= 0).map((h) => [h.baseOffset, h.producerId, h.recordsCount]),
    [
      [0, 3, 0],
      [2, 4, 0],
    ],
  )
  await log.close()
  // Without snapshots, the state is rebuilt from the batch headers, the empty ones included.
  for (const f of fs.readdirSync(d)) if (f.endsWith('.snapshot')) fs.unlinkSync(path.join(d, f))
  const reopened = openLog(d, { segmentBytes: 400, indexIntervalBytes: 64 })
  assert.equal(reopened.producerStateLoad.snapshotOffset, -1)
  const three = reopened.producerState.get(3)!
  assert.deepEqual([three.epoch, three.batches.at(-1)!.lastSeq, three.batches.at(-1)!.lastOffset], [1, 1, 1])
  assert.equal(reopened.producerState.get(4)!.batches.at(-1)!.lastSeq, 1)
  await reopened.close()
})

test('min.compaction.lag.ms protects recent segments from both the map and the rewrite', async () => {
  const d = dir()
  const log = openLog(d, LOG)
  fill(log, 150, 5) // timestamps T0 .. T0+149
  const before = readLog(log)
  const segs = log.segmentBaseOffsets
  // Records younger than 60 ms at now = T0 + 160 are those with ts > T0 + 100.
  const cfg = { ...COMPACT, minCompactionLagMs: 60 }
  const range = cleanableRange(log.segmentsSnapshot(), log.logEndOffset, null, cfg, T0 + 160)
  const firstYoung = segs.find(
    (_, i) =>
      i + 1 < segs.length && readLog(log).some((r) => r.offset >= segs[i] && r.offset < segs[i + 1] && r.ts > T0 + 100),
  )!
  assert.equal(range.firstUncleanableOffset, firstYoung)
  const stats = await cleanLog(log, cfg, { now: T0 + 160 })
  assert.equal(stats.endOffset, firstYoung)
  assert.deepEqual(readLog(log), compacted(before, firstYoung))
  await log.close()
})

test('dirty ratio: cleanableRange and the background cleaner honour min.cleanable.dirty.ratio and checkpoint the first dirty offset', async () => {
  const d1 = dir()
  const d2 = dir()
  const dirtyLog = openLog(d1, LOG)
  fill(dirtyLog, 200, 5)
  const quietLog = openLog(d2, LOG)
  fill(quietLog, 200, 5)
  const r = cleanableRange(dirtyLog.segmentsSnapshot(), dirtyLog.logEndOffset, null, COMPACT, T0)
  assert.equal(r.firstDirtyOffset, 0)
  assert.equal(r.cleanBytes, 0)
  assert.equal(r.ratio, 1)
  assert.ok(shouldClean(r, { ...COMPACT, minCleanableRatio: 0.5 }))
  assert.ok(!shouldClean(r, { ...COMPACT, minCleanableRatio: 1 }), 'Kafka cleans only above the ratio')

  const registry = new Registry()
  const cleaner = new LogCleaner({
    targets: () => [
      { name: 'dirty-0', log: dirtyLog, config: { ...COMPACT, minCleanableRatio: 0.5 } },
      { name: 'quiet-0', log: quietLog, config: { ...COMPACT, minCleanableRatio: 1 } },
    ],
    backoffMs: 10,
    logger: new Logger({}, 100),
    registry,
    now: () => T0,
  })
  assert.equal(await cleaner.runOnce(), true)
  const checkpoint = readCleanerCheckpoint(d1)
  assert.equal(checkpoint, activeBase(dirtyLog))
  assert.ok(fs.existsSync(path.join(d1, CLEANER_CHECKPOINT_FILE)))
  assert.equal(readCleanerCheckpoint(d2), null, 'the log under its ratio was left alone')
  // Cleaned: its ratio is now 0; nothing else qualifies.
  assert.equal(await cleaner.runOnce(), false)
  const after = cleanableRange(dirtyLog.segmentsSnapshot(), dirtyLog.logEndOffset, checkpoint, COMPACT, T0)
  assert.equal(after.cleanableBytes, 0)
  // New data rolls more segments: dirty again, cleaned again from the checkpoint.
  fill(dirtyLog, 200, 5, 'n')
  assert.equal(await cleaner.runOnce(), true)
  assert.ok(readCleanerCheckpoint(d1)! > (checkpoint ?? Infinity))
  const metrics = await registry.getSingleMetricAsString('cortado_broker_log_cleaner_records_removed_total')
  assert.match(metrics, /records_removed_total \d+/)
  assert.ok(Number(/records_removed_total (\d+)/.exec(metrics)![1]) > 300)
  await dirtyLog.close()
  await quietLog.close()
})

test('the background loop cleans within its backoff and stops promptly', async () => {
  const d = dir()
  const log = openLog(d, LOG)
  fill(log, 200, 5)
  let afterRounds = 0
  const afterRound = (): void => {
    assert.equal(log.isCleaning, false, 'retention (compact,delete) runs once the round has let go of the log')
    afterRounds++
  }
  const cleaner = new LogCleaner({
    targets: () => [{ name: 't-0', log, config: COMPACT, afterRound }],
    backoffMs: 20,
    logger: new Logger({}, 100),
    now: () => T0,
  })
  cleaner.start()
  const deadline = Date.now() + 5000
  while (readCleanerCheckpoint(d) === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  assert.equal(readCleanerCheckpoint(d), activeBase(log))
  assert.equal(afterRounds, 1)
  await cleaner.stop()
  await log.close()
})

/** Log contents as the crash tests compare them. */
function contents(log: PartitionLog): [number, string | null, string | null][] {
  return readLog(log).map((r) => [r.offset, r.key, r.value])
}

test('a crash at any stage of a swap leaves a consistent log on reopen: the old segments or the cleaned one', async () => {
  const d = dir()
  const log = openLog(d, LOG)
  fill(log, 240, 6)
  const oldContents = contents(log)
  const copies: { stage: SwapStage | 'log-renamed' | 'indexes-renamed'; dir: string }[] = []
  let firstGroup = true
  await cleanLog(log, COMPACT, {
    now: T0,
    onSwapStage: (stage, base) => {
      if (!firstGroup) return
      const copy = dir()
      copyDir(d, copy)
      copies.push({ stage, dir: copy })
      if (stage === 'old-files-deleted') {
        // Mid step 4 (renaming .swap into place): only the index files renamed, or only the log.
        const a = dir()
        copyDir(d, a)
        for (const suffix of ['.index', '.timeindex']) {
          const f = path.join(a, `${String(base).padStart(20, '0')}${suffix}`)
          fs.renameSync(f + '.swap', f)
        }
        copies.push({ stage: 'indexes-renamed', dir: a })
        const b = dir()
        copyDir(d, b)
        const f = path.join(b, `${String(base).padStart(20, '0')}.log`)
        fs.renameSync(f + '.swap', f)
        copies.push({ stage: 'log-renamed', dir: b })
      }
      if (stage === 'finished') firstGroup = false
    },
  })
  const newContents = contents(log)
  assert.notDeepEqual(newContents, oldContents)
  assert.deepEqual(
    copies.map((c) => c.stage),
    ['written', 'committed', 'old-files-deleted', 'indexes-renamed', 'log-renamed', 'finished'],
  )
  const firstGroupEnd = log.segmentBaseOffsets[1]
  for (const c of copies) {
    const names = fs.readdirSync(c.dir)
    if (c.stage === 'written') assert.ok(names.some((n) => n.endsWith('.log.cleaned')))
    if (c.stage === 'committed') assert.ok(names.some((n) => n.endsWith('.log.swap')))
    const reopened = openLog(c.dir, LOG)
    const got = contents(reopened)
    // Before the commit the old segments stand; after it the first group is the cleaned one and
    // every later group is still the old data (the copy was taken while cleaning the first).
    const expected =
      c.stage === 'written'
        ? oldContents
        : [...newContents.filter(([o]) => o < firstGroupEnd), ...oldContents.filter(([o]) => o >= firstGroupEnd)]
    assert.deepEqual(got, expected, `stage ${c.stage}`)
    for (const n of fs.readdirSync(c.dir))
      assert.doesNotMatch(n, /\.(cleaned|swap)$/, `stage ${c.stage}: ${n} left behind`)
    assert.equal(append(reopened, [{ key: 'z', value: 'z' }]), 240, `stage ${c.stage}: appends continue at the log end`)
    // And the next round completes the compaction from there.
    const pre = readLog(reopened)
    await cleanLog(reopened, COMPACT, { now: T0 })
    assert.deepEqual(readLog(reopened), compacted(pre, activeBase(reopened)), `stage ${c.stage}: recleaned`)
    await reopened.close()
  }
  await log.close()
})

test('a crash after committing a group whose last segments were emptied: those stay, and the log is still correct', async () => {
  const d = dir()
  const log = openLog(d, LOG)
  // One ~1000-byte batch per segment: S0 = a*, S1 = b*, S2 = b* again, S3 = a* again, S4 (active) = c*.
  const big = (key: string, i: number): Rec => ({ key, value: `${key}-${i}-${'p'.repeat(80)}` })
  for (const [n, prefix] of [
    [0, 'a'],
    [1, 'b'],
    [2, 'b'],
    [3, 'a'],
    [4, 'c'],
  ] as const)
    append(
      log,
      Array.from({ length: 10 }, (_, j) => big(`${prefix}${j}`, n)),
    )
  assert.deepEqual(log.segmentBaseOffsets, [0, 10, 20, 30, 40])
  const old = readLog(log)
  // Groups of two segments: [S0, S1] loses every record (superseded by S2 and S3), [S2, S3] keeps all.
  const cfg = { ...COMPACT, segmentBytes: 2200 }
  let copy = ''
  await cleanLog(log, cfg, {
    now: T0,
    onSwapStage: (stage, base) => {
      if (stage === 'committed' && base === 0) {
        copy = dir()
        copyDir(d, copy)
      }
    },
  })
  assert.deepEqual(
    readLog(log).map((r) => r.offset),
    [...Array.from({ length: 30 }, (_, i) => 20 + i)],
  )
  // The copy: S0.log.swap is empty, so recovery deletes S0's old files only; S1 stays, old but harmless.
  const reopened = openLog(copy, LOG)
  const got = readLog(reopened)
  assert.deepEqual(
    got,
    old.filter((r) => r.offset >= 10),
  )
  assert.deepEqual(reopened.segmentBaseOffsets, [0, 10, 20, 30, 40])
  await cleanLog(reopened, cfg, { now: T0 })
  assert.deepEqual(readLog(reopened), readLog(log))
  await reopened.close()
  await log.close()
})

test('fetch and append run while a round is in progress; the round yields to the event loop', async () => {
  const d = dir()
  // retention.ms=1: everything would be deleted if retention ran during the round.
  const log = openLog(d, { segmentBytes: 64 * 1024, indexIntervalBytes: 4096, retentionMs: 1 })
  // ~6 MB: enough for many slices.
  const value = 'x'.repeat(900)
  const written = new Map<number, string>()
  for (let i = 0; i < 6000; i += 5) {
    const recs = Array.from({ length: 5 }, (_, j) => ({ key: `k${(i + j) % 200}`, value: `${i + j}-${value}` }))
    const base = append(log, recs)
    recs.forEach((r, j) => written.set(base + j, r.value))
  }
  const before = readLog(log)
  const active = activeBase(log)
  let turns = 0
  let longestTurnMs = 0
  let done = false
  const round = cleanLog(log, { ...COMPACT, segmentBytes: 64 * 1024 }, { now: T0 }).finally(() => {
    done = true
  })
  let appended = 0
  let reads = 0
  while (!done) {
    turns++
    // Produce: appends land in the active segment at the log end.
    const end = log.logEndOffset
    assert.equal(append(log, [{ key: `new${appended}`, value: `n${appended}` }]), end)
    written.set(end, `n${appended}`)
    appended++
    // Fetch: any read sees records with their original values at their original offsets.
    if (turns % 10 === 0) {
      for (const r of readLog(log)) assert.equal(r.value, written.get(r.offset))
      reads++
    } else {
      const at = Math.floor(Math.random() * log.logEndOffset)
      const data = log.read(at, 64 * 1024, true)
      for (const b of splitBatches(data)) {
        const h = readBatchHeader(b, 0)
        for (const r of batchRecords(b, 0, h)) assert.equal(valueOf(r.tail), written.get(h.baseOffset + r.offsetDelta))
      }
    }
    // Retention waits while the log is being cleaned.
    assert.equal(log.applyRetention(Date.now() + 10 ** 12), 0)
    // How long others (the cleaner) held the event loop before we got it back.
    const yielded = performance.now()
    await nextTurn()
    longestTurnMs = Math.max(longestTurnMs, performance.now() - yielded)
  }
  const stats = await round
  assert.ok(turns > 20, `the round yielded ${turns} times`)
  // Loose bound (CI machines vary): no single slice holds the event loop for long.
  assert.ok(longestTurnMs < 500, `longest event-loop stall ${longestTurnMs.toFixed(1)} ms`)
  if (process.env.CORTADO_TEST_VERBOSE !== undefined)
    console.log(`turns ${turns}, longest stall ${longestTurnMs.toFixed(1)} ms`)
  assert.ok(reads > 0 && appended > 20)
  assert.ok(stats.recordsRemoved > 5000)
  const after = readLog(log)
  const expected = compacted(before, active)
  assert.deepEqual(
    after.filter((r) => r.offset < 6000),
    expected,
  )
  assert.equal(after.filter((r) => r.offset >= 6000).length, appended)
  assert.ok(stats.bytesWritten < stats.bytesRead / 10)
  await log.close()
})

test('closing the log mid-round aborts it cleanly: no cleaned files left, the data unchanged', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 64 * 1024, indexIntervalBytes: 4096 })
  fill(log, 12000, 100, 'v'.repeat(400))
  const before = readLog(log)
  const outcome = cleanLog(log, { ...COMPACT, segmentBytes: 64 * 1024 }, { now: T0 }).then(
    () => null,
    (err: unknown) => err,
  )
  await nextTurn()
  await nextTurn()
  await log.close()
  assert.match(String(await outcome), /CleaningAbortedError: .* closed/)
  for (const n of fs.readdirSync(d)) assert.doesNotMatch(n, /\.(cleaned|swap)$/)
  const reopened = openLog(d, { segmentBytes: 64 * 1024, indexIntervalBytes: 4096 })
  // Whatever groups completed before the close are compacted; the rest is as it was.
  const last = new Map<string, number>()
  for (const r of before) last.set(r.key!, r.offset)
  const got = readLog(reopened)
  const byOffset = new Map(before.map((r) => [r.offset, r]))
  for (const r of got) assert.deepEqual(r, byOffset.get(r.offset))
  for (const [, o] of last)
    assert.ok(
      got.some((r) => r.offset === o),
      `latest offset ${o} of its key survives`,
    )
  await reopened.close()
})

test('records that cannot be read make the round fail without touching the log', async () => {
  const d = dir()
  const log = openLog(d, LOG)
  fill(log, 60, 5)
  // A gzip batch whose compressed body is garbage (valid CRC: the broker does not decompress on produce).
  const h = readBatchHeader(makeBatch([{ key: 'a', value: 'b' }]), 0)
  const bad = assembleBatch({ ...h, attributes: CODEC_GZIP }, Buffer.from('definitely not gzip'))
  log.append(bad, [readBatchHeader(bad, 0)], T0)
  fill(log, 60, 5)
  const before = log.sizeInBytes
  await assert.rejects(cleanLog(log, COMPACT, { now: T0 }), /gzip/)
  assert.equal(log.sizeInBytes, before)
  for (const n of fs.readdirSync(d)) assert.doesNotMatch(n, /\.(cleaned|swap)$/)
  await log.close()
})
