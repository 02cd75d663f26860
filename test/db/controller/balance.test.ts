// Balancing masters by write load: the planner (src/db/controller/balance.ts) by hand, and the
// controller state machine in a seeded simulation where nodes report their masters' scns as
// writes arrive: a skewed load gets corrected with planned handoffs, and a balanced, idle or
// single-hot-partition load is left alone.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  imbalanced,
  masterLoads,
  type PartitionLoad,
  planMasterMoves,
  updateRate,
} from '../../../src/db/controller/balance.ts'
import {
  type ControllerConfig,
  type ControllerState,
  initialControllerState,
  type PlacedPartition,
  step,
} from '../../../src/db/controller/controller-state.ts'
import { type DatabaseInfo } from '../../../src/db/metadata/model.ts'
import { mulberry32 } from '../../../src/util/random.ts'

const SETTINGS = { loadImbalanceFactor: 1.5, loadMinWritesPerSec: 20 }
const NODES = ['n1', 'n2', 'n3']

const part = (partition: number, master: string, rate: number, replicas = NODES): PartitionLoad => ({
  db: 'd',
  partition,
  master,
  replicas: [master, ...replicas.filter((r) => r !== master)],
  rate,
  movable: true,
})
const anyone = () => true

void test('a node mastering all the hot partitions hands some to the others, until balanced', () => {
  const parts = [part(0, 'n1', 100), part(1, 'n1', 100), part(2, 'n1', 100), part(3, 'n2', 1), part(4, 'n3', 1)]
  const plan = planMasterMoves(NODES, parts, anyone, 10, SETTINGS)
  assert.deepEqual(plan.before, { n1: 300, n2: 1, n3: 1 })
  assert.deepEqual(plan.after, { n1: 100, n2: 101, n3: 101 })
  assert.deepEqual(
    plan.moves.map((m) => `${m.partition}:${m.from}->${m.to}`),
    ['0:n1->n2', '1:n1->n3'],
  )
})

void test('balanced, idle, or a single hot partition: no moves', () => {
  const balanced = [part(0, 'n1', 100), part(1, 'n2', 90), part(2, 'n3', 80)]
  assert.deepEqual(planMasterMoves(NODES, balanced, anyone, 10, SETTINGS).moves, [])
  // 10 writes/s against 0 is more than 1.5 times, but below the absolute minimum.
  const idle = [part(0, 'n1', 10), part(1, 'n1', 5)]
  assert.deepEqual(planMasterMoves(NODES, idle, anyone, 10, SETTINGS).moves, [])
  // Moving the one hot partition would only move the hot spot: never bounced.
  const hot = [part(0, 'n1', 500), part(1, 'n2', 1), part(2, 'n3', 1)]
  assert.ok(imbalanced(masterLoads(NODES, hot), SETTINGS))
  assert.deepEqual(planMasterMoves(NODES, hot, anyone, 10, SETTINGS).moves, [])
})

void test('moves go only to caught-up replicas, only for movable partitions, and stop at the limit', () => {
  const parts = [part(0, 'n1', 100), part(1, 'n1', 100), part(2, 'n1', 100), part(3, 'n1', 100)]
  const plan = planMasterMoves(NODES, parts, (_p, n) => n !== 'n2', 10, SETTINGS)
  assert.ok(plan.moves.every((m) => m.to === 'n3'))
  assert.deepEqual(plan.after, { n1: 200, n2: 0, n3: 200 })
  assert.equal(planMasterMoves(NODES, parts, anyone, 1, SETTINGS).moves.length, 1)
  const frozen = parts.map((p) => ({ ...p, movable: false }))
  assert.deepEqual(planMasterMoves(NODES, frozen, anyone, 10, SETTINGS).moves, [])
  // A target outside the usable nodes (dead, decommissioned) is never chosen.
  assert.ok(planMasterMoves(['n1', 'n3'], parts, anyone, 10, SETTINGS).moves.every((m) => m.to === 'n3'))
})

void test('rates: smoothed from scn samples, a new generation restarts the count and keeps the rate', () => {
  let r = updateRate(undefined, 1, 0, 0, 1000, 5000)!
  for (let t = 1000; t <= 30_000; t += 1000) r = updateRate(r, 1, t / 10, t, 1000, 5000) ?? r
  assert.ok(Math.abs(r.rate! - 100) < 1, `converges to 100/s: ${r.rate}`)
  assert.equal(updateRate(r, 1, r.scn + 5, r.at + 200, 1000, 5000), undefined, 'no sample sooner than sampleMs')
  const next = updateRate(r, 2, 3, r.at + 250, 1000, 5000)!
  assert.deepEqual([next.generation, next.scn, next.rate], [2, 3, r.rate])
})

// --- The controller in a simulated cluster ---------------------------------------------------

const CONFIG: ControllerConfig = {
  nodeSessionMs: 1000,
  controllerSessionMs: 2000,
  controllerHeartbeatMs: 300,
  rereplicationDelayMs: 60_000,
  maxConcurrentMoves: 2,
  caughtUpScns: 10,
  loadBalancing: true,
  loadImbalanceFactor: 1.5,
  loadMinWritesPerSec: 20,
  loadSampleMs: 1000,
  loadSmoothingMs: 3000,
  loadMoveCooldownMs: 20_000,
  loadReportMs: 2000,
}

const db = (name: string, partitions: number): DatabaseInfo => ({
  name,
  partitions,
  replicas: 3,
  topic: `cortado-db-${name}`,
  tables: {},
})

interface SimResult {
  state: ControllerState
  /** Load moves (handoffs started), with the time. */
  moves: { at: number; key: string; to: string }[]
  /** Writes/s mastered per node at the end, from the true rates. */
  loads: Record<string, number>
}

/**
 * One controller, three nodes that read the log at once, heartbeat every 250 ms (with jitter)
 * and step down when a placement tells them to; partition p takes `rateOf(p)` writes/s while it has a
 * master, whose scn count restarts with each generation.
 */
function simulate(
  rateOf: (k: string) => number,
  durationMs: number,
  seed: number,
  config = CONFIG,
  command?: { at: number; value: unknown },
): SimResult {
  const random = mulberry32(seed)
  const log: { key: string; value: unknown }[] = NODES.map((id) => ({
    key: `node/${id}`,
    value: { id, url: `http://${id}`, rack: null, pid: 1, startedAt: 0 },
  }))
  log.push({ key: 'db/d', value: db('d', 6) })
  let state = initialControllerState('c')
  let read = 0
  const scn = new Map<string, { generation: number; scn: number }>()
  const moves: SimResult['moves'] = []
  const nextBeat = new Map(NODES.map((n) => [n, random() * 250]))
  for (let now = 0; now <= durationMs; now += 50) {
    if (command?.at === now) log.push({ key: 'command/x', value: command.value })
    // Writes arrive at the masters.
    for (const [k, p] of state.partitions) {
      if (p.master === null) continue
      const cur = scn.get(k)
      const base = cur === undefined || cur.generation !== p.generation ? 0 : cur.scn
      scn.set(k, { generation: p.generation, scn: base + (rateOf(k) * 50) / 1000 })
    }
    for (const n of NODES) {
      if (now < nextBeat.get(n)!) continue
      nextBeat.set(n, now + 200 + random() * 100)
      const replicas = [...state.partitions]
        .filter(([, p]) => p.replicas.includes(n))
        .map(([k, p]) => ({
          db: p.db,
          partition: p.partition,
          role: p.master === n ? 'master' : 'slave',
          generation: scn.get(k)?.generation ?? p.generation,
          scn: Math.floor(scn.get(k)?.scn ?? 0),
        }))
      log.push({ key: `heartbeat/${n}`, value: { id: n, replicas } })
    }
    const tick = step(state, { kind: 'tick', now }, config)
    state = tick.state
    for (const a of tick.actions) {
      if (a.kind !== 'write') continue
      log.push({ key: a.key, value: a.value })
      const p = a.value as PlacedPartition | null
      if (a.key.startsWith('partition/') && p?.handover !== undefined && state.loadMovedAt.get(a.key.slice(10)) === now)
        moves.push({ at: now, key: a.key.slice(10), to: p.handover.to })
    }
    for (; read < log.length; read++) state = step(state, { kind: 'record', ...log[read], now }, config).state
  }
  const loads: Record<string, number> = Object.fromEntries(NODES.map((n) => [n, 0]))
  for (const [k, p] of state.partitions) if (p.master !== null) loads[p.master] += rateOf(k)
  return { state, moves, loads }
}

void test('simulated: masters of a skewed write load move until balanced, then stay (several seeds)', (t) => {
  for (let seed = 1; seed <= 5; seed++) {
    // Writes go only to the partitions n1 masters at placement (by placePartitions: 0 and 3).
    const hot = new Set(['d/0', 'd/3'])
    const { moves, loads, state } = simulate((k) => (hot.has(k) ? 200 : 2), 120_000, seed)
    // One hot partition moves; moving the trickles as well would only pause their writes.
    assert.equal(moves.length, 1, `seed ${seed}: ${JSON.stringify(moves)}`)
    t.diagnostic(`seed ${seed}: loads after ${JSON.stringify(loads)}, moves ${JSON.stringify(moves)}`)
    const values = Object.values(loads)
    assert.ok(Math.max(...values) <= 210, `seed ${seed}: still skewed: ${JSON.stringify(loads)}`)
    // Settled: nothing moved in the last minute, and every moved partition is on its preferred master.
    assert.ok(
      moves.every((m) => m.at < 60_000),
      `seed ${seed}: moves late: ${JSON.stringify(moves)}`,
    )
    for (const [k, p] of state.partitions)
      assert.equal(p.master, p.replicas[0], `seed ${seed}: ${k} is mastered by its preferred replica`)
  }
})

void test('simulated: a balanced load, an idle cluster and a single hot partition cause no moves', () => {
  assert.deepEqual(simulate(() => 100, 60_000, 7).moves, [])
  assert.deepEqual(simulate(() => 3, 60_000, 8).moves, [])
  assert.deepEqual(simulate((k) => (k === 'd/1' ? 400 : 0), 60_000, 9).moves, [])
})

void test('simulated: with continuous balancing off, nothing moves until a rebalance command, which moves at once', () => {
  const hot = new Set(['d/0', 'd/3'])
  const off = { ...CONFIG, loadBalancing: false }
  assert.deepEqual(simulate((k) => (hot.has(k) ? 200 : 2), 30_000, 3, off).moves, [])
  const { moves, state, loads } = simulate((k) => (hot.has(k) ? 200 : 2), 30_000, 3, off, {
    at: 20_000,
    value: { type: 'rebalance' },
  })
  assert.equal(moves.length, 1, JSON.stringify(moves))
  assert.ok(moves[0].at >= 20_000 && moves[0].at < 21_000, JSON.stringify(moves))
  assert.deepEqual(Object.values(loads).sort(), [200, 204, 4].sort())
  assert.equal(state.commands.size, 0, 'the command is done and deleted')
  // A command restricted to another database moves nothing.
  const other = simulate((k) => (hot.has(k) ? 200 : 2), 25_000, 3, off, {
    at: 20_000,
    value: { type: 'rebalance', db: 'other' },
  })
  assert.deepEqual(other.moves, [])
})
