// Crash-safe replacement of segments by a cleaned segment, as Kafka does it
// (LocalLog.replaceSegments, LogLoader.removeTempFilesAndCollectSwapFiles / load, 3.8):
//
//   1. the cleaner writes <base>.log.cleaned, .index.cleaned, .timeindex.cleaned and syncs them;
//   2. it renames them to .swap, the log file last: <base>.log.swap existing is the commit point;
//   3. it deletes the replaced segments' files (all but <base>'s own, which step 4 overwrites);
//   4. it renames the .swap files to their final names, the log file last.
//
// Opening a partition (completeInterruptedSwaps) finishes or undoes whatever a crash left:
//   - *.cleaned files: the swap was never committed; they are deleted and the old segments stand;
//   - <base>.log.swap: committed; every segment file with a base offset in
//     [base, next offset of the swap's last batch) is one it replaced and is deleted (Kafka's
//     min/max swap offset rule), then the swap becomes <base>.log. A replaced segment at or past
//     that next offset may survive: all of its records were removed by the cleaning (had one
//     been kept, the swap would reach past it), so it only holds records that later ones
//     supersede; the log stays ordered and correct, merely less compacted until the next round;
//   - index .swap files left over once the log file was renamed are dropped.
// In the last two cases <base>'s index files are deleted too, and opening the segment rebuilds
// them from the log.

import fs from 'node:fs'
import path from 'node:path'
import {
  BATCH_LENGTH_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MIN_BATCH_LENGTH,
  readInt64,
} from '../../protocol/record-batch.ts'
import { INDEX_SUFFIX, LOG_SUFFIX, readFully, segmentPath, TIME_INDEX_SUFFIX, unlinkIfExists } from './files.ts'

export const CLEANED_SUFFIX = '.cleaned'
export const SWAP_SUFFIX = '.swap'
const SEGMENT_SUFFIXES = [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX]
// The log file goes last when renaming, so a present <base>.log.swap means all three were written.
const INDEXES_THEN_LOG = [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX]

const TEMP_FILE = /^(\d{20})(\.log|\.index|\.timeindex)(\.cleaned|\.swap)$/
const SEGMENT_FILE = /^(\d{20})(\.log|\.index|\.timeindex)$/

/** Step 2: renames <base>'s .cleaned files to .swap, the log file last (the commit point). */
export function commitSwap(dir: string, baseOffset: number): void {
  for (const suffix of INDEXES_THEN_LOG) {
    const file = segmentPath(dir, baseOffset, suffix)
    fs.renameSync(file + CLEANED_SUFFIX, file + SWAP_SUFFIX)
  }
}

/** Step 3: deletes the files of replaced segments other than the one at baseOffset. */
export function deleteReplacedFiles(dir: string, baseOffset: number, replacedBaseOffsets: readonly number[]): void {
  for (const b of replacedBaseOffsets) {
    if (b === baseOffset) continue
    for (const suffix of SEGMENT_SUFFIXES) unlinkIfExists(segmentPath(dir, b, suffix))
  }
}

/** Step 4: renames <base>'s .swap files to their final names, the log file last. */
export function finishSwap(dir: string, baseOffset: number): void {
  for (const suffix of INDEXES_THEN_LOG) {
    const file = segmentPath(dir, baseOffset, suffix)
    fs.renameSync(file + SWAP_SUFFIX, file)
  }
}

/** Deletes <base>'s .cleaned files (a cleaning abandoned before its commit). */
export function discardCleaned(dir: string, baseOffset: number): void {
  for (const suffix of SEGMENT_SUFFIXES) unlinkIfExists(segmentPath(dir, baseOffset, suffix) + CLEANED_SUFFIX)
}

/**
 * The offset after the last complete batch of a log file (baseOffset when it has none). Only
 * lengths are checked: a .swap file was synced before it was committed.
 */
function nextOffsetOfFile(file: string, baseOffset: number): number {
  const fd = fs.openSync(file, 'r')
  try {
    const size = fs.fstatSync(fd).size
    const header = Buffer.allocUnsafe(LOG_OVERHEAD + 15)
    let pos = 0
    let next = baseOffset
    while (size - pos >= LOG_OVERHEAD + MIN_BATCH_LENGTH) {
      if (readFully(fd, header, 0, header.length, pos) < header.length) break
      const length = header.readInt32BE(BATCH_LENGTH_OFFSET)
      if (length < MIN_BATCH_LENGTH || length > size - pos - LOG_OVERHEAD) break
      next = readInt64(header, 0) + header.readInt32BE(LAST_OFFSET_DELTA_OFFSET) + 1
      pos += LOG_OVERHEAD + length
    }
    return next
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * On open: finishes committed swaps and removes uncommitted cleaning output in dir (see the top
 * of this file). Returns whether anything changed (the caller then syncs the directory).
 */
export function completeInterruptedSwaps(dir: string): boolean {
  const names = fs.readdirSync(dir)
  const temps = names.map((n) => ({ name: n, m: TEMP_FILE.exec(n) })).filter((t) => t.m !== null)
  if (temps.length === 0) return false
  // Uncommitted: drop.
  for (const t of temps) if (t.m![3] === CLEANED_SUFFIX) unlinkIfExists(path.join(dir, t.name))
  const swaps = temps.filter((t) => t.m![3] === SWAP_SUFFIX)
  const rebuild = new Set<number>(swaps.map((t) => Number(t.m![1])))
  const committed = swaps
    .filter((t) => t.m![2] === LOG_SUFFIX)
    .map((t) => Number(t.m![1]))
    .sort((a, b) => a - b)
  for (const base of committed) {
    const swapFile = segmentPath(dir, base, LOG_SUFFIX) + SWAP_SUFFIX
    const next = nextOffsetOfFile(swapFile, base)
    for (const name of fs.readdirSync(dir)) {
      const m = SEGMENT_FILE.exec(name)
      if (m === null) continue
      const b = Number(m[1])
      if (b === base || (b > base && b < next)) unlinkIfExists(path.join(dir, name))
    }
    fs.renameSync(swapFile, segmentPath(dir, base, LOG_SUFFIX))
  }
  // Index files of every segment a swap touched are rebuilt from its log on open.
  for (const base of rebuild) {
    for (const suffix of [INDEX_SUFFIX, TIME_INDEX_SUFFIX]) {
      const file = segmentPath(dir, base, suffix)
      unlinkIfExists(file + SWAP_SUFFIX)
      unlinkIfExists(file)
    }
  }
  return true
}
