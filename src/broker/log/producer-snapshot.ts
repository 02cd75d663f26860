// Producer state snapshots of a partition, Kafka-style: `<20-digit offset>.snapshot` in the
// partition directory holds the idempotent producers' state as of that offset (every batch below
// it included). One is written at each segment roll and at clean shutdown; opening the log loads
// the newest readable one and replays batch headers from its offset to the log end, so a restart
// reads a small file plus, after a crash, the headers of the active segment.
//
// A snapshot is self-validating (CRC) and written without waiting for an fsync at roll: one torn
// by a crash is detected, deleted, and an older one (or a scan of the whole log) is used instead.
// One beyond the recovered log end (its data was cut off by recovery) is discarded too.
import fs from 'node:fs'
import path from 'node:path'
import { unlinkIfExists, writeFully } from './files.ts'
import { decodeSnapshot, encodeSnapshot, type ProducerEntry, SnapshotError } from './producer-state.ts'

export const SNAPSHOT_SUFFIX = '.snapshot'
/** Older snapshots kept besides the newest, in case the newest is torn by a crash. */
const KEEP = 2
const SNAPSHOT_FILE = /^(\d{20})\.snapshot$/

export function snapshotPath(dir: string, offset: number): string {
  return path.join(dir, String(offset).padStart(20, '0') + SNAPSHOT_SUFFIX)
}

/** Offsets of the snapshots in dir, newest first. */
export function listSnapshots(dir: string): number[] {
  const out: number[] = []
  for (const name of fs.readdirSync(dir)) {
    const m = SNAPSHOT_FILE.exec(name)
    if (m !== null) out.push(Number(m[1]))
  }
  return out.sort((a, b) => b - a)
}

/**
 * The newest valid snapshot at or below maxOffset. Snapshots above maxOffset and unreadable ones
 * are deleted on the way (the reasons are returned for logging).
 */
export function loadLatestSnapshot(
  dir: string,
  maxOffset: number,
): { snapshot: { offset: number; entries: ProducerEntry[] } | null; discarded: string[] } {
  const discarded: string[] = []
  for (const offset of listSnapshots(dir)) {
    const file = snapshotPath(dir, offset)
    if (offset > maxOffset) {
      discarded.push(`${path.basename(file)}: beyond the log end ${maxOffset}`)
      unlinkIfExists(file)
      continue
    }
    try {
      const snap = decodeSnapshot(fs.readFileSync(file))
      if (snap.offset !== offset) throw new SnapshotError(`holds offset ${snap.offset}`)
      return { snapshot: { offset, entries: snap.entries }, discarded }
    } catch (err) {
      if (!(err instanceof SnapshotError)) throw err
      discarded.push(`${path.basename(file)}: ${err.message}`)
      unlinkIfExists(file)
    }
  }
  return { snapshot: null, discarded }
}

/**
 * Writes the snapshot for `offset` (replacing one of the same offset) and deletes all but the
 * newest KEEP + 1. Returns the open fd of the new file so that the caller can have it synced (by
 * the flusher) and must close it; the directory entry is made durable by the caller's next
 * directory sync.
 */
export function writeSnapshot(dir: string, offset: number, entries: Iterable<ProducerEntry>): number {
  const buf = encodeSnapshot(offset, entries)
  const fd = fs.openSync(snapshotPath(dir, offset), 'w')
  try {
    writeFully(fd, buf, 0, buf.length, 0)
  } catch (err) {
    fs.closeSync(fd)
    throw err
  }
  for (const old of listSnapshots(dir).slice(KEEP + 1)) unlinkIfExists(snapshotPath(dir, old))
  return fd
}
