// How every long-running `cortado` process stops: once, cleanly, whoever asks.
// - SIGTERM, SIGINT and SIGHUP (a closed terminal) run the process's stop function, then exit.
// - With `exitWithParent`, the process also stops when its parent goes away. `cortado start`
//   uses it, and so do the storage nodes it spawns: a supervisor that signals only the top process
//   (npm does not pass signals past the shell of a script) or dies with SIGKILL leaves no
//   orphans holding the ports and the data directory. Linux tells a child nothing when its parent
//   dies, so the parent pid is polled: when it changes, the process was re-parented.
// - A stop that hangs is cut short after `forceAfterMs`, with an error logged and exit code 1.
// Each command calls stopOnSignals before it prints its ready line: a supervisor may signal as
// soon as it reads that line, and before a handler is in place SIGTERM kills the process outright.
import type { Logger } from '../util/log.ts'

const PARENT_POLL_MS = 250

/** Set by `cortado start` for the processes it spawns (see `exitWithParent`). */
export const EXIT_WITH_PARENT_ENV = 'CORTADO_EXIT_WITH_PARENT'

export interface ShutdownOptions {
  exitWithParent?: boolean
  forceAfterMs?: number
}

export function stopOnSignals(stop: () => Promise<void>, log: Logger, options: ShutdownOptions = {}): void {
  let stopping = false
  const begin = (reason: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { reason })
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting anyway', { afterMs: options.forceAfterMs ?? 20_000 })
      process.exit(1)
    }, options.forceAfterMs ?? 20_000)
    force.unref()
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('shutdown failed', { error: String(error) })
        process.exit(1)
      },
    )
  }
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => begin(signal))
  if (options.exitWithParent === true) watchParent(() => begin('parent process exited'))
}

/** Whether this process was spawned by `cortado start` and so must not outlive it. */
export function spawnedToExitWithParent(): boolean {
  return process.env[EXIT_WITH_PARENT_ENV] === '1'
}

function watchParent(onGone: () => void): void {
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    onGone()
  }, PARENT_POLL_MS)
  timer.unref()
}
