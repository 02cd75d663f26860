// One process per data directory (a broker's, a storage node's): a `.lock` file holding the
// owner's pid. A lock left by a process that died (kill -9) does not block a restart.
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Another process holds the data directory. */
export class DataDirLockedError extends Error {
  readonly code = 'DATA_DIR_LOCKED'
}

/** Takes the lock of `dir` (which must exist); returns the function that releases it. */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, '.lock')
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, 'utf8'))
    if (pid !== process.pid && processAlive(pid))
      throw new DataDirLockedError(`data directory ${dir} is in use by process ${pid}`)
  }
  writeFileSync(path, String(process.pid))
  return () => {
    try {
      unlinkSync(path)
    } catch {
      // already gone
    }
  }
}

/**
 * Whether the process that wrote the lock still runs Cortado. After kill -9 the pid may linger
 * as a zombie or be reused by an unrelated program, so on Linux its /proc entry must show a
 * live process whose command line is ours.
 */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  if (existsSync('/proc/self/stat')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      return state !== 'Z' && state !== 'X' && /cortado|main\.ts/.test(cmdline)
    } catch {
      return false
    }
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
