// How the database benchmark's baselines get installed: from Debian's packages with apt-get, when
// running as root; otherwise the run prints what to install and goes on without that baseline.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const exec = promisify(execFile)

export const isRoot = () => process.getuid?.() === 0

/**
 * Makes sure a Debian package is there: `installed()` says whether it is; if not, installs it with
 * apt-get when running as root, else logs `hint`. Returns whether it is installed now.
 */
export async function ensurePackage(
  what: string,
  pkg: string,
  installed: () => boolean,
  hint: string,
  log: (line: string) => void,
): Promise<boolean> {
  if (installed()) return true
  if (!isRoot()) {
    log(hint)
    return false
  }
  log(`${what} is not installed; installing ${pkg} with apt-get (as root)...`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    await exec('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024 })
    await exec('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, maxBuffer: 64 * 1024 * 1024 })
  } catch (err) {
    log(`installing ${pkg} failed: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (!installed()) log(hint)
  return installed()
}
