// Replacing a small file so that a crash leaves either the old or the new contents, never a torn
// mix, and the new contents survive a power cut once the call returns: write a temporary file,
// fsync it, rename it over the old one, fsync the directory (the rename itself is then durable).
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/** Writes `text` to `path` durably, with `mode` whatever the umask or a leftover temporary file's mode. */
export function writeFileDurably(path: string, text: string, mode = 0o600): void {
  const tmp = path + '.tmp'
  const fd = openSync(tmp, 'w', mode)
  try {
    fchmodSync(fd, mode)
    const bytes = Buffer.from(text, 'utf8')
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  const dir = openSync(dirname(path), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}
