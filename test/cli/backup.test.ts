// `cortado backup` and `cortado restore` against a cluster of processes: a base and an increment
// taken online; restores into new databases, whole, to a time and to a token, each equal to the
// source as the change stream says it was then; schema versions come back; typed refusals.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type ChangeEvent } from '../../src/db/changes/change-feed.ts'
import { MAIN, removeDir, tempDir } from '../helpers/broker-process.ts'
import { run } from '../helpers/compat.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'

const DB = 'bk'
let cluster: DbCluster
let dir: string

const cortado = (args: string[]) =>
  run(process.execPath, [MAIN, ...args, '--router', cluster.router.url], { timeoutMs: 180_000 })

before(async () => {
  cluster = await startDbCluster({ nodes: 3 })
  dir = tempDir('backup')
  const schema = {
    type: 'record',
    name: 'User',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'v', type: 'int' },
    ],
  }
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: 4,
    replicas: 3,
    tables: { users: { key: ['id'], schema } },
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  const v2 = { ...schema, fields: [...schema.fields, { name: 'note', type: ['null', 'string'], default: null }] }
  const added = await cluster.http('POST', `/_admin/databases/${DB}/tables/users/schemas`, v2)
  assert.equal(added.status, 201, JSON.stringify(added.body))
})

after(async () => {
  await cluster.stop()
  removeDir(dir)
})

async function events(db: string): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = []
  let since = ''
  for (;;) {
    const text = await (await fetch(`${cluster.router.url}/${db}/_changes?timeout=0&limit=5000${since}`)).text()
    const lines = text.trim().split('\n')
    const { token } = JSON.parse(lines.pop()!) as { token: string }
    out.push(...lines.map((l) => JSON.parse(l) as ChangeEvent))
    if (lines.length === 0 && since === `&since=${token}`) return out
    since = `&since=${token}`
  }
}

/** Documents by key after the events that pass `keep`. */
function stateOf(list: ChangeEvent[], keep: (e: ChangeEvent) => boolean = () => true): Map<string, unknown> {
  const state = new Map<string, unknown>()
  for (const e of list.filter(keep)) {
    if (e.op === 'put') state.set(e.key.join('/'), e.after)
    else state.delete(e.key.join('/'))
  }
  return new Map([...state].sort(([a], [b]) => (a < b ? -1 : 1)))
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

void test('a base and an increment taken online; restores whole, to a time and to a token equal the source as it was', async () => {
  const put = (id: string, v: number, note?: string) =>
    cluster.http('PUT', `/${DB}/users/${id}`, { id, v, ...(note === undefined ? {} : { note }) })
  for (let i = 0; i < 30; i++) assert.equal((await put(`u${i}`, i)).status, 200)
  const base = await cortado(['backup', DB, '--to', dir])
  assert.equal(base.code, 0, base.stderr)
  assert.match(base.stderr, /backup: base of bk, 30 documents/)

  for (let i = 0; i < 10; i++) await put(`u${i}`, 100 + i, 'second')
  for (let i = 10; i < 15; i++) await cluster.http('DELETE', `/${DB}/users/u${i}`)
  await sleep(100)
  const cut = Date.now()
  await sleep(100)
  for (let i = 30; i < 40; i++) await put(`u${i}`, i)
  for (let i = 0; i < 5; i++) await put(`u${i}`, 200 + i, 'third')
  const incr = await cortado(['backup', DB, '--to', dir])
  assert.equal(incr.code, 0, incr.stderr)
  assert.match(incr.stderr, /backup: increment incr-0001\.ndjson, 30 changes/)
  const again = await cortado(['backup', DB, '--to', dir])
  assert.equal(again.code, 0, again.stderr)
  assert.match(again.stderr, /nothing new/)
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { increments: unknown[] }
  assert.equal(manifest.increments.length, 1)

  const source = await events(DB)
  // Whole: the source now.
  const whole = await cortado(['restore', '--from', dir, '--db', 'bk_all'])
  assert.equal(whole.code, 0, whole.stderr)
  assert.deepEqual(stateOf(await events('bk_all')), stateOf(source))
  // To a time: what had committed by then.
  const atTime = await cortado(['restore', '--from', dir, '--db', 'bk_time', '--until', new Date(cut).toISOString()])
  assert.equal(atTime.code, 0, atTime.stderr)
  const expectedAtCut = stateOf(source, (e) => e.ts <= cut)
  assert.deepEqual(stateOf(await events('bk_time')), expectedAtCut)
  assert.notDeepEqual(expectedAtCut, stateOf(source), 'the cut falls between writes')
  // To a token (one the increment holds): each partition as of that event's transaction.
  const increment = readFileSync(join(dir, 'incr-0001.ndjson'), 'utf8').trim().split('\n')
  const mark = JSON.parse(increment[Math.floor(increment.length / 2)]) as ChangeEvent
  const atToken = await cortado(['restore', '--from', dir, '--db', 'bk_token', '--until-token', mark.token])
  assert.equal(atToken.code, 0, atToken.stderr)
  const limits = new Map(
    (JSON.parse(Buffer.from(mark.token, 'base64url').toString()) as number[][]).map(([p, , g, s]) => [p, [g, s]]),
  )
  const expectedAtToken = stateOf(source, (e) => {
    const [g, s] = e.position.split(':').map(Number)
    const [lg, ls] = limits.get(e.partition) ?? [-1, -1]
    return g < lg || (g === lg && s <= ls)
  })
  assert.deepEqual(stateOf(await events('bk_token')), expectedAtToken)
  assert.notDeepEqual(expectedAtToken, stateOf(source), 'the token falls between writes')
  // The schema versions came back: a document of version 2 reads with its note.
  const restored = (await cluster.http('GET', '/bk_all/users/u0')).body as { v: number; note: string }
  assert.deepEqual(restored, { id: 'u0', v: 200, note: 'third' })
  const definition = (await cluster.http('GET', '/_admin/databases/bk_all')).body as {
    tables: { users: { schemas: unknown[] } }
  }
  assert.equal(definition.tables.users.schemas.length, 2)
})

void test('typed refusals: a time before the base, a directory of another database, a database that exists', async () => {
  const early = await cortado(['restore', '--from', dir, '--db', 'bk_early', '--until', '2020-01-01T00:00:00Z'])
  assert.equal(early.code, 1)
  assert.match(early.stderr, /base was taken at .*: restore to a time after it/)
  const other = await cortado(['backup', 'bk_all', '--to', dir])
  assert.equal(other.code, 1)
  assert.match(other.stderr, /holds backups of database bk, not bk_all/)
  const exists = await cortado(['restore', '--from', dir, '--db', DB])
  assert.equal(exists.code, 1)
  assert.match(exists.stderr, /database bk exists: restore into a new name/)
  const first = (await events(DB))[0]
  const beforeBase = await cortado(['restore', '--from', dir, '--db', 'bk_old', '--until-token', first.token])
  assert.equal(beforeBase.code, 1)
  assert.match(beforeBase.stderr, /--until-token is before the backup's base in partition \d: give a later token/)
  const bad = await cortado(['restore', '--from', dir, '--db', 'x', '--until', 'soon'])
  assert.equal(bad.code, 2)
})
