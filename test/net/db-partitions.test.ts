// Network partitions of a database cluster, every process in a network namespace of its own
// (test/helpers/netns.ts): the broker on `kafka`, a controller on `c1`, three storage nodes on
// `n1`..`n3`, the router on `router`, and the test runner connected to the same bridge. Under each
// schedule a recorded workload runs through the router, and the history checker must find no
// lost acknowledged write, no stale read and no lost update; writes must resume after healing and
// every replica end byte-identical. Unavailability windows are printed per schedule.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'
import { TestNetwork } from '../helpers/netns.ts'
import { checkedUnder, clusterView, createDatabase, masterOf, sleep } from '../helpers/partition-schedule.ts'

const HOSTS = ['kafka', 'c1', 'n1', 'n2', 'n3', 'router']
let net: TestNetwork
let cluster: DbCluster

before(async () => {
  net = TestNetwork.create(HOSTS)
  net.connectTestRunner()
  cluster = await startDbCluster({ nodes: 3, net, routerRetryMs: 3000 })
})

after(async () => {
  try {
    net.healAll()
    await cluster.stop()
  } finally {
    net.destroy()
  }
})

void test(
  'the router cut off from one master, then healed: its partitions wait, nothing is lost or stale',
  { timeout: 180_000 },
  async (t) => {
    const db = 'cutrouter'
    await createDatabase(cluster, db)
    const master = await masterOf(cluster, db, 0)
    await checkedUnder(t, cluster, db, 11, async () => {
      await sleep(1500)
      net.cut('router', master)
      await sleep(3000)
      net.healAll()
    })
  },
)

void test(
  'a storage node whose traffic to the broker is dropped (one way), then healed: its partitions fail over, it rejoins and catches up',
  { timeout: 180_000 },
  async (t) => {
    const db = 'cutnode'
    await createDatabase(cluster, db)
    const master = await masterOf(cluster, db, 0)
    const other = ['n1', 'n2', 'n3'].find((n) => n !== master) as string
    await checkedUnder(t, cluster, db, 12, async () => {
      await sleep(1500)
      net.cut(other, 'kafka', { oneWay: true })
      await sleep(4000)
      net.healAll()
    })
  },
)

void test(
  'a master cut off from the broker (both ways) for 5 s while the router still reaches it: it stops within its lease, its partitions fail over, nothing is stale',
  { timeout: 180_000 },
  async (t) => {
    const db = 'cutmaster'
    await createDatabase(cluster, db)
    const master = await masterOf(cluster, db, 0)
    const generation = await generationOf(db, 0)
    await checkedUnder(t, cluster, db, 14, async () => {
      await sleep(1500)
      net.cut(master, 'kafka')
      await sleep(5000)
      net.healAll()
    })
    // It failed over (its generation went up), and may since have moved back to the healed node,
    // its preferred master.
    assert.ok((await generationOf(db, 0)) > generation, `partition 0 never failed over from ${master}`)
  },
)

async function generationOf(db: string, partition: number): Promise<number> {
  const p = (await clusterView(cluster)).databases.find((d) => d.name === db)?.partitions[partition]
  assert.ok(p !== undefined)
  return p.generation
}

void test(
  'a flapping link between a master and the broker: nothing lost, no stale read, writes resume',
  { timeout: 180_000 },
  async (t) => {
    const db = 'flap'
    await createDatabase(cluster, db)
    const master = await masterOf(cluster, db, 0)
    await checkedUnder(t, cluster, db, 13, async () => {
      await sleep(1000)
      for (let i = 0; i < 6; i++) {
        net.cut(master, 'kafka')
        await sleep(400 + (i % 3) * 300)
        net.healAll()
        await sleep(500)
      }
    })
  },
)
