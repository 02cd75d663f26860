// CPU seconds of processes and their descendants, from /proc (bench:db, bench:db-floor).
import { readdirSync, readFileSync } from 'node:fs'

/** Every process's parent and CPU seconds (user + system) so far, by pid; empty off Linux. */
export function processTable(): Map<number, { ppid: number; cpu: number }> {
  const table = new Map<number, { ppid: number; cpu: number }>()
  let procs: string[] = []
  try {
    procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    // not Linux
  }
  for (const p of procs) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime and stime, in USER_HZ=100 ticks
      table.set(Number(p), { ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / 100 })
    } catch {
      // exited while we looked
    }
  }
  return table
}

/**
 * CPU seconds each group used between two process tables. A process counts to the group of its
 * nearest ancestor-or-self among `groups`' pids (PostgreSQL's backends to their postmaster,
 * `cortado start`'s nodes to the nodes, not to `cortado start`). A process that exited in between
 * takes its time with it (a lower bound then); one that started counts from zero. Empty off Linux.
 */
export function cpuBetween(
  before: Map<number, { cpu: number }>,
  after: Map<number, { ppid: number; cpu: number }>,
  groups: Map<number, string>,
): Map<string, number> {
  const used = new Map<string, number>()
  for (const [pid, { cpu }] of after) {
    let group: string | undefined
    for (let p = pid, depth = 0; p > 1 && depth < 64 && group === undefined; p = after.get(p)?.ppid ?? 0, depth++)
      group = groups.get(p)
    if (group !== undefined) used.set(group, (used.get(group) ?? 0) + cpu - (before.get(pid)?.cpu ?? 0))
  }
  return used
}
