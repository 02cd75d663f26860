// The rack-aware replica assignment of replication topics (src/db/rack-assignment.ts), pure.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type BrokerRack, rackAwareAssignment } from '../../src/db/rack-assignment.ts'

const brokers = (spec: Record<string, number[]>): BrokerRack[] =>
  Object.entries(spec).flatMap(([rack, ids]) => ids.map((id) => ({ id, rack })))

/** Checks what every assignment must hold, and returns per-broker leader and replica counts. */
function check(bs: BrokerRack[], partitions: number, rf: number) {
  const a = rackAwareAssignment(bs, partitions, rf)
  assert.ok(a !== null)
  const rackOf = new Map(bs.map((b) => [b.id, b.rack]))
  const racks = new Set(bs.map((b) => b.rack)).size
  const leaders = new Map<number, number>()
  const replicas = new Map<number, number>()
  assert.deepEqual(
    a.map((x) => x.partition),
    Array.from({ length: partitions }, (_, p) => p),
  )
  for (const { brokers: ids } of a) {
    assert.equal(ids.length, rf)
    assert.equal(new Set(ids).size, rf, `replicas on distinct brokers: ${ids.join(',')}`)
    // Distinct racks where possible: as many racks as replicas allow.
    assert.equal(new Set(ids.map((id) => rackOf.get(id))).size, Math.min(rf, racks), `racks of ${ids.join(',')}`)
    leaders.set(ids[0], (leaders.get(ids[0]) ?? 0) + 1)
    for (const id of ids) replicas.set(id, (replicas.get(id) ?? 0) + 1)
  }
  return { a, leaders, replicas }
}

const spread = (m: Map<number, number>, bs: BrokerRack[]) => {
  const counts = bs.map((b) => m.get(b.id) ?? 0)
  return Math.max(...counts) - Math.min(...counts)
}

test('three racks of two brokers: every partition spans the three racks, leaders evenly spread', () => {
  const bs = brokers({ a: [1, 2], b: [3, 4], c: [5, 6] })
  const { leaders, replicas } = check(bs, 12, 3)
  assert.equal(spread(leaders, bs), 0)
  assert.ok(spread(replicas, bs) <= 1, JSON.stringify([...replicas]))
})

test('uneven racks (3, 2, 1 brokers): distinct racks still, every broker leads', () => {
  const bs = brokers({ a: [1, 2, 3], b: [4, 5], c: [6] })
  const { leaders } = check(bs, 6, 3)
  assert.equal(spread(leaders, bs), 0)
})

test('fewer racks than replicas: both racks used, replicas on distinct brokers', () => {
  const bs = brokers({ a: [1, 2], b: [3, 4] })
  const { a } = check(bs, 8, 3)
  assert.deepEqual(a[0].brokers, [1, 3, 2])
})

test('one rack: distinct brokers, like the broker itself would', () => {
  check(brokers({ a: [1, 2, 3] }), 5, 3)
})

test('brokers without racks, or fewer brokers than replicas: no explicit assignment', () => {
  assert.equal(
    rackAwareAssignment(
      [1, 2, 3].map((id) => ({ id, rack: null })),
      3,
      3,
    ),
    null,
  )
  assert.equal(rackAwareAssignment(brokers({ a: [1], b: [2] }), 3, 3), null)
})

test('a broker missing its rack counts as a rack of its own', () => {
  const bs = [...brokers({ a: [1, 2] }), { id: 3, rack: null }]
  // check() counts the rackless broker's rack as its own: every partition spans it and rack a.
  check(bs, 3, 2)
})

test('the same input gives the same assignment whatever the order of the brokers', () => {
  const bs = brokers({ a: [1, 2], b: [3, 4], c: [5] })
  assert.deepEqual(rackAwareAssignment(bs, 7, 3), rackAwareAssignment([...bs].reverse(), 7, 3))
})
