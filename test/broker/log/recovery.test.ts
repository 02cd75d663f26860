import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { CLEAN_SHUTDOWN_FILE } from '../../../src/broker/log/partition-log.ts'
import { appendValues, copyDir, openLog, readAll, removeDir, tempDir } from './helpers.ts'

const cfg = { segmentBytes: 1500, indexIntervalBytes: 150 }
let golden = ''
let expected: [number, string][] = []
const segFile = (dir: string, base: number, suffix = '.log'): string =>
  path.join(dir, `${String(base).padStart(20, '0')}${suffix}`)

interface BatchPos {
  base: number
  count: number
  start: number
  end: number
}

/** Batches of a segment file with their positions. */
function batchesOf(file: string): BatchPos[] {
  const data = fs.readFileSync(file)
  const out: BatchPos[] = []
  let pos = 0
  while (pos < data.length) {
    const h = readBatchHeader(data, pos)
    out.push({ base: h.baseOffset, count: h.lastOffsetDelta + 1, start: pos, end: pos + h.batchLength + 12 })
    pos += h.batchLength + 12
  }
  return out
}

before(async () => {
  golden = tempDir('cortado-golden-')
  const log = openLog(golden, cfg)
  for (let i = 0; i < 40; i++)
    appendValues(
      log,
      Array.from({ length: 1 + (i % 3) }, (_, j) => `g${i}-${j}`),
    )
  expected = readAll(log)
  assert.ok(log.segmentCount >= 3)
  await log.close()
})
after(() => removeDir(golden))

function lastSegment(dir: string): number {
  return Math.max(
    ...fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => Number(f.slice(0, 20))),
  )
}

/** A copy of the golden log as a crash would leave it: no clean-shutdown marker. */
function crashedCopy(): string {
  const d = tempDir()
  copyDir(golden, d)
  fs.unlinkSync(path.join(d, CLEAN_SHUTDOWN_FILE))
  return d
}

test('truncating the last segment at every byte of its last batch keeps exactly the complete batches', async () => {
  const base = lastSegment(golden)
  const batches = batchesOf(segFile(golden, base))
  assert.ok(batches.length >= 2)
  const last = batches[batches.length - 1]
  for (let cut = last.start; cut <= last.end; cut++) {
    const d = crashedCopy()
    try {
      fs.truncateSync(segFile(d, base), cut)
      const complete = cut === last.end
      const endOffset = complete ? last.base + last.count : last.base
      const log = openLog(d, cfg)
      assert.equal(log.logEndOffset, endOffset, `cut at ${cut}`)
      assert.equal(log.recoveredTruncatedBytes, complete ? 0 : cut - last.start)
      assert.equal(fs.statSync(segFile(d, base)).size, complete ? last.end : last.start)
      const survivors = expected.filter(([o]) => o < endOffset)
      assert.deepEqual(readAll(log), survivors)
      // Offsets continue right after the surviving batches.
      assert.equal(appendValues(log, ['after-crash']).baseOffset, endOffset)
      await log.close()
      const reopened = openLog(d, cfg)
      assert.deepEqual(readAll(reopened), [...survivors, [endOffset, 'after-crash']])
      await reopened.close()
    } finally {
      removeDir(d)
    }
  }
})

test('truncation anywhere in the last segment, and of the whole segment', async () => {
  const base = lastSegment(golden)
  const size = fs.statSync(segFile(golden, base)).size
  for (const cut of [0, 1, 12, 60, 61, 62, Math.floor(size / 2), size - 1]) {
    const d = crashedCopy()
    try {
      fs.truncateSync(segFile(d, base), cut)
      const kept = batchesOf(segFile(golden, base)).filter((b) => b.end <= cut)
      const endOffset = kept.length > 0 ? kept[kept.length - 1].base + kept[kept.length - 1].count : base
      const log = openLog(d, cfg)
      assert.equal(log.logEndOffset, endOffset, `cut at ${cut}`)
      assert.deepEqual(
        readAll(log),
        expected.filter(([o]) => o < endOffset),
      )
      assert.equal(appendValues(log, ['x']).baseOffset, endOffset)
      await log.close()
    } finally {
      removeDir(d)
    }
  }
})

test('a corrupt byte in the middle of the last segment truncates the log there', async () => {
  const base = lastSegment(golden)
  const batches = batchesOf(segFile(golden, base))
  const victim = batches[Math.floor(batches.length / 2)]
  // One byte inside the CRC-covered part, one in the base offset (checked by offset continuity).
  for (const at of [victim.start + 40, victim.end - 1, victim.start + 3, victim.start + 16]) {
    const d = crashedCopy()
    try {
      const fd = fs.openSync(segFile(d, base), 'r+')
      const b = Buffer.alloc(1)
      fs.readSync(fd, b, 0, 1, at)
      b[0] ^= 0x5a
      fs.writeSync(fd, b, 0, 1, at)
      fs.closeSync(fd)
      const log = openLog(d, cfg)
      assert.equal(log.logEndOffset, victim.base, `corrupt byte at ${at}`)
      assert.equal(fs.statSync(segFile(d, base)).size, victim.start)
      assert.deepEqual(
        readAll(log),
        expected.filter(([o]) => o < victim.base),
      )
      assert.equal(appendValues(log, ['y']).baseOffset, victim.base)
      await log.close()
    } finally {
      removeDir(d)
    }
  }
})

test('a clean marker with a torn tail still leads to recovery of that segment', async () => {
  const d = tempDir()
  try {
    copyDir(golden, d)
    const base = lastSegment(d)
    fs.appendFileSync(segFile(d, base), Buffer.from('garbage that is not a batch'))
    const log = openLog(d, cfg)
    assert.equal(log.logEndOffset, expected[expected.length - 1][0] + 1)
    assert.deepEqual(readAll(log), expected)
    assert.ok(log.recoveredTruncatedBytes > 0)
    await log.close()
  } finally {
    removeDir(d)
  }
})

test('corruption in an older segment (indexes lost) truncates it and drops the later segments', async () => {
  const d = crashedCopy()
  try {
    const bases = fs
      .readdirSync(d)
      .filter((f) => f.endsWith('.log'))
      .map((f) => Number(f.slice(0, 20)))
      .sort((a, b) => a - b)
    const victimSegment = bases[1]
    const victim = batchesOf(segFile(d, victimSegment))[2]
    const data = fs.readFileSync(segFile(d, victimSegment))
    data[victim.start + 50] ^= 0xff
    fs.writeFileSync(segFile(d, victimSegment), data)
    fs.unlinkSync(segFile(d, victimSegment, '.index'))
    const log = openLog(d, cfg)
    assert.equal(log.logEndOffset, victim.base)
    assert.deepEqual(log.segmentBaseOffsets, [bases[0], bases[1]])
    for (const later of bases.slice(2)) assert.ok(!fs.existsSync(segFile(d, later)))
    assert.deepEqual(
      readAll(log),
      expected.filter(([o]) => o < victim.base),
    )
    await log.close()
  } finally {
    removeDir(d)
  }
})

test('garbage indexes of the last segment are rebuilt on unclean open; orphan index files are removed', async () => {
  const d = crashedCopy()
  try {
    const base = lastSegment(d)
    fs.writeFileSync(segFile(d, base, '.index'), Buffer.alloc(64, 0x7f))
    fs.writeFileSync(segFile(d, base, '.timeindex'), Buffer.alloc(7, 1))
    fs.writeFileSync(segFile(d, 999999, '.index'), Buffer.alloc(8))
    const log = openLog(d, cfg)
    assert.deepEqual(readAll(log), expected)
    assert.deepEqual(log.offsetForTimestamp(0), { offset: 0, timestamp: 1_000_000 })
    await log.close()
    assert.ok(!fs.existsSync(segFile(d, 999999, '.index')))
    assert.deepEqual(fs.readFileSync(segFile(d, base, '.index')), fs.readFileSync(segFile(golden, base, '.index')))
    assert.equal(fs.statSync(segFile(d, base, '.timeindex')).size % 12, 0)
  } finally {
    removeDir(d)
  }
})

test('a segment overlapping the previous one is dropped', async () => {
  const d = crashedCopy()
  try {
    // A stray copy of the first segment under a base offset inside its range.
    copyDir(segFile(d, 0), segFile(d, 3))
    const log = openLog(d, cfg)
    assert.ok(!log.segmentBaseOffsets.includes(3))
    assert.deepEqual(readAll(log), expected)
    await log.close()
    assert.ok(!fs.existsSync(segFile(d, 3)))
  } finally {
    removeDir(d)
  }
})
