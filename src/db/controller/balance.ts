// Balancing masters by measured write load (the goal Cruise Control has for Kafka: no node carrying
// much more write traffic than the others). Pure, so that the controller plans with it and the
// admin API's dry run shows exactly the plan the controller would carry out.
//
// The write rate of a partition is how fast its master's applied scn advances (one scn per
// transaction), read from the heartbeats every node writes anyway: nothing is added to them. The
// controller keeps an exponentially smoothed rate per partition (updateRate). A node's master load
// is the sum of the rates of the partitions it masters. When the most loaded live node carries
// more than `loadImbalanceFactor` times the least loaded one and at least `loadMinWritesPerSec`
// more (so an idle or lightly used cluster never churns), mastership moves from the most loaded
// node to a caught-up replica on a less loaded node, through the controller's planned handoff
// (demote before promote). A move is taken only if it lowers the busier node of the pair (the
// target ends below where the source was), by at least half of `loadMinWritesPerSec` (a handoff
// pauses the partition's writes for a moment: moving a trickle is not worth it). So a single hot partition is never bounced between
// nodes, and with steady rates every move lowers the loads in a strict order (no cycles); against
// rates that change, each moved partition then waits `loadMoveCooldownMs` before it moves again.

export interface BalanceSettings {
  /** The busiest node must exceed the idlest by this factor (e.g. 1.5)… */
  loadImbalanceFactor: number
  /** …and by at least this many writes per second. */
  loadMinWritesPerSec: number
}

export interface PartitionLoad {
  db: string
  partition: number
  master: string | null
  replicas: string[]
  /** Smoothed writes per second. */
  rate: number
  /** False while a move, a handover or a decision is in flight, or (for the continuous balancer) in its cooldown. */
  movable: boolean
}

export interface MasterMove {
  db: string
  partition: number
  from: string
  to: string
  /** The partition's writes per second, which move with its mastership. */
  rate: number
}

export interface BalancePlan {
  /** Writes per second mastered by each usable live node, now and after the moves. */
  before: Record<string, number>
  after: Record<string, number>
  moves: MasterMove[]
}

/** A partition's smoothed write rate, with the last sample of its master's applied (generation, scn). */
export interface RateSample {
  generation: number
  scn: number
  at: number
  /** Writes per second; null until a first interval has been measured. */
  rate: number | null
}

/**
 * The next smoothed rate of a partition from its master's report at `now`: a sample every
 * `sampleMs` at the soonest, smoothed with time constant `smoothingMs` (the weight of a sample
 * depends on how long it covers, so irregular heartbeats do not skew it). The first interval
 * measured is the rate itself: starting from 0 would make partitions measured at different times
 * look unequal for a while. A new generation restarts the scn count: the sample is taken as a new
 * baseline and the rate kept.
 */
export function updateRate(
  prev: RateSample | undefined,
  generation: number,
  scn: number,
  now: number,
  sampleMs: number,
  smoothingMs: number,
): RateSample | undefined {
  if (prev === undefined) return { generation, scn, at: now, rate: null }
  if (generation !== prev.generation || scn < prev.scn) return { generation, scn, at: now, rate: prev.rate }
  const dt = now - prev.at
  if (dt < sampleMs) return undefined
  const instant = ((scn - prev.scn) * 1000) / dt
  const weight = 1 - Math.exp(-dt / Math.max(1, smoothingMs))
  return { generation, scn, at: now, rate: prev.rate === null ? instant : prev.rate + weight * (instant - prev.rate) }
}

/** Writes per second mastered by each of `nodes` (masters elsewhere are not counted). */
export function masterLoads(nodes: string[], partitions: PartitionLoad[]): Map<string, number> {
  const loads = new Map(nodes.map((n) => [n, 0]))
  for (const p of partitions)
    if (p.master !== null && loads.has(p.master)) loads.set(p.master, loads.get(p.master)! + p.rate)
  return loads
}

/** Whether the busiest node is out of balance with the idlest, by the settings. */
export function imbalanced(loads: Map<string, number>, settings: BalanceSettings): boolean {
  if (loads.size < 2) return false
  const values = [...loads.values()]
  const max = Math.max(...values)
  const min = Math.min(...values)
  return max > settings.loadImbalanceFactor * min && max - min >= settings.loadMinWritesPerSec
}

/**
 * At most `limit` mastership moves, greedily: while the cluster is out of balance, the move off the
 * busiest node that leaves the pair (source, target) with the lowest busier side, among movable
 * partitions and targets `canMaster` accepts (live, usable, caught-up replicas).
 */
export function planMasterMoves(
  nodes: string[],
  partitions: PartitionLoad[],
  canMaster: (p: PartitionLoad, node: string) => boolean,
  limit: number,
  settings: BalanceSettings,
): BalancePlan {
  const loads = masterLoads(nodes, partitions)
  const before = Object.fromEntries([...loads].sort(([a], [b]) => a.localeCompare(b)))
  const moves: MasterMove[] = []
  const moved = new Set<PartitionLoad>()
  while (moves.length < limit && imbalanced(loads, settings)) {
    const busiest = [...loads].sort(([a, x], [b, y]) => y - x || a.localeCompare(b))[0][0]
    const from = loads.get(busiest)!
    let best: { p: PartitionLoad; to: string; worse: number } | undefined
    for (const p of partitions) {
      if (p.master !== busiest || !p.movable || moved.has(p) || p.rate <= 0) continue
      for (const to of p.replicas) {
        if (to === busiest || !loads.has(to) || !canMaster(p, to)) continue
        const target = loads.get(to)! + p.rate
        // Only moves that leave the target below where the source was: no bouncing.
        if (target >= from) continue
        const worse = Math.max(from - p.rate, target)
        // Each handoff pauses the partition's writes for a moment: not worth it for a trickle.
        if (from - worse < settings.loadMinWritesPerSec / 2) continue
        if (best === undefined || worse < best.worse) best = { p, to, worse }
      }
    }
    if (best === undefined) break
    moved.add(best.p)
    loads.set(busiest, from - best.p.rate)
    loads.set(best.to, loads.get(best.to)! + best.p.rate)
    moves.push({ db: best.p.db, partition: best.p.partition, from: busiest, to: best.to, rate: best.p.rate })
  }
  const after = Object.fromEntries([...loads].sort(([a], [b]) => a.localeCompare(b)))
  return { before, after, moves }
}
