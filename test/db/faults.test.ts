// Failures through the real processes and the real HTTP API: a slave SIGKILLed under write load
// and restarted catches up; a replica whose data is gone is rebuilt from a peer's snapshot plus
// the log; mastership moved by hand under write load. In every case no acknowledged write is
// lost and every replica ends identical.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { partitionOf } from '../../src/db/metadata/model.ts'
import { MAIN } from '../helpers/broker-process.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'

const DB = 'faults'
const ITEM_SCHEMA = {
  type: 'record',
  name: 'Item',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'writer', type: 'int' },
    { name: 'seq', type: 'int' },
    { name: 'payload', type: 'string' },
  ],
}
const PARTITIONS = 6
let cluster: DbCluster

interface ClusterView {
  nodes: { id: string; pid: number; status: string }[]
  databases: {
    name: string
    partitions: { partition: number; generation: number; master: string; replicas: { node: string; role: string }[] }[]
  }[]
}

before(async () => {
  cluster = await startDbCluster({ nodes: 3, routerRetryMs: 4000, nodeSessionMs: 1000 })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: PARTITIONS,
    replicas: 3,
    tables: { items: { key: ['id'], schema: ITEM_SCHEMA } },
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
})

/** Loads still running: stopped before the cluster, even when a test failed half-way. */
const loads = new Set<Load>()

after(async () => {
  await Promise.all([...loads].map((l) => l.stop()))
  await cluster.stop()
})

async function view(): Promise<ClusterView> {
  return (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
}

interface Load {
  /** key → ETag of every acknowledged write. */
  acked: Map<string, string>
  failed: Map<number, number>
  stop(): Promise<void>
}

/** Writers each putting new documents in a loop. */
function startLoad(writers: number): Load {
  const acked = new Map<string, string>()
  const failed = new Map<number, number>()
  let running = true
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let seq = 0; running; seq++) {
      const id = `w${w}-${seq}-${Date.now() % 1000}`
      const res = await cluster
        .http('PUT', `/${DB}/items/${id}`, { id, writer: w, seq, payload: 'p'.repeat(200) })
        .catch(() => ({ status: 0, body: undefined, headers: new Headers() }))
      if (res.status === 200) acked.set(id, (res.body as { etag: string }).etag)
      else {
        failed.set(res.status, (failed.get(res.status) ?? 0) + 1)
        await new Promise((r) => setTimeout(r, 20)) // no busy loop against a router that is gone
      }
    }
  })
  const load: Load = {
    acked,
    failed,
    async stop() {
      running = false
      loads.delete(load)
      await Promise.all(loops)
    },
  }
  loads.add(load)
  return load
}

/** Every acknowledged write reads back from the master with the ETag it was acknowledged with. */
async function checkAcked(acked: Map<string, string>): Promise<void> {
  const ids = [...acked.keys()]
  for (let i = 0; i < ids.length; i += 200) {
    const keys = ids.slice(i, i + 200).map((id) => ({ table: 'items', key: [id] }))
    const res = await cluster.http('POST', `/${DB}/_multiget`, { keys })
    assert.equal(res.status, 200)
    const docs = (res.body as { documents: ({ key: string[]; etag: string } | null)[] }).documents
    docs.forEach((d, j) => {
      const id = keys[j].key[0]
      assert.ok(d !== null, `acknowledged write ${id} is lost`)
      assert.equal(d.etag, acked.get(id), `acknowledged write ${id} has another version`)
    })
  }
}

async function checkReplicasIdentical(): Promise<void> {
  await cluster.waitCaughtUp(DB)
  for (const replicas of await cluster.digests(DB)) {
    assert.equal(replicas.length, 3)
    assert.equal(new Set(replicas.map((r) => r.digest)).size, 1, `replicas differ: ${JSON.stringify(replicas)}`)
    assert.equal(
      new Set(replicas.map((r) => r.fileDigest)).size,
      1,
      `replica files are not byte-identical: ${JSON.stringify(replicas)}`,
    )
  }
}

void test('a second storage node on a data directory in use is refused', () => {
  const res = spawnSync(
    process.execPath,
    [
      MAIN,
      'node',
      '--id',
      'n1',
      '--data-dir',
      join(cluster.dir, 'nodes', 'n1'),
      '--bootstrap',
      cluster.broker.bootstrap,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  )
  assert.equal(res.status, 1)
  assert.match(res.stderr, /data directory .* is in use by process \d+/)
})

void test('a node SIGKILLed under write load: the controller fails its partitions over, the node restarts and catches up; nothing acknowledged is lost', async (t) => {
  const v = await view()
  const victim = 'n3'
  const mastered = v.databases[0].partitions.filter((p) => p.master === victim)
  assert.ok(mastered.length > 0, 'the victim masters some partitions')
  const pidBefore = v.nodes.find((n) => n.id === victim)!.pid
  const load = startLoad(6)
  await new Promise((r) => setTimeout(r, 800))
  await cluster.nodes.get(victim)!.kill()
  const killedAt = Date.now()
  // The first write acknowledged on a partition the victim mastered, after the kill.
  let firstWriteAfter: number | undefined
  const probe = (async () => {
    for (let i = 0; firstWriteAfter === undefined && Date.now() - killedAt < 20_000; i++) {
      const id = `probe-${i}`
      if (!mastered.some((p) => p.partition === partitionOf(id, PARTITIONS))) continue
      const res = await cluster.http('PUT', `/${DB}/items/${id}`, { id, writer: 99, seq: i, payload: '' })
      if (res.status === 200) firstWriteAfter = Date.now() - killedAt
    }
  })()
  await probe
  assert.ok(firstWriteAfter !== undefined, "writes to the dead master's partitions resumed")
  t.diagnostic(`kill to first accepted write on a new master: ${firstWriteAfter} ms`)
  const after = await view()
  assert.equal(after.nodes.find((n) => n.id === victim)!.status, 'down')
  for (const p of mastered) {
    const now = after.databases[0].partitions.find((x) => x.partition === p.partition)!
    assert.notEqual(now.master, victim)
    assert.equal(now.generation, p.generation + 1)
  }
  // A database with one replica on the dead node has no master to fail over to: 503 + Retry-After.
  const single = await cluster.http('PUT', '/_admin/databases/single', {
    partitions: 1,
    replicas: 1,
    tables: { items: { key: ['id'], schema: ITEM_SCHEMA } },
  })
  assert.equal(single.status, 201, JSON.stringify(single.body))
  await cluster.startNode(victim)
  await new Promise((r) => setTimeout(r, 500))
  await load.stop()
  // Writes in flight on the victim when it died have an unknown outcome (504); nothing else failed.
  assert.deepEqual(
    [...load.failed.keys()].filter((status) => status !== 504),
    [],
    `writes failed: ${JSON.stringify([...load.failed])}`,
  )
  assert.ok((load.failed.get(504) ?? 0) <= 6)
  assert.ok(load.acked.size > 50, `only ${load.acked.size} writes`)
  assert.notEqual((await view()).nodes.find((n) => n.id === victim)!.pid, pidBefore)
  await checkReplicasIdentical()
  await checkAcked(load.acked)
})

void test('a partition whose every replica is down answers 503 with Retry-After; once its node is back it takes writes again', async () => {
  const v = (await cluster.http('GET', '/_admin/cluster')).body as ClusterView & {
    databases: { name: string; partitions: { master: string }[] }[]
  }
  const holder = v.databases.find((d) => d.name === 'single')!.partitions[0].master
  assert.equal((await cluster.http('PUT', '/single/items/x', { id: 'x', writer: 0, seq: 0, payload: '' })).status, 200)
  await cluster.nodes.get(holder)!.kill()
  const refused = await cluster.http('PUT', '/single/items/y', { id: 'y', writer: 0, seq: 0, payload: '' })
  assert.equal(refused.status, 503)
  assert.equal(refused.headers.get('retry-after'), '1')
  assert.equal((refused.body as { error: { code: string } }).error.code, 'NO_MASTER')
  await cluster.startNode(holder)
  // Back in its generation: the same data, writes again.
  const read = await cluster.http('GET', '/single/items/x')
  assert.equal(read.status, 200)
  assert.equal((await cluster.http('PUT', '/single/items/y', { id: 'y', writer: 0, seq: 0, payload: '' })).status, 200)
  await cluster.waitCaughtUp(DB)
})

void test('a replica whose data is lost is rebuilt from a peer snapshot plus the log after it', async () => {
  const victim = 'n2'
  const load = startLoad(3)
  await new Promise((r) => setTimeout(r, 500))
  await cluster.nodes.get(victim)!.kill()
  await new Promise((r) => setTimeout(r, 500))
  const node = await cluster.startNode(victim, { wipe: true })
  await new Promise((r) => setTimeout(r, 500))
  await load.stop()
  const status = (await (await fetch(`${node.url}/_node/status`)).json()) as {
    replicas: { partition: number; bootstrappedFrom: string | null; documents: number }[]
  }
  assert.equal(status.replicas.length, PARTITIONS, 'with 3 nodes and 3 replicas every node holds every partition')
  for (const r of status.replicas)
    assert.ok(
      r.bootstrappedFrom !== null && r.bootstrappedFrom !== victim,
      `partition ${r.partition} was not bootstrapped from a peer`,
    )
  assert.match(node.stderr(), /replica bootstrapped from a snapshot/)
  // Every node exposes Prometheus metrics on its internal port.
  const metrics = await (await fetch(`${node.url}/metrics`)).text()
  assert.match(metrics, /cortado_replication_records_total\{db="faults",partition="\d+",outcome="apply"\} [1-9]/)
  assert.match(metrics, /cortado_replica_read_offset\{db="faults",partition="\d+",role="(master|slave)"\} [1-9]/)
  await checkReplicasIdentical()
  await checkAcked(load.acked)
})

void test('mastership moved by hand under write load: the new master takes over, no acknowledged write is lost, replicas identical', async () => {
  const load = startLoad(6)
  await new Promise((r) => setTimeout(r, 500))
  const v = await view()
  const moves = v.databases[0].partitions.map((p) => {
    const target = p.replicas.map((r) => r.node).find((n) => n !== p.master)!
    return { partition: p.partition, from: p.master, to: target, generation: p.generation }
  })
  for (const m of moves) {
    const res = await cluster.http('POST', `/_admin/databases/${DB}/partitions/${m.partition}/master`, { node: m.to })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(
      { master: (res.body as { master: string }).master, generation: (res.body as { generation: number }).generation },
      { master: m.to, generation: m.generation + 1 },
    )
  }
  await new Promise((r) => setTimeout(r, 500))
  await load.stop()
  assert.equal(load.failed.size, 0, `writes failed: ${JSON.stringify([...load.failed])}`)
  const after = await view()
  for (const m of moves) {
    const p = after.databases[0].partitions.find((x) => x.partition === m.partition)!
    assert.equal(p.master, m.to)
    assert.equal(p.replicas.find((r) => r.node === m.to)!.role, 'master')
    assert.equal(p.replicas.find((r) => r.node === m.from)!.role, 'slave')
  }
  // Writes after the move carry the new generation.
  const res = await cluster.http('PUT', `/${DB}/items/after-move`, {
    id: 'after-move',
    writer: 99,
    seq: 0,
    payload: '',
  })
  assert.equal(res.status, 200)
  const partition = partitionOf('after-move', PARTITIONS)
  assert.equal((res.body as { etag: string }).etag.split('.')[0], String(moves[partition].generation + 1))
  await checkReplicasIdentical()
  await checkAcked(load.acked)
})
