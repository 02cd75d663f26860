// Balancing masters by write load through the real processes: every write goes to partitions one
// node masters. With the controller's continuous balancing off, the dry run (API and CLI) proposes
// moves and per node load before → after and changes nothing; `cortado admin rebalance` then has
// the controller move masters. A controller with continuous balancing on then takes over and
// corrects a new skew by itself. A recorded workload runs throughout: the history checker must find
// no anomaly, and no request fails beyond the router's own retries.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { after, before, test } from 'node:test'
import { partitionOf } from '../../src/db/metadata/model.ts'
import { checkHistory } from '../helpers/history/checker.ts'
import { runWorkload, WORKLOAD_TABLES } from '../helpers/history/workload.ts'
import { MAIN } from '../helpers/broker-process.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'

let cluster: DbCluster
const DB = 'lb'
const PARTITIONS = 6
const REGISTERS = 4
const COUNTERS = 2
const LOAD_FLAGS = ['--load-smoothing-ms', '2000', '--load-min-writes-per-sec', '5', '--load-move-cooldown-ms', '20000']

interface ClusterView {
  controller: { id: string; epoch: number }
  databases: { partitions: { partition: number; generation: number; master: string | null }[] }[]
}
interface Plan {
  dryRun: boolean
  requested: boolean
  nodes: { node: string; before: number; after: number }[]
  moves: { db: string; partition: number; from: string; to: string; writesPerSec: number }[]
  unmeasured: string[]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const run = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [MAIN, 'admin', ...args, '--router', cluster.router.url],
      { encoding: 'utf8', timeout: 60_000 },
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}
const view = async () => (await cluster.http('GET', '/_admin/cluster')).body as ClusterView
const placements = async () => (await view()).databases[0].partitions.map((p) => [p.partition, p.master, p.generation])
const mastersOf = async (node: string) =>
  (await view()).databases[0].partitions.filter((p) => p.master === node).map((p) => p.partition)

/** Waits until one of `partitions` is mastered by a node other than `node` (a handover finished). */
async function movedOff(node: string, partitions: number[], what: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const ps = (await view()).databases[0].partitions
    if (ps.some((p) => partitions.includes(p.partition) && p.master !== null && p.master !== node)) return
    assert.ok(Date.now() < deadline, `${what}: ${JSON.stringify(ps)}`)
    await sleep(200)
  }
}

/** A key prefix whose workload keys all fall in `partitions`, so that all writes go there. */
function prefixFor(partitions: number[], tag: string): string {
  for (let i = 0; ; i++) {
    const prefix = `${tag}${i}-`
    const keys = [
      ...Array.from({ length: REGISTERS }, (_, r) => `${prefix}r${r}`),
      ...Array.from({ length: COUNTERS }, (_, c) => `${prefix}c${c}`),
    ]
    if (keys.every((k) => partitions.includes(partitionOf(k, PARTITIONS)))) return prefix
  }
}

/** Polls the dry run until `done`, returning it. */
async function planUntil(what: string, done: (p: Plan) => boolean, timeoutMs = 30_000): Promise<Plan> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const plan = (await cluster.http('GET', `/_admin/rebalance?db=${DB}`)).body as Plan
    if (done(plan)) return plan
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(plan)}`)
    await sleep(500)
  }
}

const loads = (p: Plan, side: 'before' | 'after') => Object.fromEntries(p.nodes.map((n) => [n.node, n[side]]))
const spread = (p: Plan, side: 'before' | 'after') => {
  const v = p.nodes.map((n) => n[side])
  return Math.max(...v) - Math.min(...v)
}
/** The busiest node's share of all mastered writes (rates grow as the workload warms up; shares compare). */
const busiestShare = (p: Plan) => {
  const v = p.nodes.map((n) => n.before)
  const sum = v.reduce((a, b) => a + b, 0)
  return sum === 0 ? 1 : Math.max(...v) / sum
}

before(async () => {
  cluster = await startDbCluster({
    nodes: 3,
    nodeSessionMs: 1000,
    routerRetryMs: 10_000,
    controllerArgs: ['--load-balancing', 'off', ...LOAD_FLAGS],
  })
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

void test('bad input: unknown database, parameters and flags get typed errors', async () => {
  const unknownDb = await cluster.http('GET', '/_admin/rebalance?db=nope')
  assert.equal(unknownDb.status, 404)
  assert.equal((unknownDb.body as { error: { code: string } }).error.code, 'UNKNOWN_DATABASE')
  for (const path of ['/_admin/rebalance?dryRun=maybe', '/_admin/rebalance?force=1']) {
    const res = await cluster.http('POST', path)
    assert.equal(res.status, 400, path)
    assert.equal((res.body as { error: { code: string } }).error.code, 'BAD_REQUEST', path)
  }
  assert.equal((await cluster.http('GET', '/_admin/rebalance?dryRun=true')).status, 400)
  const badFlag = await run('rebalance', '--now')
  assert.equal(badFlag.code, 2, badFlag.stderr)
  assert.match(badFlag.stderr, /usage: cortado admin/)
  const misplaced = await run('cluster', '--dry-run')
  assert.equal(misplaced.code, 2)
  assert.match(misplaced.stderr, /--dry-run is an option of `cortado admin rebalance` only/)
  const noDb = await run('rebalance', '--dry-run', '--db', 'nope')
  assert.equal(noDb.code, 1)
  assert.match(noDb.stderr, /404 UNKNOWN_DATABASE/)
})

void test('skewed writes: the dry run proposes moves and changes nothing; rebalance and then the continuous balancer move masters; nothing lost', async (t) => {
  // Every write goes to the partitions n1 masters.
  const hot = await mastersOf('n1')
  assert.ok(hot.length >= 2, `n1 masters ${JSON.stringify(hot)}`)
  const workload = runWorkload({
    url: cluster.router.url,
    db: DB,
    clients: 4,
    registers: REGISTERS,
    counters: COUNTERS,
    durationMs: 40_000,
    seed: 11,
    keyPrefix: prefixFor(hot, 'a'),
  })

  const proposed = await planUntil('the dry run to propose a move', (p) => p.moves.length > 0)
  t.diagnostic(`dry run: ${JSON.stringify(proposed.moves)} before ${JSON.stringify(loads(proposed, 'before'))}`)
  t.diagnostic(`dry run: after ${JSON.stringify(loads(proposed, 'after'))}`)
  assert.ok(proposed.moves.every((m) => m.from === 'n1' && hot.includes(m.partition)))
  assert.ok(spread(proposed, 'after') < spread(proposed, 'before'))
  const unchanged = await placements()
  const cli = await run('rebalance', '--dry-run')
  assert.equal(cli.code, 0, cli.stderr)
  assert.match(cli.stdout, /^dry run: rates measured by controller c1 epoch \d+/m)
  assert.match(cli.stdout, /^move lb\/\d master n1 -> n[23] \([\d.]+ writes\/s\)$/m)
  assert.match(cli.stdout, /^node n1 master load [\d.]+ -> [\d.]+ writes\/s$/m)
  t.diagnostic(`cortado admin rebalance --dry-run:\n${cli.stdout}`)
  await sleep(3000)
  assert.deepEqual(await placements(), unchanged, 'a dry run changes no placement')

  // Applied: the controller moves masters off n1 (planned handoffs, under load).
  const applied = await run('rebalance')
  assert.equal(applied.code, 0, applied.stderr)
  assert.match(applied.stdout, /^rebalance requested/m)
  await movedOff('n1', hot, 'no master moved off n1')
  const balanced = await planUntil(
    'the rebalance to settle',
    (p) => p.moves.length === 0 && p.unmeasured.length === 0 && busiestShare(p) < 0.75,
  )
  t.diagnostic(
    `after rebalance: ${JSON.stringify(loads(balanced, 'before'))}, busiest share ${busiestShare(proposed).toFixed(2)} -> ${busiestShare(balanced).toFixed(2)}`,
  )

  // A controller that balances continuously takes over, and a new skew is corrected on its own.
  await cluster.controllers.get('c1')!.stop()
  await cluster.startController('c2', ['--load-balancing', 'on', ...LOAD_FLAGS])
  const counts = await Promise.all(['n1', 'n2', 'n3'].map(async (n) => [n, await mastersOf(n)] as const))
  const [busy, partitions] = counts.sort((a, b) => b[1].length - a[1].length)[0]
  t.diagnostic(`second skew: all writes to ${busy}'s partitions ${JSON.stringify(partitions)}`)
  const second = runWorkload({
    url: cluster.router.url,
    db: DB,
    clients: 4,
    registers: REGISTERS,
    counters: COUNTERS,
    durationMs: 25_000,
    seed: 12,
    keyPrefix: prefixFor(partitions, 'b'),
  })
  await movedOff(busy, partitions, `the continuous balancer moved nothing off ${busy}`)
  const settled = await planUntil(
    'the continuous balancer to settle',
    (p) => p.moves.length === 0 && p.unmeasured.length === 0 && busiestShare(p) < 0.75,
  )
  t.diagnostic(`after the continuous balancer: ${JSON.stringify(loads(settled, 'before'))}`)

  for (const { history, final } of [await workload, await second]) {
    const report = checkHistory(history, final)
    t.diagnostic(`history: ${JSON.stringify(report.counts)}`)
    assert.deepEqual(report.anomalies, [])
    assert.equal(report.counts.failed, 0, "no request failed beyond the router's retries")
  }
  await cluster.waitCaughtUp(DB)
  for (const replicas of await cluster.digests(DB)) assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1)
  t.diagnostic(`final: ${JSON.stringify(await placements())}`)
})
