// A master and a router cut off together from the broker and the rest of the cluster, each
// process in a network namespace of its own (test/helpers/netns.ts). The controller promotes a new
// master, which takes writes through the second router; the cut-off router can still reach the
// deposed master. That master must stop serving master reads and writes before the new master can
// be promoted (its lease, renewed only by what it hears back from the log, runs out first), so the
// history checker finds no stale read and no lost write, and after healing the old master rejoins.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { checkHistory } from '../helpers/history/checker.ts'
import { runWorkload, WORKLOAD_TABLES } from '../helpers/history/workload.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'
import { TestNetwork } from '../helpers/netns.ts'

const HOSTS = ['kafka', 'c1', 'n1', 'n2', 'n3', 'router', 'router2']
const DB = 'deposed'
let net: TestNetwork
let cluster: DbCluster

interface ClusterView {
  databases: { name: string; partitions: { partition: number; master: string | null }[] }[]
}

before(async () => {
  net = TestNetwork.create(HOSTS)
  net.connectTestRunner()
  cluster = await startDbCluster({ nodes: 3, routers: 2, net, routerRetryMs: 2000 })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    // One partition: every request of the cut-off router goes to the deposed master it can reach.
    partitions: 1,
    replicas: 3,
    tables: WORKLOAD_TABLES,
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  await cluster.waitCaughtUp(DB)
})

after(async () => {
  try {
    net.healAll()
    await cluster.stop()
  } finally {
    net.destroy()
  }
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

void test(
  'a master and a router cut off together: no stale read from the deposed master, no lost write; it rejoins',
  { timeout: 180_000 },
  async (t) => {
    const view = (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
    const master = view.databases[0].partitions[0].master
    assert.ok(master !== null)
    const faults = (async () => {
      await sleep(1500)
      for (const other of HOSTS) {
        if (other === master || other === 'router') continue
        net.cut(master, other)
        net.cut('router', other)
      }
      await sleep(8000)
      net.healAll()
    })()
    const { history, final } = await runWorkload({
      url: cluster.routers[0].url,
      moreRouters: [cluster.routers[1].url],
      db: DB,
      clients: 8,
      registers: 4,
      counters: 2,
      durationMs: 14_000,
      seed: 21,
    })
    await faults
    const report = checkHistory(history, final)
    t.diagnostic(`history: ${JSON.stringify(report.counts)}`)
    assert.deepEqual(report.anomalies, [], JSON.stringify(report.counts))
    assert.ok(report.counts.acknowledged > 10, JSON.stringify(report.counts))
    await cluster.waitCaughtUp(DB, 90_000)
    for (const replicas of await cluster.digests(DB)) assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1)
  },
)
