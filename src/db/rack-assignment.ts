// Rack-aware replica assignment for the replication topics Cortado creates on an external Kafka,
// in the spirit of Kafka's own rack-aware assignment: with the brokers' racks known (Metadata
// reports `broker.rack`), each partition's replicas go to distinct racks where possible, so losing
// a rack loses at most one replica of each partition while racks suffice, and leaders (the first
// replica) spread over the brokers. Without racks the broker's own assignment is kept.

export interface BrokerRack {
  id: number
  rack: string | null
}

export interface ReplicaAssignment {
  partition: number
  /** Broker ids, the preferred leader first. */
  brokers: number[]
}

/**
 * Brokers ordered rack by rack in turn (a1 b1 c1 a2 b2 …), so that neighbours in the order sit in
 * different racks; racks and brokers within them sorted for a stable result.
 */
export function rackAlternatingOrder(brokers: BrokerRack[]): BrokerRack[] {
  const byRack = new Map<string, BrokerRack[]>()
  for (const b of [...brokers].sort((x, y) => x.id - y.id)) {
    const rack = b.rack ?? ''
    let list = byRack.get(rack)
    if (list === undefined) byRack.set(rack, (list = []))
    list.push(b)
  }
  const racks = [...byRack.keys()].sort().map((r) => byRack.get(r)!)
  const order: BrokerRack[] = []
  for (let i = 0; order.length < brokers.length; i++) for (const r of racks) if (i < r.length) order.push(r[i])
  return order
}

/**
 * The replica assignment of `partitions` partitions with `replicationFactor` replicas, or null
 * when no broker declares a rack (the broker's default assignment is as good) or when there are
 * fewer brokers than replicas (the broker refuses the topic either way, with its own error).
 *
 * Partition p's leader is the p-th broker of the rack-alternating order, so leaders go round every
 * broker and every rack. Its followers are taken walking on from the leader, each time the first
 * broker whose rack the partition does not use yet; once every rack is used (fewer racks than
 * replicas), the first broker not used yet. The walk starts one further for each full round of
 * partitions, so that followers of the same leader do not always land on the same brokers.
 */
export function rackAwareAssignment(
  brokers: BrokerRack[],
  partitions: number,
  replicationFactor: number,
): ReplicaAssignment[] | null {
  if (!brokers.some((b) => b.rack !== null) || brokers.length < replicationFactor || replicationFactor < 1) return null
  const order = rackAlternatingOrder(brokers)
  const n = order.length
  const rackCount = new Set(order.map((b) => b.rack ?? '')).size
  const out: ReplicaAssignment[] = []
  for (let p = 0; p < partitions; p++) {
    const leader = p % n
    const shift = Math.floor(p / n) % Math.max(1, n - 1)
    const chosen = [order[leader]]
    const racks = new Set([order[leader].rack ?? ''])
    while (chosen.length < replicationFactor) {
      const needNewRack = racks.size < rackCount
      let pick: BrokerRack | undefined
      for (let i = 1; i < n && pick === undefined; i++) {
        const b = order[(leader + ((shift + i - 1) % (n - 1)) + 1) % n]
        if (chosen.includes(b) || (needNewRack && racks.has(b.rack ?? ''))) continue
        pick = b
      }
      // Unreachable while brokers >= replicas, kept so a bug cannot loop forever.
      if (pick === undefined) return null
      chosen.push(pick)
      racks.add(pick.rack ?? '')
    }
    out.push({ partition: p, brokers: chosen.map((b) => b.id) })
  }
  return out
}
