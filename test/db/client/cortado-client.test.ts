// The client library (src/db/client/cortado-client.ts, imported as the package exports it) against
// a real cluster of processes: documents written and read straight at their masters agree with
// what the router's HTTP API serves, refusals arrive as typed DbErrors with the router's codes, a
// database created after the client connected is found, and when a master is SIGKILLed the
// client's writes go on at the new master (placement read again) without losing any.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { CortadoClient, DbError } from 'cortado/client'
import { type DbCluster, startDbCluster } from '../../helpers/db-cluster.ts'

let cluster: DbCluster
let client: CortadoClient
const DB = 'lib'

const TABLES = {
  users: {
    key: ['id'],
    schema: {
      type: 'record',
      name: 'User',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'name', type: 'string' },
        { name: 'n', type: 'int', default: 0 },
      ],
    },
  },
  items: {
    key: ['owner', 'item'],
    schema: {
      type: 'record',
      name: 'Item',
      fields: [
        { name: 'owner', type: 'string' },
        { name: 'item', type: 'string' },
        { name: 'qty', type: 'int' },
      ],
    },
  },
}

/** The DbError code a promise rejects with. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (error) {
    assert.ok(error instanceof DbError, `expected a DbError, got ${String(error)}`)
    return error.code
  }
  assert.fail('expected a refusal')
}

before(async () => {
  cluster = await startDbCluster({ nodes: 3, nodeSessionMs: 1000, routerRetryMs: 10_000 })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, { partitions: 4, replicas: 3, tables: TABLES })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  client = await CortadoClient.connect({ router: cluster.router.url, retryMs: 20_000 })
})

after(async () => {
  await client?.close()
  await cluster.stop()
})

void test('writes and reads at the masters agree with the HTTP API; deletes and transactions', async () => {
  const etag = await client.put(DB, 'users', 'ada', { id: 'ada', name: 'Ada' })
  assert.match(etag, /^\d+\.\d+$/)
  assert.deepEqual(await client.get(DB, 'users', 'ada'), { doc: { id: 'ada', name: 'Ada', n: 0 }, etag })
  // The router serves the same document and ETag.
  const viaHttp = await cluster.http('GET', `/${DB}/users/ada`)
  assert.equal(viaHttp.status, 200)
  assert.deepEqual(viaHttp.body, { id: 'ada', name: 'Ada', n: 0 })
  assert.equal(viaHttp.headers.get('etag'), `"${etag}"`)
  // And the client reads what the router wrote.
  const put = await cluster.http('PUT', `/${DB}/users/bob`, { id: 'bob', name: 'Bob', n: 2 })
  assert.equal(put.status, 200)
  assert.deepEqual((await client.get(DB, 'users', ['bob']))?.doc, { id: 'bob', name: 'Bob', n: 2 })

  // A replica catches up: a read from any replica sees the write within a little while.
  const deadline = Date.now() + 10_000
  for (;;) {
    const any = await client.get(DB, 'users', 'ada', { consistency: 'any' })
    if (any?.etag === etag) break
    assert.ok(Date.now() < deadline, `no replica served ${etag}: ${JSON.stringify(any)}`)
    await new Promise((r) => setTimeout(r, 50))
  }

  assert.equal(await client.get(DB, 'users', 'nobody'), null)
  await client.delete(DB, 'users', 'bob')
  assert.equal(await client.get(DB, 'users', 'bob'), null)

  // Two documents of one group in one transaction: both carry its ETag.
  const t = await client.transaction(DB, [
    { kind: 'put', table: 'items', key: ['ada', 'pen'], doc: { owner: 'ada', item: 'pen', qty: 1 } },
    { kind: 'put', table: 'items', key: ['ada', 'ink'], doc: { owner: 'ada', item: 'ink', qty: 3 } },
  ])
  assert.equal((await client.get(DB, 'items', ['ada', 'pen']))?.etag, t)
  assert.equal((await client.get(DB, 'items', ['ada', 'ink']))?.etag, t)
})

void test('refusals are typed DbErrors with the codes the router gives', async () => {
  const etag = await client.put(DB, 'users', 'cy', { id: 'cy', name: 'Cy' })
  assert.equal(
    await codeOf(client.put(DB, 'users', 'cy', { id: 'cy', name: 'C' }, { ifMatch: '1.1' })),
    'PRECONDITION_FAILED',
  )
  assert.equal(
    await codeOf(client.put(DB, 'users', 'cy', { id: 'cy', name: 'C' }, { ifNoneMatch: '*' })),
    'PRECONDITION_FAILED',
  )
  assert.equal(await client.put(DB, 'users', 'cy', { id: 'cy', name: 'C2' }, { ifMatch: etag }).then(() => 'ok'), 'ok')
  assert.equal(await codeOf(client.put(DB, 'users', 'cy', { id: 'cy', name: 'C', extra: 1 })), 'INVALID_DOCUMENT')
  assert.equal(await codeOf(client.put(DB, 'users', 'cy', { id: 'cy' })), 'INVALID_DOCUMENT')
  assert.equal(await codeOf(client.put(DB, 'nope', 'cy', { id: 'cy' })), 'UNKNOWN_TABLE')
  assert.equal(await codeOf(client.put('nodb', 'users', 'cy', { id: 'cy' })), 'UNKNOWN_DATABASE')
  assert.equal(await codeOf(client.get(DB, 'users', [''])), 'BAD_REQUEST')
  assert.equal(
    await codeOf(
      client.transaction(DB, [
        { kind: 'delete', table: 'users', key: ['a'] },
        { kind: 'delete', table: 'users', key: ['b'] },
      ]),
    ),
    'CROSS_GROUP_TRANSACTION',
  )
  // Nothing refused was written.
  assert.deepEqual((await client.get(DB, 'users', 'cy'))?.doc, { id: 'cy', name: 'C2', n: 0 })
})

void test('a database created after the client connected is found', async () => {
  const res = await cluster.http('PUT', '/_admin/databases/later', { partitions: 2, replicas: 3, tables: TABLES })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  const etag = await client.put('later', 'users', 'x', { id: 'x', name: 'X' })
  assert.equal((await client.get('later', 'users', 'x'))?.etag, etag)
})

void test("a SIGKILLed master's partitions keep taking the client's writes at their new masters; none is lost", async () => {
  const placement = (await cluster.http('GET', '/_admin/placement')).body as {
    partitions: { db: string; partition: number; master: string }[]
  }
  const victim = placement.partitions.find((p) => p.db === DB)!.master
  const acknowledged = new Map<string, string>()
  const write = async (i: number) => {
    const key = `k${i}`
    acknowledged.set(key, await client.put(DB, 'users', key, { id: key, name: `v${i}` }))
  }
  for (let i = 0; i < 20; i++) await write(i)
  await cluster.nodes.get(victim)!.kill()
  // Sequential writes after the kill: each waits out the failover of its partition if need be.
  for (let i = 20; i < 60; i++) await write(i)
  const after = (await cluster.http('GET', '/_admin/placement')).body as typeof placement
  assert.ok(
    after.partitions.filter((p) => p.db === DB).every((p) => p.master !== victim),
    'every partition has a new master',
  )
  for (const [key, etag] of acknowledged) {
    const read = await client.get(DB, 'users', key)
    assert.equal(read?.etag, etag, `${key} as acknowledged`)
  }
})
