// The cluster controller's state machine, in the role Apache Helix played for Espresso,
// coordinating through Kafka alone: everything it knows and decides is a record of the compacted
// metadata topic, read by every process in the same order. `step(state, event, config) →
// { state, actions }`, pure: the input state is never modified (a step returns a new state,
// copying the maps it changes and sharing the rest); events are metadata records and clock ticks
// carrying the time (invariant 7 (docs/invariants.md)), actions are records to write and lines to
// log. The runtime (controller.ts) feeds it and writes; tests and the simulator drive it with their
// own clock and log. Every step ends with assertInvariants and assertStepInvariants.
//
// Leadership (one active controller, any number of standbys), fenced by the log's order:
// - `controller` → {id, epoch}: a claim when the epoch is new, a heartbeat when it repeats the
//   active controller's. The first claim of epoch e+1 in the log wins; a later claim of the same
//   epoch is ignored, and its author, reading the winner's first, stays a standby.
// - A standby claims epoch e+1 once it has not seen the active controller's heartbeat for
//   `controllerSessionMs`. Nobody acts on a claim before reading it back from the log.
// - Every placement the controller writes carries its epoch; readers drop placements whose epoch
//   is below the highest they have read (metadata-log.ts), so a deposed controller that wakes up
//   (SIGSTOP, GC pause, a network partition healed) writes nothing anyone follows. The active
//   controller writes its own placement again over such a record, which would otherwise stay the
//   latest of its key: what a compacted log keeps (reassertPlacements).
//
// What the active controller does on each tick:
// - places databases that have no placement yet (placement over the live nodes);
// - fails over: for each partition whose master is dead (no `heartbeat/<node>` for
//   `nodeSessionMs`), makes the most caught-up live replica master under generation + 1, all
//   partitions in the same tick; a partition with no live replica waits for one;
// - runs commands written by the admin API (`command/<id>`: a planned mastership move, or a
//   rebalance by load), then deletes them; planned mastership changes demote the old master before
//   promoting the new one;
// - moves replicas (re-replication, expansion, decommissioning) and masters back to their preferred
//   replicas, and balances masters by measured write load (balance.ts).
import { violated } from '../../util/invariant.ts'
import {
  type DatabaseInfo,
  type NodeInfo,
  type NodeReport,
  type PartitionInfo,
  placePartitions,
} from '../metadata/model.ts'
import {
  type BalancePlan,
  type BalanceSettings,
  type PartitionLoad,
  planMasterMoves,
  type RateSample,
  updateRate,
} from './balance.ts'

export interface ControllerConfig extends BalanceSettings {
  /** A node is dead when its last heartbeat is older than this. */
  nodeSessionMs: number
  /** A standby claims leadership when the active controller's last heartbeat is older than this. */
  controllerSessionMs: number
  /** How often the active controller writes its heartbeat. */
  controllerHeartbeatMs: number
  /** A dead node's replicas are rebuilt elsewhere once it has been dead this long (it may come back first). */
  rereplicationDelayMs: number
  /** Most replicas being added (bootstrapping) at once, cluster-wide: re-replication is throttled. */
  maxConcurrentMoves: number
  /** A new replica counts as caught up within this many transactions of its master. */
  caughtUpScns: number
  /** Whether the controller balances masters by write load on its own (a `rebalance` command works either way). */
  loadBalancing: boolean
  /** A partition's write rate is sampled from its master's heartbeats at most this often. */
  loadSampleMs: number
  /** Time constant of the exponential smoothing of write rates. */
  loadSmoothingMs: number
  /** A partition whose mastership moved for load does not move for load again within this long. */
  loadMoveCooldownMs: number
  /** How often the active controller writes the rates it measures (`load`), for the admin API's dry run. */
  loadReportMs: number
}

/** What the controller measures, for the dry run of the admin API (`load` record). */
export interface LoadReport {
  controller: string
  epoch: number
  /** Smoothed writes per second, by `${db}/${partition}`. */
  rates: Record<string, number>
  /** The settings the controller balances with, so that the dry run plans the same way. */
  settings: BalanceSettings & { caughtUpScns: number; maxConcurrentMoves: number }
}

export type ControllerCommand =
  | { type: 'move-master'; db: string; partition: number; node: string }
  /** Balance masters by write load now (cooldowns ignored), optionally only moving `db`'s partitions. */
  | { type: 'rebalance'; db?: string }

export interface PlacedPartition extends PartitionInfo {
  /** The controller epoch that wrote this placement. */
  controllerEpoch: number
  /**
   * A replica move in progress: `to` was added to the replicas and is bootstrapping; once it has
   * caught up, `from` is dropped (after its mastership, if any, has moved).
   */
  move?: { from: string; to: string }
  /**
   * A planned mastership change, demote before promote: while set, `master` is null and the old
   * master `from` is stepping down; once it reports it is no longer master (or is dead), `to`
   * becomes master under a new generation.
   */
  handover?: { from: string; to: string }
}

export interface ControllerState {
  readonly self: string
  /** Highest controller epoch read from the log, and who holds it. */
  epoch: number
  leader: string | null
  /** Local time the leader's latest claim or heartbeat was read. */
  leaderSeenAt: number
  /** Our own claim in flight (the epoch claimed and when), not yet read back. */
  claim: { epoch: number; at: number } | null
  /** Local time of our last heartbeat as active controller. */
  lastBeatAt: number
  nodes: Map<string, NodeInfo>
  /** Local time each node's latest heartbeat was read, and what it reported. */
  heartbeats: Map<string, { at: number; report: NodeReport }>
  databases: Map<string, DatabaseInfo>
  partitions: Map<string, PlacedPartition>
  commands: Map<string, ControllerCommand>
  /** Smoothed write rate of each partition (`${db}/${partition}`), from its master's heartbeats. */
  rates: Map<string, RateSample>
  /** Local time each partition's mastership was last moved for load (its cooldown). */
  loadMovedAt: Map<string, number>
  /** Local time of our last `load` record as active controller. */
  lastLoadReportAt: number
  /** Nodes being decommissioned (their replicas move away). */
  decommissioned: Set<string>
  /** Local time each dead node was first found dead. */
  deadSince: Map<string, number>
  /** Decisions written and not yet read back, by key, so a tick does not write them twice. */
  inFlight: Map<string, number>
  /**
   * Partitions (`${db}/${partition}`) whose latest record in the log is a deposed controller's
   * placement, not followed; the active controller writes its own again (reassertPlacements).
   */
  staleLatest: Set<string>
}

export type ControllerEvent =
  { kind: 'record'; key: string; value: unknown; now: number } | { kind: 'tick'; now: number }

export type ControllerAction =
  | { kind: 'write'; key: string; value: unknown }
  | { kind: 'log'; level: 'info' | 'warn'; msg: string; fields: Record<string, unknown> }

export function initialControllerState(self: string): ControllerState {
  return {
    self,
    epoch: 0,
    leader: null,
    leaderSeenAt: 0,
    claim: null,
    lastBeatAt: 0,
    nodes: new Map(),
    heartbeats: new Map(),
    databases: new Map(),
    partitions: new Map(),
    commands: new Map(),
    rates: new Map(),
    loadMovedAt: new Map(),
    lastLoadReportAt: 0,
    decommissioned: new Set(),
    deadSince: new Map(),
    inFlight: new Map(),
    staleLatest: new Set(),
  }
}

/** Whether this controller is the active one (as far as the log read so far says). */
export const isActive = (s: ControllerState): boolean => s.leader === s.self

/** A written decision is re-issued if it has not been read back within this long. */
const IN_FLIGHT_MS = 5000

/** Applies one event; the input state is left as it was. */
export function step(
  state: ControllerState,
  event: ControllerEvent,
  config: ControllerConfig,
): { state: ControllerState; actions: ControllerAction[] } {
  const actions: ControllerAction[] = []
  const next =
    event.kind === 'record'
      ? applyRecord(state, event.key, event.value, event.now, actions, config)
      : tick(state, event.now, config, actions)
  assertInvariants(next, config)
  assertStepInvariants(state, next, actions, config)
  return { state: next, actions }
}

function tick(
  state: ControllerState,
  now: number,
  config: ControllerConfig,
  actions: ControllerAction[],
): ControllerState {
  // A tick changes only these three maps and the scalars; the rest is shared with `state`.
  const s: ControllerState = {
    ...state,
    inFlight: new Map(state.inFlight),
    deadSince: new Map(state.deadSince),
    loadMovedAt: new Map(state.loadMovedAt),
  }
  for (const [key, at] of s.inFlight) if (now - at > IN_FLIGHT_MS) s.inFlight.delete(key)
  if (!isActive(s)) {
    const leaderGone = s.leader === null || now - s.leaderSeenAt > config.controllerSessionMs
    if (leaderGone && (s.claim === null || now - s.claim.at > config.controllerSessionMs)) {
      s.claim = { epoch: s.epoch + 1, at: now }
      actions.push({ kind: 'write', key: 'controller', value: { id: s.self, epoch: s.epoch + 1 } })
      actions.push({
        kind: 'log',
        level: 'info',
        msg: 'claiming controller leadership',
        fields: { epoch: s.epoch + 1, previous: s.leader },
      })
    }
    return s
  }
  if (now - s.lastBeatAt >= config.controllerHeartbeatMs) {
    s.lastBeatAt = now
    actions.push({ kind: 'write', key: 'controller', value: { id: s.self, epoch: s.epoch } })
  }
  const live = new Set([...s.nodes.keys()].filter((id) => alive(s, id, now, config)))
  for (const id of s.nodes.keys()) {
    if (live.has(id)) s.deadSince.delete(id)
    else if (!s.deadSince.has(id)) s.deadSince.set(id, now)
  }
  placeNewDatabases(s, live, actions, now)
  completeHandovers(s, live, actions, now)
  failOver(s, live, actions, now)
  runCommands(s, live, actions, now, config)
  rebalance(s, live, actions, now, config)
  if (config.loadBalancing) balanceLoad(s, live, actions, now, config, { cooldown: true })
  reassertPlacements(s, actions, now)
  if (now - s.lastLoadReportAt >= config.loadReportMs) {
    s.lastLoadReportAt = now
    const report: LoadReport = {
      controller: s.self,
      epoch: s.epoch,
      rates: Object.fromEntries(
        [...s.rates].flatMap(([k, r]) => (r.rate === null ? [] : [[k, Math.round(r.rate * 100) / 100]])),
      ),
      settings: {
        loadImbalanceFactor: config.loadImbalanceFactor,
        loadMinWritesPerSec: config.loadMinWritesPerSec,
        caughtUpScns: config.caughtUpScns,
        maxConcurrentMoves: config.maxConcurrentMoves,
      },
    }
    actions.push({ kind: 'write', key: 'load', value: report })
  }
  return s
}

/** Facts of every state: throws (AssertionError) when one does not hold. */
export function assertInvariants(s: ControllerState, config: ControllerConfig): void {
  if (!Number.isInteger(s.epoch) || s.epoch < 0) violated('controller', `epoch ${s.epoch} is not an integer >= 0`)
  // A leader is known exactly when an epoch has been read (epoch 0 is nobody's).
  if ((s.leader === null) !== (s.epoch === 0)) violated('controller', `epoch ${s.epoch} with leader ${s.leader}`)
  if (s.claim !== null && s.claim.epoch <= s.epoch)
    violated('controller', `own claim of epoch ${s.claim.epoch} kept after reading epoch ${s.epoch}`)
  if (!Number.isInteger(config.maxConcurrentMoves) || config.maxConcurrentMoves < 0)
    violated('controller', `maxConcurrentMoves ${config.maxConcurrentMoves}`)
  if (!(config.loadImbalanceFactor >= 1) || !(config.loadMinWritesPerSec >= 0))
    violated(
      'controller',
      `load balancing needs loadImbalanceFactor >= 1 and loadMinWritesPerSec >= 0, not ${config.loadImbalanceFactor} and ${config.loadMinWritesPerSec}`,
    )
  // Rates are measured from scns that only go forward within a generation: never negative.
  for (const [k, r] of s.rates)
    if (r.rate !== null && (!Number.isFinite(r.rate) || r.rate < 0))
      violated('controller', `write rate of ${k} is ${r.rate}`)
}

/**
 * Facts of every step. The epoch never goes back and one epoch has one leader. What the active
 * controller decides (the placements it writes) carries its epoch, never takes a generation back,
 * names a master only among the replicas and, for a new master, under a new generation; and a
 * tick starts no move beyond `maxConcurrentMoves` moves in progress.
 *
 * Placements read from the log are not checked here: a compacted log may be read out of the
 * order it was written in (a placement before the claim of its epoch), and bad records must not
 * stop the controller (invariant 6 (docs/invariants.md)). Nor is the number of moves in the
 * state bounded: moves started by a previous leader, or in an earlier tick and not read back
 * yet, are not counted when a tick starts new ones, so for a while more may be in progress.
 */
export function assertStepInvariants(
  prev: ControllerState,
  next: ControllerState,
  actions: ControllerAction[],
  config: ControllerConfig,
): void {
  if (next.epoch < prev.epoch) violated('controller', `epoch went back from ${prev.epoch} to ${next.epoch}`)
  if (next.epoch === prev.epoch && next.leader !== prev.leader)
    violated('controller', `epoch ${next.epoch} changed leader from ${prev.leader} to ${next.leader}`)
  const placements = actions.flatMap((a) =>
    a.kind === 'write' && a.key.startsWith('partition/')
      ? [{ key: a.key.slice('partition/'.length), p: a.value as PlacedPartition }]
      : [],
  )
  if (placements.length > 0 && !isActive(next))
    violated('controller', `${next.self} wrote placements while not the active controller`)
  for (const { key, p } of placements) checkPlacement(next, key, p)
  const inProgress = [...next.partitions.values()].filter((p) => p.move !== undefined).length
  const started = placements.filter(
    ({ key, p }) => p.move !== undefined && next.partitions.get(key)?.move === undefined,
  ).length
  if (started > 0 && inProgress + started > config.maxConcurrentMoves) {
    violated(
      'controller',
      `${started} moves started with ${inProgress} in progress, more than the ${config.maxConcurrentMoves} allowed`,
    )
  }
  // A mastership moved for load is a planned handoff to a replica made its preferred master (so
  // the preferred-master rule keeps it), within the throttle.
  const loadMoved = [...next.loadMovedAt].filter(([k, at]) => prev.loadMovedAt.get(k) !== at).map(([k]) => k)
  for (const k of loadMoved) {
    const p = placements.find((x) => x.key === k)?.p
    const to = p?.handover?.to ?? p?.master
    if (p === undefined || to === undefined || to === null || p.replicas[0] !== to)
      violated('controller', `load move of ${k} without a handoff to its new preferred master`)
  }
  const busy = [...next.partitions].filter(
    ([k, p]) => (p.move !== undefined || p.handover !== undefined) && !loadMoved.includes(k),
  ).length
  if (loadMoved.length > 0 && busy + loadMoved.length > config.maxConcurrentMoves)
    violated(
      'controller',
      `${loadMoved.length} load moves started with ${busy} moves in progress, more than the ${config.maxConcurrentMoves} allowed`,
    )
}

/** A placement the controller decided, against the partition as it knows it. */
function checkPlacement(s: ControllerState, key: string, p: PlacedPartition): void {
  const current = s.partitions.get(key)
  if (p.controllerEpoch !== s.epoch)
    violated('controller', `placement of ${key} written under epoch ${p.controllerEpoch}, not ${s.epoch}`)
  if (p.master !== null && !p.replicas.includes(p.master))
    violated(
      'controller',
      `placement of ${key} names master ${p.master}, not among its replicas ${p.replicas.join(',')}`,
    )
  if (p.handover !== undefined && p.master !== null)
    violated('controller', `placement of ${key} has a master (${p.master}) during a handover`)
  if (current === undefined) return
  if (p.generation < current.generation)
    violated('controller', `placement of ${key} takes generation ${current.generation} back to ${p.generation}`)
  if (p.master !== null && p.master !== current.master && p.generation === current.generation) {
    violated('controller', `placement of ${key} makes ${p.master} master under the same generation ${p.generation}`)
  }
}

function alive(s: ControllerState, id: string, now: number, config: ControllerConfig): boolean {
  const hb = s.heartbeats.get(id)
  return hb !== undefined && now - hb.at <= config.nodeSessionMs
}

function applyRecord(
  state: ControllerState,
  key: string,
  value: unknown,
  now: number,
  actions: ControllerAction[],
  config: ControllerConfig,
): ControllerState {
  const s: ControllerState = { ...state }
  const [kind, ...rest] = key.split('/')
  const id = rest.join('/')
  if (kind === 'partition') {
    const p = value as PlacedPartition | null
    const stale = p !== null && (p.controllerEpoch ?? 0) < s.epoch
    if (s.staleLatest.has(id) !== stale) {
      s.staleLatest = new Set(s.staleLatest)
      if (stale) s.staleLatest.add(id)
      else s.staleLatest.delete(id)
    }
    // Placements of a deposed controller are not followed. Nor are they a decision of ours read
    // back: one in flight stays in flight (it lands after this record, which it supersedes).
    if (stale) return s
  }
  if (s.inFlight.has(key)) s.inFlight = without(s.inFlight, key)
  if (key === 'controller') {
    applyController(s, value, now, actions)
    return s
  }
  if (kind === 'node') s.nodes = setOrDelete(s.nodes, id, value as NodeInfo | null)
  else if (kind === 'db') s.databases = setOrDelete(s.databases, id, value as DatabaseInfo | null)
  else if (kind === 'command') s.commands = setOrDelete(s.commands, id, value as ControllerCommand | null)
  else if (kind === 'decommission') {
    s.decommissioned = new Set(s.decommissioned)
    if (value === null) s.decommissioned.delete(id)
    else s.decommissioned.add(id)
  } else if (kind === 'heartbeat') {
    s.heartbeats = setOrDelete(s.heartbeats, id, value === null ? null : { at: now, report: value as NodeReport })
    if (value !== null) measureRates(s, value as NodeReport, now, config)
  } else if (kind === 'partition') {
    s.partitions = setOrDelete(s.partitions, id, value as PlacedPartition | null)
  }
  return s
}

/** Write rates, from the applied scn of the replicas a node reports as masters (`s` is a copy of the state). */
function measureRates(s: ControllerState, report: NodeReport, now: number, config: ControllerConfig): void {
  if (!Array.isArray(report.replicas)) return
  let copied = false
  for (const r of report.replicas) {
    if (r.role !== 'master' || !Number.isInteger(r.generation) || !Number.isInteger(r.scn)) continue
    const key = `${r.db}/${r.partition}`
    const next = updateRate(s.rates.get(key), r.generation, r.scn, now, config.loadSampleMs, config.loadSmoothingMs)
    if (next === undefined) continue
    if (!copied) s.rates = new Map(s.rates)
    copied = true
    s.rates.set(key, next)
  }
}

/** A `controller` record (a claim or a heartbeat), applied to `s`, a copy of the state. */
function applyController(s: ControllerState, value: unknown, now: number, actions: ControllerAction[]): void {
  const v = value as { id?: unknown; epoch?: unknown } | null
  if (v === null || typeof v.id !== 'string' || !Number.isInteger(v.epoch)) return
  const epoch = v.epoch as number
  if (epoch > s.epoch) {
    const wasActive = isActive(s)
    s.epoch = epoch
    s.leader = v.id
    s.leaderSeenAt = now
    if (s.claim !== null && s.claim.epoch <= epoch) s.claim = null
    if (v.id === s.self) {
      s.lastBeatAt = now
      actions.push({ kind: 'log', level: 'info', msg: 'active controller', fields: { epoch } })
    } else if (wasActive) {
      actions.push({
        kind: 'log',
        level: 'warn',
        msg: 'deposed: another controller took over',
        fields: { epoch, leader: v.id },
      })
    }
  } else if (epoch === s.epoch && v.id === s.leader) {
    s.leaderSeenAt = now
  }
}

/** A copy of `map` with `key` set to `value`, or deleted when `value` is null. */
function setOrDelete<T>(map: Map<string, T>, key: string, value: T | null): Map<string, T> {
  if (value === null) return without(map, key)
  return new Map(map).set(key, value)
}

function without<T>(map: Map<string, T>, key: string): Map<string, T> {
  if (!map.has(key)) return map
  const copy = new Map(map)
  copy.delete(key)
  return copy
}

function write(s: ControllerState, actions: ControllerAction[], key: string, value: unknown, now: number): void {
  if (s.inFlight.has(key)) return
  s.inFlight.set(key, now)
  actions.push({ kind: 'write', key, value })
}

/**
 * Writes again, under our epoch, the placements whose latest record is a deposed controller's: a
 * controller cut off from the broker (or paused) keeps deciding from its stale view, and its
 * records are delivered once it is back, after the claim that deposed it. Nobody follows them, but
 * each is now the latest record of its key, which is all a compacted log keeps: a process starting
 * on the compacted log would read it before the claim of any higher epoch (only the latest
 * `controller` record is kept, at the end) and follow it, a master and generation long replaced.
 */
function reassertPlacements(s: ControllerState, actions: ControllerAction[], now: number): void {
  for (const k of s.staleLatest) {
    const p = s.partitions.get(k)
    if (p === undefined || s.inFlight.has(`partition/${k}`)) continue
    write(s, actions, `partition/${k}`, { ...p, controllerEpoch: s.epoch }, now)
    actions.push({
      kind: 'log',
      level: 'info',
      msg: "placement written again over a deposed controller's",
      fields: { db: p.db, partition: p.partition, master: p.master, generation: p.generation },
    })
  }
}

function placeNewDatabases(s: ControllerState, live: Set<string>, actions: ControllerAction[], now: number): void {
  for (const db of s.databases.values()) {
    if (s.partitions.has(`${db.name}/0`) || s.inFlight.has(`partition/${db.name}/0`)) continue
    const nodes = [...s.nodes.values()].filter((n) => live.has(n.id))
    if (nodes.length < db.replicas) {
      actions.push({
        kind: 'log',
        level: 'warn',
        msg: 'database waits for enough live nodes to be placed',
        fields: { db: db.name, replicas: db.replicas, live: nodes.length },
      })
      continue
    }
    for (const p of placePartitions(db, nodes))
      write(s, actions, `partition/${db.name}/${p.partition}`, { ...p, controllerEpoch: s.epoch }, now)
    actions.push({
      kind: 'log',
      level: 'info',
      msg: 'database placed',
      fields: { db: db.name, partitions: db.partitions, nodes: nodes.map((n) => n.id) },
    })
  }
}

/** The live replica of `p` that has applied the most (ties: the first in the replica list). */
function mostCaughtUp(
  s: ControllerState,
  p: PlacedPartition,
  live: Set<string>,
  exclude: string | null,
): string | null {
  let best: { id: string; generation: number; scn: number } | null = null
  for (const id of p.replicas) {
    if (id === exclude || !live.has(id)) continue
    const r = s.heartbeats.get(id)?.report.replicas.find((x) => x.db === p.db && x.partition === p.partition)
    const generation = r?.generation ?? -1
    const scn = r?.scn ?? -1
    if (best === null || generation > best.generation || (generation === best.generation && scn > best.scn))
      best = { id, generation, scn }
  }
  return best?.id ?? null
}

/**
 * Moves the mastership of a partition whose master is alive, demote before promote: first a
 * placement with no master (the old master reads it and steps down), then, once the old master
 * reports it no longer masters the partition, the new master under a new generation
 * (completeHandovers). With no live master there is nobody to demote: the new one is named at once.
 */
function handOver(
  s: ControllerState,
  live: Set<string>,
  actions: ControllerAction[],
  now: number,
  k: string,
  p: PlacedPartition,
  to: string,
  reason: string,
): void {
  if (p.master !== null && live.has(p.master)) {
    write(
      s,
      actions,
      `partition/${k}`,
      { ...p, master: null, handover: { from: p.master, to }, controllerEpoch: s.epoch },
      now,
    )
    actions.push({
      kind: 'log',
      level: 'info',
      msg: 'mastership handover: demoting',
      fields: { db: p.db, partition: p.partition, from: p.master, to, reason },
    })
    return
  }
  write(
    s,
    actions,
    `partition/${k}`,
    { ...withoutHandover(p), master: to, generation: p.generation + 1, controllerEpoch: s.epoch },
    now,
  )
  actions.push({
    kind: 'log',
    level: 'info',
    msg: 'mastership handover: promoting',
    fields: { db: p.db, partition: p.partition, to, generation: p.generation + 1, reason },
  })
}

function withoutHandover(p: PlacedPartition): PlacedPartition {
  const { handover: _done, ...rest } = p
  return rest
}

/** Second step of a handover: the old master has stepped down (or died), so the new one is named. */
function completeHandovers(s: ControllerState, live: Set<string>, actions: ControllerAction[], now: number): void {
  for (const [k, p] of s.partitions) {
    if (p.handover === undefined || s.inFlight.has(`partition/${k}`)) continue
    const { from, to } = p.handover
    const role = s.heartbeats.get(from)?.report.replicas.find((x) => x.db === p.db && x.partition === p.partition)?.role
    if (live.has(from) && (role === 'master' || role === 'promoting')) continue
    const next = live.has(to) ? to : mostCaughtUp(s, p, live, null)
    if (next === null) continue
    write(
      s,
      actions,
      `partition/${k}`,
      { ...withoutHandover(p), master: next, generation: p.generation + 1, controllerEpoch: s.epoch },
      now,
    )
    actions.push({
      kind: 'log',
      level: 'info',
      msg: 'mastership handover: promoting',
      fields: { db: p.db, partition: p.partition, from, to: next, generation: p.generation + 1 },
    })
  }
}

function failOver(s: ControllerState, live: Set<string>, actions: ControllerAction[], now: number): void {
  for (const [k, p] of s.partitions) {
    if (p.handover !== undefined || (p.master !== null && live.has(p.master))) continue
    // Decided already, not read back yet (write() would skip it, but the line would be logged again).
    if (s.inFlight.has(`partition/${k}`)) continue
    const next = mostCaughtUp(s, p, live, null)
    if (next === null) continue
    write(
      s,
      actions,
      `partition/${k}`,
      { ...p, master: next, generation: p.generation + 1, controllerEpoch: s.epoch },
      now,
    )
    actions.push({
      kind: 'log',
      level: 'info',
      msg: 'failover: new master',
      fields: { db: p.db, partition: p.partition, from: p.master, to: next, generation: p.generation + 1 },
    })
  }
}

function runCommands(
  s: ControllerState,
  live: Set<string>,
  actions: ControllerAction[],
  now: number,
  config: ControllerConfig,
): void {
  for (const [id, c] of s.commands) {
    if (c.type === 'rebalance') {
      if (s.inFlight.has(`command/${id}`)) continue
      // Balances now, cooldowns ignored (the operator asked), with the same rules and throttle.
      const plan = balanceLoad(s, live, actions, now, config, { cooldown: false, db: c.db })
      actions.push({
        kind: 'log',
        level: 'info',
        msg: 'rebalance requested',
        fields: { db: c.db ?? null, moves: plan.moves.length, before: plan.before, after: plan.after },
      })
      write(s, actions, `command/${id}`, null, now)
      continue
    }
    // A command waits while its partition has a decision in flight (it applies to what is read back).
    if (s.inFlight.has(`command/${id}`) || s.inFlight.has(`partition/${c.db}/${c.partition}`)) continue
    const p = s.partitions.get(`${c.db}/${c.partition}`)
    if (p?.handover !== undefined) continue
    if (
      c.type === 'move-master' &&
      p !== undefined &&
      p.replicas.includes(c.node) &&
      p.master !== c.node &&
      live.has(c.node)
    ) {
      // The target becomes the preferred master (first replica), so the move sticks.
      const replicas = [c.node, ...p.replicas.filter((r) => r !== c.node)]
      handOver(s, live, actions, now, `${c.db}/${c.partition}`, { ...p, replicas }, c.node, 'requested')
    }
    // Done (or impossible: the admin API checked what it could; the requester sees no move).
    write(s, actions, `command/${id}`, null, now)
  }
}

/**
 * Moves replicas so that every partition has its replica count on live, not decommissioned nodes,
 * spread as evenly as the nodes allow, and masters back on their preferred replicas: minimal
 * movement, one replica at a time per partition, at most `maxConcurrentMoves` bootstrapping at once.
 *
 * A move is two placements: first the new replica is added (`move: {from, to}`), it bootstraps
 * (snapshot + log) while the old one still serves; once it has caught up with its master the old
 * one is dropped — after its mastership, if it had it, has moved to a caught-up replica.
 */
function rebalance(
  s: ControllerState,
  live: Set<string>,
  actions: ControllerAction[],
  now: number,
  config: ControllerConfig,
): void {
  const usable = [...live].filter((id) => !s.decommissioned.has(id)).sort()
  if (usable.length === 0) return
  const lost = (id: string) =>
    s.decommissioned.has(id) || (!live.has(id) && now - (s.deadSince.get(id) ?? now) >= config.rereplicationDelayMs)

  // Finish moves whose new replica has caught up.
  let moving = 0
  for (const [k, p] of s.partitions) {
    if (p.move === undefined) continue
    moving++
    if (s.inFlight.has(`partition/${k}`)) continue
    if (lost(p.move.to) && p.master !== p.move.to) {
      // The new replica's node is gone itself: the move is abandoned (a later tick starts another).
      // Not once mastership has moved to it: dropping it would leave a master outside the
      // replicas; the move finishes instead (or failover moves the mastership first), and the
      // lost replica is then moved away like any other.
      const { move: abandoned, ...rest } = p
      write(
        s,
        actions,
        `partition/${k}`,
        { ...rest, replicas: p.replicas.filter((r) => r !== abandoned.to), controllerEpoch: s.epoch },
        now,
      )
      actions.push({
        kind: 'log',
        level: 'warn',
        msg: 'rebalance: move abandoned, its target is gone',
        fields: { db: p.db, partition: p.partition, from: abandoned.from, to: abandoned.to },
      })
      continue
    }
    if (!caughtUp(s, p, p.move.to, config)) continue
    if (p.handover !== undefined) continue
    if (p.master === p.move.from && live.has(p.move.from)) {
      // Hand mastership to the new replica first (the old one is dropped after).
      handOver(s, live, actions, now, k, p, p.move.to, 'the replica it was on moves away')
      continue
    }
    // The new replica takes the old one's place in the list (and so its preference for mastership).
    const { move: done, ...rest } = p
    const replicas = p.replicas.filter((r) => r !== done.to).map((r) => (r === done.from ? done.to : r))
    write(s, actions, `partition/${k}`, { ...rest, replicas, controllerEpoch: s.epoch }, now)
    actions.push({
      kind: 'log',
      level: 'info',
      msg: 'rebalance: old replica dropped',
      fields: { db: p.db, partition: p.partition, dropped: p.move.from, kept: p.move.to },
    })
  }

  // Start new moves: lost replicas first, then spreading load onto under-used nodes.
  const load = new Map(usable.map((id) => [id, 0]))
  for (const p of s.partitions.values()) for (const r of p.replicas) if (load.has(r)) load.set(r, load.get(r)! + 1)
  for (const [k, p] of s.partitions) {
    if (moving >= config.maxConcurrentMoves) break
    if (
      p.move !== undefined ||
      p.handover !== undefined ||
      s.inFlight.has(`partition/${k}`) ||
      p.master === null ||
      !live.has(p.master)
    )
      continue
    let from = p.replicas.find(lost)
    if (from === undefined) {
      // Spread: move a replica off the most loaded node if another node is two or more below it.
      const busiest = [...p.replicas]
        .filter((r) => load.has(r))
        .sort((a, b) => load.get(b)! - load.get(a)! || a.localeCompare(b))[0]
      const idlest = usable
        .filter((n) => !p.replicas.includes(n))
        .sort((a, b) => load.get(a)! - load.get(b)! || a.localeCompare(b))[0]
      if (busiest === undefined || idlest === undefined || load.get(busiest)! - load.get(idlest)! < 2) continue
      from = busiest
    }
    const to = chooseTarget(s, p, usable, load)
    if (to === undefined) continue
    load.set(to, load.get(to)! + 1)
    if (load.has(from)) load.set(from, load.get(from)! - 1)
    moving++
    write(
      s,
      actions,
      `partition/${k}`,
      { ...p, replicas: [...p.replicas, to], move: { from, to }, controllerEpoch: s.epoch },
      now,
    )
    actions.push({
      kind: 'log',
      level: 'info',
      msg: 'rebalance: new replica bootstrapping',
      fields: { db: p.db, partition: p.partition, from, to, reason: lost(from) ? 'lost' : 'spread' },
    })
  }

  // Preferred masters (Kafka's preferred leader election): the first replica of each partition is
  // its preferred master (placement balances them); when it is live and caught up but another
  // replica masters the partition (after a failover), mastership goes back to it.
  for (const [k, p] of s.partitions) {
    const preferred = p.replicas[0]
    if (
      p.move !== undefined ||
      p.handover !== undefined ||
      s.inFlight.has(`partition/${k}`) ||
      p.master === preferred ||
      !live.has(preferred) ||
      s.decommissioned.has(preferred)
    )
      continue
    if (p.master === null || !live.has(p.master)) continue // failover's job
    if (!caughtUp(s, p, preferred, config)) continue
    handOver(s, live, actions, now, k, p, preferred, 'back to the preferred replica')
  }
}

/**
 * The partitions as the load balancer sees them: rate, and whether it may move now (nothing in
 * progress or in flight, its master live, and, for the continuous balancer, out of its cooldown).
 */
export function partitionLoads(
  s: ControllerState,
  live: Set<string>,
  now: number,
  config: ControllerConfig,
  options: { cooldown: boolean; db?: string },
): PartitionLoad[] {
  return [...s.partitions].map(([k, p]) => ({
    db: p.db,
    partition: p.partition,
    master: p.master,
    replicas: p.replicas,
    rate: s.rates.get(k)?.rate ?? 0,
    movable:
      (options.db === undefined || p.db === options.db) &&
      p.move === undefined &&
      p.handover === undefined &&
      !s.inFlight.has(`partition/${k}`) &&
      p.master !== null &&
      live.has(p.master) &&
      !(options.cooldown && now - (s.loadMovedAt.get(k) ?? -Infinity) < config.loadMoveCooldownMs),
  }))
}

/**
 * Mastership moves by write load (balance.ts), carried out as planned handoffs (demote before
 * promote) that make the target the preferred master, so that the preferred-master rule keeps
 * them. Handovers and replica moves in progress count against `maxConcurrentMoves`.
 */
function balanceLoad(
  s: ControllerState,
  live: Set<string>,
  actions: ControllerAction[],
  now: number,
  config: ControllerConfig,
  options: { cooldown: boolean; db?: string },
): BalancePlan {
  const usable = [...live].filter((id) => !s.decommissioned.has(id)).sort()
  const none: BalancePlan = { before: {}, after: {}, moves: [] }
  // Not before every mastered partition's rate is measured: a partial view looks skewed.
  for (const [k, p] of s.partitions)
    if (p.master !== null && live.has(p.master) && (s.rates.get(k)?.rate ?? null) === null) return none
  let busy = 0
  for (const [k, p] of s.partitions)
    if (p.move !== undefined || p.handover !== undefined || s.inFlight.has(`partition/${k}`)) busy++
  const plan = planMasterMoves(
    usable,
    partitionLoads(s, live, now, config, options),
    (p, node) => caughtUp(s, s.partitions.get(`${p.db}/${p.partition}`)!, node, config),
    Math.max(0, config.maxConcurrentMoves - busy),
    config,
  )
  for (const m of plan.moves) {
    const k = `${m.db}/${m.partition}`
    const p = s.partitions.get(k)!
    const replicas = [m.to, ...p.replicas.filter((r) => r !== m.to)]
    s.loadMovedAt.set(k, now)
    handOver(s, live, actions, now, k, { ...p, replicas }, m.to, `write load ${m.rate.toFixed(1)}/s`)
  }
  if (plan.moves.length > 0)
    actions.push({
      kind: 'log',
      level: 'info',
      msg: 'balance: masters moved by write load',
      fields: { moves: plan.moves.length, before: plan.before, after: plan.after },
    })
  return plan
}

/** A usable node not holding `p`: in a rack its replicas do not use if possible, then the least loaded. */
function chooseTarget(
  s: ControllerState,
  p: PlacedPartition,
  usable: string[],
  load: Map<string, number>,
): string | undefined {
  const racks = new Set(p.replicas.map((r) => s.nodes.get(r)?.rack ?? null).filter((r) => r !== null))
  const candidates = usable.filter((n) => !p.replicas.includes(n))
  const newRack = (n: string) => {
    const rack = s.nodes.get(n)?.rack ?? null
    return rack === null || !racks.has(rack) ? 0 : 1
  }
  return candidates.sort((a, b) => newRack(a) - newRack(b) || load.get(a)! - load.get(b)! || a.localeCompare(b))[0]
}

/** Whether `replica` reports having applied the partition to within `caughtUpScns` of its master. */
function caughtUp(s: ControllerState, p: PlacedPartition, replica: string, config: ControllerConfig): boolean {
  const report = (id: string | null) =>
    id === null
      ? undefined
      : s.heartbeats.get(id)?.report.replicas.find((x) => x.db === p.db && x.partition === p.partition)
  const r = report(replica)
  const m = report(p.master)
  if (r === undefined || m === undefined || r.role === 'bootstrapping') return false
  if (r.generation !== m.generation) return r.generation > m.generation
  return m.scn - r.scn <= config.caughtUpScns
}
