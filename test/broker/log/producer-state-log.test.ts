// Producer state across log restarts: PartitionLog rebuilds it on open from the newest usable
// `.snapshot` (written at roll and clean close) plus the batch headers after it, or from the
// headers of the whole log when there is no snapshot; torn snapshots and snapshots beyond the
// recovered log end are skipped.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, test } from 'node:test'
import { type PartitionLog } from '../../../src/broker/log/partition-log.ts'
import { listSnapshots, snapshotPath } from '../../../src/broker/log/producer-snapshot.ts'
import { encodeSnapshot, type ProducerStateTable } from '../../../src/broker/log/producer-state.ts'
import { type BatchHeader, encodeRecordBatch, readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { copyDir, openLog, readAll, removeDir, tempDir } from './helpers.ts'

const dirs: string[] = []
function dir(): string {
  const d = tempDir()
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d)
})

function idempotentBatch(
  producerId: number,
  epoch: number,
  baseSequence: number,
  count: number,
): { buf: Buffer; headers: BatchHeader[] } {
  const buf = encodeRecordBatch({
    producerId,
    producerEpoch: epoch,
    baseSequence,
    records: Array.from({ length: count }, (_, i) => ({
      key: null,
      value: Buffer.from(`p${producerId}-s${baseSequence + i}-${'x'.repeat(40)}`),
      timestamp: 5000,
    })),
  })
  return { buf, headers: [readBatchHeader(buf, 0)] }
}

/** Appends as the produce handler does: check, append, record. Returns the base offset. */
function produce(log: PartitionLog, producerId: number, epoch: number, seq: number, count: number): number {
  const b = idempotentBatch(producerId, epoch, seq, count)
  const decision = log.producerState.check(b.headers)
  assert.equal(decision.kind, 'append', JSON.stringify(decision))
  const { baseOffset } = log.append(b.buf, b.headers, 1000)
  log.producerState.recordAppend(b.headers, baseOffset, 1000)
  return baseOffset
}

/** Producer state without the expiry clock: [pid, epoch, batches]. */
function state(t: ProducerStateTable): unknown[] {
  return [...t.entries()].map((e) => [e.producerId, e.epoch, e.batches]).sort((a, b) => Number(a[0]) - Number(b[0]))
}

/** Three producers, interleaved, over many small segments; plus plain (non-idempotent) batches. */
function fill(log: PartitionLog, rounds = 60): void {
  const seq = [0, 0, 0]
  for (let i = 0; i < rounds; i++) {
    const p = i % 3
    const n = 1 + (i % 4)
    produce(log, 100 + p, p, seq[p], n)
    seq[p] += n
    if (i % 7 === 0) {
      const plain = encodeRecordBatch({ records: [{ key: null, value: Buffer.from(`plain-${i}`) }] })
      log.append(plain, [readBatchHeader(plain, 0)], 1000)
    }
  }
}

test('clean close writes a snapshot at the log end; reopening reads it and scans nothing', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 1024 })
  fill(log)
  assert.ok(log.segmentCount > 5)
  const expected = state(log.producerState)
  const end = log.logEndOffset
  await log.close()
  assert.equal(listSnapshots(d)[0], end)
  assert.ok(listSnapshots(d).length <= 3, 'old snapshots are pruned')
  const reopened = openLog(d, { segmentBytes: 1024 })
  assert.deepEqual(state(reopened.producerState), expected)
  assert.equal(reopened.producerStateLoad.snapshotOffset, end)
  assert.equal(reopened.producerStateLoad.scannedBatches, 0)
  // Retries of the last batch of each producer are still duplicates, at their original offsets.
  for (const [pid, epoch, batches] of expected as [
    number,
    number,
    { firstSeq: number; lastSeq: number; firstOffset: number }[],
  ][]) {
    const last = batches[batches.length - 1]
    const d2 = reopened.producerState.check(
      idempotentBatch(pid, epoch, last.firstSeq, last.lastSeq - last.firstSeq + 1).headers,
    )
    assert.deepEqual(d2.kind === 'duplicate' ? d2.batch.firstOffset : d2, last.firstOffset)
  }
  await reopened.close()
})

test("after a crash the state comes from the last roll snapshot plus the active segment's headers", async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 1024 })
  fill(log)
  const expected = state(log.producerState)
  const crashed = dir()
  copyDir(d, crashed) // the files as a kill -9 leaves them: no clean-shutdown marker, no close snapshot
  await log.close()
  const reopened = openLog(crashed, { segmentBytes: 1024 })
  assert.deepEqual(state(reopened.producerState), expected)
  const active = reopened.segmentBaseOffsets[reopened.segmentCount - 1]
  assert.equal(reopened.producerStateLoad.snapshotOffset, active)
  assert.equal(reopened.producerStateLoad.scannedFromOffset, active)
  assert.ok(reopened.producerStateLoad.scannedBatches > 0)
  await reopened.close()
})

test('without any snapshot the headers of the whole log are scanned, with the same result', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 1024 })
  fill(log)
  const expected = state(log.producerState)
  let batches = 0
  log.forEachBatchHeader(0, () => batches++)
  await log.close()
  for (const o of listSnapshots(d)) fs.unlinkSync(snapshotPath(d, o))
  const reopened = openLog(d, { segmentBytes: 1024 })
  assert.deepEqual(state(reopened.producerState), expected)
  assert.equal(reopened.producerStateLoad.snapshotOffset, -1)
  assert.equal(reopened.producerStateLoad.scannedBatches, batches)
  await reopened.close()
})

test('a torn newest snapshot is discarded and an older one used; one beyond the log end likewise', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 1024 })
  fill(log)
  const expected = state(log.producerState)
  const end = log.logEndOffset
  await log.close()
  const newest = snapshotPath(d, end)
  fs.truncateSync(newest, fs.statSync(newest).size - 3)
  fs.writeFileSync(snapshotPath(d, end + 1000), encodeSnapshot(end + 1000, []))
  const reopened = openLog(d, { segmentBytes: 1024 })
  assert.deepEqual(state(reopened.producerState), expected)
  assert.ok(reopened.producerStateLoad.snapshotOffset < end)
  assert.equal(
    reopened.producerStateLoad.discardedSnapshots.length,
    2,
    reopened.producerStateLoad.discardedSnapshots.join('; '),
  )
  assert.ok(!fs.existsSync(newest) && !fs.existsSync(snapshotPath(d, end + 1000)))
  await reopened.close()
})

test('retention keeps producer state; a restart after it still knows the producers', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 1024, retentionBytes: 2048 })
  fill(log)
  const expected = state(log.producerState)
  assert.ok(log.applyRetention(Date.now()) > 0)
  assert.ok(log.logStartOffset > 0)
  assert.deepEqual(state(log.producerState), expected)
  await log.close()
  const reopened = openLog(d, { segmentBytes: 1024, retentionBytes: 2048 })
  assert.deepEqual(state(reopened.producerState), expected)
  await reopened.close()
})

test('forEachBatchHeader visits batches from the one holding an offset, across segments', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 1024, indexIntervalBytes: 128 })
  fill(log)
  const all: [number, number][] = []
  log.forEachBatchHeader(0, (h) => all.push([h.baseOffset, h.baseOffset + h.lastOffsetDelta]))
  assert.equal(all[0][0], 0)
  assert.equal(all[all.length - 1][1], log.logEndOffset - 1)
  for (let i = 1; i < all.length; i++) assert.equal(all[i][0], all[i - 1][1] + 1)
  const middle = all[Math.floor(all.length / 2)]
  const from: number[] = []
  log.forEachBatchHeader(middle[1], (h) => from.push(h.baseOffset))
  assert.deepEqual(
    from,
    all.slice(Math.floor(all.length / 2)).map((x) => x[0]),
  )
  assert.equal(readAll(log).length, log.logEndOffset)
  await log.close()
})

test('snapshot files do not disturb segment loading', async () => {
  const d = dir()
  const log = openLog(d, { segmentBytes: 1024 })
  fill(log, 20)
  const end = log.logEndOffset
  await log.close()
  assert.ok(fs.readdirSync(d).some((f) => f.endsWith('.snapshot')))
  const reopened = openLog(d, { segmentBytes: 1024 })
  assert.equal(reopened.logEndOffset, end)
  assert.equal(readAll(reopened).length, end)
  await reopened.delete()
  assert.ok(!fs.existsSync(path.join(d)))
})
