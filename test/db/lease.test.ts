// The master lease through the real processes: a master and a router cut off together from the
// broker (a fault proxy between them and the broker), while the router still reaches the master
// over HTTP. The cut-off master must stop answering master reads within its lease, before the new
// master acknowledges anything, so the cut-off router serves no stale read; the new master takes
// writes; the history checker finds no anomaly; once healed, the old master rejoins as a slave.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { partitionOf } from '../../src/db/metadata/model.ts'
import { leaseMs } from '../../src/db/storage/master-lease.ts'
import { type DbCluster, type ServiceProcess, startDbCluster } from '../helpers/db-cluster.ts'
import { until } from '../helpers/wait.ts'
import { FaultProxy } from '../helpers/fault-proxy.ts'
import { checkHistory, compareVersions, type Operation } from '../helpers/history/checker.ts'
import { runWorkload, WORKLOAD_TABLES } from '../helpers/history/workload.ts'

const DB = 'ls'
const SESSION_MS = 1000
const PARTITIONS = 3
const PREFIX = 'L-'
const REGISTERS = 9
const VICTIM = 'n3'

let cluster: DbCluster
let proxy: FaultProxy
let cutRouter: ServiceProcess

interface ClusterView {
  nodes: { id: string; url: string }[]
  databases: {
    partitions: { partition: number; generation: number; master: string; replicas: { node: string; role: string }[] }[]
  }[]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function view(): Promise<ClusterView> {
  return (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
}

before(async () => {
  cluster = await startDbCluster({ nodes: 2, nodeSessionMs: SESSION_MS, routerRetryMs: 3000 })
  proxy = await FaultProxy.start(cluster.broker.port, {})
  // The victim node and a second router reach the broker only through the proxy.
  await cluster.startNode(VICTIM, { bootstrap: proxy.bootstrap })
  cutRouter = await cluster.startRouter({ bootstrap: proxy.bootstrap })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: PARTITIONS,
    replicas: 3,
    tables: WORKLOAD_TABLES,
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
})

after(async () => {
  proxy.heal()
  await cluster.stop()
  await proxy.close()
})

void test('a master cut off from the log with its router stops serving within its lease; no stale read, no lost write; healed, it rejoins as a slave', async (t) => {
  const v = await until('the victim to master a partition taking writes', async () => {
    const now = await view()
    const p = now.databases[0].partitions.find((x) => x.master === VICTIM)
    return p !== undefined && p.replicas.find((r) => r.node === VICTIM)?.role === 'master' ? now : undefined
  })
  const mastered = v.databases[0].partitions.find((p) => p.master === VICTIM)!
  const victimUrl = v.nodes.find((n) => n.id === VICTIM)!.url
  // A document of the victim's partition, outside the workload's keys, for a direct probe of the victim.
  const probeKey = Array.from({ length: 100 }, (_, i) => `probe-${i}`).find(
    (k) => partitionOf(k, PARTITIONS) === mastered.partition,
  )!
  assert.equal(
    (await cluster.http('PUT', `/${DB}/registers/${probeKey}`, { id: probeKey, value: 'probe' })).status,
    200,
  )

  // A read with consistency=any says how stale it may be.
  const any = await fetch(`${cluster.router.url}/${DB}/registers/${probeKey}?consistency=any`)
  assert.equal(any.status, 200)
  assert.match(any.headers.get('x-cortado-applied') ?? '', /^\d+\.\d+$/)
  assert.match(any.headers.get('x-cortado-log-age-ms') ?? '', /^\d+$/)

  const t0 = performance.now()
  const clock = () => performance.now() - t0
  // Writes and reads through the router that reaches the broker; reads only through the cut-off
  // router (which keeps sending the victim's partition to the victim: its metadata stops moving).
  const main = runWorkload({
    url: cluster.router.url,
    db: DB,
    clients: 4,
    registers: REGISTERS,
    counters: 2,
    durationMs: 8000,
    seed: 41,
    keyPrefix: PREFIX,
    valuePrefix: 'm',
    clock,
  })
  const cutOff = runWorkload({
    url: cutRouter.url,
    db: DB,
    clients: 3,
    registers: REGISTERS,
    counters: 0,
    durationMs: 8000,
    readShare: 1,
    incrementShare: 0,
    seed: 42,
    keyPrefix: PREFIX,
    clock,
  })
  // The victim probed directly for master reads of its partition.
  const probes: { at: number; done: number; status: number; code?: string }[] = []
  let probing = true
  const probe = (async () => {
    while (probing) {
      const at = clock()
      try {
        const res = await fetch(`${victimUrl}/_node/doc/${DB}/${mastered.partition}/registers/${probeKey}?from=master`)
        const body = (await res.json()) as { error?: { code?: string } }
        probes.push({ at, done: clock(), status: res.status, ...(body.error?.code ? { code: body.error.code } : {}) })
      } catch {
        probes.push({ at, done: clock(), status: 0 })
      }
      await sleep(10)
    }
  })()

  await sleep(1500)
  proxy.cut()
  const cutAt = clock()
  const newMaster = await until('the victim partition to fail over', async () => {
    const p = (await view()).databases[0].partitions[mastered.partition]
    return p.master !== VICTIM && p.replicas.find((r) => r.node === p.master)?.role === 'master'
      ? { node: p.master, generation: p.generation, at: clock() }
      : undefined
  })
  // Cut off, the victim still answers over HTTP: a read of any replica says how long it has not
  // heard from the log.
  const stale = await fetch(`${victimUrl}/_node/doc/${DB}/${mastered.partition}/registers/${probeKey}?from=any`)
  assert.equal(stale.status, 200)
  assert.ok(Number(stale.headers.get('x-cortado-log-age-ms')) >= leaseMs(SESSION_MS))
  await sleep(1500)
  proxy.heal()
  const healedAt = clock()
  const [m, c] = await Promise.all([main, cutOff])
  probing = false
  await probe

  const refusedAt = probes.find((p) => p.at > cutAt && p.status !== 200)
  const lastServed = probes.filter((p) => p.status === 200 && p.at < healedAt).at(-1)
  assert.ok(refusedAt !== undefined, 'the victim refused master reads after the cut')
  assert.equal(refusedAt.code, 'MASTER_LEASE_EXPIRED')
  assert.ok(lastServed !== undefined)
  // The first write the new master acknowledged in the victim's partition.
  const history: Operation[] = [...m.history, ...c.history]
  const newWrites = history.filter(
    (o) =>
      o.kind === 'write' &&
      o.outcome === 'ok' &&
      o.etag !== undefined &&
      partitionOf(o.key, PARTITIONS) === mastered.partition &&
      compareVersions(o.etag, `${newMaster.generation}.0`) >= 0,
  )
  const firstNewAck = Math.min(...newWrites.map((o) => o.completedAt))
  t.diagnostic(
    `cut at ${cutAt.toFixed(0)} ms; victim refused from ${(refusedAt.at - cutAt).toFixed(0)} ms after the cut ` +
      `(last master read it served invoked at +${(lastServed.at - cutAt).toFixed(0)} ms, done at +${(lastServed.done - cutAt).toFixed(0)}); ` +
      `new master ${newMaster.node} seen taking writes at +${(newMaster.at - cutAt).toFixed(0)} ms, ` +
      `first write it acknowledged at +${(firstNewAck - cutAt).toFixed(0)} ms`,
  )
  assert.ok(newWrites.length > 0, 'the new master took writes')
  assert.ok(
    lastServed.done < firstNewAck,
    'the victim served no master read once the new master had acknowledged a write',
  )
  assert.ok(refusedAt.at - cutAt <= leaseMs(SESSION_MS) + 250, 'the victim stopped within its lease')

  const report = checkHistory(history, m.final)
  t.diagnostic(
    `history: main ${JSON.stringify(checkHistory(m.history, m.final).counts)}; cut-off router reads ${c.history.length}`,
  )
  assert.deepEqual(report.anomalies, [])
  // Master reads of the victim's partition through the cut-off router while it was cut off: each
  // was refused by the victim and retried until the heal let the router find the new master.
  const duringCut = c.history.filter(
    (o) =>
      o.kind === 'read' &&
      o.consistency === 'master' &&
      partitionOf(o.key, PARTITIONS) === mastered.partition &&
      o.invokedAt > refusedAt.at &&
      o.invokedAt < healedAt,
  )
  t.diagnostic(
    `cut-off router, master reads of the victim partition invoked between the refusal and the heal: ${duringCut.length}, ` +
      `${duringCut.filter((o) => o.outcome === 'ok' && o.completedAt > healedAt).length} answered after the heal, ` +
      `${duringCut.filter((o) => o.outcome !== 'ok').length} failed`,
  )

  // Healed: the victim reads the new placement and rejoins as a slave (it may get its preferred
  // partition back later, under a newer generation still).
  await until('the victim to rejoin', async () => {
    const p = (await view()).databases[0].partitions[mastered.partition]
    const role = p.replicas.find((r) => r.node === VICTIM)?.role
    return role === 'slave' || (role === 'master' && p.master === VICTIM && p.generation > newMaster.generation)
      ? true
      : undefined
  })
  await cluster.waitCaughtUp(DB)
  for (const replicas of await cluster.digests(DB)) assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1)
})
