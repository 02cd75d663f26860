// The controller state machine (src/db/controller/controller-state.ts) driven by hand and by a
// seeded simulator: leadership decided by log order, fencing of a deposed controller, placement,
// failover to the most caught-up replica, planned moves; and, over many random schedules of
// controller and node deaths, pauses and log delays, the safety rules hold.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  assertInvariants,
  assertStepInvariants,
  type ControllerAction,
  type ControllerConfig,
  type ControllerEvent,
  type ControllerState,
  initialControllerState,
  isActive,
  step,
} from '../../../src/db/controller/controller-state.ts'
import { type DatabaseInfo, type NodeInfo } from '../../../src/db/metadata/model.ts'
import { mulberry32 } from '../../../src/util/random.ts'

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
  loadSmoothingMs: 5000,
  loadMoveCooldownMs: 30_000,
  loadReportMs: 2000,
}

/** The simulator re-replicates quickly, so that its schedules exercise replica moves too. */
const SIM_CONFIG: ControllerConfig = { ...CONFIG, rereplicationDelayMs: 1500 }

type Rec = { key: string; value: unknown }

/** A controller reading a shared log in order, up to wherever it has got. */
class Reader {
  state: ControllerState
  read = 0
  /** Every how many steps the input state is compared with a copy taken before (copies are slow). */
  checkEvery = 1
  steps = 0
  constructor(id: string) {
    this.state = initialControllerState(id)
  }
  catchUp(log: Rec[], now: number, upTo = log.length, config = CONFIG): ControllerAction[] {
    const out: ControllerAction[] = []
    for (; this.read < upTo; this.read++) out.push(...this.step({ kind: 'record', ...log[this.read], now }, config))
    return out
  }
  tick(now: number, config = CONFIG): Rec[] {
    return this.step({ kind: 'tick', now }, config)
      .filter((a): a is ControllerAction & { kind: 'write' } => a.kind === 'write')
      .map((a) => ({ key: a.key, value: a.value }))
  }
  /** One step, which must leave the state it was given as it was. */
  step(event: ControllerEvent, config: ControllerConfig): ControllerAction[] {
    const before = this.steps++ % this.checkEvery === 0 ? structuredClone(this.state) : undefined
    const { state, actions } = step(this.state, event, config)
    if (before !== undefined) assert.deepEqual(this.state, before, 'step modified its input state')
    this.state = state
    return actions
  }
}

const node = (id: string): NodeInfo => ({ id, url: `http://${id}`, rack: null, pid: 1, startedAt: 0 })
const db = (name: string, partitions: number, replicas = 3): DatabaseInfo => ({
  name,
  partitions,
  replicas,
  topic: `cortado-db-${name}`,
  tables: {},
})
const heartbeat = (
  id: string,
  replicas: { db: string; partition: number; generation: number; scn: number }[] = [],
): Rec => ({
  key: `heartbeat/${id}`,
  value: { id, replicas: replicas.map((r) => ({ ...r, role: 'slave' })) },
})

/** A cluster of 3 registered, heartbeating nodes and an active controller `a`. */
function started(): { log: Rec[]; a: Reader; now: number } {
  const log: Rec[] = [
    { key: 'node/n1', value: node('n1') },
    { key: 'node/n2', value: node('n2') },
    { key: 'node/n3', value: node('n3') },
    heartbeat('n1'),
    heartbeat('n2'),
    heartbeat('n3'),
  ]
  const a = new Reader('a')
  a.catchUp(log, 0)
  log.push(...a.tick(0))
  a.catchUp(log, 0)
  assert.ok(isActive(a.state))
  return { log, a, now: 0 }
}

void test('leadership goes to the first claim in the log; a later claim of the same epoch loses', () => {
  const log: Rec[] = []
  const a = new Reader('a')
  const b = new Reader('b')
  const claims = [...b.tick(0), ...a.tick(0)] // b's claim lands first
  assert.deepEqual(
    claims.map((c) => c.value),
    [
      { id: 'b', epoch: 1 },
      { id: 'a', epoch: 1 },
    ],
  )
  log.push(...claims)
  a.catchUp(log, 1)
  b.catchUp(log, 1)
  assert.ok(isActive(b.state))
  assert.ok(!isActive(a.state))
  assert.equal(a.state.leader, 'b')
  // The standby does not claim again while the leader's heartbeats keep coming.
  for (let t = 100; t < 5000; t += 100) {
    log.push(...b.tick(t))
    b.catchUp(log, t)
    assert.deepEqual(a.tick(t), [])
    a.catchUp(log, t)
  }
  assert.equal(a.state.epoch, 1)
})

void test("a standby takes over when the leader falls silent; the deposed leader's placements are not followed", () => {
  const { log, a } = started()
  log.push({ key: 'db/d', value: db('d', 2) })
  const b = new Reader('b')
  b.catchUp(log, 0)
  a.catchUp(log, 0)
  log.push(...a.tick(100))
  a.catchUp(log, 100)
  b.catchUp(log, 100)
  assert.equal(b.state.partitions.size, 2)
  // a goes silent (paused); b claims after the controller session.
  assert.deepEqual(b.tick(1500), [])
  const claim = b.tick(2200)
  assert.deepEqual(
    claim.map((c) => c.value),
    [{ id: 'b', epoch: 2 }],
  )
  log.push(...claim)
  b.catchUp(log, 2200)
  assert.ok(isActive(b.state))
  // a wakes up, still believing it leads, and writes a placement under epoch 1 before reading on.
  log.push({
    key: 'partition/d/0',
    value: { db: 'd', partition: 0, generation: 9, master: 'n3', replicas: ['n1', 'n2', 'n3'], controllerEpoch: 1 },
  })
  a.catchUp(log, 2300)
  b.catchUp(log, 2300)
  for (const r of [a, b])
    assert.notEqual(r.state.partitions.get('d/0')?.generation, 9, 'a placement of a deposed controller is ignored')
  assert.ok(!isActive(a.state), 'the deposed controller learns it from the log')
})

void test("a deposed controller's placement delivered late is written over by the active controller, unless a decision of its own is in flight", () => {
  const { log, a } = started()
  log.push({ key: 'db/d', value: db('d', 2) })
  const b = new Reader('b')
  a.catchUp(log, 0)
  log.push(...a.tick(100))
  a.catchUp(log, 100)
  b.catchUp(log, 100)
  // a is cut off from the log: b takes over, while a, still ticking, writes placements that wait in its producer.
  log.push(...b.tick(2200))
  b.catchUp(log, 2200)
  assert.ok(isActive(b.state))
  const current = b.state.partitions.get('d/0')!
  const staleOf = (k: string) => ({ ...b.state.partitions.get(k)!, generation: 9, master: 'n3', controllerEpoch: 1 })
  // Delivered once a is back: not followed, but the latest record of its key.
  log.push({ key: 'partition/d/0', value: staleOf('d/0') })
  b.catchUp(log, 2300)
  assert.deepEqual(b.state.partitions.get('d/0'), current)
  const again = b.tick(2300).filter((w) => w.key.startsWith('partition/'))
  assert.deepEqual(again, [{ key: 'partition/d/0', value: { ...current, controllerEpoch: 2 } }])
  assert.deepEqual(
    b.tick(2400).filter((w) => w.key.startsWith('partition/')),
    [],
    'written once until read back',
  )
  log.push(...again)
  b.catchUp(log, 2500)
  assert.deepEqual(
    b.tick(8000).filter((w) => w.key.startsWith('partition/')),
    [],
    'nothing more once its own record is the latest',
  )
  // With a decision of b's own in flight for the key (a failover), the late stale record neither
  // counts as that decision read back nor is written over: the decision lands after it.
  const decision = {
    key: 'partition/d/1',
    value: { ...b.state.partitions.get('d/1')!, generation: 5, controllerEpoch: 2 },
  }
  b.state = { ...b.state, inFlight: new Map(b.state.inFlight).set(decision.key, 8000) }
  log.push({ key: 'partition/d/1', value: staleOf('d/1') })
  b.catchUp(log, 8100)
  assert.ok(b.state.inFlight.has(decision.key), 'still in flight')
  assert.deepEqual(
    b.tick(8100).filter((w) => w.key.startsWith('partition/')),
    [],
  )
  log.push(decision)
  b.catchUp(log, 8200)
  assert.ok(!b.state.staleLatest.has('d/1'))
})

void test('databases are placed once enough nodes are alive; failover picks the most caught-up live replica, all partitions in one tick', () => {
  const { log, a } = started()
  log.push({ key: 'db/big', value: db('big', 4, 5) })
  a.catchUp(log, 10)
  assert.deepEqual(
    a.tick(20).filter((w) => w.key.startsWith('partition/')),
    [],
    'waits for 5 live nodes',
  )
  log.push({ key: 'db/d', value: db('d', 3) })
  a.catchUp(log, 30)
  const placed = a.tick(400).filter((w) => w.key.startsWith('partition/d/'))
  assert.equal(placed.length, 3)
  log.push(...placed)
  a.catchUp(log, 400)
  // n1 masters partition 0; n2 has applied more of it than n3.
  const p0 = a.state.partitions.get('d/0')!
  const dead = p0.master!
  const [x, y] = p0.replicas.filter((r) => r !== dead)
  log.push(
    heartbeat(x, [{ db: 'd', partition: 0, generation: 1, scn: 5 }]),
    heartbeat(y, [{ db: 'd', partition: 0, generation: 1, scn: 9 }]),
  )
  a.catchUp(log, 900)
  assert.deepEqual(
    a.tick(900).filter((w) => w.key.startsWith('partition/')),
    [],
    'no failover while every node is within its session',
  )
  // Only x and y keep heartbeating.
  log.push(
    heartbeat(x, [{ db: 'd', partition: 0, generation: 1, scn: 5 }]),
    heartbeat(y, [{ db: 'd', partition: 0, generation: 1, scn: 9 }]),
  )
  a.catchUp(log, 1500)
  const failovers = a.tick(1500).filter((w) => w.key.startsWith('partition/'))
  const mastered = [...a.state.partitions.values()]
    .filter((p) => p.master === dead)
    .map((p) => `partition/d/${p.partition}`)
  assert.deepEqual(
    failovers.map((f) => f.key).sort(),
    mastered.sort(),
    'every partition of the dead master, in one tick',
  )
  const f0 = failovers.find((f) => f.key === 'partition/d/0')!.value as {
    master: string
    generation: number
    controllerEpoch: number
  }
  assert.deepEqual([f0.master, f0.generation, f0.controllerEpoch], [y, 2, a.state.epoch])
  assert.deepEqual(
    a.tick(1600).filter((w) => w.key.startsWith('partition/')),
    [],
    'a decision is not written twice before it is read back',
  )
})

void test('move commands: carried out in order, one generation each, then deleted', () => {
  const { log, a } = started()
  log.push({ key: 'db/d', value: db('d', 1) })
  a.catchUp(log, 10)
  log.push(...a.tick(400))
  a.catchUp(log, 400)
  const p = a.state.partitions.get('d/0')!
  const [t1, t2] = p.replicas.filter((r) => r !== p.master)
  log.push(
    { key: 'command/x', value: { type: 'move-master', db: 'd', partition: 0, node: t1 } },
    { key: 'command/y', value: { type: 'move-master', db: 'd', partition: 0, node: t2 } },
  )
  log.push(heartbeat('n1'), heartbeat('n2'), heartbeat('n3'))
  a.catchUp(log, 500)
  const placements: { master: string | null; generation: number }[] = []
  for (let t = 600; t < 2000; t += 100) {
    const writes = a.tick(t)
    for (const w of writes)
      if (w.key === 'partition/d/0') placements.push(w.value as { master: string | null; generation: number })
    log.push(...writes, heartbeat('n1'), heartbeat('n2'), heartbeat('n3'))
    a.catchUp(log, t + 50)
  }
  // Demote before promote: each move is a placement with no master, then the new master under a new generation.
  assert.deepEqual(
    placements.map((x) => [x.master, x.generation]),
    [
      [null, p.generation],
      [t1, p.generation + 1],
      [null, p.generation + 1],
      [t2, p.generation + 2],
    ],
  )
  const now = a.state.partitions.get('d/0')!
  assert.deepEqual([now.master, now.generation, now.replicas[0]], [t2, p.generation + 2, t2])
  assert.equal(a.state.commands.size, 0)
})

void test('a handover waits for the old master to report it stepped down, unless it dies', () => {
  const { log, a } = started()
  log.push({ key: 'db/d', value: db('d', 1) })
  a.catchUp(log, 10)
  log.push(...a.tick(400))
  a.catchUp(log, 400)
  const p = a.state.partitions.get('d/0')!
  const old = p.master!
  const target = p.replicas.find((r) => r !== old)!
  const asMaster = () => ({
    key: `heartbeat/${old}`,
    value: { id: old, replicas: [{ db: 'd', partition: 0, role: 'master', generation: 1, scn: 5 }] },
  })
  log.push(asMaster(), { key: 'command/m', value: { type: 'move-master', db: 'd', partition: 0, node: target } })
  a.catchUp(log, 450)
  log.push(...a.tick(500))
  a.catchUp(log, 500)
  assert.equal(a.state.partitions.get('d/0')!.master, null)
  // The old master still says it masters the partition: no promotion yet.
  log.push(asMaster(), heartbeat(target), heartbeat(p.replicas.find((r) => r !== old && r !== target)!))
  a.catchUp(log, 600)
  assert.deepEqual(
    a.tick(700).filter((w) => w.key === 'partition/d/0'),
    [],
  )
  // It never reports stepping down, but dies: the promotion goes ahead.
  const others = p.replicas.filter((r) => r !== old)
  for (const t of [900, 1200, 1500, 1800]) {
    log.push(...others.map((id) => heartbeat(id)))
    a.catchUp(log, t)
  }
  const promoted = a.tick(1800).filter((w) => w.key === 'partition/d/0')
  assert.deepEqual(
    promoted.map((w) => [(w.value as { master: string }).master, (w.value as { generation: number }).generation]),
    [[target, p.generation + 1]],
  )
})

void test('simulator: over random schedules of controller pauses, node deaths and log delays, one epoch has one leader, a new master always has a new generation, lost replicas are rebuilt, masters return to their preferred replicas, and a compacted log leads to the same placements', () => {
  let takeovers = 0
  let failovers = 0
  let moves = 0
  let stalePlacements = 0
  for (let seed = 1; seed <= 150; seed++) {
    const rand = mulberry32(seed)
    const log: Rec[] = [{ key: 'db/d', value: db('d', 4) }]
    const nodes = ['n1', 'n2', 'n3', 'n4']
    for (const n of nodes) log.push({ key: `node/${n}`, value: node(n) })
    const controllers = ['a', 'b', 'c'].map((id) => new Reader(id))
    for (const c of controllers) c.checkEvery = 50
    const pausedUntil = new Map<string, number>()
    const cutUntil = new Map<string, number>()
    /** What a controller cut off from the log wrote meanwhile, delivered when the cut heals. */
    const outbox = new Map<string, Rec[]>()
    const deadUntil = new Map<string, number>()
    for (let now = 0; now < 20_000; now += 50) {
      // Faults: a controller pauses for up to 4 s, or is cut off from the log for up to 4 s (it
      // reads nothing but keeps ticking, and its writes wait in its producer); a node dies for up to 3 s.
      if (rand() < 0.004) pausedUntil.set(controllers[Math.floor(rand() * 3)].state.self, now + rand() * 4000)
      if (rand() < 0.004) cutUntil.set(controllers[Math.floor(rand() * 3)].state.self, now + rand() * 4000)
      if (rand() < 0.004) deadUntil.set(nodes[Math.floor(rand() * nodes.length)], now + rand() * 3000)
      if (now > 15_000) {
        pausedUntil.clear()
        cutUntil.clear()
        deadUntil.clear()
      }
      for (const n of nodes) {
        if (now % 250 !== 0 || (deadUntil.get(n) ?? 0) > now) continue
        log.push(
          heartbeat(
            n,
            [0, 1, 2, 3].map((partition) => ({ db: 'd', partition, generation: 0, scn: Math.floor(now / 100) })),
          ),
        )
      }
      for (const c of controllers) {
        if ((pausedUntil.get(c.state.self) ?? 0) > now) continue
        const held = outbox.get(c.state.self) ?? []
        if ((cutUntil.get(c.state.self) ?? 0) > now) {
          outbox.set(c.state.self, [...held, ...c.tick(now, SIM_CONFIG)])
          continue
        }
        log.push(...held)
        outbox.delete(c.state.self)
        // Each controller reads the log with its own random lag, then ticks.
        const lag = Math.floor(rand() * 3)
        c.catchUp(log, now, Math.max(c.read, log.length - lag), SIM_CONFIG)
        log.push(...c.tick(now, SIM_CONFIG))
      }
    }
    // Safety over the whole log: one id per epoch among claims that won; generations grow per partition
    // among followed placements; followed placements never come from an older epoch.
    const winners = new Map<number, string>()
    let epoch = 0
    const placed = new Map<string, { generation: number; master: string | null }>()
    for (const r of log) {
      if (r.key === 'controller') {
        const v = r.value as { id: string; epoch: number }
        if (v.epoch > epoch) {
          epoch = v.epoch
          winners.set(v.epoch, v.id)
          if (epoch > 1) takeovers++
        }
      } else if (r.key.startsWith('partition/')) {
        const p = r.value as { generation: number; master: string | null; controllerEpoch: number }
        if (p.controllerEpoch < epoch) {
          stalePlacements++
          continue
        }
        // Generations never go back, and a new master always comes with a new generation.
        const prev = placed.get(r.key)
        if (prev !== undefined) {
          assert.ok(
            p.generation >= prev.generation,
            `seed ${seed}: ${r.key} generation ${p.generation} after ${prev.generation}`,
          )
          // (A handover first names no master, under the same generation: demote before promote.)
          if (p.master !== prev.master && p.master !== null)
            assert.ok(
              p.generation > prev.generation,
              `seed ${seed}: ${r.key} master ${prev.master} → ${p.master} under generation ${p.generation}`,
            )
          if (p.generation > prev.generation) failovers++
        }
        placed.set(r.key, { generation: p.generation, master: p.master })
        if ((r.value as { move?: unknown }).move !== undefined) moves++
      }
    }
    // A compacted log (the latest record of each key, in log order) leads a new reader to the
    // placements the whole log does: no deposed controller's placement is left as the latest of its key.
    const latest = new Map(log.map((r, i) => [r.key, i]))
    const compacted = log.filter((r, i) => latest.get(r.key) === i)
    const [full, fresh] = [new Reader('full'), new Reader('fresh')]
    full.checkEvery = fresh.checkEvery = 1000
    full.catchUp(log, 20_000, log.length, SIM_CONFIG)
    fresh.catchUp(compacted, 20_000, compacted.length, SIM_CONFIG)
    assert.deepEqual(fresh.state.partitions, full.state.partitions, `seed ${seed}: the compacted log leads elsewhere`)
    // Liveness after the faults stop: every controller agrees on one leader, and every partition
    // has a live master (all nodes are alive again).
    const leaders = new Set(controllers.map((c) => c.state.leader))
    assert.equal(leaders.size, 1, `seed ${seed}: controllers disagree on the leader`)
    const active = controllers.find((c) => isActive(c.state))
    assert.ok(active !== undefined, `seed ${seed}: no active controller`)
    assert.equal(active.state.partitions.size, 4, `seed ${seed}: database not placed`)
    for (const p of active.state.partitions.values()) {
      assert.ok(p.master !== null && nodes.includes(p.master), `seed ${seed}: ${p.partition} has no master`)
      // Re-replication finished: three distinct replicas, the preferred one mastering.
      assert.equal(p.move, undefined, `seed ${seed}: a move of ${p.partition} is unfinished`)
      assert.equal(new Set(p.replicas).size, 3, `seed ${seed}: ${p.partition} replicas ${p.replicas.join(',')}`)
      assert.equal(p.master, p.replicas[0], `seed ${seed}: ${p.partition} not mastered by its preferred replica`)
    }
  }
  // The schedules did exercise takeovers and failovers.
  assert.ok(takeovers > 20, `only ${takeovers} controller takeovers`)
  assert.ok(failovers > 100, `only ${failovers} failovers`)
  assert.ok(moves > 20, `only ${moves} replica moves`)
  assert.ok(stalePlacements > 10, `only ${stalePlacements} placements of deposed controllers`)
})

void test('assertInvariants rejects a corrupted state; assertStepInvariants a step or a decision breaking the rules', () => {
  const { log, a } = started()
  log.push({ key: 'db/d', value: db('d', 1) })
  a.catchUp(log, 10)
  log.push(...a.tick(400))
  a.catchUp(log, 400)
  const s = a.state
  assert.doesNotThrow(() => assertInvariants(s, CONFIG))
  assert.throws(() => assertInvariants({ ...s, leader: null }, CONFIG), /epoch 1 with leader null/)
  assert.throws(
    () => assertInvariants({ ...s, claim: { epoch: 1, at: 0 } }, CONFIG),
    /own claim of epoch 1 kept after reading epoch 1/,
  )
  assert.throws(
    () => assertStepInvariants(s, { ...s, epoch: 0, leader: null }, [], CONFIG),
    /epoch went back from 1 to 0/,
  )
  assert.throws(() => assertStepInvariants(s, { ...s, leader: 'b' }, [], CONFIG), /epoch 1 changed leader from a to b/)
  const p = s.partitions.get('d/0')!
  const other = p.replicas.find((r) => r !== p.master)!
  const decide = (value: object, state = s) =>
    assertStepInvariants(s, state, [{ kind: 'write', key: 'partition/d/0', value: { ...p, ...value } }], CONFIG)
  assert.doesNotThrow(() => decide({ master: other, generation: p.generation + 1 }))
  assert.throws(() => decide({ master: 'n9', generation: p.generation + 1 }), /names master n9, not among its replicas/)
  assert.throws(() => decide({ master: other }), new RegExp(`makes ${other} master under the same generation`))
  assert.throws(
    () => decide({ generation: p.generation - 1 }),
    new RegExp(`takes generation ${p.generation} back to ${p.generation - 1}`),
  )
  assert.throws(() => decide({ controllerEpoch: 0 }), /written under epoch 0, not 1/)
  assert.throws(() => decide({}, { ...s, leader: 'b', epoch: 2 }), /a wrote placements while not the active controller/)
  const move = [
    {
      kind: 'write' as const,
      key: 'partition/d/0',
      value: { ...p, replicas: [...p.replicas, 'n4'], move: { from: p.replicas[1], to: 'n4' } },
    },
  ]
  assert.doesNotThrow(() => assertStepInvariants(s, s, move, CONFIG))
  assert.throws(
    () => assertStepInvariants(s, s, move, { ...CONFIG, maxConcurrentMoves: 0 }),
    /1 moves started with 0 in progress, more than the 0 allowed/,
  )
})

void test('a move whose target already masters the partition is not abandoned when the target is decommissioned', () => {
  const { log, a } = started()
  log.push({ key: 'node/n4', value: node('n4') }, heartbeat('n4'))
  log.push({
    key: 'partition/d/0',
    value: {
      db: 'd',
      partition: 0,
      generation: 2,
      master: 'n4',
      replicas: ['n1', 'n2', 'n3', 'n4'],
      move: { from: 'n1', to: 'n4' },
      controllerEpoch: a.state.epoch,
    },
  })
  log.push({ key: 'decommission/n4', value: {} })
  a.catchUp(log, 100)
  for (const w of a.tick(100).filter((x) => x.key === 'partition/d/0')) {
    const p = w.value as { master: string; replicas: string[] }
    assert.ok(p.replicas.includes(p.master), `master ${p.master} among ${p.replicas.join(',')}`)
  }
})
