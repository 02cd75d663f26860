// The broker's write-ahead journal (src/broker/log/journal.ts) with the Flusher and partition
// logs: a round syncs one file however many partitions it covers; a machine crash that takes the
// segments' unsynced tails loses nothing a round acknowledged (the logs replay the journal on
// open, producer state included); a torn journal tail, another topic's entries and a checkpoint
// are handled as documented.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, test } from 'node:test'
import { type FdatasyncFn, Flusher } from '../../../src/broker/log/flusher.ts'
import { Journal, type JournalKey, type JournalOptions } from '../../../src/broker/log/journal.ts'
import { type LogConfig, PartitionLog } from '../../../src/broker/log/partition-log.ts'
import { encodeRecordBatch, readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { appendValues, config, readAll, removeDir, tempDir } from './helpers.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d)
})

const TOPIC_A = Buffer.alloc(16, 0xa)
const TOPIC_B = Buffer.alloc(16, 0xb)

interface Broker {
  journal: Journal
  flusher: Flusher
  logs: PartitionLog[]
  synced: number[]
}

/** What a broker holds: a journal, a flusher over it, and `partitions` logs of one topic. */
function open(
  root: string,
  partitions: number,
  topicId = TOPIC_A,
  options: JournalOptions = {},
  logConfig: Partial<LogConfig> = {},
): Broker {
  const journal = Journal.open(path.join(root, 'journal'), options)
  const synced: number[] = []
  const fdatasync: FdatasyncFn = (fd, cb) => {
    synced.push(fd)
    fs.fdatasync(fd, cb)
  }
  const flusher = new Flusher({ journal, fdatasync })
  const logs = Array.from({ length: partitions }, (_, p) => {
    const key: JournalKey = { topicId, partition: p }
    return PartitionLog.open(path.join(root, 'logs', String(p)), config(logConfig), flusher, Date.now(), key)
  })
  return { journal, flusher, logs, synced }
}

function root(): string {
  const d = tempDir('cortado-journal-')
  dirs.push(d)
  return d
}

/** The power cut: each segment file loses what it received after `sizes` (its size at its last sync). */
function losePageCache(r: string, sizes: Map<string, number>): number {
  let lost = 0
  for (const [file, size] of sizes) {
    lost += fs.statSync(file).size - size
    fs.truncateSync(file, size)
  }
  return lost
}

function segmentSizes(r: string): Map<string, number> {
  const sizes = new Map<string, number>()
  for (const p of fs.readdirSync(path.join(r, 'logs')))
    for (const name of fs.readdirSync(path.join(r, 'logs', p)))
      if (name.endsWith('.log'))
        sizes.set(path.join(r, 'logs', p, name), fs.statSync(path.join(r, 'logs', p, name)).size)
  return sizes
}

test('a round syncs the journal alone, however many partitions it covers', async () => {
  const b = open(root(), 6)
  await b.flusher.flush() // the startup round: the segments found on open and the journal's directory
  b.synced.length = 0
  for (const log of b.logs) appendValues(log, ['a', 'b'])
  await b.flusher.flush()
  assert.deepEqual(b.synced, [b.journal.currentFd])
  for (const log of b.logs) appendValues(log, ['c'])
  await b.flusher.flush()
  assert.deepEqual(b.synced, [b.journal.currentFd, b.journal.currentFd])
})

test('a machine crash after an acknowledged round loses nothing: the logs replay the journal', async () => {
  const r = root()
  const b = open(r, 3)
  await b.flusher.flush()
  const durable = segmentSizes(r) // synced by that round
  const expected: [number, string][][] = [[], [], []]
  for (let i = 0; i < 40; i++) {
    const p = i % 3
    const { baseOffset } = appendValues(b.logs[p], [`v${i}`, `w${i}`])
    expected[p].push([baseOffset, `v${i}`], [baseOffset + 1, `w${i}`])
  }
  // An idempotent producer's batch: its state must come back with the replay.
  const idem = encodeRecordBatch({
    producerId: 7,
    producerEpoch: 0,
    baseSequence: 0,
    records: [{ key: null, value: Buffer.from('idem'), timestamp: 1000 }],
  })
  const h = readBatchHeader(idem, 0)
  const { baseOffset } = b.logs[0].append(idem, [h], 1000)
  b.logs[0].producerState.recordAppend([h], baseOffset, 1000)
  expected[0].push([baseOffset, 'idem'])
  await b.flusher.flush() // acknowledged: in the journal, not yet in the segments' synced part
  assert.ok(losePageCache(r, durable) > 0)

  const again = open(r, 3)
  for (const [p, log] of again.logs.entries()) {
    assert.deepEqual(readAll(log), expected[p], `partition ${p}`)
    assert.ok(log.journalReplay.batches > 0)
    assert.equal(log.journalReplay.gapAt, null)
  }
  assert.deepEqual(
    [...again.logs[0].producerState.entries()].map((e) => e.producerId),
    [7],
    'the replayed batch rebuilt its producer state',
  )
  // The replay is synced by the first round; the old journal file then goes.
  await again.flusher.flush()
  again.journal.dropRecovered()
  assert.equal(fs.readdirSync(path.join(r, 'journal')).length, 1)
})

test('a torn entry at the journal end (an unacknowledged round) ends the replay there', async () => {
  const r = root()
  const b = open(r, 2)
  await b.flusher.flush()
  const durable = segmentSizes(r)
  appendValues(b.logs[0], ['kept-1', 'kept-2'])
  appendValues(b.logs[1], ['other'])
  await b.flusher.flush()
  const file = path.join(r, 'journal', fs.readdirSync(path.join(r, 'journal'))[0])
  fs.appendFileSync(file, Buffer.from([0, 0, 1, 0, 9, 9, 9])) // a header cut short
  losePageCache(r, durable)
  const again = open(r, 2)
  assert.deepEqual(again.journal.recovery, { files: 1, entries: 2, tornFiles: 1 })
  assert.deepEqual(readAll(again.logs[0]), [
    [0, 'kept-1'],
    [1, 'kept-2'],
  ])
})

test('entries of another topic (a deleted one, whose name may be reused) are never replayed', async () => {
  const r = root()
  const b = open(r, 2, TOPIC_A)
  await b.flusher.flush()
  const durable = segmentSizes(r)
  appendValues(b.logs[0], ['of-a'])
  appendValues(b.logs[1], ['of-a too'])
  await b.flusher.flush()
  assert.equal(b.journal.recoveredFor({ topicId: TOPIC_A, partition: 0 }).length, 0)
  losePageCache(r, durable)
  const again = open(r, 2, TOPIC_B)
  assert.deepEqual(readAll(again.logs[0]), [])
  assert.equal(again.logs[0].journalReplay.batches, 0)
})

test('a checkpoint syncs every segment written since the last one, then moves to a new file', async () => {
  const r = root()
  const b = open(r, 4, TOPIC_A, { checkpointBytes: 1 })
  await b.flusher.flush()
  const journalDir = path.join(r, 'journal')
  const firstFile = fs.readdirSync(journalDir)[0]
  b.synced.length = 0
  const journalFd = b.journal.currentFd
  for (const log of b.logs) appendValues(log, ['x'])
  await b.flusher.flush()
  assert.equal(b.flusher.checkpoints, 1)
  assert.equal(b.synced.length, 1 + 4, 'the journal and the four segments')
  assert.ok(b.synced.includes(journalFd))
  const files = fs.readdirSync(journalDir)
  assert.equal(files.length, 1)
  assert.notEqual(files[0], firstFile, 'the old file is gone, a new one took its place')
  // The next round syncs the new file with the directory that now names it.
  b.synced.length = 0
  const newFd = b.journal.currentFd
  appendValues(b.logs[0], ['y'])
  appendValues(b.logs[1], ['z'])
  await b.flusher.flush()
  assert.ok(b.synced.includes(newFd) && b.synced.includes(b.journal.dirFd))
})

test('with many segments, a roll syncs the old one: a crash takes only the active segment, which the journal restores', async () => {
  const r = root()
  const journal = Journal.open(path.join(r, 'journal'))
  const flusher = new Flusher({ journal })
  const key = { topicId: TOPIC_A, partition: 0 }
  const dir = path.join(r, 'logs', '0')
  const log = PartitionLog.open(dir, config({ segmentBytes: 300 }), flusher, Date.now(), key)
  await flusher.flush()
  const expected: [number, string][] = []
  for (let i = 0; i < 30; i++) {
    const { baseOffset } = appendValues(log, [`value-${i}-${'p'.repeat(60)}`])
    expected.push([baseOffset, `value-${i}-${'p'.repeat(60)}`])
  }
  await flusher.flush()
  assert.ok(log.segmentCount > 5)
  const active = path.join(dir, String(log.segmentBaseOffsets.at(-1)).padStart(20, '0') + '.log')
  assert.ok(fs.statSync(active).size > 0)
  fs.truncateSync(active, 0)
  const again = PartitionLog.open(
    dir,
    config({ segmentBytes: 300 }),
    new Flusher({ journal: Journal.open(path.join(r, 'journal')) }),
    Date.now(),
    key,
  )
  assert.deepEqual(readAll(again), expected)
  assert.ok(again.journalReplay.batches >= 1)
})

test("the round's only segment, and a segment with 32 KiB or more in the round, are synced themselves, not journaled", async () => {
  const b = open(root(), 3)
  await b.flusher.flush()
  b.synced.length = 0
  appendValues(b.logs[0], ['alone'])
  await b.flusher.flush()
  assert.equal(b.synced.length, 1)
  assert.notEqual(b.synced[0], b.journal.currentFd, 'one segment: synced itself')
  const alone = b.synced[0]
  b.synced.length = 0
  appendValues(b.logs[0], ['big'.padEnd(40_000, '.')])
  appendValues(b.logs[1], ['small'])
  appendValues(b.logs[2], ['small too'])
  await b.flusher.flush()
  assert.equal(b.synced.length, 2)
  assert.ok(b.synced.includes(alone), 'the segment with 40 KB in the round')
  assert.ok(b.synced.includes(b.journal.currentFd), 'the journal, for the two small ones')
})

test('a segment deleted while its bytes wait for a round is journaled, never synced as a closed fd', async () => {
  const b = open(root(), 2, TOPIC_A, {}, { segmentBytes: 300, retentionBytes: 0 })
  await b.flusher.flush()
  appendValues(b.logs[0], ['big'.padEnd(40_000, '.')]) // 32 KiB or more: would be synced itself
  appendValues(b.logs[0], ['rolls']) // rolls: the big one's segment is no longer active
  assert.ok(b.logs[0].applyRetention(Date.now()) >= 1)
  await new Promise((resolve) => setImmediate(resolve)) // its fd is closed now
  appendValues(b.logs[1], ['other'])
  await b.flusher.flush()
  assert.equal(b.flusher.errors, 0)
})

test('journal batches that do not continue the recovered log are not replayed, and the gap is reported', () => {
  const r = root()
  const writer = Journal.open(path.join(r, 'journal'))
  const later = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('at 5'), timestamp: 1000 }] })
  later.writeBigInt64BE(5n, 0) // offsets 0-4 are nowhere
  writer.add({ topicId: TOPIC_A, partition: 0 }, later, 99)
  writer.add({ topicId: TOPIC_A, partition: 1 }, later, 98)
  assert.equal(writer.writePending(-1).wrote, true)
  const again = open(r, 1)
  assert.deepEqual(readAll(again.logs[0]), [])
  assert.deepEqual(again.logs[0].journalReplay, { batches: 0, gapAt: 0 })
})
