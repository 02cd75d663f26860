// The cluster metadata model (src/db/metadata/model.ts): validation of database and table
// definitions, schema evolution, the partitioning function, and static rack-aware placement.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DbError, type DbErrorCode } from '../../../src/db/errors.ts'
import {
  type DatabaseInfo,
  MAX_KEY_PARTS,
  MAX_PARTITIONS,
  MAX_TABLES,
  type NodeInfo,
  parseDatabase,
  parseTable,
  partitionOf,
  placePartitions,
  topicOf,
  withSchemaVersion,
} from '../../../src/db/metadata/model.ts'

const schema = (fields: { name: string; type: unknown; default?: unknown }[], name = 'Order') => ({
  type: 'record',
  name,
  fields,
})
const ORDER = schema([
  { name: 'customer', type: 'string' },
  { name: 'id', type: 'string' },
  { name: 'status', type: 'string' },
  { name: 'total', type: 'int' },
])
const table = { key: ['customer', 'id'], schema: ORDER, indexes: ['status'] }

function throwsDb(fn: () => unknown, code: DbErrorCode, message: RegExp, label = message.source): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof DbError, `${label}: expected a DbError, got ${String(e)}`)
      assert.equal(e.code, code, `${label}: ${e.message}`)
      assert.match(e.message, message, label)
      assert.ok(e.status >= 400 && e.status < 500, label)
      return true
    },
    label,
  )
}

test('a valid database parses, with defaults and its topic', () => {
  const db = parseDatabase('shop', {
    partitions: 8,
    tables: {
      orders: table,
      customers: { key: ['customer'], schema: schema([{ name: 'customer', type: 'string' }], 'Customer') },
    },
  })
  assert.deepEqual(db, {
    name: 'shop',
    partitions: 8,
    replicas: 3,
    topic: 'cortado-db-shop',
    tables: {
      orders: { key: ['customer', 'id'], schemas: [ORDER], indexes: ['status'] },
      customers: {
        key: ['customer'],
        schemas: [schema([{ name: 'customer', type: 'string' }], 'Customer')],
        indexes: [],
      },
    },
  })
  assert.equal(topicOf('shop'), 'cortado-db-shop')
  assert.equal(parseDatabase('x', { partitions: 1, replicas: 1, tables: { t: table } }).replicas, 1)
  assert.equal(
    parseDatabase('x', { partitions: MAX_PARTITIONS, replicas: 7, tables: { t: table } }).partitions,
    MAX_PARTITIONS,
  )
})

test('parseDatabase refuses each invalid definition with INVALID_DATABASE and a clear message', () => {
  const ok = { partitions: 4, replicas: 3, tables: { t: table } }
  const cases: [string, string, unknown, RegExp][] = [
    ['empty name', '', ok, /database name "" must match/],
    ['name starting with a digit', '1db', ok, /database name "1db"/],
    ['name with a slash', 'a/b', ok, /database name/],
    ['name too long', 'a'.repeat(65), ok, /database name/],
    ['body null', 'db', null, /expected \{"partitions"/],
    ['body an array', 'db', [ok], /expected \{"partitions"/],
    ['body a string', 'db', 'x', /expected \{"partitions"/],
    ['no partitions', 'db', { ...ok, partitions: undefined }, /partitions must be an integer from 1 to 1024/],
    ['zero partitions', 'db', { ...ok, partitions: 0 }, /partitions must be/],
    ['too many partitions', 'db', { ...ok, partitions: MAX_PARTITIONS + 1 }, /partitions must be/],
    ['fractional partitions', 'db', { ...ok, partitions: 2.5 }, /partitions must be/],
    ['partitions a string', 'db', { ...ok, partitions: '4' }, /partitions must be/],
    ['zero replicas', 'db', { ...ok, replicas: 0 }, /replicas must be an integer from 1 to 7/],
    ['eight replicas', 'db', { ...ok, replicas: 8 }, /replicas must be/],
    ['replicas a string', 'db', { ...ok, replicas: '3' }, /replicas must be/],
    ['fractional replicas', 'db', { ...ok, replicas: 1.5 }, /replicas must be/],
    ['no tables', 'db', { ...ok, tables: undefined }, /tables must be an object/],
    ['tables a list', 'db', { ...ok, tables: [table] }, /tables must be an object/],
    ['empty tables', 'db', { ...ok, tables: {} }, /1 to 256 tables/],
    [
      'too many tables',
      'db',
      { ...ok, tables: Object.fromEntries(Array.from({ length: MAX_TABLES + 1 }, (_, i) => [`t${i}`, table])) },
      /1 to 256 tables/,
    ],
    ['a bad table inside', 'db', { ...ok, tables: { t: { ...table, key: [] } } }, /table t: key must be/],
  ]
  for (const [label, name, body, message] of cases)
    throwsDb(() => parseDatabase(name, body), 'INVALID_DATABASE', message, label)
})

test('parseTable refuses each invalid table with INVALID_DATABASE, naming the table and the problem', () => {
  const cases: [string, string, unknown, RegExp][] = [
    ['bad table name', 'my table', table, /table name "my table" must match/],
    ['body null', 't', null, /table t: expected an object/],
    ['body an array', 't', [], /table t: expected an object/],
    ['no key', 't', { ...table, key: undefined }, /table t: key must be a list of 1 to 8 field names/],
    ['empty key', 't', { ...table, key: [] }, /table t: key must be/],
    ['key a string', 't', { ...table, key: 'customer' }, /table t: key must be/],
    ['key with a bad name', 't', { ...table, key: ['cust omer'] }, /table t: key must be/],
    ['key with a number', 't', { ...table, key: [1] }, /table t: key must be/],
    [
      'key too long',
      't',
      { ...table, key: Array.from({ length: MAX_KEY_PARTS + 1 }, (_, i) => `k${i}`) },
      /table t: key must be/,
    ],
    ['repeated key field', 't', { ...table, key: ['customer', 'customer'] }, /table t: key fields repeat/],
    ['indexes not a list', 't', { ...table, indexes: 'status' }, /table t: indexes must be a list of field names/],
    ['index with a bad name', 't', { ...table, indexes: ['sta tus'] }, /table t: indexes must be/],
    ['index a number', 't', { ...table, indexes: [3] }, /table t: indexes must be/],
    [
      'key field not in the schema',
      't',
      { ...table, key: ['customer', 'nope'] },
      /table t: key field nope is not in the schema/,
    ],
    [
      'indexed field not in the schema',
      't',
      { ...table, indexes: ['nope'] },
      /table t: indexed field nope is not in the schema/,
    ],
  ]
  for (const [label, name, body, message] of cases)
    throwsDb(() => parseTable(name, body), 'INVALID_DATABASE', message, label)
  // Indexes are optional.
  assert.deepEqual(parseTable('t', { key: ['customer'], schema: ORDER }).indexes, [])
  assert.equal(MAX_KEY_PARTS, 8)
})

test('parseTable refuses a schema that is not an Avro record with INVALID_SCHEMA, naming the table', () => {
  const bad: [string, unknown][] = [
    ['no schema', undefined],
    ['a string', 'string'],
    ['an array', [ORDER]],
    ['not Avro', { type: 'record', name: 'R', fields: [{ name: 'x', type: 'nonsense' }] }],
    ['an enum', { type: 'enum', name: 'E', symbols: ['A'] }],
    ['no fields', { type: 'record', name: 'R' }],
  ]
  for (const [label, s] of bad)
    throwsDb(() => parseTable('t', { ...table, schema: s }), 'INVALID_SCHEMA', /^table t: /, label)
  throwsDb(
    () => parseDatabase('db', { partitions: 1, tables: { orders: { ...table, schema: 'int' } } }),
    'INVALID_SCHEMA',
    /table orders:/,
    'through parseDatabase',
  )
})

test('withSchemaVersion: a compatible addition (a field with a default, a promotion) is a new version', () => {
  const t = parseTable('orders', table)
  const v2 = schema([
    { name: 'customer', type: 'string' },
    { name: 'id', type: 'string' },
    { name: 'status', type: 'string' },
    { name: 'total', type: 'long' },
    { name: 'note', type: ['null', 'string'], default: null },
  ])
  const t2 = withSchemaVersion(t, v2)
  assert.deepEqual(t2.schemas, [ORDER, v2])
  assert.deepEqual(t2.key, t.key)
  assert.deepEqual(t2.indexes, t.indexes)
  assert.deepEqual(t.schemas, [ORDER], 'the original is not modified')
  // Removing a field that is neither key nor indexed is fine too (readers ignore it).
  const v3 = schema([
    { name: 'customer', type: 'string' },
    { name: 'id', type: 'string' },
    { name: 'status', type: 'string' },
    { name: 'total', type: 'long' },
  ])
  assert.equal(withSchemaVersion(t2, v3).schemas.length, 3)
})

test('withSchemaVersion refuses removing a key or indexed field, or an incompatible change, with INCOMPATIBLE_SCHEMA', () => {
  const t = parseTable('orders', table)
  const without = (name: string) => schema(ORDER.fields.filter((f) => f.name !== name))
  throwsDb(() => withSchemaVersion(t, without('id')), 'INCOMPATIBLE_SCHEMA', /key field id cannot be removed/)
  throwsDb(
    () => withSchemaVersion(t, without('customer')),
    'INCOMPATIBLE_SCHEMA',
    /key field customer cannot be removed/,
  )
  throwsDb(
    () => withSchemaVersion(t, without('status')),
    'INCOMPATIBLE_SCHEMA',
    /indexed field status cannot be removed/,
  )
  // A field added without a default cannot read old documents.
  throwsDb(
    () => withSchemaVersion(t, schema([...ORDER.fields, { name: 'phone', type: 'string' }])),
    'INCOMPATIBLE_SCHEMA',
    /cannot read documents of the previous version/,
  )
  // Narrowing or changing a type.
  throwsDb(
    () => withSchemaVersion(t, schema([...ORDER.fields.slice(0, 3), { name: 'total', type: 'string' }])),
    'INCOMPATIBLE_SCHEMA',
    /cannot read/,
  )
  // Compatibility is checked against every earlier version, not only the latest.
  const t2 = withSchemaVersion(t, schema([...ORDER.fields.slice(0, 3), { name: 'total', type: 'long' }]))
  const longOnly = withSchemaVersion(
    t2,
    schema([...ORDER.fields.slice(0, 3), { name: 'total', type: 'long' }, { name: 'x', type: 'int', default: 0 }]),
  )
  assert.equal(longOnly.schemas.length, 3)
  throwsDb(
    () =>
      withSchemaVersion(
        t2,
        schema([...ORDER.fields.slice(0, 3), { name: 'total', type: 'double' }, { name: 'x', type: 'boolean' }]),
      ),
    'INCOMPATIBLE_SCHEMA',
    /cannot read/,
  )
  // A schema that is not valid at all is INVALID_SCHEMA.
  throwsDb(
    () => withSchemaVersion(t, { type: 'record', name: 'R', fields: [{ name: 'x', type: 'nonsense' }] }),
    'INVALID_SCHEMA',
    /not a valid Avro schema/,
  )
  throwsDb(() => withSchemaVersion(t, 'string'), 'INVALID_SCHEMA', /Avro record/)
})

test('partitionOf is stable (MD5 of the key, first 4 bytes big-endian, modulo the count)', () => {
  // Golden values: md5('alice') = 6384e2b2…, md5('') = d41d8cd9…, md5('é' UTF-8) = 66ddcd97…
  const golden: [string, number, number][] = [
    ['alice', 8, 0x6384e2b2 % 8],
    ['alice', 1024, 0x6384e2b2 % 1024],
    ['alice', 1000, 0x6384e2b2 % 1000],
    ['', 8, 0xd41d8cd9 % 8],
    ['é', 7, 0x66ddcd97 % 7],
    ['bob', 1024, 0x9f9d51bc % 1024],
  ]
  for (const [key, n, expected] of golden) assert.equal(partitionOf(key, n), expected, `${key} mod ${n}`)
  assert.deepEqual([partitionOf('alice', 8), partitionOf('alice', 1024), partitionOf('', 8)], [2, 690, 1])
  for (let i = 0; i < 100; i++) assert.equal(partitionOf(`k${i}`, 17), partitionOf(`k${i}`, 17))
  assert.equal(partitionOf('anything', 1), 0)
})

test('partitionOf stays within range and is roughly uniform', () => {
  for (const n of [1, 2, 3, 7, 16, 1000, MAX_PARTITIONS]) {
    for (let i = 0; i < 2000; i++) {
      const p = partitionOf(`key-${n}-${i}`, n)
      assert.ok(Number.isInteger(p) && p >= 0 && p < n, `partitionOf(key-${n}-${i}, ${n}) = ${p}`)
    }
  }
  // Chi-square over 16 partitions with 64k sequential keys: well under the 0.001 critical value (37.7 for 15 dof).
  const n = 16
  const keys = 65_536
  const counts = new Array<number>(n).fill(0)
  for (let i = 0; i < keys; i++) counts[partitionOf(`user-${i}`, n)]++
  const expected = keys / n
  const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0)
  assert.ok(chi2 < 37.7, `chi-square ${chi2.toFixed(1)}: ${counts.join(',')}`)
  for (const c of counts) assert.ok(Math.abs(c - expected) < expected * 0.05, counts.join(','))
})

const node = (id: string, rack: string | null = null): NodeInfo => ({
  id,
  url: `http://${id}`,
  rack,
  pid: 1,
  startedAt: 0,
})
const dbInfo = (partitions: number, replicas: number): DatabaseInfo => ({
  name: 'shop',
  partitions,
  replicas,
  topic: topicOf('shop'),
  tables: {},
})

function checkPlacement(db: DatabaseInfo, nodes: NodeInfo[]): ReturnType<typeof placePartitions> {
  const placement = placePartitions(db, nodes)
  const ids = new Set(nodes.map((n) => n.id))
  assert.equal(placement.length, db.partitions)
  placement.forEach((p, i) => {
    assert.equal(p.db, db.name)
    assert.equal(p.partition, i)
    assert.equal(p.generation, 1)
    assert.equal(p.replicas.length, db.replicas)
    assert.equal(new Set(p.replicas).size, db.replicas, `partition ${i}: replicas repeat: ${p.replicas.join(',')}`)
    assert.ok(p.replicas.every((r) => ids.has(r)))
    assert.equal(p.master, p.replicas[0])
  })
  // Masters balanced: per-node counts differ by at most one (nodes with none count as zero).
  const masters = new Map([...ids].map((id) => [id, 0]))
  for (const p of placement) masters.set(p.master!, masters.get(p.master!)! + 1)
  const counts = [...masters.values()]
  assert.ok(
    Math.max(...counts) - Math.min(...counts) <= 1,
    `master counts ${JSON.stringify(Object.fromEntries(masters))}`,
  )
  return placement
}

test('placePartitions: distinct replicas, masters balanced, for many shapes', () => {
  for (const nodes of [1, 2, 3, 4, 5, 7]) {
    for (const replicas of [1, 2, 3]) {
      if (replicas > nodes) continue
      for (const partitions of [1, 2, 3, 8, 13, 64])
        checkPlacement(
          dbInfo(partitions, replicas),
          Array.from({ length: nodes }, (_, i) => node(`n${i}`)),
        )
    }
  }
})

test('placePartitions is rack-aware: 3 racks × 2 nodes, 3 replicas → 3 distinct racks per partition', () => {
  const nodes = [
    node('a1', 'r1'),
    node('b1', 'r2'),
    node('c1', 'r3'),
    node('a2', 'r1'),
    node('b2', 'r2'),
    node('c2', 'r3'),
  ]
  const rackOf = new Map(nodes.map((n) => [n.id, n.rack]))
  for (const partitions of [1, 6, 12, 13, 100]) {
    const placement = checkPlacement(dbInfo(partitions, 3), nodes)
    for (const p of placement)
      assert.equal(
        new Set(p.replicas.map((r) => rackOf.get(r))).size,
        3,
        `partition ${p.partition}: ${p.replicas.join(',')}`,
      )
  }
  // 2 replicas over 2 racks: each partition in both racks.
  const two = [node('x1', 'east'), node('x2', 'east'), node('y1', 'west'), node('y2', 'west')]
  const rack2 = new Map(two.map((n) => [n.id, n.rack]))
  for (const p of checkPlacement(dbInfo(10, 2), two))
    assert.equal(new Set(p.replicas.map((r) => rack2.get(r))).size, 2, p.replicas.join(','))
})

test('placePartitions does not depend on the order nodes are listed in', () => {
  const nodes = [
    node('n1', 'r1'),
    node('n2', 'r2'),
    node('n3', 'r3'),
    node('n4', 'r1'),
    node('n5', 'r2'),
    node('n6', 'r3'),
  ]
  const reference = placePartitions(dbInfo(12, 3), nodes)
  const rotations = [[...nodes].reverse(), [nodes[3], nodes[0], nodes[5], nodes[1], nodes[4], nodes[2]]]
  for (const r of rotations) assert.deepEqual(placePartitions(dbInfo(12, 3), r), reference)
  // And it does not reorder the caller's list.
  const copy = [...rotations[1]]
  placePartitions(dbInfo(4, 2), copy)
  assert.deepEqual(copy, rotations[1])
})

test('placePartitions refuses fewer nodes than replicas with NOT_ENOUGH_NODES', () => {
  assert.throws(
    () => placePartitions(dbInfo(4, 3), [node('a'), node('b')]),
    (e: unknown) =>
      e instanceof DbError &&
      e.code === 'NOT_ENOUGH_NODES' &&
      e.status === 409 &&
      /needs 3 storage nodes, 2 are registered/.test(e.message),
  )
  assert.throws(
    () => placePartitions(dbInfo(1, 1), []),
    (e: unknown) => e instanceof DbError && e.code === 'NOT_ENOUGH_NODES',
  )
  assert.equal(placePartitions(dbInfo(4, 2), [node('a'), node('b')]).length, 4)
})
