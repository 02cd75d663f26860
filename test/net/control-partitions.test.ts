// Network partitions around the control plane, every process in a network namespace of its own
// (test/helpers/netns.ts): the broker on `kafka`, two controllers on `c1` and `c2` (one active, one
// standby), three storage nodes on `n1`..`n3`, the router on `router`, and the test runner on the
// same bridge. The schedules cut a storage node off from the controllers, the active controller
// off from the broker, and the router off from the broker. Under each, a recorded workload runs
// through the router and the history checker must find no lost acknowledged write, no stale read
// and no lost update; writes must resume after healing and every replica end byte-identical
// (test/helpers/partition-schedule.ts).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { MetadataLog } from '../../src/db/metadata/metadata-log.ts'
import { partitionOf } from '../../src/db/metadata/model.ts'
import { type DbCluster, type HttpResult, startDbCluster } from '../helpers/db-cluster.ts'
import { TestNetwork } from '../helpers/netns.ts'
import {
  checkedUnder,
  clusterView,
  type ClusterView,
  createDatabase,
  longestGapMs,
  sleep,
} from '../helpers/partition-schedule.ts'
import { until } from '../helpers/wait.ts'

const HOSTS = ['kafka', 'c1', 'c2', 'n1', 'n2', 'n3', 'router']
const CONTROLLERS = ['c1', 'c2']
let net: TestNetwork
let cluster: DbCluster

before(async () => {
  net = TestNetwork.create(HOSTS)
  net.connectTestRunner()
  cluster = await startDbCluster({ nodes: 3, controllers: 2, controllerSessionMs: 2000, net, routerRetryMs: 3000 })
})

after(async () => {
  try {
    net.healAll()
    await cluster.stop()
  } finally {
    net.destroy()
  }
})

/** Each partition's master and generation (a failover changes both). */
function placements(view: ClusterView, db: string): { master: string | null; generation: number }[] {
  const d = view.databases.find((x) => x.name === db)
  assert.ok(d !== undefined, `no database ${db}`)
  return d.partitions.map((p) => ({ master: p.master, generation: p.generation }))
}

/** Every record of the metadata topic, in log order (read by a reader of the test's own). */
async function metadataRecords(): Promise<{ key: string; value: unknown; offset: number }[]> {
  const records: { key: string; value: unknown; offset: number }[] = []
  const log = new MetadataLog({ bootstrap: [cluster.broker.bootstrap], clientId: 'test-metadata-reader' })
  log.onRecord((key, value, offset) => records.push({ key, value, offset }))
  await log.start()
  await log.close()
  return records
}

void test(
  'a storage node cut off from the controllers (both ways, then one way each direction): no failover, nothing lost or stale',
  { timeout: 180_000 },
  async (t) => {
    const db = 'nodectl'
    await createDatabase(cluster, db)
    const before = await clusterView(cluster)
    const node = placements(before, db)[0].master
    assert.ok(node !== null)
    // Controllers and storage nodes share no link: heartbeats and placements go through the broker.
    await checkedUnder(
      t,
      cluster,
      db,
      31,
      async () => {
        await sleep(1500)
        for (const c of CONTROLLERS) net.cut(node, c)
        await sleep(3000)
        net.healAll()
        for (const c of CONTROLLERS) net.cut(node, c, { oneWay: true })
        await sleep(3000)
        net.healAll()
        for (const c of CONTROLLERS) net.cut(c, node, { oneWay: true })
        await sleep(3000)
        net.healAll()
      },
      { durationMs: 12_000 },
    )
    const after = await clusterView(cluster)
    assert.deepEqual(placements(after, db), placements(before, db), 'no failover: same masters, same generations')
    assert.deepEqual(after.controller, before.controller, 'the same active controller')
  },
)

void test(
  'the active controller cut off from the broker: the standby takes over and fails over a master cut off next; healed, the old controller follows',
  { timeout: 180_000 },
  async (t) => {
    const db = 'ctlcut'
    await createDatabase(cluster, db)
    const before = await clusterView(cluster)
    const old = before.controller
    assert.ok(old.id !== null && CONTROLLERS.includes(old.id))
    const standby = CONTROLLERS.find((c) => c !== old.id)!
    const victimPartition = 1
    const victim = placements(before, db)[victimPartition].master
    assert.ok(victim !== null)
    let taken: ClusterView['controller'] | undefined
    let oldLogFrom = 0
    let controllerOnly: [number, number] = [0, 0]
    const history = await checkedUnder(
      t,
      cluster,
      db,
      32,
      async (clock) => {
        await sleep(1500)
        net.cut(old.id!, 'kafka')
        const cutAt = Date.now()
        const controllerCutAt = clock()
        oldLogFrom = cluster.controllers.get(old.id!)!.stderr().length
        taken = await until(
          'the standby to take over',
          async () => {
            const c = (await clusterView(cluster)).controller
            return c.epoch > old.epoch ? c : undefined
          },
          30_000,
        )
        t.diagnostic(
          `takeover: ${Date.now() - cutAt} ms (${old.id} epoch ${old.epoch} → ${taken.id} epoch ${taken.epoch})`,
        )
        // While the old controller is still cut off, a master is cut off from the broker (the
        // router still reaches it): the new controller must fail it over.
        net.cut(victim, 'kafka')
        const victimCutAt = clock()
        controllerOnly = [controllerCutAt, victimCutAt]
        const failedOver = await until(
          'the new controller to fail the master over',
          async () => {
            const p = (await clusterView(cluster)).databases.find((d) => d.name === db)!.partitions[victimPartition]
            return p.master !== victim && p.replicas.find((r) => r.node === p.master)?.role === 'master' ? p : undefined
          },
          30_000,
        )
        const victimHealAt = clock()
        t.diagnostic(
          `master ${victim} cut off → ${failedOver.master} mastering generation ${failedOver.generation}: ${Math.round(victimHealAt - victimCutAt)} ms`,
        )
        await sleep(500)
        net.healAll()
      },
      { durationMs: 14_000 },
    )
    assert.ok(taken !== undefined)
    assert.equal(taken.id, standby)
    t.diagnostic(
      `longest stretch without an acknowledged write from the controller's cut to the takeover: ${longestGapMs(history, ...controllerOnly)} ms`,
    )
    // Healed, the old controller reads the log: it learns it was deposed and claims nothing.
    const oldLog = () => cluster.controllers.get(old.id!)!.stderr().slice(oldLogFrom)
    await until('the old controller to learn it was deposed', () =>
      Promise.resolve(oldLog().includes('deposed: another controller took over') ? true : undefined),
    )
    // Cut off, it went on deciding from what it last read: nodes whose heartbeats it stopped
    // reading fell out of their session one by one, so it failed some over to the others.
    const decisions = oldLog()
      .split('\n')
      .filter((l) => l.includes('failover: new master'))
    t.diagnostic(`failovers decided by the old controller while cut off: ${decisions.length}`)
    await sleep(1000)
    const after = await clusterView(cluster)
    assert.deepEqual(after.controller, taken, 'the new controller stays active')
    // Exactly one master per partition, the one the metadata names.
    for (const p of after.databases.find((d) => d.name === db)!.partitions)
      assert.deepEqual(
        p.replicas.filter((r) => r.role === 'master').map((r) => r.node),
        [p.master],
        JSON.stringify(p),
      )
    // Those decisions reach the log once healed, after the claim that deposed it: nobody follows
    // them, and the new controller writes its own placement over each, so that the latest record
    // of every key (what a compacted log keeps) is the placement in force.
    const placed = after.databases.find((d) => d.name === db)!.partitions
    const records = await until('the latest placement records to be the ones in force', async () => {
      const all = await metadataRecords()
      const latest = new Map(all.filter((r) => r.key.startsWith(`partition/${db}/`)).map((r) => [r.key, r.value]))
      for (const p of placed) {
        const v = latest.get(`partition/${db}/${p.partition}`) as { master: string; generation: number }
        if (v.master !== p.master || v.generation !== p.generation) return undefined
      }
      return all
    })
    const claimAt = records.find(
      (r) => r.key === 'controller' && (r.value as { epoch: number }).epoch === taken!.epoch,
    )!.offset
    const stale = records.filter(
      (r) =>
        r.offset > claimAt &&
        r.key.startsWith('partition/') &&
        (r.value as { controllerEpoch: number }).controllerEpoch < taken!.epoch,
    )
    t.diagnostic(`placements of the deposed controller delivered after the takeover: ${stale.length}`)
  },
)

void test(
  'the router cut off from the broker: requests go on with its cached metadata; a failover it cannot see gives a retriable 503, never a stale read',
  { timeout: 180_000 },
  async (t) => {
    const db = 'routercut'
    await createDatabase(cluster, db)
    const before = await clusterView(cluster)
    // The master of a partition the workload uses (its keys are w<seed>-r<i>).
    const victimPartition = partitionOf('w33-r0', 3)
    const victim = placements(before, db)[victimPartition].master
    assert.ok(victim !== null)
    const probeKeys = Array.from({ length: 40 }, (_, i) => `probe-${i}`).filter(
      (k) => partitionOf(k, 3) === victimPartition,
    )
    const windows: Record<string, [number, number]> = {}
    const probes: { kind: string; answer: string }[] = []
    const answer = (res: HttpResult) => {
      const code = (res.body as { error?: { code?: string } } | undefined)?.error?.code
      return [res.status, code, res.headers.get('retry-after') === null ? undefined : 'retry-after']
        .filter((x) => x !== undefined)
        .join(' ')
    }
    const history = await checkedUnder(
      t,
      cluster,
      db,
      33,
      async (clock) => {
        await sleep(1500)
        // First the cut alone: the cached metadata is still right.
        net.cut('router', 'kafka')
        let at = clock()
        await sleep(3000)
        windows['cut, metadata valid'] = [at, clock()]
        // Then a master SIGKILLed while the router is still cut off: its partitions fail over, which
        // the router cannot learn, so they are answered 503 (NO_MASTER, retriable) until it heals.
        await cluster.nodes.get(victim)!.kill()
        at = clock()
        // Requests to the dead master's partition, and reads of it from any replica, meanwhile.
        const probing = (async () => {
          for (const key of probeKeys) {
            if (clock() - at > 3500) break
            const path = `/${db}/registers/${key}`
            probes.push({ kind: 'write', answer: answer(await cluster.http('PUT', path, { id: key, value: 'p' })) })
            probes.push({ kind: 'master read', answer: answer(await cluster.http('GET', path)) })
            probes.push({
              kind: 'any-replica read',
              answer: answer(await cluster.http('GET', `${path}?consistency=any`)),
            })
          }
        })()
        await sleep(5000)
        await probing
        windows['cut, a master killed'] = [at, clock()]
        net.healAll()
        at = clock()
        await cluster.startNode(victim)
        windows['healed, node restarted'] = [at, clock()]
      },
      { durationMs: 14_000 },
    )
    for (const [name, [from, to]] of Object.entries(windows)) {
      const ops = history.filter((o) => o.completedAt >= from && o.completedAt <= to)
      const outcomes = (kind: string) =>
        JSON.stringify(
          Object.fromEntries(
            ['ok', 'fail', 'info'].map((o) => [o, ops.filter((x) => x.kind === kind && x.outcome === o).length]),
          ),
        )
      t.diagnostic(
        `${name} (${Math.round(to - from)} ms): writes ${outcomes('write')}, reads ${outcomes('read')}, increments ${outcomes('increment')}, longest stretch without an acknowledged write ${longestGapMs(history, from, to)} ms`,
      )
    }
    const counts = new Map<string, number>()
    for (const p of probes) counts.set(`${p.kind}: ${p.answer}`, (counts.get(`${p.kind}: ${p.answer}`) ?? 0) + 1)
    t.diagnostic(
      `requests to the dead master's partition while the router was cut off: ${JSON.stringify(Object.fromEntries(counts))}`,
    )
    // The first, sent at once, cannot succeed: the router knows of no other master. It is a
    // retriable 503 naming why, or, when the router wrote it on the channel before reading the
    // dead node's FIN (both in one turn of a busy router), a 504: outcome unknown to the router,
    // which is what it may say of a call it wrote. Every later answer is a retriable 503 (or, once
    // healed, a success); reads from any replica go on.
    assert.match(probes[0].answer, /^(503 NO_MASTER retry-after|504 TIMEOUT)$/)
    assert.ok(
      probes.some((p) => p.answer === '503 NO_MASTER retry-after'),
      'the failover the router cannot see is answered 503 NO_MASTER',
    )
    for (const p of probes.slice(1))
      assert.match(
        p.answer,
        p.kind === 'any-replica read' ? /^(200|404 NOT_FOUND)$/ : /^(200|404 NOT_FOUND|503 NO_MASTER retry-after)$/,
      )
  },
)
