// Cluster expansion and decommissioning through the real processes: a fourth node joining a
// running cluster gets replicas (bootstrapped, then the old ones dropped) and its share of
// masters; a node decommissioned has every replica moved off it; a node dead past the
// re-replication delay has its replicas rebuilt elsewhere. A recorded workload runs throughout:
// the history checker must find no anomaly, and no request fails beyond the router's own retries.
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { checkHistory } from '../helpers/history/checker.ts'
import { runWorkload, WORKLOAD_TABLES } from '../helpers/history/workload.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'

let cluster: DbCluster
const DB = 'rb'
const PARTITIONS = 6

interface ClusterView {
  nodes: { id: string; status: string; decommissioning: boolean }[]
  databases: { partitions: { partition: number; master: string; replicas: { node: string; role: string }[] }[] }[]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function view(): Promise<ClusterView> {
  return (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
}

/** Waits until the placement satisfies `done` and every replica is caught up. */
async function settle(what: string, done: (v: ClusterView) => boolean, timeoutMs = 60_000): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await view()
    if (done(v)) {
      await cluster.waitCaughtUp(DB, timeoutMs)
      return v
    }
    if (Date.now() > deadline)
      assert.fail(
        `timed out waiting for ${what}: ${JSON.stringify(v.databases[0].partitions.map((p) => [p.master, p.replicas.map((r) => r.node)]))}`,
      )
    await sleep(200)
  }
}

const holders = (v: ClusterView) => {
  const count = new Map<string, number>()
  for (const p of v.databases[0].partitions) for (const r of p.replicas) count.set(r.node, (count.get(r.node) ?? 0) + 1)
  return count
}

before(async () => {
  cluster = await startDbCluster({ nodes: 3, nodeSessionMs: 1000, rereplicationDelayMs: 2000, routerRetryMs: 10_000 })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: PARTITIONS,
    replicas: 3,
    tables: WORKLOAD_TABLES,
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
})

after(async () => {
  await cluster.stop()
})

void test('a node joining gets its share of replicas and masters; a decommissioned node is drained; nothing is lost', async (t) => {
  const workload = runWorkload({
    url: cluster.router.url,
    db: DB,
    clients: 4,
    registers: 8,
    counters: 2,
    durationMs: 12_000,
    seed: 5,
  })
  await sleep(500)
  await cluster.startNode('n4')
  // Settled: every node within one replica of the others (the rebalance goal), three per partition.
  const joined = await settle('n4 to get its share', (v) => {
    const c = holders(v)
    return (
      ['n1', 'n2', 'n3', 'n4'].every((n) => [4, 5].includes(c.get(n) ?? 0)) &&
      v.databases[0].partitions.every(
        (p) => p.replicas.length === 3 && new Set(p.replicas.map((r) => r.node)).size === 3,
      )
    )
  })
  const c1 = holders(joined)
  t.diagnostic(`after n4 joined, replicas per node: ${JSON.stringify([...c1].sort())}`)
  for (const n of ['n1', 'n2', 'n3', 'n4']) assert.ok([4, 5].includes(c1.get(n) ?? 0), `${n} holds ${c1.get(n)}`)
  assert.ok(
    joined.databases[0].partitions.some((p) => p.master === 'n4'),
    'n4 masters some partitions',
  )

  assert.equal((await cluster.http('POST', '/_admin/nodes/n1/decommission')).status, 202)
  const drained = await settle(
    'n1 to be drained',
    (v) => !holders(v).has('n1') && v.databases[0].partitions.every((p) => p.replicas.length === 3),
  )
  t.diagnostic(`after n1 was decommissioned: ${JSON.stringify([...holders(drained)].sort())}`)
  assert.ok(drained.nodes.find((n) => n.id === 'n1')!.decommissioning)
  // Its replicas' files are gone (DROPPED).
  const n1Dir = join(cluster.dir, 'nodes', 'n1', DB)
  assert.ok(
    !existsSync(n1Dir) || readdirSync(n1Dir).filter((f) => f.endsWith('.sqlite')).length === 0,
    'dropped replicas removed from disk',
  )

  const { history, final } = await workload
  const report = checkHistory(history, final)
  t.diagnostic(`history: ${JSON.stringify(report.counts)}`)
  assert.deepEqual(report.anomalies, [])
  assert.equal(report.counts.failed, 0, "no request failed beyond the router's retries")
  for (const replicas of await cluster.digests(DB)) assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1)
})

void test('a node dead past the re-replication delay has its replicas rebuilt on the others', async () => {
  // n1 takes replicas again (the decommission is cancelled); then n2 dies for good.
  assert.equal((await cluster.http('DELETE', '/_admin/nodes/n1/decommission')).status, 200)
  const victim = 'n2'
  await cluster.nodes.get(victim)!.kill()
  const rebuilt = await settle(
    "the dead node's replicas to be rebuilt",
    (v) =>
      !holders(v).has(victim) &&
      v.databases[0].partitions.every((p) => p.replicas.length === 3 && p.replicas.every((r) => r.role !== 'offline')),
  )
  for (const p of rebuilt.databases[0].partitions)
    assert.deepEqual(p.replicas.map((r) => r.node).sort(), ['n1', 'n3', 'n4'])
  assert.equal((await cluster.http('PUT', `/${DB}/registers/after`, { id: 'after', value: 'v' })).status, 200)
  for (const replicas of await cluster.digests(DB)) assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1)
})
