// Small synchronous file helpers shared by the segment and index code.

import fs from 'node:fs'
import path from 'node:path'

export const LOG_SUFFIX = '.log'
export const INDEX_SUFFIX = '.index'
export const TIME_INDEX_SUFFIX = '.timeindex'

/** Kafka names segment files after their base offset, zero-padded to 20 digits. */
export function segmentPath(dir: string, baseOffset: number, suffix: string): string {
  return path.join(dir, String(baseOffset).padStart(20, '0') + suffix)
}

const SEGMENT_FILE = /^(\d{20})(\.log|\.index|\.timeindex)$/

export function parseSegmentFileName(name: string): { baseOffset: number; suffix: string } | null {
  const m = SEGMENT_FILE.exec(name)
  if (m === null) return null
  const baseOffset = Number(m[1])
  if (!Number.isSafeInteger(baseOffset)) return null
  return { baseOffset, suffix: m[2] }
}

/** Reads up to len bytes at position; returns how many were read (fewer only at end of file). */
export function readFully(fd: number, buf: Uint8Array, offset: number, len: number, position: number): number {
  let done = 0
  while (done < len) {
    const n = fs.readSync(fd, buf, offset + done, len - done, position + done)
    if (n === 0) break
    done += n
  }
  return done
}

/** Positional write of exactly len bytes (writeSync may write less than asked). */
export function writeFully(fd: number, buf: Uint8Array, offset: number, len: number, position: number): void {
  let done = 0
  while (done < len) {
    done += fs.writeSync(fd, buf, offset + done, len - done, position + done)
  }
}

export function unlinkIfExists(file: string): void {
  try {
    fs.unlinkSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd)
  } catch {
    // Already closed or never valid: nothing left to release.
  }
}
