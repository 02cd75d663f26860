import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { LogStorageError } from '../../../src/broker/log/errors.ts'
import { type FdatasyncFn, Flusher, INLINE_SYNC_MAX_MS } from '../../../src/broker/log/flusher.ts'
import { appendValues, openLog, readAll, removeDir, tempDir } from './helpers.ts'

const dirs: string[] = []
const fds: number[] = []
afterEach(() => {
  for (const fd of fds.splice(0)) fs.closeSync(fd)
  for (const d of dirs.splice(0)) removeDir(d)
})

function tempFd(): number {
  const d = tempDir('cortado-flusher-')
  dirs.push(d)
  const fd = fs.openSync(path.join(d, `f${fds.length}`), 'w+')
  fds.push(fd)
  return fd
}

/** Polls until cond() holds (rounds start on setImmediate, whose timing vs. timers varies under load). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(1)
}

/** An fdatasync that records calls and completes after `delayMs`, checking the fd is still open. */
function slowSync(delayMs: number, calls: number[], closedErrors: string[]): FdatasyncFn {
  return (fd, cb) => {
    calls.push(fd)
    try {
      fs.fstatSync(fd)
    } catch (e) {
      closedErrors.push(`fdatasync on closed fd ${fd}: ${String(e)}`)
    }
    setTimeout(() => fs.fdatasync(fd, cb), delayMs)
  }
}

test('concurrent flush() calls share fsync rounds', async () => {
  const calls: number[] = []
  const errors: string[] = []
  const flusher = new Flusher({ fdatasync: slowSync(150, calls, errors) })
  const a = tempFd()
  const b = tempFd()
  flusher.markDirty(a)
  flusher.markDirty(b)
  // 100 callers in the same tick: one round syncs both fds once.
  const first = Array.from({ length: 100 }, () => flusher.flush())
  await until(() => calls.length > 0) // the round is now in flight
  assert.equal(flusher.rounds, 0)
  assert.deepEqual(calls.sort(), [a, b].sort())
  // Callers during a running round join the next one, even with nothing newly dirty.
  flusher.markDirty(a)
  let secondDone = false
  const second = Array.from({ length: 50 }, () => flusher.flush())
  void Promise.all(second).then(() => (secondDone = true))
  await Promise.all(first)
  assert.equal(flusher.rounds, 1)
  assert.equal(secondDone, false, 'callers that arrived mid-round must wait for the next round')
  await Promise.all(second)
  assert.equal(flusher.rounds, 2)
  assert.equal(flusher.fsyncs, 3)
  assert.deepEqual(calls.slice(2), [a])
  assert.deepEqual(errors, [])
  assert.ok(flusher.totalRoundMs >= 290 && flusher.maxRoundMs >= 145 && flusher.lastRoundMs > 0)
  // Nothing dirty: a flush still completes (a round with no fds).
  await flusher.flush()
  assert.equal(flusher.rounds, 3)
  assert.equal(flusher.fsyncs, 3)
})

test('release() waits for an in-flight fdatasync and keeps the fd out of later rounds', async () => {
  const calls: number[] = []
  const errors: string[] = []
  const flusher = new Flusher({ fdatasync: slowSync(150, calls, errors) })
  const fd = tempFd()
  flusher.markDirty(fd)
  const flushed = flusher.flush()
  await until(() => calls.length > 0)
  assert.deepEqual(calls, [fd])
  let released = false
  const releasing = flusher.release(fd).then(() => (released = true))
  await sleep(30)
  assert.equal(released, false, 'release must wait for the fsync in flight')
  await releasing
  await flushed
  // Marked dirty but released before the next round: never synced again.
  flusher.markDirty(fd)
  await flusher.release(fd)
  await flusher.flush()
  assert.deepEqual(calls, [fd])
  assert.deepEqual(errors, [])
})

test('an fdatasync failure rejects that round with LogStorageError; later rounds recover', async () => {
  let fail = true
  const flusher = new Flusher({
    fdatasync: (fd, cb) =>
      setImmediate(() => cb(fail ? Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }) : null)),
  })
  const fd = tempFd()
  flusher.markDirty(fd)
  await assert.rejects(flusher.flush(), (e) => e instanceof LogStorageError && e.code === 56)
  assert.equal(flusher.errors, 1)
  fail = false
  flusher.markDirty(fd)
  await flusher.flush()
  assert.equal(flusher.rounds, 2)
})

test('PartitionLog.flush() syncs through the shared flusher; partitions share rounds', async () => {
  const calls: number[] = []
  const flusher = new Flusher({ fdatasync: (fd, cb) => (calls.push(fd), fs.fdatasync(fd, cb)) })
  const d1 = tempDir()
  const d2 = tempDir()
  dirs.push(d1, d2)
  const l1 = openLog(d1, {}, flusher)
  const l2 = openLog(d2, {}, flusher)
  await flusher.flush()
  const roundsBefore = flusher.rounds
  calls.length = 0
  appendValues(l1, ['a'])
  appendValues(l2, ['b'])
  await Promise.all([l1.flush(), l2.flush(), l1.flush()])
  assert.equal(flusher.rounds, roundsBefore + 1)
  assert.equal(calls.length, 2) // the two active segment files, in one round
  await l1.close()
  await l2.close()
})

test('close() while a flush is in flight waits for it and never syncs a closed fd', async () => {
  const calls: number[] = []
  const errors: string[] = []
  const flusher = new Flusher({ fdatasync: slowSync(50, calls, errors) })
  const d = tempDir()
  dirs.push(d)
  const log = openLog(d, { segmentBytes: 300 }, flusher)
  for (let i = 0; i < 10; i++) appendValues(log, [`v${i}`.padEnd(50, '.')]) // rolls: old segments dirty too
  const flushing = log.flush()
  await until(() => calls.length > 0) // a round is in flight
  const closing = log.close()
  const lateFlush = log.flush() // resolves once close has synced everything
  await Promise.all([flushing, closing, lateFlush])
  // Rounds after the close must not touch this log's (now closed) fds.
  const after = calls.length
  await flusher.flush()
  assert.equal(calls.length, after)
  assert.deepEqual(errors, [])
  const again = openLog(d, {}, flusher)
  assert.equal(again.recoveredTruncatedBytes, 0)
  assert.equal(readAll(again).length, 10)
  await again.close()
})

test('retention deletes segments whose fsync is still in flight without syncing closed fds', async () => {
  const calls: number[] = []
  const errors: string[] = []
  const flusher = new Flusher({ fdatasync: slowSync(30, calls, errors) })
  const d = tempDir()
  dirs.push(d)
  const log = openLog(d, { segmentBytes: 300, retentionBytes: 0 }, flusher)
  for (let i = 0; i < 10; i++) appendValues(log, [`v${i}`.padEnd(50, '.')])
  const flushing = log.flush()
  await until(() => calls.length > 0)
  assert.ok(log.applyRetention(Date.now()) > 0)
  await flushing
  await log.flush()
  await log.close()
  assert.deepEqual(errors, [])
})

test('a round of one file on a fast disk is synced on the event loop; after a slow round the next goes to the pool', async () => {
  const pool: number[] = []
  const inline: number[] = []
  // The rounds are timed by a clock that moves only inside the syncs, so a loaded machine cannot
  // make a round look slow (or fast) and change which path the next one takes.
  let clockMs = 0
  let inlineMs = 0
  const flusher = new Flusher({
    now: () => clockMs,
    fdatasync: (fd, cb) => {
      pool.push(fd)
      fs.fdatasync(fd, cb)
    },
    fdatasyncSync: (fd) => {
      inline.push(fd)
      clockMs += inlineMs // a disk this slow
      fs.fdatasyncSync(fd)
    },
  })
  const a = tempFd()
  const b = tempFd()
  flusher.markDirty(a)
  await flusher.flush()
  assert.deepEqual([inline, pool], [[a], []], 'one file, fast disk: inline')
  flusher.markDirty(a)
  flusher.markDirty(b)
  await flusher.flush()
  assert.deepEqual([inline, pool], [[a], [a, b]], 'two files: in parallel on the pool')
  inlineMs = INLINE_SYNC_MAX_MS + 4
  flusher.markDirty(a)
  await flusher.flush()
  assert.equal(flusher.lastRoundMs, INLINE_SYNC_MAX_MS + 4)
  flusher.markDirty(b)
  await flusher.flush()
  assert.deepEqual(
    [inline, pool],
    [
      [a, a],
      [a, b, b],
    ],
    'after a slow round: the pool',
  )
  assert.equal(flusher.lastRoundMs, 0, 'the pool round, timed by the same clock')
  flusher.markDirty(a)
  await flusher.flush()
  assert.deepEqual(inline, [a, a, a], 'after a fast round: inline again')
})
