import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, test } from 'node:test'
import { crc32c } from '../../../src/protocol/crc32c.ts'
import { decodeRecords, readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { LogClosedError, OffsetOutOfRangeError } from '../../../src/broker/log/errors.ts'
import { Flusher } from '../../../src/broker/log/flusher.ts'
import { CLEAN_SHUTDOWN_FILE } from '../../../src/broker/log/partition-log.ts'
import { appendValues, batch, batches, openLog, readAll, removeDir, splitBatches, tempDir } from './helpers.ts'

const dirs: string[] = []
function dir(): string {
  const d = tempDir()
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d)
})

function values(n: number, prefix = 'v'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`)
}

test('append assigns consecutive offsets and reads round trip across segment rolls', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 2048, indexIntervalBytes: 256 })
  const expected: [number, string][] = []
  let next = 0
  for (let i = 0; i < 200; i++) {
    const vals = values(1 + (i % 5), `b${i}-`)
    const r = appendValues(log, vals)
    assert.equal(r.baseOffset, next)
    assert.equal(r.lastOffset, next + vals.length - 1)
    vals.forEach((v, j) => expected.push([next + j, v]))
    next += vals.length
  }
  assert.equal(log.logEndOffset, next)
  assert.equal(log.logStartOffset, 0)
  assert.ok(log.segmentCount > 5, `expected several segments, got ${log.segmentCount}`)
  assert.deepEqual(readAll(log), expected)
  assert.deepEqual(readAll(log, 100), expected) // tiny maxBytes: one batch per read
  // Segment files are named by 20-digit base offsets, and each starts with a batch at that offset.
  const logs = fs
    .readdirSync(d)
    .filter((f) => f.endsWith('.log'))
    .sort()
  assert.equal(logs.length, log.segmentCount)
  assert.deepEqual(
    logs.map((f) => Number(f.slice(0, 20))),
    log.segmentBaseOffsets,
  )
  for (const f of logs) {
    assert.match(f, /^\d{20}\.log$/)
    const head = fs.readFileSync(path.join(d, f)).subarray(0, 61)
    assert.equal(readBatchHeader(head, 0).baseOffset, Number(f.slice(0, 20)))
    assert.ok(fs.statSync(path.join(d, f)).size <= 2048)
  }
  await log.close()
  // Clean reopen preserves everything, and appends continue.
  const again = openLog(d, { segmentBytes: 2048, indexIntervalBytes: 256 })
  assert.equal(again.recoveredTruncatedBytes, 0)
  assert.equal(again.logEndOffset, next)
  assert.deepEqual(readAll(again), expected)
  assert.equal(appendValues(again, ['after']).baseOffset, next)
  await again.close()
})

test('append of several batches at once is atomic and in order', async () => {
  const log = openLog(dir())
  appendValues(log, ['a'])
  const b = batches([['b', 'c'], ['d'], ['e', 'f', 'g']])
  assert.deepEqual(log.append(b.buf, b.headers, Date.now()), { baseOffset: 1, lastOffset: 6 })
  // Offsets were written into the caller's buffer, partitionLeaderEpoch set to 0.
  assert.equal(readBatchHeader(b.buf, 0).baseOffset, 1)
  assert.equal(readBatchHeader(b.buf, 0).partitionLeaderEpoch, 0)
  assert.deepEqual(
    readAll(log).map((r) => r[1]),
    ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
  )
  assert.throws(() => log.append(b.buf.subarray(1), b.headers, Date.now()), /do not match/)
  await log.close()
})

test('maxBytes returns whole batches only; minOneBatch returns an oversized first batch', async () => {
  const log = openLog(dir())
  const sizes: number[] = []
  for (let i = 0; i < 4; i++) {
    const b = batch([`value-${i}`.padEnd(100 + i * 50, 'x')])
    sizes.push(b.buf.length)
    log.append(b.buf, b.headers, Date.now())
  }
  const total = sizes.reduce((a, b) => a + b)
  assert.equal(log.read(0, total, false).length, total)
  assert.equal(log.read(0, total + 1000, false).length, total)
  assert.equal(log.read(0, sizes[0] + sizes[1], false).length, sizes[0] + sizes[1])
  assert.equal(log.read(0, sizes[0] + sizes[1] + sizes[2] - 1, false).length, sizes[0] + sizes[1])
  assert.equal(log.read(1, sizes[1] + 5, true).length, sizes[1])
  // First batch larger than maxBytes.
  assert.equal(log.read(0, sizes[0] - 1, false).length, 0)
  assert.equal(log.read(0, sizes[0] - 1, true).length, sizes[0])
  assert.equal(log.read(0, 0, true).length, sizes[0])
  assert.equal(log.read(0, 5, true).length, sizes[0])
  assert.equal(log.read(0, 0, false).length, 0)
  assert.equal(decodeRecords(log.read(2, 1, true))[0].offset, 2)
  await log.close()
})

test('read from an offset inside a batch returns that whole batch', async () => {
  const log = openLog(dir(), { indexIntervalBytes: 64 })
  for (let i = 0; i < 50; i++) appendValues(log, values(5, `b${i}-`))
  for (const offset of [0, 3, 4, 5, 12, 99, 133, 249]) {
    const data = log.read(offset, 1, true)
    const h = readBatchHeader(data, 0)
    assert.equal(h.baseOffset, offset - (offset % 5), `offset ${offset}`)
    assert.equal(splitBatches(data).length, 1)
    const recs = decodeRecords(data)
    assert.equal(recs.find((r) => r.offset === offset)?.value?.toString(), `b${Math.floor(offset / 5)}-${offset % 5}`)
  }
  await log.close()
})

test('offsets outside [logStartOffset, logEndOffset] are out of range; the log end reads empty', async () => {
  const log = openLog(dir())
  assert.equal(log.read(0, 1000, true).length, 0)
  appendValues(log, ['a', 'b'])
  assert.equal(log.read(2, 1000, true).length, 0)
  for (const bad of [-1, 3, 1000]) {
    assert.throws(
      () => log.read(bad, 1000, true),
      (e) => e instanceof OffsetOutOfRangeError && e.code === 1 && e.logStartOffset === 0 && e.logEndOffset === 2,
    )
  }
  await log.close()
})

test('offsetForTimestamp finds the first record at or after a timestamp', async () => {
  const log = openLog(dir(), { segmentBytes: 600, indexIntervalBytes: 100 })
  // Timestamps rise by 10 per record, except an out-of-order record inside batch 3.
  let ts = 1000
  const all: [number, number][] = []
  for (let i = 0; i < 30; i++) {
    const stamps = [ts, ts + 10, ts + 20]
    if (i === 3) stamps[1] = ts - 500
    const r = appendValues(log, [`a${i}`, `b${i}`, `c${i}`], Date.now(), stamps)
    stamps.forEach((s, j) => all.push([r.baseOffset + j, s]))
    ts += 30
  }
  assert.ok(log.segmentCount > 3)
  const expect = (target: number): { offset: number; timestamp: number } | null => {
    const hit = all.find(([, s]) => s >= target)
    return hit ? { offset: hit[0], timestamp: hit[1] } : null
  }
  for (const target of [0, 999, 1000, 1001, 1010, 1095, 1100, 1500, 1555, 1890, 1900, 1910]) {
    assert.deepEqual(log.offsetForTimestamp(target), expect(target), `target ${target}`)
  }
  assert.equal(log.offsetForTimestamp(1000 + 30 * 30), null)
  await log.close()
  // Same answers from indexes loaded from disk.
  const again = openLog(log.dir, { segmentBytes: 600, indexIntervalBytes: 100 })
  for (const target of [0, 1010, 1500, 1890]) assert.deepEqual(again.offsetForTimestamp(target), expect(target))
  await again.close()
})

test('offsetForTimestamp answers compressed batches at batch level', async () => {
  const log = openLog(dir())
  appendValues(log, ['x'], Date.now(), [100])
  const b = batch(['p', 'q', 'r'], [200, 300, 250])
  // Mark it gzip; the log does not decompress, so it answers with the batch's base offset.
  b.buf.writeInt16BE(1, 21)
  b.buf.writeUInt32BE(crc32c(b.buf, 21), 17)
  log.append(b.buf, [readBatchHeader(b.buf, 0)], Date.now())
  assert.deepEqual(log.offsetForTimestamp(250), { offset: 1, timestamp: 300 })
  assert.deepEqual(log.offsetForTimestamp(50), { offset: 0, timestamp: 100 })
  await log.close()
})

test('retention by time deletes old segments, advances the log start and keeps the active segment', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 400, retentionMs: 1000 })
  for (let i = 0; i < 20; i++) appendValues(log, values(2, `t${i}-`), 0, [i * 100, i * 100 + 1])
  const segs = log.segmentCount
  assert.ok(segs > 4)
  const bases = log.segmentBaseOffsets
  // now = 1500: segments whose newest record is older than 500 go.
  const deleted = log.applyRetention(1500)
  assert.ok(deleted > 0 && deleted < segs, `deleted ${deleted} of ${segs}`)
  assert.equal(log.logStartOffset, bases[deleted])
  assert.equal(log.segmentCount, segs - deleted)
  const remaining = readAll(log)
  assert.equal(remaining[0][0], log.logStartOffset)
  assert.equal(remaining[remaining.length - 1][0], 39)
  assert.throws(() => log.read(0, 100, true), OffsetOutOfRangeError)
  for (const base of bases.slice(0, deleted))
    assert.ok(!fs.existsSync(path.join(d, `${String(base).padStart(20, '0')}.log`)))
  // Everything expired: the active segment holds data, so the log rolls and keeps an empty one.
  const before = log.segmentCount
  assert.equal(log.applyRetention(1_000_000), before)
  assert.equal(log.segmentCount, 1)
  assert.equal(log.logStartOffset, 40)
  assert.equal(log.logEndOffset, 40)
  assert.equal(log.sizeInBytes, 0)
  assert.equal(log.read(40, 100, true).length, 0)
  // Nothing more to delete: the empty active segment stays.
  assert.equal(log.applyRetention(2_000_000), 0)
  assert.equal(appendValues(log, ['new']).baseOffset, 40)
  await log.close()
  const again = openLog(d)
  assert.equal(again.logStartOffset, 40)
  assert.deepEqual(readAll(again), [[40, 'new']])
  await again.close()
})

test('retention by size keeps the newest segments within retention.bytes', async () => {
  const log = openLog(dir(), { segmentBytes: 500, retentionBytes: 1500 })
  for (let i = 0; i < 40; i++) appendValues(log, [`s${i}`.padEnd(60, '.')])
  const sizeBefore = log.sizeInBytes
  assert.ok(sizeBefore > 3000)
  const deleted = log.applyRetention(Date.now())
  assert.ok(deleted > 0)
  assert.ok(log.sizeInBytes >= 1500 - 500 && log.sizeInBytes <= 1500 + 500, `size ${log.sizeInBytes}`)
  assert.ok(log.logStartOffset > 0)
  assert.equal(log.logEndOffset, 40)
  assert.equal(readAll(log).length, 40 - log.logStartOffset)
  assert.equal(log.applyRetention(Date.now()), 0) // idempotent
  await log.close()
})

test('segments roll by age (segment.ms)', async () => {
  const log = openLog(dir(), { segmentMs: 1000 })
  appendValues(log, ['a'], 10_000)
  appendValues(log, ['b'], 10_500)
  assert.equal(log.segmentCount, 1)
  appendValues(log, ['c'], 11_001)
  assert.equal(log.segmentCount, 2)
  assert.deepEqual(log.segmentBaseOffsets, [0, 2])
  await log.close()
})

test('index files use Kafka formats and are rebuilt when deleted or damaged', async () => {
  const d = dir()
  const cfg = { segmentBytes: 3000, indexIntervalBytes: 200 }
  const log = openLog(d, cfg)
  for (let i = 0; i < 120; i++) appendValues(log, values(3, `i${i}-`), Date.now(), [i * 10, i * 10 + 1, i * 10 + 2])
  const expected = readAll(log)
  await log.close()
  const base = '00000000000000000000'
  const index = fs.readFileSync(path.join(d, `${base}.index`))
  const timeIndex = fs.readFileSync(path.join(d, `${base}.timeindex`))
  const data = fs.readFileSync(path.join(d, `${base}.log`))
  assert.ok(index.length > 8 && index.length % 8 === 0)
  assert.ok(timeIndex.length > 12 && timeIndex.length % 12 === 0)
  for (let p = 0; p < index.length; p += 8) {
    const rel = index.readInt32BE(p)
    const pos = index.readInt32BE(p + 4)
    assert.equal(readBatchHeader(data, pos).baseOffset, rel)
  }
  let prev = -1
  for (let p = 0; p < timeIndex.length; p += 12) {
    const ts = Number(timeIndex.readBigInt64BE(p))
    assert.ok(ts > prev)
    prev = ts
  }
  // The last time index entry holds the segment's largest timestamp.
  const segEnd = readBatchHeader(data, index.readInt32BE(index.length - 4))
  assert.ok(prev >= segEnd.maxTimestamp)

  const segments = fs
    .readdirSync(d)
    .filter((f) => f.endsWith('.log'))
    .map((f) => f.slice(0, 20))
  assert.ok(segments.length >= 3)
  fs.unlinkSync(path.join(d, `${segments[0]}.index`))
  fs.unlinkSync(path.join(d, `${segments[1]}.timeindex`))
  fs.writeFileSync(path.join(d, `${segments[2]}.index`), Buffer.alloc(13, 0xff)) // wrong size, garbage
  const again = openLog(d, cfg)
  assert.deepEqual(readAll(again), expected)
  assert.deepEqual(again.offsetForTimestamp(555), { offset: 168, timestamp: 560 })
  await again.close()
  assert.deepEqual(fs.readFileSync(path.join(d, `${base}.index`)), index)
  assert.deepEqual(fs.readFileSync(path.join(d, `${base}.timeindex`)), timeIndex)
  assert.equal(fs.statSync(path.join(d, `${segments[2]}.index`)).size % 8, 0)
})

test('clean shutdown marker: written on close, removed on open', async () => {
  const d = dir()
  const log = openLog(d)
  appendValues(log, ['a'])
  assert.ok(!fs.existsSync(path.join(d, CLEAN_SHUTDOWN_FILE)))
  await log.close()
  assert.ok(fs.existsSync(path.join(d, CLEAN_SHUTDOWN_FILE)))
  const again = openLog(d)
  assert.ok(!fs.existsSync(path.join(d, CLEAN_SHUTDOWN_FILE)))
  await again.close()
})

test('after close, append, read and retention throw LogClosedError; delete removes the directory', async () => {
  const d = dir()
  const log = openLog(d)
  appendValues(log, ['a'])
  const closing = log.close()
  assert.throws(
    () => appendValues(log, ['b']),
    (e) => e instanceof LogClosedError && e.code === 6,
  )
  await closing
  await log.close() // idempotent
  assert.throws(() => appendValues(log, ['b']), LogClosedError)
  assert.throws(() => log.read(0, 100, true), LogClosedError)
  assert.throws(() => log.offsetForTimestamp(0), LogClosedError)
  assert.throws(() => log.applyRetention(Date.now()), LogClosedError)
  await log.flush() // nothing left to sync
  const other = openLog(d)
  assert.deepEqual(readAll(other), [[0, 'a']])
  await other.delete()
  assert.ok(!fs.existsSync(d))
  assert.throws(() => other.read(0, 100, true), LogClosedError)
})

test('with visibleWhenDurable the high watermark is the fdatasynced end: readers never see what a crash could take back', async () => {
  const d = dir()
  // fdatasync calls held until the test lets them go.
  const held: (() => void)[] = []
  const flusher = new Flusher({ fdatasync: (fd, cb) => held.push(() => fs.fdatasync(fd, cb)) })
  const releaseUntil = async (done: Promise<void>) => {
    let settled = false
    void done.then(() => (settled = true))
    while (!settled) {
      await new Promise((resolve) => setImmediate(resolve))
      while (held.length > 0) held.shift()!()
    }
  }
  const log = openLog(d, { visibleWhenDurable: true }, flusher)
  // Opening marks the recovered data for the next round; let that round finish first.
  await releaseUntil(log.flush())
  appendValues(log, ['a'])
  appendValues(log, ['b', 'c'])
  assert.equal(log.logEndOffset, 3)
  assert.equal(log.highWatermark, 0, 'nothing synced yet')
  assert.equal(log.read(0, 1 << 20, true, log.highWatermark).length, 0)
  const flushed = log.flush()
  appendValues(log, ['d']) // appended after the flush was asked for: not covered by it
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(held.length > 0, 'a round is waiting on fdatasync')
  assert.equal(log.highWatermark, 0, 'still not synced')
  await releaseUntil(flushed)
  assert.equal(log.highWatermark, 3)
  // Only whole batches below the high watermark: 'd' (offset 3) stays out.
  const visible = splitBatches(log.read(0, 1 << 20, true, log.highWatermark))
  assert.deepEqual(
    visible.map((b) => readBatchHeader(b, 0).baseOffset),
    [0, 1],
  )
  assert.equal(log.read(3, 1 << 20, true, log.highWatermark).length, 0)
  await releaseUntil(log.flush())
  assert.equal(log.highWatermark, 4)
  // Without the setting, readers see everything appended (the page cache), as with cortado.fsync=none.
  const plain = openLog(dir(), {}, new Flusher())
  appendValues(plain, ['x'])
  assert.equal(plain.highWatermark, 1)
  await releaseUntil(log.close())
  await plain.close()
})
