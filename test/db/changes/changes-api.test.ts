// GET /{db}/_changes against a cluster of processes: every committed write once, in commit order
// per partition, across a master SIGKILLed mid-workload; resumed from any event's token, exactly
// the rest; filters by table and document group; Server-Sent Events live, resumed by
// Last-Event-ID; typed refusals.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type ChangeEvent } from '../../../src/db/changes/change-feed.ts'
import { type DbCluster, startDbCluster } from '../../helpers/db-cluster.ts'
import { until } from '../../helpers/wait.ts'

const DB = 'cc'
let cluster: DbCluster

before(async () => {
  cluster = await startDbCluster({ nodes: 3, nodeSessionMs: 1000, routerRetryMs: 15_000 })
  const schema = (name: string, fields: string[]) => ({
    type: 'record',
    name,
    fields: fields.map((f) => ({ name: f, type: f === 'v' ? 'int' : 'string' })),
  })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: 4,
    replicas: 3,
    tables: {
      users: { key: ['id'], schema: schema('User', ['id', 'v']) },
      items: { key: ['owner', 'item'], schema: schema('Item', ['owner', 'item', 'v']) },
    },
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
})

after(async () => {
  await cluster.stop()
})

/** A long poll: the events and the final token. */
async function poll(query: string): Promise<{ events: ChangeEvent[]; token: string }> {
  const res = await fetch(`${cluster.router.url}/${DB}/_changes?${query}`)
  const text = await res.text()
  assert.equal(res.status, 200, text)
  assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/)
  const lines = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ChangeEvent & { token: string })
  const last = lines.pop()!
  assert.deepEqual(Object.keys(last), ['token'])
  return { events: lines, token: last.token }
}

/** Everything from `since` (or the beginning) up to now. */
async function all(since?: string, extra = ''): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = []
  let token = since
  for (;;) {
    const { events, token: next } = await poll(
      `timeout=500&limit=500${token === undefined ? '' : `&since=${token}`}${extra}`,
    )
    out.push(...events)
    token = next
    if (events.length === 0) return out
  }
}

const scnOf = (e: ChangeEvent) => e.position.split(':').map(Number) as [number, number]
const byPartition = (events: ChangeEvent[]) => {
  const out = new Map<number, string[]>()
  for (const e of events) {
    const list = out.get(e.partition) ?? []
    list.push(`${e.position}#${e.txn.index}`)
    out.set(e.partition, list)
  }
  return out
}

void test('every committed write once, in commit order per partition, across a master SIGKILL; resumed from any token, exactly the rest', async () => {
  // Each key's last acknowledged write; a key whose last write has an unknown outcome (a master
  // killed under it) is left to the database's own answer.
  const written = new Map<string, number | null>()
  const uncertain = new Set<string>()
  const write = async (i: number) => {
    const id = `u${i % 25}`
    const del = i % 7 === 6
    const r = del
      ? await cluster.http('DELETE', `/${DB}/users/${id}`)
      : await cluster.http('PUT', `/${DB}/users/${id}`, { id, v: i })
    if (r.status === 200) {
      written.set(id, del ? null : i)
      uncertain.delete(id)
    } else uncertain.add(id)
  }
  for (let i = 0; i < 60; i++) await write(i)
  const tx = await cluster.http('POST', `/${DB}/_transaction`, {
    operations: [
      { op: 'put', table: 'items', key: ['ada', 'pen'], doc: { owner: 'ada', item: 'pen', v: 1 } },
      { op: 'put', table: 'items', key: ['ada', 'ink'], doc: { owner: 'ada', item: 'ink', v: 2 } },
    ],
  })
  assert.equal(tx.status, 200, JSON.stringify(tx.body))
  // A master SIGKILLed: writes go on at its successor.
  const cl = (await cluster.http('GET', '/_admin/cluster')).body as {
    databases: { name: string; partitions: { master: string }[] }[]
  }
  const victim = cl.databases.find((d) => d.name === DB)!.partitions[0].master
  await cluster.nodes.get(victim)!.kill()
  for (let i = 60; i < 120; i++) await write(i)
  await cluster.startNode(victim)
  await cluster.waitCaughtUp(DB)

  const events = await all()
  // Commit order per partition: (generation, scn) never goes back, operations of a transaction in order.
  for (const [p, list] of byPartition(events)) {
    const seen = new Set(list)
    assert.equal(seen.size, list.length, `partition ${p}: no event twice`)
  }
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1], events[i]]
    if (a.partition !== b.partition) continue
    const [ga, sa] = scnOf(a)
    const [gb, sb] = scnOf(b)
    assert.ok(
      ga < gb || (ga === gb && (sa < sb || (sa === sb && a.txn.index < b.txn.index))),
      `${a.position} then ${b.position}`,
    )
  }
  // The stream replayed is the database: each key's last event is its current state.
  const state = new Map<string, number | null>()
  for (const e of events) if (e.table === 'users') state.set(e.key[0], e.after === null ? null : (e.after.v as number))
  for (const [id, v] of written) if (!uncertain.has(id)) assert.equal(state.get(id), v, id)
  for (const id of new Set([...written.keys(), ...uncertain, ...state.keys()])) {
    const r = await cluster.http('GET', `/${DB}/users/${id}`)
    assert.equal(r.status === 404 ? null : (r.body as { v: number }).v, state.get(id) ?? null, `${id} as read`)
  }
  const txEvents = events.filter((e) => e.table === 'items')
  assert.deepEqual(
    txEvents.map((e) => [e.key.join('/'), e.txn.index, e.txn.size, e.txn.id === txEvents[0].txn.id]),
    [
      ['ada/pen', 0, 2, true],
      ['ada/ink', 1, 2, true],
    ],
  )
  assert.ok(events.every((e) => e.principal === 'anonymous' && e.ts > 0))

  // Resumed from random events' tokens: per partition, exactly what followed.
  const full = byPartition(events)
  for (const k of [0, 1, Math.floor(events.length / 3), Math.floor(events.length / 2), events.length - 2]) {
    const from = events[k]
    const rest = byPartition(await all(from.token))
    for (const [p, list] of full) {
      const upTo = events.slice(0, k + 1).filter((e) => e.partition === p).length
      // The token is taken after the event's whole transaction: the rest of that transaction is not repeated.
      const remaining = list.slice(upTo).filter((x) => !x.startsWith(`${p === from.partition ? from.position : '-'}#`))
      assert.deepEqual(rest.get(p) ?? [], remaining, `from event ${k}, partition ${p}`)
    }
  }
})

void test('a consumer resuming from its token at random points while a master is SIGKILLed gets the committed history exactly: every acknowledged write, nothing twice', async () => {
  const start = (await all()).at(-1)!.token
  // The consumer: long polls of random sizes, each a new request from the last token it holds.
  let stop = false
  const seen: ChangeEvent[] = []
  const consumer = (async () => {
    let token = start
    for (;;) {
      const done = stop
      const { events, token: next } = await poll(
        `timeout=100&limit=${1 + Math.floor(Math.random() * 20)}&since=${token}`,
      )
      seen.push(...events)
      token = next
      if (done && events.length === 0) return
    }
  })()
  const acknowledged: string[] = []
  const view = (await cluster.http('GET', '/_admin/cluster')).body as {
    databases: { name: string; partitions: { master: string }[] }[]
  }
  let restarted: Promise<unknown> = Promise.resolve()
  for (let i = 0; i < 80; i++) {
    if (i === 30) {
      const victim = view.databases.find((d) => d.name === DB)!.partitions[2].master
      await cluster.nodes.get(victim)!.kill()
      restarted = cluster.startNode(victim)
    }
    const id = `k${i % 30}`
    const r = await cluster.http('PUT', `/${DB}/users/${id}`, { id, v: 1000 + i })
    if (r.status === 200) acknowledged.push(`${id}=${1000 + i}`)
  }
  await restarted
  await cluster.waitCaughtUp(DB)
  stop = true
  await consumer
  const marks = seen.map((e) => `${e.partition}/${e.position}#${e.txn.index}`)
  assert.equal(new Set(marks).size, marks.length, 'no event twice')
  const written = new Set(seen.map((e) => `${e.key[0]}=${String(e.after?.v)}`))
  for (const a of acknowledged) assert.ok(written.has(a), `acknowledged ${a} is in the stream`)
  // And it is the history itself: the same events, per partition in the same order, as one read from the same start.
  assert.deepEqual(new Map([...byPartition(seen)].sort()), new Map([...byPartition(await all(start))].sort()))
})

void test('filters: one table, one document group', async () => {
  const items = await all(undefined, '&table=items')
  assert.ok(items.length >= 2 && items.every((e) => e.table === 'items'))
  const group = await all(undefined, '&group=u3')
  assert.ok(group.length > 0 && group.every((e) => e.key[0] === 'u3'))
})

void test('Server-Sent Events: live changes, each with its token as id; Last-Event-ID resumes after it', async () => {
  const end = (await all()).at(-1)!.token
  const controller = new AbortController()
  const res = await fetch(`${cluster.router.url}/${DB}/_changes`, {
    headers: { accept: 'text/event-stream', 'last-event-id': end },
    signal: controller.signal,
  })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/)
  const received: { id: string; data: ChangeEvent }[] = []
  const reading = (async () => {
    let buffer = ''
    const decoder = new TextDecoder()
    try {
      for await (const chunk of res.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true })
        let cut
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          const id = /^id: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (id !== undefined && data !== undefined) received.push({ id, data: JSON.parse(data) as ChangeEvent })
        }
      }
    } catch {
      // aborted
    }
  })()
  await cluster.http('PUT', `/${DB}/users/sse1`, { id: 'sse1', v: 1 })
  await cluster.http('PUT', `/${DB}/users/sse2`, { id: 'sse2', v: 2 })
  await until('both changes streamed', () => Promise.resolve(received.length >= 2 ? true : undefined))
  controller.abort()
  await reading
  assert.deepEqual(
    received.map((r) => r.data.key[0]),
    ['sse1', 'sse2'],
  )
  assert.ok(received.every((r) => r.id === r.data.token))
  // Resumed after the first: only the second.
  const rest = await all(received[0].id)
  assert.deepEqual(
    rest.map((e) => e.key[0]),
    ['sse2'],
  )
})

void test('typed refusals: an unknown database or table, a bad token', async () => {
  const get = async (path: string) => {
    const res = await fetch(`${cluster.router.url}${path}`)
    return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } }
  }
  assert.equal((await get('/nodb/_changes')).body.error.code, 'UNKNOWN_DATABASE')
  assert.equal((await get(`/${DB}/_changes?table=nosuch`)).body.error.code, 'UNKNOWN_TABLE')
  const bad = await get(`/${DB}/_changes?since=garbage`)
  assert.equal(bad.status, 400)
  assert.match(bad.body.error.message, /invalid resume token/)
})
