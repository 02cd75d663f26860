// A partition replica's SQLite store (src/db/storage/replica-store.ts): applying puts and deletes
// with their index entries, reads (get, document group, index query) in key order, the checkpoint
// committing atomically with the data it covers (invariant 4, docs/invariants.md), reopening,
// digests, snapshots, and the shape check for operations decoded from the log.
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type Operation, validOperation } from '../../../src/db/replication/operation.ts'
import { etagOf, ReplicaStore, WAL_CHECKPOINT_PAGES } from '../../../src/db/storage/replica-store.ts'

let dir: string
let n = 0
const open: ReplicaStore[] = []

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cortado-replica-store-'))
})

after(() => {
  for (const s of open) s.close()
  rmSync(dir, { recursive: true, force: true })
})

function fresh(name = `store-${n++}.sqlite`): ReplicaStore {
  const s = new ReplicaStore(join(dir, name))
  open.push(s)
  return s
}

const put = (
  table: string,
  key: string[],
  doc: Record<string, unknown>,
  index: [string, string][] = [],
  schemaVersion = 1,
): Operation => ({ kind: 'put', table, key, doc, schemaVersion, index })
const del = (table: string, key: string[]): Operation => ({ kind: 'delete', table, key })
const cp = (generation: number, scn: number, nextOffset: number) => ({ generation, scn, nextOffset })

test('a new store is empty with a zero checkpoint', () => {
  const s = fresh()
  assert.deepEqual(s.checkpoint(), { generation: 0, scn: 0, nextOffset: 0 })
  assert.equal(s.count(), 0)
  assert.equal(s.get('t', ['a']), undefined)
  assert.deepEqual(s.group('t', 'a', 10), [])
})

test('puts and deletes apply with their ETag, schema version and checkpoint', () => {
  const s = fresh()
  s.apply(
    [
      put('users', ['alice'], { name: 'Alice', tags: ['x'], n: 1.5, nested: { ok: true, nil: null } }, [], 2),
      put('users', ['bob'], { name: 'Bob' }),
    ],
    cp(1, 1, 10),
  )
  assert.deepEqual(s.get('users', ['alice']), {
    table: 'users',
    key: ['alice'],
    doc: { name: 'Alice', tags: ['x'], n: 1.5, nested: { ok: true, nil: null } },
    schemaVersion: 2,
    etag: '1.1',
  })
  assert.equal(s.get('users', ['bob'])?.etag, etagOf(1, 1))
  assert.deepEqual(s.checkpoint(), { generation: 1, scn: 1, nextOffset: 10 })
  assert.equal(s.count(), 2)

  // An update replaces the document and its ETag; a delete removes it; the checkpoint moves.
  s.apply([put('users', ['alice'], { name: 'Alice 2' }, [], 3), del('users', ['bob'])], cp(1, 2, 14))
  assert.deepEqual(s.get('users', ['alice']), {
    table: 'users',
    key: ['alice'],
    doc: { name: 'Alice 2' },
    schemaVersion: 3,
    etag: '1.2',
  })
  assert.equal(s.get('users', ['bob']), undefined)
  assert.equal(s.count(), 1)
  assert.deepEqual(s.checkpoint(), { generation: 1, scn: 2, nextOffset: 14 })

  // Deleting what is not there is fine; an empty transaction moves only the checkpoint.
  s.apply([del('users', ['nobody'])], cp(2, 0, 15))
  s.apply([], cp(2, 1, 16))
  assert.equal(s.count(), 1)
  assert.deepEqual(s.checkpoint(), { generation: 2, scn: 1, nextOffset: 16 })
})

test('operations within one transaction apply in order', () => {
  const s = fresh()
  s.apply(
    [put('t', ['a'], { v: 1 }), del('t', ['a']), put('t', ['b'], { v: 1 }), put('t', ['b'], { v: 2 })],
    cp(1, 1, 1),
  )
  assert.equal(s.get('t', ['a']), undefined)
  assert.deepEqual(s.get('t', ['b'])?.doc, { v: 2 })
})

test('tables, partition keys and sub-keys are separate namespaces', () => {
  const s = fresh()
  s.apply(
    [
      put('t1', ['a'], { w: 1 }),
      put('t2', ['a'], { w: 2 }),
      put('t1', ['a', 'x'], { w: 3 }),
      put('t1', ['ax'], { w: 4 }),
      put('t1', ['a', 'x', 'y'], { w: 5 }),
    ],
    cp(1, 1, 1),
  )
  assert.deepEqual(s.get('t1', ['a'])?.doc, { w: 1 })
  assert.deepEqual(s.get('t2', ['a'])?.doc, { w: 2 })
  assert.deepEqual(s.get('t1', ['a', 'x'])?.doc, { w: 3 })
  assert.deepEqual(s.get('t1', ['ax'])?.doc, { w: 4 })
  assert.deepEqual(s.get('t1', ['a', 'x', 'y'])?.doc, { w: 5 })
  assert.equal(s.get('t2', ['a', 'x']), undefined)
  s.apply([del('t1', ['a', 'x'])], cp(1, 2, 2))
  assert.deepEqual(s.get('t1', ['a', 'x', 'y'])?.doc, { w: 5 })
  assert.deepEqual(s.get('t1', ['a'])?.doc, { w: 1 })
})

test("a document group lists one table's documents of one partition key, in key order, up to the limit", () => {
  const s = fresh()
  const subs = ['b', 'a', 'c', 'aa', '10', '9', 'Z', 'é', '']
  s.apply(
    [
      ...subs.map((k) => put('orders', ['alice', k], { k })),
      put('orders', ['bob', 'a'], { k: 'bob' }),
      put('other', ['alice', 'a'], { k: 'other' }),
    ],
    cp(1, 1, 1),
  )
  const sorted = [...subs].sort()
  const group = s.group('orders', 'alice', 100)
  assert.deepEqual(
    group.map((d) => d.key),
    sorted.map((k) => ['alice', k]),
  )
  assert.deepEqual(
    group.map((d) => d.doc.k),
    sorted,
  )
  assert.ok(group.every((d) => d.table === 'orders' && d.etag === '1.1' && d.schemaVersion === 1))
  assert.deepEqual(
    s.group('orders', 'alice', 3).map((d) => d.key[1]),
    sorted.slice(0, 3),
  )
  assert.deepEqual(
    s.group('orders', 'bob', 100).map((d) => d.doc.k),
    ['bob'],
  )
  assert.deepEqual(s.group('orders', 'carol', 100), [])
})

test('key order holds for sub-keys with characters that sort below a quote, and for multi-part keys', () => {
  // Code point order, part by part: "item" < "item 2" < "item!" < "item#"; ("a", "z") < ("a b", "a").
  const s = fresh()
  const keys = [
    ['item!'],
    ['item'],
    ['item 2'],
    ['item#'],
    ['a b', 'a'],
    ['a', 'z'],
    ['a\u0001'],
    ['a\u0000'],
    ['a\\'],
    ['a"'],
    ['😀'],
    ['\uffff'],
  ]
  s.apply(
    keys.map((k) => put('t', ['p', ...k], { k })),
    cp(1, 1, 1),
  )
  const codePoints = (k: string[]): number[][] => k.map((part) => [...part].map((c) => c.codePointAt(0)!))
  const cmp = (a: string[], b: string[]): number => {
    const [x, y] = [codePoints(a), codePoints(b)]
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      for (let j = 0; j < Math.min(x[i].length, y[i].length); j++) if (x[i][j] !== y[i][j]) return x[i][j] - y[i][j]
      if (x[i].length !== y[i].length) return x[i].length - y[i].length
    }
    return x.length - y.length
  }
  const expected = [...keys].sort(cmp)
  assert.deepEqual(
    s.group('t', 'p', 100).map((d) => d.key.slice(1)),
    expected,
  )
  // Every key reads back exactly, including the awkward characters.
  for (const k of keys) assert.deepEqual(s.get('t', ['p', ...k])?.doc, { k })
})

test('index entries: a query finds documents of the group by field value, in key order; updates and deletes move them', () => {
  const s = fresh()
  s.apply(
    [
      put('orders', ['alice', 'o3'], { status: 'open' }, [
        ['status', 'open'],
        ['region', 'eu'],
      ]),
      put('orders', ['alice', 'o1'], { status: 'open' }, [['status', 'open']]),
      put('orders', ['alice', 'o2'], { status: 'shipped' }, [['status', 'shipped']]),
      put('orders', ['bob', 'o1'], { status: 'open' }, [['status', 'open']]),
      put('returns', ['alice', 'r1'], { status: 'open' }, [['status', 'open']]),
    ],
    cp(1, 1, 5),
  )
  const keys = (docs: { key: string[] }[]) => docs.map((d) => d.key.join('/'))
  assert.deepEqual(keys(s.query('orders', 'alice', 'status', 'open', 100)), ['alice/o1', 'alice/o3'])
  assert.deepEqual(keys(s.query('orders', 'alice', 'status', 'open', 1)), ['alice/o1'])
  assert.deepEqual(keys(s.query('orders', 'alice', 'status', 'shipped', 100)), ['alice/o2'])
  assert.deepEqual(keys(s.query('orders', 'alice', 'region', 'eu', 100)), ['alice/o3'])
  assert.deepEqual(keys(s.query('orders', 'bob', 'status', 'open', 100)), ['bob/o1'])
  assert.deepEqual(keys(s.query('returns', 'alice', 'status', 'open', 100)), ['alice/r1'])
  assert.deepEqual(s.query('orders', 'alice', 'status', 'closed', 100), [])
  assert.deepEqual(s.query('orders', 'alice', 'nosuchfield', 'open', 100), [])
  const q = s.query('orders', 'alice', 'status', 'shipped', 100)[0]
  assert.deepEqual(q, {
    table: 'orders',
    key: ['alice', 'o2'],
    doc: { status: 'shipped' },
    schemaVersion: 1,
    etag: '1.1',
  })

  // An update replaces the document's index entries (old ones gone, new ones found).
  s.apply([put('orders', ['alice', 'o3'], { status: 'shipped' }, [['status', 'shipped']])], cp(1, 2, 6))
  assert.deepEqual(keys(s.query('orders', 'alice', 'status', 'open', 100)), ['alice/o1'])
  assert.deepEqual(keys(s.query('orders', 'alice', 'status', 'shipped', 100)), ['alice/o2', 'alice/o3'])
  assert.deepEqual(s.query('orders', 'alice', 'region', 'eu', 100), [])
  // A delete removes them.
  s.apply([del('orders', ['alice', 'o1'])], cp(1, 3, 7))
  assert.deepEqual(s.query('orders', 'alice', 'status', 'open', 100), [])
  // Repeated entries in one put are harmless.
  s.apply(
    [
      put('orders', ['alice', 'o4'], { status: 'open' }, [
        ['status', 'open'],
        ['status', 'open'],
      ]),
    ],
    cp(1, 4, 8),
  )
  assert.deepEqual(keys(s.query('orders', 'alice', 'status', 'open', 100)), ['alice/o4'])
})

test('index entries written after index-less puts, and found on reopening, are still replaced and removed', () => {
  // A store without index entries skips deleting a document's old ones; that must never skip real ones.
  const path = join(dir, 'index-later.sqlite')
  const s = new ReplicaStore(path)
  s.apply([put('t', ['p', 'a'], { v: 1 })], cp(1, 1, 1))
  s.apply([put('t', ['p', 'a'], { v: 2 }, [['v', '2']])], cp(1, 2, 2))
  assert.deepEqual(
    s.query('t', 'p', 'v', '2', 10).map((d) => d.etag),
    ['1.2'],
  )
  s.apply([put('t', ['p', 'a'], { v: 3 })], cp(1, 3, 3))
  assert.deepEqual(s.query('t', 'p', 'v', '2', 10), [], 'an index-less update removes the old entry')
  s.apply([put('t', ['p', 'b'], { v: 4 }, [['v', '4']]), put('t', ['p', 'c'], { v: 5 }, [['v', '5']])], cp(1, 4, 4))
  s.close()
  const r = new ReplicaStore(path)
  open.push(r)
  r.apply([put('t', ['p', 'b'], { v: 6 })], cp(1, 5, 5))
  r.apply([del('t', ['p', 'c'])], cp(1, 6, 6))
  assert.deepEqual(r.query('t', 'p', 'v', '4', 10), [], 'after reopening: an update removes the entry')
  assert.deepEqual(r.query('t', 'p', 'v', '5', 10), [], 'after reopening: a delete removes the entry')
})

test('a transaction that fails midway changes neither data, index nor checkpoint', () => {
  const s = fresh()
  s.apply([put('t', ['a'], { v: 1 }, [['v', '1']]), put('t', ['b'], { v: 1 })], cp(1, 1, 3))
  const before = s.digest()
  const unserializable = put('t', ['c'], { big: 10n })
  const unbindable = put('t', ['c'], { v: 3 }, [['v', { not: 'a string' } as unknown as string]])
  for (const [name, bad] of [
    ['a doc JSON cannot serialize', unserializable],
    ['an index value SQLite cannot bind', unbindable],
  ] as const) {
    // Earlier operations in the same transaction (an update, an index change, a delete, an insert) are rolled back too.
    assert.throws(
      () =>
        s.apply(
          [put('t', ['a'], { v: 2 }, [['v', '2']]), del('t', ['b']), put('t', ['new'], { v: 9 }), bad],
          cp(1, 2, 9),
        ),
      name,
    )
    assert.deepEqual(s.checkpoint(), { generation: 1, scn: 1, nextOffset: 3 }, name)
    assert.deepEqual(s.get('t', ['a']), { table: 't', key: ['a'], doc: { v: 1 }, schemaVersion: 1, etag: '1.1' }, name)
    assert.deepEqual(s.get('t', ['b'])?.doc, { v: 1 }, name)
    assert.equal(s.get('t', ['new']), undefined, name)
    assert.deepEqual(s.query('t', 'a', 'v', '1', 10).length, 1, name)
    assert.deepEqual(s.query('t', 'a', 'v', '2', 10), [], name)
    assert.equal(s.digest(), before, name)
  }
  // The store is still usable afterwards (no transaction left open).
  s.apply([put('t', ['c'], { v: 3 })], cp(1, 2, 9))
  assert.deepEqual(s.checkpoint(), { generation: 1, scn: 2, nextOffset: 9 })
  assert.equal(s.count(), 3)
})

test('a failed transaction is not visible after reopening the file either', () => {
  const path = join(dir, 'reopen-failed.sqlite')
  const s = new ReplicaStore(path)
  s.apply([put('t', ['a'], { v: 1 })], cp(1, 1, 2))
  assert.throws(() => s.apply([put('t', ['a'], { v: 2 }), put('t', ['b'], { big: 1n })], cp(1, 2, 5)))
  s.close()
  const r = new ReplicaStore(path)
  open.push(r)
  assert.deepEqual(r.checkpoint(), { generation: 1, scn: 1, nextOffset: 2 })
  assert.deepEqual(r.get('t', ['a'])?.doc, { v: 1 })
  assert.equal(r.get('t', ['b']), undefined)
})

test('reopening the file shows the same data, index and checkpoint', () => {
  const path = join(dir, 'reopen.sqlite')
  const s = new ReplicaStore(path)
  s.apply([put('t', ['p', 'a'], { v: 1 }, [['v', '1']]), put('t', ['p', 'b'], { v: 2 }, [['v', '2']])], cp(3, 7, 40))
  s.apply([del('t', ['p', 'a'])], cp(3, 8, 43))
  const digest = s.digest()
  s.close()
  s.close() // closing twice is harmless
  const r = new ReplicaStore(path)
  open.push(r)
  assert.deepEqual(r.checkpoint(), { generation: 3, scn: 8, nextOffset: 43 })
  assert.equal(r.digest(), digest)
  assert.deepEqual(
    r.group('t', 'p', 10).map((d) => d.key),
    [['p', 'b']],
  )
  assert.deepEqual(
    r.query('t', 'p', 'v', '2', 10).map((d) => d.etag),
    ['3.7'],
  )
  // And it carries on from there.
  r.apply([put('t', ['p', 'c'], { v: 3 })], cp(3, 9, 45))
  assert.equal(r.count(), 2)
})

test('digest: equal for two stores given the same transactions, different after any difference', () => {
  const txns: [Operation[], { generation: number; scn: number; nextOffset: number }][] = [
    [[put('t', ['p', 'a'], { v: 1 }, [['v', '1']]), put('u', ['q'], { w: [1, 2] })], cp(1, 1, 4)],
    [[put('t', ['p', 'b'], { v: 2 }, [['v', '2']]), del('u', ['q'])], cp(1, 2, 8)],
    [[put('t', ['p', 'a'], { v: 3 }, [['v', '3']])], cp(2, 0, 11)],
  ]
  const build = (extra?: [Operation[], { generation: number; scn: number; nextOffset: number }]): ReplicaStore => {
    const s = fresh()
    for (const [ops, c] of txns) s.apply(ops, c)
    if (extra !== undefined) s.apply(...extra)
    return s
  }
  const a = build()
  const b = build()
  assert.match(a.digest(), /^[0-9a-f]{64}$/)
  assert.equal(a.digest(), b.digest())
  assert.equal(a.digest(), a.digest())

  const variants: [string, ReplicaStore][] = [
    ['one more document', build([[put('t', ['p', 'c'], { v: 4 })], cp(2, 1, 13)])],
    ['a different document value', build([[put('t', ['p', 'a'], { v: 99 }, [['v', '3']])], cp(2, 0, 11)])],
    ['a different schema version', build([[put('t', ['p', 'a'], { v: 3 }, [['v', '3']], 2)], cp(2, 0, 11)])],
    ['a different index entry only', build([[put('t', ['p', 'a'], { v: 3 }, [['v', 'x']])], cp(2, 0, 11)])],
    ['a missing index entry only', build([[put('t', ['p', 'a'], { v: 3 })], cp(2, 0, 11)])],
    [
      'a different ETag (scn) for the same content',
      build([[put('t', ['p', 'a'], { v: 3 }, [['v', '3']])], cp(2, 1, 11)]),
    ],
    ['a deleted document', build([[del('t', ['p', 'b'])], cp(2, 1, 13)])],
    ['only the checkpoint moved', build([[], cp(2, 1, 12)])],
  ]
  const seen = new Set([a.digest()])
  for (const [name, s] of variants) {
    assert.notEqual(s.digest(), a.digest(), name)
    seen.add(s.digest())
  }
  assert.equal(seen.size, variants.length + 1, 'variants should differ from each other too')
  // The same end state reached by different transactions (same last checkpoint) digests the same.
  const c = fresh()
  c.apply([put('t', ['p', 'b'], { v: 2 }, [['v', '2']])], cp(1, 2, 8))
  c.apply([put('t', ['p', 'a'], { v: 3 }, [['v', '3']])], cp(2, 0, 11))
  assert.equal(c.digest(), a.digest())
})

test('snapshotTo writes a file that opens as a store with identical digest, data and checkpoint', () => {
  const s = fresh()
  for (let i = 0; i < 50; i++)
    s.apply(
      [put('t', ['p', `k${String(i).padStart(2, '0')}`], { i }, [['even', String(i % 2 === 0)]])],
      cp(1, i + 1, 3 * i + 3),
    )
  s.apply([del('t', ['p', 'k07'])], cp(2, 0, 200))
  const target = join(dir, 'snapshot.sqlite')
  s.snapshotTo(target)
  assert.ok(existsSync(target))
  const copy = new ReplicaStore(target)
  open.push(copy)
  assert.equal(copy.digest(), s.digest())
  assert.deepEqual(copy.checkpoint(), { generation: 2, scn: 0, nextOffset: 200 })
  assert.equal(copy.count(), 49)
  assert.equal(copy.query('t', 'p', 'even', 'true', 100).length, 25)
  // The copy is independent of the source.
  s.apply([put('t', ['p', 'new'], {})], cp(2, 1, 202))
  assert.notEqual(copy.digest(), s.digest())
  assert.equal(copy.count(), 49)
  copy.close()
  // Snapshotting over an existing file replaces it.
  s.snapshotTo(target)
  const again = new ReplicaStore(target)
  open.push(again)
  assert.equal(again.digest(), s.digest())
  assert.equal(again.count(), 50)
})

test('snapshotTo over the files a crashed store left at the target path (database and WAL): the copy is the source, not the stale WAL', () => {
  const target = join(dir, 'crashed.sqlite')
  const crashed = new ReplicaStore(target)
  for (let i = 0; i < 20; i++) crashed.apply([put('stale', ['x', String(i)], { i })], cp(9, i + 1, 100 + i))
  // The files a crash would leave behind: the database and its uncheckpointed WAL (no -shm: the
  // store runs in exclusive locking mode, its WAL index in memory).
  assert.ok(existsSync(`${target}-wal`))
  assert.ok(!existsSync(`${target}-shm`))
  copyFileSync(`${target}-wal`, join(dir, 'crashed.wal'))
  crashed.close()
  copyFileSync(join(dir, 'crashed.wal'), `${target}-wal`)

  const source = fresh()
  source.apply([put('fresh', ['y'], { ok: true })], cp(1, 1, 2))
  source.snapshotTo(target)
  const copy = new ReplicaStore(target)
  open.push(copy)
  assert.deepEqual(copy.checkpoint(), { generation: 1, scn: 1, nextOffset: 2 })
  assert.equal(copy.count(), 1)
  assert.equal(copy.digest(), source.digest())
})

test('validOperation accepts the two operation shapes and rejects every malformed one', () => {
  const good: unknown[] = [
    { kind: 'put', table: 't', key: ['p'], doc: {}, schemaVersion: 1, index: [] },
    {
      kind: 'put',
      table: 't',
      key: ['p', 's', ''],
      doc: { a: [1] },
      schemaVersion: 0,
      index: [
        ['f', 'v'],
        ['g', ''],
      ],
    },
    { kind: 'delete', table: 't', key: ['p'] },
    { kind: 'delete', table: '', key: ['p', 'q'] },
  ]
  for (const op of good) assert.equal(validOperation(op), true, JSON.stringify(op))
  const base = { kind: 'put', table: 't', key: ['p'], doc: {}, schemaVersion: 1, index: [] }
  const bad: [string, unknown][] = [
    ['null', null],
    ['undefined', undefined],
    ['a string', 'put'],
    ['a number', 1],
    ['an array', [base]],
    ['no kind', { ...base, kind: undefined }],
    ['unknown kind', { ...base, kind: 'upsert' }],
    ['table not a string', { ...base, table: 1 }],
    ['no table', { ...base, table: undefined }],
    ['key not a list', { ...base, key: 'p' }],
    ['empty key', { ...base, key: [] }],
    ['key part not a string', { ...base, key: ['p', 1] }],
    ['key part null', { ...base, key: [null] }],
    ['doc missing', { ...base, doc: undefined }],
    ['doc null', { ...base, doc: null }],
    ['doc an array', { ...base, doc: [] }],
    ['doc a string', { ...base, doc: '{}' }],
    ['schemaVersion missing', { ...base, schemaVersion: undefined }],
    ['schemaVersion fractional', { ...base, schemaVersion: 1.5 }],
    ['schemaVersion a string', { ...base, schemaVersion: '1' }],
    ['index missing', { ...base, index: undefined }],
    ['index not a list', { ...base, index: {} }],
    ['index entry not a pair', { ...base, index: [['f']] }],
    ['index entry a triple', { ...base, index: [['f', 'v', 'w']] }],
    ['index entry not a list', { ...base, index: ['f'] }],
    ['index value not a string', { ...base, index: [['f', 1]] }],
    ['index field not a string', { ...base, index: [[1, 'v']] }],
    ['delete with bad key', { kind: 'delete', table: 't', key: [] }],
    ['delete without table', { kind: 'delete', key: ['p'] }],
  ]
  for (const [name, op] of bad) assert.equal(validOperation(op), false, name)
})

test('the WAL is checkpointed after WAL_CHECKPOINT_PAGES pages, not at the SQLite default of 1,000', () => {
  const s = fresh()
  const wal = `${s.path}-wal`
  // A WAL frame is a 24-byte header and a 4 KiB page, after the file's 32-byte header.
  const walPages = () => (statSync(wal).size - 32) / (24 + 4096)
  const doc = { body: 'x'.repeat(1000) }
  // Each commit adds about three pages (the document's leaf, its key index leaf, the checkpoint).
  let scn = 0
  while (walPages() < 1.5 * 1000) {
    scn++
    s.apply([put('t', [`k${scn % 300}`], doc)], cp(1, scn, scn))
    assert.ok(scn < 3000, 'the WAL should have grown past 1,500 pages')
  }
  // Past SQLite's default threshold with nothing checkpointed: the database file has no rows yet.
  assert.ok(WAL_CHECKPOINT_PAGES > 1.5 * 1000)
  assert.ok(statSync(s.path).size <= 4 * 4096, 'nothing copied into the database file yet')
  while (statSync(s.path).size <= 4 * 4096) {
    scn++
    s.apply([put('t', [`k${scn % 300}`], doc)], cp(1, scn, scn))
    assert.ok(scn < 20_000, 'a checkpoint should have run')
  }
  // The checkpoint ran once the WAL reached the threshold, and the data is all there.
  assert.ok(walPages() >= WAL_CHECKPOINT_PAGES && walPages() < WAL_CHECKPOINT_PAGES + 10, `${walPages()} pages`)
  assert.equal(s.count(), 300)
  assert.equal(s.checkpoint().scn, scn)
})
