// The history checker on the real cluster: a recorded workload of register writes, reads and
// If-Match counter increments runs while every partition's mastership is moved by hand, a master
// is SIGKILLed and restarted (it takes its partitions back in its generation), and a slave is
// SIGKILLed and restarted. The checker must find no lost write, stale read, lost update, duplicate
// or phantom.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { checkHistory } from '../helpers/history/checker.ts'
import { runWorkload, WORKLOAD_TABLES } from '../helpers/history/workload.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'

let cluster: DbCluster
const DB = 'hist'

interface ClusterView {
  databases: { partitions: { partition: number; master: string; replicas: { node: string }[] }[] }[]
}

before(async () => {
  cluster = await startDbCluster({ nodes: 3, routerRetryMs: 2000 })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: 4,
    replicas: 3,
    tables: WORKLOAD_TABLES,
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
})

after(async () => {
  await cluster.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

void test('a recorded workload under mastership moves and SIGKILLs of a master and a slave: the checker finds no anomaly', async (t) => {
  const faults = (async () => {
    await sleep(800)
    const v = (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
    for (const p of v.databases[0].partitions) {
      const to = p.replicas.map((r) => r.node).find((n) => n !== p.master)!
      const res = await cluster.http('POST', `/_admin/databases/${DB}/partitions/${p.partition}/master`, { node: to })
      assert.equal(res.status, 200, JSON.stringify(res.body))
    }
    await sleep(500)
    // A master dies: its partitions have no master until it is back (failover is the controller's).
    const now = (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
    const master = now.databases[0].partitions[0].master
    await cluster.nodes.get(master)!.kill()
    await sleep(700)
    await cluster.startNode(master)
    await sleep(500)
    // A slave dies and comes back.
    const slave = now.databases[0].partitions[0].replicas.map((r) => r.node).find((n) => n !== master)!
    await cluster.nodes.get(slave)!.kill()
    await sleep(500)
    await cluster.startNode(slave)
  })()
  const { history, final } = await runWorkload({
    url: cluster.router.url,
    db: DB,
    clients: 8,
    registers: 6,
    counters: 2,
    durationMs: 6000,
    seed: 7,
  })
  await faults
  const report = checkHistory(history, final)
  t.diagnostic(`history: ${JSON.stringify(report.counts)}`)
  assert.deepEqual(report.anomalies, [], JSON.stringify(report.counts))
  assert.ok(report.valid)
  assert.ok(report.counts.acknowledged > 50, JSON.stringify(report.counts))
  assert.ok(report.counts.reads > 50, JSON.stringify(report.counts))
  assert.ok(
    history.filter((o) => o.kind === 'increment' && o.outcome === 'ok').length > 5,
    JSON.stringify(report.counts),
  )
  await cluster.waitCaughtUp(DB)
  for (const replicas of await cluster.digests(DB)) assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1)
})
