// The database's REST API end to end: a real broker, three storage node processes and a router
// process (one cluster for the whole file), driven only through the router's HTTP API. Covers
// documents (CRUD, ETags, conditional writes, concurrent read-modify-write), schemas (validation,
// evolution, incompatible versions), document groups and local indexes, transactions, multi-get,
// large documents (replicated as large-message segments), bad input, the admin API, OpenAPI and
// metrics, and ends with every replica of every partition holding identical content.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, test } from 'node:test'
import { partitionOf } from '../../src/db/metadata/model.ts'
import { type DbCluster, type HttpResult, startDbCluster } from '../helpers/db-cluster.ts'

const DB = 'app'
const PARTITIONS = 4

const tables = {
  users: {
    key: ['id'],
    schema: {
      type: 'record',
      name: 'User',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'name', type: 'string' },
        { name: 'age', type: 'int' },
        { name: 'email', type: ['null', 'string'], default: null },
      ],
    },
  },
  counters: {
    key: ['id'],
    schema: {
      type: 'record',
      name: 'Counter',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'n', type: 'int' },
      ],
    },
  },
  evolving: {
    key: ['id'],
    schema: {
      type: 'record',
      name: 'Evolving',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'title', type: 'string' },
      ],
    },
  },
  messages: {
    key: ['userId', 'msgId'],
    schema: {
      type: 'record',
      name: 'Message',
      fields: [
        { name: 'userId', type: 'string' },
        { name: 'msgId', type: 'string' },
        { name: 'folder', type: 'string' },
        { name: 'text', type: 'string' },
      ],
    },
    indexes: ['folder'],
  },
  mailboxes: {
    key: ['userId'],
    schema: {
      type: 'record',
      name: 'Mailbox',
      fields: [
        { name: 'userId', type: 'string' },
        { name: 'unread', type: 'int' },
      ],
    },
  },
  blobs: {
    key: ['id'],
    schema: {
      type: 'record',
      name: 'Blob',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'data', type: 'string' },
      ],
    },
  },
}
const definition = { partitions: PARTITIONS, replicas: 3, tables }

let c: DbCluster

interface ErrorBody {
  error: { code: string; message: string; details?: string[] }
}

/** Asserts a typed error answer: the status, the code, and a message. */
function assertError(res: HttpResult, status: number, code: string): ErrorBody['error'] {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`)
  const e = (res.body as ErrorBody | undefined)?.error
  assert.ok(e !== undefined, `no error body: ${JSON.stringify(res.body)}`)
  assert.equal(e.code, code, e.message)
  assert.equal(typeof e.message, 'string')
  assert.ok(e.message.length > 0)
  return e
}

function etagOf(res: HttpResult): string {
  const etag = res.headers.get('etag')
  assert.ok(etag !== null, `no ETag header (status ${res.status})`)
  assert.match(etag, /^"\d+\.\d+"$/)
  return etag
}

/** A normal request still works (after bad input). */
async function stillWorks(): Promise<void> {
  const res = await c.http('PUT', `/${DB}/users/healthy`, { id: 'healthy', name: 'H', age: 1, email: null })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  const get = await c.http('GET', `/${DB}/users/healthy`)
  assert.equal(get.status, 200)
  assert.equal((get.body as { name: string }).name, 'H')
}

/** A raw HTTP request (for what fetch will not send: bad paths, lying content-lengths). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string | number>,
  body?: string,
): Promise<{ status: number; body: string }> {
  const url = new URL(c.router.url)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    // A request announcing a larger body than it sends stays open; the answer must come anyway.
    if (headers['content-length'] === undefined || body !== undefined) req.end()
    else req.flushHeaders()
  })
}

function rawError(res: { status: number; body: string }, status: number, code: string): void {
  assert.equal(res.status, status, res.body)
  const e = (JSON.parse(res.body) as ErrorBody).error
  assert.equal(e.code, code, e.message)
}

before(async () => {
  // Records up to 1 MiB: a 3 MB document has to travel as large-message segments.
  c = await startDbCluster({ nodes: 3, brokerConfig: { 'message.max.bytes': '1048576' } })
  const res = await c.http('PUT', `/_admin/databases/${DB}`, definition)
  assert.equal(res.status, 201, JSON.stringify(res.body))
})

after(async () => {
  await c?.stop()
})

void test('CRUD: put, get, delete; 404 after delete; a new ETag on every write; read-your-write from the master', async () => {
  const doc = { id: 'alice', name: 'Alice', age: 30, email: 'alice@example.com' }
  const put = await c.http('PUT', `/${DB}/users/alice`, doc)
  assert.equal(put.status, 200, JSON.stringify(put.body))
  const e1 = etagOf(put)
  assert.deepEqual(put.body, { etag: e1.slice(1, -1) })

  const get = await c.http('GET', `/${DB}/users/alice`)
  assert.equal(get.status, 200)
  assert.deepEqual(get.body, doc)
  assert.equal(etagOf(get), e1)

  // Read-your-write, many times over: every read right after a write sees it.
  const etags = new Set([e1])
  for (let age = 31; age < 41; age++) {
    const w = await c.http('PUT', `/${DB}/users/alice`, { ...doc, age })
    assert.equal(w.status, 200)
    const etag = etagOf(w)
    assert.ok(!etags.has(etag), `ETag ${etag} reused`)
    etags.add(etag)
    const r = await c.http('GET', `/${DB}/users/alice`)
    assert.equal((r.body as { age: number }).age, age)
    assert.equal(etagOf(r), etag)
  }

  const del = await c.http('DELETE', `/${DB}/users/alice`)
  assert.equal(del.status, 200)
  const delEtag = (del.body as { etag: string }).etag
  assert.ok(!etags.has(`"${delEtag}"`))
  assertError(await c.http('GET', `/${DB}/users/alice`), 404, 'NOT_FOUND')
  // Created again after the delete: a fresh ETag.
  const again = await c.http('PUT', `/${DB}/users/alice`, doc, { 'if-none-match': '*' })
  assert.equal(again.status, 200, JSON.stringify(again.body))
  assert.ok(!etags.has(etagOf(again)))
  assert.deepEqual((await c.http('GET', `/${DB}/users/alice`)).body, doc)

  // A key part may hold characters that need percent-encoding, '/' included.
  const odd = 'a/b c%ü'
  const oddPut = await c.http('PUT', `/${DB}/users/${encodeURIComponent(odd)}`, {
    id: odd,
    name: 'Odd',
    age: 1,
    email: null,
  })
  assert.equal(oddPut.status, 200, JSON.stringify(oddPut.body))
  assert.equal((await c.http('GET', `/${DB}/users/${encodeURIComponent(odd)}`)).status, 200)
  assertError(await c.http('GET', `/${DB}/users/a/b%20c%25%C3%BC`), 400, 'BAD_REQUEST')
})

void test('conditional writes: If-None-Match create-only, If-Match right/wrong/missing, GET If-None-Match → 304', async () => {
  const doc = { id: 'bob', name: 'Bob', age: 40, email: null }
  const created = await c.http('PUT', `/${DB}/users/bob`, doc, { 'if-none-match': '*' })
  assert.equal(created.status, 200, JSON.stringify(created.body))
  const e1 = etagOf(created)
  assertError(
    await c.http('PUT', `/${DB}/users/bob`, { ...doc, age: 99 }, { 'if-none-match': '*' }),
    412,
    'PRECONDITION_FAILED',
  )

  // Wrong ETag: refused, nothing changes.
  assertError(
    await c.http('PUT', `/${DB}/users/bob`, { ...doc, age: 41 }, { 'if-match': '"1.999999"' }),
    412,
    'PRECONDITION_FAILED',
  )
  let got = await c.http('GET', `/${DB}/users/bob`)
  assert.equal((got.body as { age: number }).age, 40)
  assert.equal(etagOf(got), e1)

  // Right ETag: applied.
  const updated = await c.http('PUT', `/${DB}/users/bob`, { ...doc, age: 41 }, { 'if-match': e1 })
  assert.equal(updated.status, 200, JSON.stringify(updated.body))
  const e2 = etagOf(updated)
  assert.notEqual(e2, e1)
  // The old ETag no longer matches.
  assertError(
    await c.http('PUT', `/${DB}/users/bob`, { ...doc, age: 42 }, { 'if-match': e1 }),
    412,
    'PRECONDITION_FAILED',
  )
  // If-Match: * needs the document to exist.
  const star = await c.http('PUT', `/${DB}/users/bob`, { ...doc, age: 43 }, { 'if-match': '*' })
  assert.equal(star.status, 200)
  const e3 = etagOf(star)
  assertError(
    await c.http('PUT', `/${DB}/users/nobody`, { id: 'nobody', name: 'N', age: 1, email: null }, { 'if-match': '*' }),
    412,
    'PRECONDITION_FAILED',
  )
  assertError(
    await c.http('PUT', `/${DB}/users/nobody`, { id: 'nobody', name: 'N', age: 1, email: null }, { 'if-match': e3 }),
    412,
    'PRECONDITION_FAILED',
  )
  assertError(await c.http('GET', `/${DB}/users/nobody`), 404, 'NOT_FOUND')

  // GET with If-None-Match: 304 when it matches, the document otherwise.
  const notModified = await c.http('GET', `/${DB}/users/bob`, undefined, { 'if-none-match': e3 })
  assert.equal(notModified.status, 304)
  assert.equal(notModified.body, undefined)
  got = await c.http('GET', `/${DB}/users/bob`, undefined, { 'if-none-match': e1 })
  assert.equal(got.status, 200)
  assert.equal((got.body as { age: number }).age, 43)
  assert.equal(etagOf(got), e3)

  // Conditional delete.
  assertError(await c.http('DELETE', `/${DB}/users/bob`, undefined, { 'if-match': e1 }), 412, 'PRECONDITION_FAILED')
  assert.equal((await c.http('GET', `/${DB}/users/bob`)).status, 200)
  assert.equal((await c.http('DELETE', `/${DB}/users/bob`, undefined, { 'if-match': e3 })).status, 200)
  assertError(await c.http('GET', `/${DB}/users/bob`), 404, 'NOT_FOUND')
  assertError(await c.http('DELETE', `/${DB}/users/bob`, undefined, { 'if-match': '*' }), 412, 'PRECONDITION_FAILED')
})

void test('20 concurrent read-modify-write increments with If-Match retries lose no update', async () => {
  const key = 'hits'
  assert.equal((await c.http('PUT', `/${DB}/counters/${key}`, { id: key, n: 0 })).status, 200)
  let conflicts = 0
  const increment = async () => {
    for (let attempt = 0; attempt < 500; attempt++) {
      const r = await c.http('GET', `/${DB}/counters/${key}`)
      assert.equal(r.status, 200)
      const n = (r.body as { n: number }).n
      const w = await c.http('PUT', `/${DB}/counters/${key}`, { id: key, n: n + 1 }, { 'if-match': etagOf(r) })
      if (w.status === 200) return
      assertError(w, 412, 'PRECONDITION_FAILED')
      conflicts++
    }
    assert.fail('increment never succeeded')
  }
  await Promise.all(Array.from({ length: 20 }, increment))
  const final = await c.http('GET', `/${DB}/counters/${key}`)
  assert.equal((final.body as { n: number }).n, 20, `lost updates (${conflicts} conflicts retried)`)
})

void test('schemas: invalid documents are refused with the field named; undeclared fields are refused', async () => {
  let e = assertError(
    await c.http('PUT', `/${DB}/users/carol`, { id: 'carol', name: 'Carol', age: 'thirty', email: null }),
    400,
    'INVALID_DOCUMENT',
  )
  assert.ok(
    e.details?.some((d) => d.startsWith('age')),
    JSON.stringify(e.details),
  )

  e = assertError(
    await c.http('PUT', `/${DB}/users/carol`, { id: 'carol', age: 30, email: null }),
    400,
    'INVALID_DOCUMENT',
  )
  assert.ok(
    e.details?.some((d) => d.startsWith('name')),
    JSON.stringify(e.details),
  )

  e = assertError(
    await c.http('PUT', `/${DB}/users/carol`, { id: 'carol', name: 'Carol', age: 1.5, email: null }),
    400,
    'INVALID_DOCUMENT',
  )
  assert.ok(
    e.details?.some((d) => d.startsWith('age')),
    JSON.stringify(e.details),
  )

  e = assertError(
    await c.http('PUT', `/${DB}/users/carol`, { id: 'carol', name: 'Carol', age: 30, email: 5 }),
    400,
    'INVALID_DOCUMENT',
  )
  assert.ok(
    e.details?.some((d) => d.startsWith('email')),
    JSON.stringify(e.details),
  )

  e = assertError(
    await c.http('PUT', `/${DB}/users/carol`, { id: 'carol', name: 'Carol', age: 30, email: null, nickname: 'C' }),
    400,
    'INVALID_DOCUMENT',
  )
  assert.ok(
    e.details?.some((d) => d.startsWith('nickname')),
    JSON.stringify(e.details),
  )

  // Inside a transaction too; nothing is written.
  e = assertError(
    await c.http('POST', `/${DB}/_transaction`, {
      operations: [{ op: 'put', table: 'users', key: ['carol'], doc: { id: 'carol', name: 'Carol', age: 'x' } }],
    }),
    400,
    'INVALID_DOCUMENT',
  )
  assert.ok(
    e.details?.some((d) => d.startsWith('age')),
    JSON.stringify(e.details),
  )
  assertError(await c.http('GET', `/${DB}/users/carol`), 404, 'NOT_FOUND')

  // A field with a default may be left out.
  const ok = await c.http('PUT', `/${DB}/users/carol`, { id: 'carol', name: 'Carol', age: 30 })
  assert.equal(ok.status, 200, JSON.stringify(ok.body))
  assert.equal((await c.http('GET', `/${DB}/users/carol`)).status, 200)
})

void test('schema evolution: a new field with a default reads old documents with the default; incompatible versions are refused', async () => {
  const v1 = tables.evolving.schema
  assert.equal((await c.http('PUT', `/${DB}/evolving/old`, { id: 'old', title: 'written under v1' })).status, 200)
  assertError(
    await c.http('PUT', `/${DB}/evolving/early`, { id: 'early', title: 't', tags: 'x' }),
    400,
    'INVALID_DOCUMENT',
  )

  const v2 = { ...v1, fields: [...v1.fields, { name: 'tags', type: 'string', default: 'none' }] }
  const added = await c.http('POST', `/_admin/databases/${DB}/tables/evolving/schemas`, v2)
  assert.equal(added.status, 201, JSON.stringify(added.body))
  assert.equal((added.body as { version: number }).version, 2)

  // The old document reads back in the latest version, the default filled in.
  assert.deepEqual((await c.http('GET', `/${DB}/evolving/old`)).body, {
    id: 'old',
    title: 'written under v1',
    tags: 'none',
  })
  // New documents may carry the field, or leave it to its default.
  assert.equal((await c.http('PUT', `/${DB}/evolving/new`, { id: 'new', title: 'v2', tags: 'a,b' })).status, 200)
  assert.deepEqual((await c.http('GET', `/${DB}/evolving/new`)).body, { id: 'new', title: 'v2', tags: 'a,b' })
  assert.equal((await c.http('PUT', `/${DB}/evolving/plain`, { id: 'plain', title: 'v2 without tags' })).status, 200)
  assert.deepEqual((await c.http('GET', `/${DB}/evolving/plain`)).body, {
    id: 'plain',
    title: 'v2 without tags',
    tags: 'none',
  })
  const multi = await c.http('POST', `/${DB}/_multiget`, { keys: [{ table: 'evolving', key: ['old'] }] })
  assert.equal((multi.body as { documents: { schemaVersion: number; doc: unknown }[] }).documents[0].schemaVersion, 2)
  assert.deepEqual((multi.body as { documents: { doc: unknown }[] }).documents[0].doc, {
    id: 'old',
    title: 'written under v1',
    tags: 'none',
  })

  // Incompatible: a type change string → int, a new field without a default, a removed key field.
  const incompatible = [
    {
      ...v2,
      fields: [
        { name: 'id', type: 'string' },
        { name: 'title', type: 'int' },
        { name: 'tags', type: 'string', default: 'none' },
      ],
    },
    { ...v2, fields: [...v2.fields, { name: 'rank', type: 'int' }] },
    {
      ...v2,
      fields: [
        { name: 'title', type: 'string' },
        { name: 'tags', type: 'string', default: 'none' },
      ],
    },
  ]
  for (const schema of incompatible) {
    assertError(
      await c.http('POST', `/_admin/databases/${DB}/tables/evolving/schemas`, schema),
      409,
      'INCOMPATIBLE_SCHEMA',
    )
  }
  assertError(
    await c.http('POST', `/_admin/databases/${DB}/tables/evolving/schemas`, {
      type: 'record',
      name: 'Bad',
      fields: [{ name: 'id', type: 'nosuchtype' }],
    }),
    400,
    'INVALID_SCHEMA',
  )
  assertError(await c.http('POST', `/_admin/databases/${DB}/tables/nosuch/schemas`, v2), 404, 'UNKNOWN_TABLE')
  assertError(await c.http('POST', `/_admin/databases/nosuch/tables/evolving/schemas`, v2), 404, 'UNKNOWN_DATABASE')

  // Nothing changed: still two versions, documents still validated against v2.
  const described = await c.http('GET', `/_admin/databases/${DB}`)
  assert.equal((described.body as { tables: Record<string, { schemas: unknown[] }> }).tables.evolving.schemas.length, 2)
  assertError(await c.http('PUT', `/${DB}/evolving/x`, { id: 'x', title: 5 }), 400, 'INVALID_DOCUMENT')
  assertError(await c.http('PUT', `/${DB}/evolving/x`, { id: 'x', title: 't', rank: 1 }), 400, 'INVALID_DOCUMENT')
  assert.equal((await c.http('PUT', `/${DB}/evolving/x`, { id: 'x', title: 't' })).status, 200)
  assert.deepEqual((await c.http('GET', `/${DB}/evolving/old`)).body, {
    id: 'old',
    title: 'written under v1',
    tags: 'none',
  })

  // Two versions added at once: both kept, numbered 3 and 4, none lost.
  const v3 = { ...v2, fields: [...v2.fields, { name: 'p', type: 'int', default: 0 }] }
  const v4 = { ...v2, fields: [...v2.fields, { name: 'q', type: 'int', default: 0 }] }
  const both = await Promise.all(
    [v3, v4].map((schema) => c.http('POST', `/_admin/databases/${DB}/tables/evolving/schemas`, schema)),
  )
  // v3 and v4 each add a field the other drops again: both read each other's documents, so both are accepted.
  assert.deepEqual(
    both.map((r) => r.status),
    [201, 201],
    JSON.stringify(both.map((r) => r.body)),
  )
  assert.deepEqual(both.map((r) => (r.body as { version: number }).version).sort(), [3, 4])
  const after = (await c.http('GET', `/_admin/databases/${DB}`)).body as {
    tables: Record<string, { schemas: { fields: { name: string }[] }[] }>
  }
  const versions = after.tables.evolving.schemas.map((v) => v.fields.map((f) => f.name).join(','))
  assert.equal(versions.length, 4)
  assert.deepEqual(versions.slice(2).sort(), ['id,title,tags,p', 'id,title,tags,q'])
  // Documents read in the latest version, whichever of the two that is.
  const latest = versions[3].endsWith(',p') ? 'p' : 'q'
  assert.deepEqual((await c.http('GET', `/${DB}/evolving/old`)).body, {
    id: 'old',
    title: 'written under v1',
    tags: 'none',
    [latest]: 0,
  })
})

void test('document groups and local indexes: listing in key order, queries within one group, index updated with the write', async () => {
  const msg = (userId: string, msgId: string, folder: string) => ({
    userId,
    msgId,
    folder,
    text: `${userId}/${msgId} in ${folder}`,
  })
  const u1 = [
    msg('u1', 'm3', 'inbox'),
    msg('u1', 'm1', 'inbox'),
    msg('u1', 'm2', 'archive'),
    msg('u1', 'm5', 'inbox'),
    msg('u1', 'm4', 'spam'),
  ]
  const u2 = [msg('u2', 'm1', 'inbox'), msg('u2', 'm2', 'inbox')]
  for (const m of [...u1, ...u2]) {
    const res = await c.http('PUT', `/${DB}/messages/${m.userId}/${m.msgId}`, m)
    assert.equal(res.status, 200, JSON.stringify(res.body))
  }
  type Group = { documents: { table: string; key: string[]; etag: string; doc: { msgId: string; folder: string } }[] }
  const list = await c.http('GET', `/${DB}/messages/u1`)
  assert.equal(list.status, 200, JSON.stringify(list.body))
  const docs = (list.body as Group).documents
  assert.deepEqual(
    docs.map((d) => d.key),
    ['m1', 'm2', 'm3', 'm4', 'm5'].map((m) => ['u1', m]),
  )
  assert.ok(docs.every((d) => d.table === 'messages' && /^\d+\.\d+$/.test(d.etag)))
  assert.deepEqual(
    docs.map((d) => d.doc),
    [...u1].sort((a, b) => a.msgId.localeCompare(b.msgId)),
  )
  assert.equal(((await c.http('GET', `/${DB}/messages/u1?limit=2`)).body as Group).documents.length, 2)
  // Key order is the order of the key parts' characters, whatever JSON would escape or sort.
  const tricky = ['item', 'item 2', 'item!', 'item"', 'item\\', 'itemZ', 'item\u0001', 'it', 'i/x', 'ü']
  for (const id of tricky)
    assert.equal(
      (await c.http('PUT', `/${DB}/messages/u3/${encodeURIComponent(id)}`, msg('u3', id, 'inbox'))).status,
      200,
    )
  const u3 = ((await c.http('GET', `/${DB}/messages/u3`)).body as Group).documents.map((d) => d.key[1])
  assert.deepEqual(u3, [...tricky].sort())
  assert.deepEqual(
    ((await c.http('GET', `/${DB}/messages/u3?query=folder:inbox`)).body as Group).documents.map((d) => d.key[1]),
    [...tricky].sort(),
  )
  for (const id of tricky)
    assert.equal((await c.http('DELETE', `/${DB}/messages/u3/${encodeURIComponent(id)}`)).status, 200)
  assert.deepEqual(((await c.http('GET', `/${DB}/messages/nobody`)).body as Group).documents, [])

  const query = async (user: string, q: string) => {
    const res = await c.http('GET', `/${DB}/messages/${user}?query=${encodeURIComponent(q)}`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    return (res.body as Group).documents.map((d) => d.key.join('/'))
  }
  // Only u1's inbox, not u2's.
  assert.deepEqual(await query('u1', 'folder:inbox'), ['u1/m1', 'u1/m3', 'u1/m5'])
  assert.deepEqual(await query('u2', 'folder:inbox'), ['u2/m1', 'u2/m2'])
  assert.deepEqual(await query('u1', 'folder:spam'), ['u1/m4'])
  assert.deepEqual(await query('u1', 'folder:nothing'), [])

  // Moving a message: the next query sees the new value only (index updated in the same transaction).
  const move = await c.http('PUT', `/${DB}/messages/u1/m3`, msg('u1', 'm3', 'archive'))
  assert.equal(move.status, 200)
  assert.deepEqual(await query('u1', 'folder:inbox'), ['u1/m1', 'u1/m5'])
  assert.deepEqual(await query('u1', 'folder:archive'), ['u1/m2', 'u1/m3'])
  // Deleting one: gone from the index at once.
  assert.equal((await c.http('DELETE', `/${DB}/messages/u1/m4`)).status, 200)
  assert.deepEqual(await query('u1', 'folder:spam'), [])
  assert.deepEqual(await query('u2', 'folder:inbox'), ['u2/m1', 'u2/m2'])
  // A single document of the group by its full key.
  assert.deepEqual((await c.http('GET', `/${DB}/messages/u1/m3`)).body, msg('u1', 'm3', 'archive'))

  // Queries on fields that are not indexed, or malformed.
  assertError(await c.http('GET', `/${DB}/messages/u1?query=text:hello`), 400, 'BAD_REQUEST')
  assertError(await c.http('GET', `/${DB}/messages/u1?query=folder`), 400, 'BAD_REQUEST')
  assertError(await c.http('GET', `/${DB}/messages/u1/m1?query=folder:inbox`), 400, 'BAD_REQUEST')
  assertError(await c.http('GET', `/${DB}/messages/u1?limit=0`), 400, 'BAD_REQUEST')
})

void test('transactions: multi-table on one group atomically, failed precondition writes nothing, cross-group refused, deletes', async () => {
  type Tx = { operations: Record<string, unknown>[] }
  const tx = (body: Tx) => c.http('POST', `/${DB}/_transaction`, body)
  const m = (msgId: string, folder: string) => ({ userId: 'u9', msgId, folder, text: msgId })

  const first = await tx({
    operations: [
      { op: 'put', table: 'messages', key: ['u9', 'a'], doc: m('a', 'inbox'), ifNoneMatch: '*' },
      { op: 'put', table: 'messages', key: ['u9', 'b'], doc: m('b', 'inbox') },
      { op: 'put', table: 'mailboxes', key: ['u9'], doc: { userId: 'u9', unread: 2 } },
    ],
  })
  assert.equal(first.status, 200, JSON.stringify(first.body))
  const etag = `"${(first.body as { etag: string }).etag}"`
  for (const path of ['messages/u9/a', 'messages/u9/b', 'mailboxes/u9']) {
    const res = await c.http('GET', `/${DB}/${path}`)
    assert.equal(res.status, 200, path)
    assert.equal(etagOf(res), etag, `${path} has its own ETag`)
  }

  // One failed precondition: nothing of the transaction is written.
  const failed = await tx({
    operations: [
      { op: 'put', table: 'messages', key: ['u9', 'c'], doc: m('c', 'inbox') },
      { op: 'put', table: 'mailboxes', key: ['u9'], doc: { userId: 'u9', unread: 3 }, ifMatch: '"1.999999"' },
    ],
  })
  assertError(failed, 412, 'PRECONDITION_FAILED')
  assertError(await c.http('GET', `/${DB}/messages/u9/c`), 404, 'NOT_FOUND')
  assert.deepEqual((await c.http('GET', `/${DB}/mailboxes/u9`)).body, { userId: 'u9', unread: 2 })
  assertError(
    await tx({
      operations: [
        { op: 'put', table: 'messages', key: ['u9', 'c'], doc: m('c', 'inbox') },
        { op: 'put', table: 'messages', key: ['u9', 'a'], doc: m('a', 'x'), ifNoneMatch: '*' },
      ],
    }),
    412,
    'PRECONDITION_FAILED',
  )
  assertError(await c.http('GET', `/${DB}/messages/u9/c`), 404, 'NOT_FOUND')
  // An invalid document in one op: nothing written either.
  assertError(
    await tx({
      operations: [
        { op: 'put', table: 'messages', key: ['u9', 'c'], doc: m('c', 'inbox') },
        { op: 'put', table: 'mailboxes', key: ['u9'], doc: { userId: 'u9', unread: 'many' } },
      ],
    }),
    400,
    'INVALID_DOCUMENT',
  )
  assertError(await c.http('GET', `/${DB}/messages/u9/c`), 404, 'NOT_FOUND')

  // Two document groups (different partition keys): refused, whichever partitions they map to.
  const cross = await tx({
    operations: [
      { op: 'put', table: 'mailboxes', key: ['u9'], doc: { userId: 'u9', unread: 5 } },
      { op: 'put', table: 'mailboxes', key: ['u10'], doc: { userId: 'u10', unread: 5 } },
    ],
  })
  assertError(cross, 400, 'CROSS_GROUP_TRANSACTION')
  assertError(await c.http('GET', `/${DB}/mailboxes/u10`), 404, 'NOT_FOUND')

  // A delete and an update together, conditional on the ETag read above.
  const second = await tx({
    operations: [
      { op: 'delete', table: 'messages', key: ['u9', 'a'], ifMatch: etag },
      { op: 'put', table: 'mailboxes', key: ['u9'], doc: { userId: 'u9', unread: 1 }, ifMatch: etag },
    ],
  })
  assert.equal(second.status, 200, JSON.stringify(second.body))
  assertError(await c.http('GET', `/${DB}/messages/u9/a`), 404, 'NOT_FOUND')
  const box = await c.http('GET', `/${DB}/mailboxes/u9`)
  assert.deepEqual(box.body, { userId: 'u9', unread: 1 })
  assert.equal(etagOf(box), `"${(second.body as { etag: string }).etag}"`)
  assert.deepEqual(
    ((await c.http('GET', `/${DB}/messages/u9`)).body as { documents: { key: string[] }[] }).documents.map(
      (d) => d.key,
    ),
    [['u9', 'b']],
  )

  // Malformed transactions.
  assertError(await tx({ operations: [] }), 400, 'BAD_REQUEST')
  assertError(await tx({ operations: [{ op: 'put', table: 'mailboxes', key: ['u9'] }] }), 400, 'BAD_REQUEST')
  assertError(
    await tx({ operations: [{ op: 'upsert', table: 'mailboxes', key: ['u9'], doc: { userId: 'u9', unread: 1 } }] }),
    400,
    'BAD_REQUEST',
  )
  assertError(await tx({ operations: [{ op: 'put', table: 'nosuch', key: ['u9'], doc: {} }] }), 404, 'UNKNOWN_TABLE')
  assertError(
    await tx({
      operations: [{ op: 'put', table: 'mailboxes', key: ['u9'], doc: { userId: 'u9', unread: 1 }, ifMatch: '"abc' }],
    }),
    400,
    'BAD_REQUEST',
  )
  assertError(
    await c.http('POST', `/nosuch/_transaction`, { operations: [{ op: 'delete', table: 'mailboxes', key: ['u9'] }] }),
    404,
    'UNKNOWN_DATABASE',
  )
  assert.deepEqual((await c.http('GET', `/${DB}/mailboxes/u9`)).body, { userId: 'u9', unread: 1 })
})

void test('multi-get across partitions: order preserved, missing keys null', async () => {
  const ids = Array.from({ length: 12 }, (_, i) => `mg${i}`)
  const partitions = new Set(ids.map((id) => partitionOf(id, PARTITIONS)))
  assert.ok(partitions.size >= 3, `keys cover only partitions ${[...partitions].join(',')}`)
  const etags = new Map<string, string>()
  for (const [i, id] of ids.entries()) {
    if (i % 3 === 2) continue // every third one is missing
    const res = await c.http('PUT', `/${DB}/users/${id}`, { id, name: `User ${i}`, age: i, email: null })
    assert.equal(res.status, 200)
    etags.set(id, etagOf(res).slice(1, -1))
  }
  const keys = [...ids].reverse().map((id) => ({ table: 'users', key: [id] }))
  keys.splice(3, 0, { table: 'messages', key: ['u2', 'm1'] }, { table: 'mailboxes', key: ['nobody'] })
  for (const consistency of ['master', 'any']) {
    const res = await c.http('POST', `/${DB}/_multiget?consistency=${consistency}`, { keys })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    const docs = (
      res.body as { documents: ({ table: string; key: string[]; etag: string; doc: Record<string, unknown> } | null)[] }
    ).documents
    assert.equal(docs.length, keys.length)
    docs.forEach((d, i) => {
      const k = keys[i]
      if (k.table === 'messages') {
        assert.deepEqual(d?.doc, { userId: 'u2', msgId: 'm1', folder: 'inbox', text: 'u2/m1 in inbox' })
        return
      }
      if (k.table === 'mailboxes') return assert.equal(d, null)
      const id = k.key[0]
      const expected = etags.get(id)
      if (expected === undefined) return assert.equal(d, null, `${id} should be missing`)
      if (consistency === 'master') assert.ok(d !== null)
      // A replica may not have applied the latest write yet; what it has is the right document.
      if (d === null) return
      assert.deepEqual(d.key, [id])
      assert.equal(d.table, 'users')
      assert.equal(d.doc.id, id)
      assert.equal(d.doc.name, `User ${ids.indexOf(id)}`)
      if (consistency === 'master') assert.equal(d.etag, expected)
    })
  }
  assertError(await c.http('POST', `/${DB}/_multiget`, { keys: [] }), 400, 'BAD_REQUEST')
  assertError(
    await c.http('POST', `/${DB}/_multiget`, { keys: [{ table: 'nosuch', key: ['a'] }] }),
    404,
    'UNKNOWN_TABLE',
  )
  assertError(await c.http('POST', `/${DB}/_multiget`, { keys: [{ table: 'users', key: [] }] }), 400, 'BAD_REQUEST')
  assertError(
    await c.http('POST', `/nosuch/_multiget`, { keys: [{ table: 'users', key: ['a'] }] }),
    404,
    'UNKNOWN_DATABASE',
  )
})

void test('a 3 MB document is stored and read back byte-identical on every replica', async () => {
  // Varied content, multi-byte characters included, so a reordered or lost segment shows.
  const parts: string[] = []
  let size = 0
  for (let i = 0; size < 3 * 1024 * 1024; i++) {
    const chunk = `${i.toString(36)}:é€😀-${'x'.repeat(i % 97)}|`
    parts.push(chunk)
    size += Buffer.byteLength(chunk)
  }
  const data = parts.join('')
  const doc = { id: 'big', data }
  const put = await c.http('PUT', `/${DB}/blobs/big`, doc)
  assert.equal(put.status, 200, JSON.stringify(put.body))
  const etag = etagOf(put)

  const res = await fetch(`${c.router.url}/${DB}/blobs/big`)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('etag'), etag)
  const text = await res.text()
  assert.ok(Buffer.byteLength(text) > 3 * 1024 * 1024)
  assert.ok(
    Buffer.from(text).equals(Buffer.from(JSON.stringify(doc))),
    'the document read back differs from the one written',
  )

  await c.waitCaughtUp(DB)
  // Every replica of its partition serves the same bytes.
  const partition = partitionOf('big', PARTITIONS)
  const digests = (await c.digests(DB))[partition]
  assert.equal(digests.length, 3)
  assert.equal(new Set(digests.map((d) => d.digest)).size, 1, JSON.stringify(digests))
  assert.equal(
    new Set(digests.map((d) => d.fileDigest)).size,
    1,
    `replica files are not byte-identical: ${JSON.stringify(digests)}`,
  )
  for (let i = 0; i < 3; i++) {
    const any = await c.http('POST', `/${DB}/_multiget?consistency=any`, { keys: [{ table: 'blobs', key: ['big'] }] })
    const d = (any.body as { documents: { etag: string; doc: { data: string } }[] }).documents[0]
    assert.equal(`"${d.etag}"`, etag)
    assert.ok(d.doc.data === data, 'a replica serves a different document')
  }
})

void test('bad input gets a typed 4xx and leaves the router working', async () => {
  const user = { id: 'eve', name: 'Eve', age: 22, email: null }
  // Bodies.
  assertError(await c.http('PUT', `/${DB}/users/eve`, '{"id": "eve", '), 400, 'BAD_REQUEST')
  assertError(await c.http('PUT', `/${DB}/users/eve`, '[1, 2]'), 400, 'BAD_REQUEST')
  assertError(await c.http('PUT', `/${DB}/users/eve`, '"eve"'), 400, 'BAD_REQUEST')
  assertError(await c.http('PUT', `/${DB}/users/eve`, '42'), 400, 'BAD_REQUEST')
  assertError(await c.http('PUT', `/${DB}/users/eve`, 'null'), 400, 'BAD_REQUEST')
  assertError(await c.http('PUT', `/${DB}/users/eve`), 400, 'BAD_REQUEST')
  assertError(await c.http('PUT', `/${DB}/users/eve`, '', { 'content-type': 'application/json' }), 400, 'BAD_REQUEST')
  assertError(
    await c.http('PUT', `/${DB}/users/eve`, JSON.stringify(user), { 'content-type': 'text/plain' }),
    400,
    'BAD_REQUEST',
  )
  assertError(
    await c.http('PUT', `/${DB}/users/eve`, JSON.stringify(user), { 'content-type': 'application/xml' }),
    400,
    'BAD_REQUEST',
  )
  assertError(
    await c.http('POST', `/${DB}/_transaction`, '{"operations": [', { 'content-type': 'application/json' }),
    400,
    'BAD_REQUEST',
  )
  assertError(await c.http('POST', `/${DB}/_multiget`, { keys: 'all' }), 400, 'BAD_REQUEST')
  await stillWorks()

  // Unknown database, unknown table.
  assertError(await c.http('PUT', `/nosuch/users/eve`, user), 404, 'UNKNOWN_DATABASE')
  assertError(await c.http('GET', `/nosuch/users/eve`), 404, 'UNKNOWN_DATABASE')
  assertError(await c.http('DELETE', `/nosuch/users/eve`), 404, 'UNKNOWN_DATABASE')
  assertError(await c.http('PUT', `/${DB}/nosuch/eve`, user), 404, 'UNKNOWN_TABLE')
  assertError(await c.http('GET', `/${DB}/nosuch/eve`), 404, 'UNKNOWN_TABLE')
  assertError(await c.http('DELETE', `/${DB}/nosuch/eve`), 404, 'UNKNOWN_TABLE')
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    assertError(await c.http('PUT', `/${DB}/${name}/eve`, user), 404, 'UNKNOWN_TABLE')
    assertError(await c.http('GET', `/${DB}/${name}/eve`), 404, 'UNKNOWN_TABLE')
    assertError(await c.http('DELETE', `/${DB}/${name}/eve`), 404, 'UNKNOWN_TABLE')
    assertError(
      await c.http('POST', `/${DB}/_multiget`, { keys: [{ table: name, key: ['eve'] }] }),
      404,
      'UNKNOWN_TABLE',
    )
    assertError(
      await c.http('POST', `/${DB}/_transaction`, { operations: [{ op: 'delete', table: name, key: ['eve'] }] }),
      404,
      'UNKNOWN_TABLE',
    )
    assertError(
      await c.http('POST', `/_admin/databases/${DB}/tables/${name}/schemas`, tables.blobs.schema),
      404,
      'UNKNOWN_TABLE',
    )
  }
  assertError(await c.http('GET', `/${DB}/users`), 404, 'NOT_FOUND')
  assertError(await c.http('PATCH', `/${DB}/users/eve`, user), 404, 'NOT_FOUND')

  // Key parts: too many, too few, empty, or not the document's key.
  assertError(await c.http('PUT', `/${DB}/users/eve/extra`, user), 400, 'BAD_REQUEST')
  assertError(await c.http('GET', `/${DB}/users/eve/extra`), 400, 'BAD_REQUEST')
  assertError(await c.http('DELETE', `/${DB}/users/eve/extra`), 400, 'BAD_REQUEST')
  assertError(
    await c.http('PUT', `/${DB}/messages/u1`, { userId: 'u1', msgId: 'm9', folder: 'inbox', text: '' }),
    400,
    'BAD_REQUEST',
  )
  assertError(await c.http('DELETE', `/${DB}/messages/u1`), 400, 'BAD_REQUEST')
  assertError(
    await c.http('PUT', `/${DB}/messages/u1//m9`, { userId: 'u1', msgId: 'm9', folder: 'inbox', text: '' }),
    400,
    'BAD_REQUEST',
  )
  assertError(await c.http('GET', `/${DB}/users/eve/`), 400, 'BAD_REQUEST')
  assertError(await c.http('PUT', `/${DB}/users/mallory`, user), 400, 'BAD_REQUEST')
  assertError(
    await c.http('PUT', `/${DB}/messages/u1/m9`, { userId: 'u2', msgId: 'm9', folder: 'inbox', text: '' }),
    400,
    'BAD_REQUEST',
  )
  assertError(
    await c.http('PUT', `/${DB}/users/${'k'.repeat(1025)}`, { ...user, id: 'k'.repeat(1025) }),
    400,
    'BAD_REQUEST',
  )
  assertError(await c.http('GET', `/${DB}/users/mallory`), 404, 'NOT_FOUND')
  assertError(await c.http('GET', `/${DB}/users/eve`), 404, 'NOT_FOUND')
  await stillWorks()

  // Hostile headers.
  for (const value of ['"abc', 'abc', '"a" "b"', '"1.2", "1.3"', 'W/', '\u00ff']) {
    assertError(await c.http('PUT', `/${DB}/users/eve`, user, { 'if-match': value }), 400, 'BAD_REQUEST')
    assertError(await c.http('GET', `/${DB}/users/healthy`, undefined, { 'if-none-match': value }), 400, 'BAD_REQUEST')
  }
  assertError(await c.http('DELETE', `/${DB}/users/healthy`, undefined, { 'if-match': '"abc' }), 400, 'BAD_REQUEST')
  assertError(
    await c.http('PUT', `/${DB}/users/eve`, user, { 'if-match': `"${'9'.repeat(10 * 1024)}"` }),
    412,
    'PRECONDITION_FAILED',
  )
  assertError(await c.http('PUT', `/${DB}/users/eve`, user, { 'if-match': 'x'.repeat(10 * 1024) }), 400, 'BAD_REQUEST')
  const junk = await c.http('PUT', `/${DB}/users/eve`, user, { 'x-junk': 'j'.repeat(10 * 1024) })
  assert.equal(junk.status, 200, 'a large unrelated header is no reason to refuse')
  assertError(await c.http('GET', `/${DB}/users/eve?consistency=sometimes`), 400, 'BAD_REQUEST')
  // Headers beyond node's limit (16 KiB): refused by the HTTP parser, still with a typed body.
  rawError(await raw('GET', `/${DB}/users/healthy`, { 'x-junk': 'j'.repeat(20 * 1024) }), 431, 'BAD_REQUEST')
  await stillWorks()

  // Paths with bad percent-encoding.
  rawError(await raw('GET', `/${DB}/users/%E0%A4%A`, {}), 400, 'BAD_REQUEST')
  rawError(await raw('GET', `/${DB}/users/%zz`, {}), 400, 'BAD_REQUEST')
  rawError(
    await raw('PUT', `/${DB}/users/%C3%28`, { 'content-type': 'application/json' }, JSON.stringify(user)),
    400,
    'BAD_REQUEST',
  )
  rawError(await raw('GET', `/%zz/users/eve`, {}), 400, 'BAD_REQUEST')
  // A path parameter beyond fastify's length limit.
  rawError(await raw('GET', `/${DB}/${'t'.repeat(200)}/eve`, {}), 400, 'BAD_REQUEST')

  // A body announced beyond the router's limit (64 MiB) is refused before it is read.
  rawError(
    await raw('PUT', `/${DB}/users/eve`, { 'content-type': 'application/json', 'content-length': 100 * 1024 * 1024 }),
    413,
    'PAYLOAD_TOO_LARGE',
  )
  await stillWorks()
  assert.deepEqual((await c.http('GET', `/${DB}/users/eve`)).body, user)
})

void test('the fast path (PUT and GET of one document) answers exactly as the fastify routes do', async () => {
  // The same request twice: as is (the fast path takes it) and with a query string (the fast path
  // leaves it to fastify's route). Status, body and ETag must agree, errors included.
  const fastAnswers = async () => {
    const text = (await raw('GET', '/metrics', {})).body
    const m = /^cortado_router_fast_path_requests_total (\d+)/m.exec(text)
    assert.ok(m !== null, 'the router counts fast-path answers')
    return Number(m[1])
  }
  const json = { 'content-type': 'application/json' }
  const put = (path: string, body: string, headers: Record<string, string> = json) =>
    raw('PUT', path, { ...headers, 'content-length': Buffer.byteLength(body) }, body)
  const both = async (send: (path: string) => Promise<{ status: number; body: string }>, path: string) => {
    const before = await fastAnswers()
    const fast = await send(path)
    const viaFastify = await send(`${path}?via=fastify`)
    assert.equal((await fastAnswers()) - before, 1, `${path}: one answer from the fast path`)
    assert.equal(fast.status, viaFastify.status, `${path}: ${fast.body} / ${viaFastify.body}`)
    return { fast, viaFastify }
  }
  // Same status, code and message; a path that is not valid percent-encoding is refused by fastify's
  // router before the route, in its own words, so there only the code is compared.
  const sameError = async (
    send: (path: string) => Promise<{ status: number; body: string }>,
    path: string,
    code: string,
    sameMessage = true,
  ) => {
    const { fast, viaFastify } = await both(send, path)
    const [a, b] = [fast, viaFastify].map((r) => (JSON.parse(r.body) as ErrorBody).error)
    assert.equal(a.code, code, fast.body)
    assert.equal(b.code, code, viaFastify.body)
    if (sameMessage) assert.equal(fast.body, viaFastify.body)
  }
  const user = (id: string) => JSON.stringify({ id, name: 'Fast', age: 3, email: null })

  // Writes that succeed: each answers its new ETag.
  for (const headers of [json, { 'content-type': 'application/json; charset=utf-8' }]) {
    const { fast, viaFastify } = await both((p) => put(p, user('fast'), headers), `/${DB}/users/fast`)
    assert.equal(fast.status, 200)
    for (const r of [fast, viaFastify]) assert.match((JSON.parse(r.body) as { etag: string }).etag, /^\d+\.\d+$/)
  }
  // Refused writes.
  for (const body of ['{"id": ', '[1, 2]', 'null', '42', '"x"', '{"__proto__": {"admin": true}, "id": "fast"}'])
    await sameError((p) => put(p, body), `/${DB}/users/fast`, 'BAD_REQUEST')
  await sameError((p) => put(p, JSON.stringify({ id: 'fast', name: 'F' })), `/${DB}/users/fast`, 'INVALID_DOCUMENT')
  await sameError((p) => put(p, user('fast')), `/nosuch/users/fast`, 'UNKNOWN_DATABASE')
  await sameError((p) => put(p, user('fast')), `/${DB}/nosuch/fast`, 'UNKNOWN_TABLE')
  await sameError((p) => put(p, user('fast')), `/${DB}/users/fast/extra`, 'BAD_REQUEST')
  await sameError((p) => put(p, user('fast')), `/${DB}/users/%zz`, 'BAD_REQUEST', false)
  await sameError((p) => put(p, user('fast'), { ...json, 'if-match': 'nope' }), `/${DB}/users/fast`, 'BAD_REQUEST')
  await sameError(
    (p) => put(p, user('fast'), { ...json, 'if-match': '"999.999"' }),
    `/${DB}/users/fast`,
    'PRECONDITION_FAILED',
  )

  // Reads: the same document and ETag, the same 304, the same refusals.
  const { fast, viaFastify } = await both((p) => raw('GET', p, {}), `/${DB}/users/fast`)
  assert.equal(fast.status, 200)
  assert.deepEqual(JSON.parse(fast.body), JSON.parse(user('fast')))
  assert.equal(fast.body, viaFastify.body)
  const etag = (await c.http('GET', `/${DB}/users/fast`)).headers.get('etag')!
  const notModified = await both((p) => raw('GET', p, { 'if-none-match': etag }), `/${DB}/users/fast`)
  assert.equal(notModified.fast.status, 304)
  await sameError((p) => raw('GET', p, {}), `/${DB}/users/nobody`, 'NOT_FOUND')
  await sameError((p) => raw('GET', p, {}), `/${DB}/nosuch/fast`, 'UNKNOWN_TABLE')
  await sameError((p) => raw('GET', p, { 'if-none-match': 'nope' }), `/${DB}/users/fast`, 'BAD_REQUEST')
  await stillWorks()
})

void test('admin: database definitions are validated; re-creating is idempotent or refused', async () => {
  const put = (name: string, body: unknown) => c.http('PUT', `/_admin/databases/${name}`, body)
  // The same definition again: 200, nothing changes.
  const same = await put(DB, definition)
  assert.equal(same.status, 200, JSON.stringify(same.body))
  assert.equal((same.body as { name: string }).name, DB)
  // A different definition: 409.
  assertError(await put(DB, { ...definition, partitions: 8 }), 409, 'DATABASE_EXISTS')
  assertError(await put(DB, { ...definition, replicas: 2 }), 409, 'DATABASE_EXISTS')
  assertError(await put(DB, { ...definition, tables: { ...tables, extra: tables.blobs } }), 409, 'DATABASE_EXISTS')
  assertError(
    await put(DB, { ...definition, tables: { ...tables, blobs: { ...tables.blobs, key: ['data'] } } }),
    409,
    'DATABASE_EXISTS',
  )
  assertError(
    await put(DB, { ...definition, tables: { ...tables, blobs: { ...tables.blobs, indexes: ['data'] } } }),
    409,
    'DATABASE_EXISTS',
  )
  assertError(
    await put(DB, {
      ...definition,
      tables: {
        ...tables,
        blobs: {
          ...tables.blobs,
          schema: { ...tables.blobs.schema, fields: [...tables.blobs.schema.fields, { name: 'size', type: 'int' }] },
        },
      },
    }),
    409,
    'DATABASE_EXISTS',
  )

  const ok = { partitions: 1, replicas: 1, tables: { t: tables.blobs } }
  const invalid: [unknown, string][] = [
    [{ ...ok, partitions: 0 }, 'BAD_REQUEST'],
    [{ ...ok, partitions: 'many' }, 'BAD_REQUEST'],
    [{ ...ok, replicas: 0 }, 'BAD_REQUEST'],
    [{ replicas: 1, tables: ok.tables }, 'BAD_REQUEST'],
    [{ ...ok, tables: {} }, 'INVALID_DATABASE'],
    [{ ...ok, tables: { 'bad name': tables.blobs } }, 'INVALID_DATABASE'],
    [{ ...ok, tables: { t: { ...tables.blobs, key: [] } } }, 'BAD_REQUEST'],
    [{ ...ok, tables: { t: { ...tables.blobs, key: ['nosuchfield'] } } }, 'INVALID_DATABASE'],
    [{ ...ok, tables: { t: { ...tables.blobs, key: ['id', 'id'] } } }, 'INVALID_DATABASE'],
    [{ ...ok, tables: { t: { ...tables.blobs, indexes: ['nosuchfield'] } } }, 'INVALID_DATABASE'],
    [
      {
        ...ok,
        tables: {
          t: { ...tables.blobs, schema: { type: 'record', name: 'X', fields: [{ name: 'id', type: 'nosuchtype' }] } },
        },
      },
      'INVALID_SCHEMA',
    ],
    [{ ...ok, tables: { t: { ...tables.blobs, schema: { type: 'string' } } } }, 'INVALID_SCHEMA'],
    [{ ...ok, tables: { t: { key: ['id'] } } }, 'BAD_REQUEST'],
  ]
  for (const [body, code] of invalid) {
    const res = await put('fresh', body)
    assertError(res, 400, code)
  }
  assertError(await put('1bad', ok), 400, 'INVALID_DATABASE')
  assertError(await put('fresh', { ...ok, replicas: 5 }), 409, 'NOT_ENOUGH_NODES')
  assertError(
    await c.http('PUT', '/_admin/databases/fresh', '{', { 'content-type': 'application/json' }),
    400,
    'BAD_REQUEST',
  )
  // None of them created anything.
  assertError(await c.http('GET', '/_admin/databases/fresh'), 404, 'UNKNOWN_DATABASE')
  const listed = await c.http('GET', '/_admin/databases')
  assert.deepEqual(
    (listed.body as { databases: { name: string }[] }).databases.map((d) => d.name),
    [DB],
  )
  const described = (await c.http('GET', `/_admin/databases/${DB}`)).body as {
    partitions: number
    replicas: number
    tables: Record<string, unknown>
    placement: { master: string; replicas: string[] }[]
  }
  assert.equal(described.partitions, PARTITIONS)
  assert.equal(described.replicas, 3)
  assert.deepEqual(Object.keys(described.tables).sort(), Object.keys(tables).sort())
  assert.equal(described.placement.length, PARTITIONS)
  for (const p of described.placement) assert.ok(p.replicas.includes(p.master))
})

void test('admin: the cluster view, planned mastership moves, OpenAPI and metrics', async () => {
  interface View {
    nodes: { id: string; pid: number; rack: string | null; url: string; status: string }[]
    databases: {
      name: string
      partitions: {
        partition: number
        generation: number
        master: string
        replicas: { node: string; role: string; applied: { generation: number; scn: number } | null }[]
      }[]
    }[]
  }
  let view = (await c.http('GET', '/_admin/cluster')).body as View
  assert.deepEqual(view.nodes.map((n) => n.id).sort(), ['n1', 'n2', 'n3'])
  for (const n of view.nodes) {
    assert.equal(n.status, 'up')
    assert.equal(n.pid, c.nodes.get(n.id)?.proc.pid)
    assert.equal(n.rack, null)
    assert.match(n.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  }
  const db = view.databases.find((d) => d.name === DB)
  assert.ok(db !== undefined)
  assert.deepEqual(
    db.partitions.map((p) => p.partition),
    [0, 1, 2, 3],
  )
  // Masters spread over the nodes.
  assert.equal(new Set(db.partitions.map((p) => p.master)).size, 3)
  for (const p of db.partitions) {
    assert.equal(p.replicas.length, 3)
    assert.deepEqual(p.replicas.map((r) => r.node).sort(), ['n1', 'n2', 'n3'])
    const master = p.replicas.find((r) => r.node === p.master)
    assert.equal(master?.role, 'master')
    for (const r of p.replicas) {
      assert.ok(
        r.applied !== null && Number.isInteger(r.applied.generation) && Number.isInteger(r.applied.scn),
        JSON.stringify(r),
      )
      if (r.node !== p.master) assert.equal(r.role, 'slave')
    }
    assert.equal(master.applied?.generation, p.generation)
  }

  // A planned move of partition 0's mastership: writes go on, nothing is lost.
  const p0 = db.partitions[0]
  const key = Array.from({ length: 100 }, (_, i) => `move${i}`).find((k) => partitionOf(k, PARTITIONS) === 0)!
  assert.equal(
    (await c.http('PUT', `/${DB}/users/${key}`, { id: key, name: 'before', age: 1, email: null })).status,
    200,
  )
  const target = p0.replicas.find((r) => r.node !== p0.master)!.node
  const moved = await c.http('POST', `/_admin/databases/${DB}/partitions/0/master`, { node: target })
  assert.equal(moved.status, 200, JSON.stringify(moved.body))
  assert.deepEqual((moved.body as { master: string; generation: number }).master, target)
  assert.equal((moved.body as { generation: number }).generation, p0.generation + 1)
  const before = await c.http('GET', `/${DB}/users/${key}`)
  assert.equal((before.body as { name: string }).name, 'before')
  const after = await c.http(
    'PUT',
    `/${DB}/users/${key}`,
    { id: key, name: 'after', age: 2, email: null },
    { 'if-match': etagOf(before) },
  )
  assert.equal(after.status, 200, JSON.stringify(after.body))
  assert.match(etagOf(after), new RegExp(`^"${p0.generation + 1}\\.\\d+"$`))
  assert.equal(((await c.http('GET', `/${DB}/users/${key}`)).body as { name: string }).name, 'after')
  view = (await c.http('GET', '/_admin/cluster')).body as View
  assert.equal(view.databases[0].partitions[0].master, target)
  // Two moves of one partition at once: each gets its own generation; writes go on.
  const p1 = db.partitions[1]
  const others = p1.replicas.map((r) => r.node).filter((n) => n !== p1.master)
  const moves = await Promise.all(
    others.map((node) => c.http('POST', `/_admin/databases/${DB}/partitions/1/master`, { node })),
  )
  assert.deepEqual(
    moves.map((m) => m.status),
    [200, 200],
    JSON.stringify(moves.map((m) => m.body)),
  )
  const generations = moves.map((m) => (m.body as { generation: number }).generation).sort()
  assert.deepEqual(generations, [p1.generation + 1, p1.generation + 2])
  const key1 = Array.from({ length: 100 }, (_, i) => `move${i}`).find((k) => partitionOf(k, PARTITIONS) === 1)!
  const w1 = await c.http('PUT', `/${DB}/users/${key1}`, { id: key1, name: 'moved twice', age: 3, email: null })
  assert.equal(w1.status, 200, JSON.stringify(w1.body))
  assert.match(etagOf(w1), new RegExp(`^"${p1.generation + 2}\\.\\d+"$`))
  assertError(await c.http('POST', `/_admin/databases/${DB}/partitions/0/master`, { node: 'n99' }), 400, 'BAD_REQUEST')
  assertError(
    await c.http('POST', `/_admin/databases/${DB}/partitions/99/master`, { node: target }),
    404,
    'UNKNOWN_PARTITION',
  )
  assertError(await c.http('POST', `/_admin/databases/${DB}/partitions/x/master`, { node: target }), 400, 'BAD_REQUEST')
  assertError(
    await c.http('POST', `/_admin/databases/nosuch/partitions/0/master`, { node: target }),
    404,
    'UNKNOWN_DATABASE',
  )

  // OpenAPI 3, with the document and admin routes.
  const api = (await c.http('GET', '/openapi.json')).body as {
    openapi: string
    paths: Record<string, Record<string, unknown>>
  }
  assert.match(api.openapi, /^3\./)
  const paths = Object.keys(api.paths)
  for (const p of [
    '/{db}/_multiget',
    '/{db}/_transaction',
    '/_admin/databases/{db}',
    '/_admin/databases',
    '/_admin/cluster',
    '/_admin/databases/{db}/tables/{table}/schemas',
  ]) {
    assert.ok(paths.includes(p), `${p} not in ${paths.join(', ')}`)
  }
  const docPath = paths.find((p) => p.startsWith('/{db}/{table}/'))
  assert.ok(docPath !== undefined, paths.join(', '))
  assert.deepEqual(Object.keys(api.paths[docPath]).sort(), ['delete', 'get', 'put'])
  assert.ok(!paths.includes('/metrics') && !paths.includes('/openapi.json'))

  const health = await c.http('GET', '/_health')
  assert.equal(health.status, 200)
  assert.equal((health.body as { ok: boolean }).ok, true)

  // Metrics.
  const metrics = await fetch(`${c.router.url}/metrics`)
  assert.equal(metrics.status, 200)
  const text = await metrics.text()
  assert.match(text, /^cortado_router_requests_total\{.*route="\/:db\/:table\/\*".*method="PUT".*status="200".*\} \d+/m)
  assert.match(text, /^cortado_router_requests_total\{.*status="412".*\} \d+/m)
  assert.match(text, /^cortado_router_request_seconds_bucket\{/m)
})

void test('at the end every replica of every partition has applied everything and holds identical content', async () => {
  await c.waitCaughtUp(DB)
  const digests = await c.digests(DB)
  assert.equal(digests.length, PARTITIONS)
  let documents = 0
  for (const [p, replicas] of digests.entries()) {
    assert.equal(replicas.length, 3)
    assert.equal(
      new Set(replicas.map((r) => r.digest)).size,
      1,
      `partition ${p} replicas differ: ${JSON.stringify(replicas)}`,
    )
    assert.equal(
      new Set(replicas.map((r) => r.fileDigest)).size,
      1,
      `partition ${p} replica files are not byte-identical: ${JSON.stringify(replicas)}`,
    )
    assert.equal(
      new Set(replicas.map((r) => `${r.generation}.${r.scn}.${r.documents}`)).size,
      1,
      JSON.stringify(replicas),
    )
    documents += replicas[0].documents
  }
  // What the tests above leave: users 16, counters 1, evolving 4, messages 7, mailboxes 1, blobs 1.
  assert.equal(documents, 30)
})
