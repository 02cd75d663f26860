// A fault schedule checked the way every network-partition test checks it (test/net/): the
// recorded workload (history/workload.ts) runs through the router while the schedule runs, then
// the history checker (history/checker.ts) must find no lost acknowledged write, no stale read and
// no lost update; a write must succeed after healing and every replica end byte-identical. The
// history counts and the longest stretch without an acknowledged write (overall and per partition)
// are printed.
import assert from 'node:assert/strict'
import { type TestContext } from 'node:test'
import { partitionOf } from '../../src/db/metadata/model.ts'
import { checkHistory, type Operation } from './history/checker.ts'
import { runWorkload, WORKLOAD_TABLES } from './history/workload.ts'
import { type DbCluster } from './db-cluster.ts'

export interface ClusterView {
  controller: { id: string | null; epoch: number }
  databases: {
    name: string
    partitions: {
      partition: number
      generation: number
      master: string | null
      replicas: { node: string; role: string }[]
    }[]
  }[]
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function clusterView(cluster: DbCluster): Promise<ClusterView> {
  return (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
}

/** Creates a database of the workload's tables (3 partitions × 3 replicas by default) and waits for it. */
export async function createDatabase(cluster: DbCluster, db: string, partitions = 3): Promise<void> {
  const res = await cluster.http('PUT', `/_admin/databases/${db}`, { partitions, replicas: 3, tables: WORKLOAD_TABLES })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  await cluster.waitCaughtUp(db)
}

/** The master of a partition as the router's metadata names it, once it names one. */
export async function masterOf(cluster: DbCluster, db: string, partition: number): Promise<string> {
  for (;;) {
    const view = await clusterView(cluster)
    const master = view.databases.find((d) => d.name === db)?.partitions[partition].master
    if (master !== null && master !== undefined) return master
    await sleep(100)
  }
}

export interface ScheduleOptions {
  durationMs?: number
  clients?: number
  /** The database's partition count (default 3), for the per-partition figures. */
  partitions?: number
}

/**
 * Runs the workload while `faults` runs (it gets the workload's clock: ms since the workload
 * started), then checks the history, the heal and the replicas. Returns the history.
 */
export async function checkedUnder(
  t: TestContext,
  cluster: DbCluster,
  db: string,
  seed: number,
  faults: (clock: () => number) => Promise<void>,
  options: ScheduleOptions = {},
): Promise<Operation[]> {
  const start = performance.now()
  const clock = () => performance.now() - start
  const faultsDone = faults(clock)
  const { history, final } = await runWorkload({
    url: cluster.router.url,
    db,
    clients: options.clients ?? 6,
    registers: 6,
    counters: 2,
    durationMs: options.durationMs ?? 9000,
    seed,
    clock,
  })
  await faultsDone
  const report = checkHistory(history, final)
  t.diagnostic(`history: ${JSON.stringify(report.counts)}`)
  t.diagnostic(`longest stretch without an acknowledged write: ${longestGapMs(history)} ms`)
  const partitions = options.partitions ?? 3
  const perPartition = Array.from({ length: partitions }, (_, p) => {
    const ops = history.filter((o) => partitionOf(o.key, partitions) === p)
    return ops.some((o) => o.kind !== 'read') ? `${longestGapMs(ops)} ms` : 'no writes'
  })
  t.diagnostic(`the same per partition: ${perPartition.join(' / ')}`)
  assert.deepEqual(report.anomalies, [], JSON.stringify(report.counts))
  assert.ok(report.valid)
  assert.ok(report.counts.acknowledged > 30, JSON.stringify(report.counts))
  // Writes resume after healing: the last acknowledged write is after the faults were healed.
  const write = await cluster.http('PUT', `/${db}/registers/after-heal`, { id: 'after-heal', value: 'x' })
  assert.equal(write.status, 200, JSON.stringify(write.body))
  await cluster.waitCaughtUp(db, 90_000)
  for (const replicas of await cluster.digests(db)) assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1)
  return history
}

/**
 * The longest time between two consecutive acknowledged writes (the unavailability window), within
 * [from, to] of the workload's clock (the whole history by default).
 */
export function longestGapMs(history: readonly Operation[], from = -Infinity, to = Infinity): number {
  const acknowledged = history
    .filter((o) => o.kind !== 'read' && o.outcome === 'ok')
    .map((o) => o.completedAt)
    .filter((at) => at >= from && at <= to)
  // A window's own bounds count as points: a window without any acknowledged write is one gap.
  const ends = [...acknowledged, ...[from, to].filter(Number.isFinite)].sort((x, y) => x - y)
  let gap = 0
  for (let i = 1; i < ends.length; i++) gap = Math.max(gap, ends[i] - ends[i - 1])
  return Math.round(gap)
}
