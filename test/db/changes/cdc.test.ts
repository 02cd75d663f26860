// The change topic `cortado-cdc-<db>` (`cortado cdc`), read with kcat: through a workload with a
// master SIGKILLed and the publisher itself SIGKILLed and restarted, it holds every committed
// operation exactly once, in commit order per partition (the same as GET /{db}/_changes), in
// Debezium's envelope with a tombstone after each delete, and the tables rebuilt from it equal the
// database; its lag is a metric.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { after, before, test } from 'node:test'
import { type ChangeEvent } from '../../../src/db/changes/change-feed.ts'
import { MAIN } from '../../helpers/broker-process.ts'
import { run } from '../../helpers/compat.ts'
import { type DbCluster, startDbCluster } from '../../helpers/db-cluster.ts'
import { until } from '../../helpers/wait.ts'

const DB = 'cd'
const TOPIC = `cortado-cdc-${DB}`
let cluster: DbCluster
let cdc: { proc: ChildProcess; metrics: string } | undefined

async function startCdc(): Promise<{ proc: ChildProcess; metrics: string }> {
  const proc = spawn(process.execPath, [MAIN, 'cdc', '--bootstrap', cluster.bootstrap, '--metrics-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const ready = await until(
    'cortado cdc ready',
    () => Promise.resolve(/^cortado cdc ready pid=\d+ metrics=(\S+)$/m.exec(out)?.[1]),
    30_000,
  ).catch((e: unknown) => assert.fail(`${String(e)}\n${err.slice(-2000)}`))
  return { proc, metrics: ready }
}

before(async () => {
  cluster = await startDbCluster({ nodes: 3, nodeSessionMs: 1000, routerRetryMs: 15_000 })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: 4,
    replicas: 3,
    tables: {
      users: {
        key: ['id'],
        schema: {
          type: 'record',
          name: 'User',
          fields: [
            { name: 'id', type: 'string' },
            { name: 'v', type: 'int' },
          ],
        },
      },
    },
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  cdc = await startCdc()
})

after(async () => {
  cdc?.proc.kill('SIGKILL')
  await cluster.stop()
})

interface TopicRecord {
  partition: number
  key: Record<string, string>
  value: Record<string, unknown> | null
  mark: { txn: string; index: number; tombstone: number }
}

async function readTopic(): Promise<TopicRecord[]> {
  const r = await run(
    'kcat',
    ['-b', cluster.bootstrap, '-C', '-t', TOPIC, '-e', '-q', '-Z', '-f', '%p\t%k\t%s\t%h\n'],
    {
      timeoutMs: 60_000,
    },
  )
  assert.equal(r.code, 0, r.stderr)
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [p, k, v, h] = line.split('\t')
      assert.ok(h.startsWith('cortado.source='), h)
      return {
        partition: Number(p),
        key: JSON.parse(k) as Record<string, string>,
        value: v === 'NULL' ? null : (JSON.parse(v) as Record<string, unknown>),
        mark: JSON.parse(h.slice('cortado.source='.length)) as TopicRecord['mark'],
      }
    })
}

async function changes(): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = []
  let since = ''
  for (;;) {
    const text = await (await fetch(`${cluster.router.url}/${DB}/_changes?timeout=300&limit=1000${since}`)).text()
    const lines = text.trim().split('\n')
    const { token } = JSON.parse(lines.pop()!) as { token: string }
    const events = lines.map((l) => JSON.parse(l) as ChangeEvent)
    out.push(...events)
    since = `&since=${token}`
    if (events.length === 0) return out
  }
}

void test('every committed operation exactly once, in commit order, through a master SIGKILL and a publisher SIGKILL; tables rebuilt from it equal the database', async () => {
  const write = async (i: number) => {
    const id = `u${i % 20}`
    if (i % 6 === 5) await cluster.http('DELETE', `/${DB}/users/${id}`)
    else await cluster.http('PUT', `/${DB}/users/${id}`, { id, v: i })
  }
  for (let i = 0; i < 40; i++) await write(i)
  const view = (await cluster.http('GET', '/_admin/cluster')).body as {
    databases: { name: string; partitions: { master: string }[] }[]
  }
  const victim = view.databases.find((d) => d.name === DB)!.partitions[1].master
  await cluster.nodes.get(victim)!.kill()
  for (let i = 40; i < 70; i++) await write(i)
  // The publisher SIGKILLed mid-stream, writes go on, and it starts again.
  cdc!.proc.kill('SIGKILL')
  for (let i = 70; i < 90; i++) await write(i)
  cdc = await startCdc()
  for (let i = 90; i < 120; i++) await write(i)
  await cluster.startNode(victim)
  await cluster.waitCaughtUp(DB)

  const events = await changes()
  const expected = new Map<number, string[]>()
  for (const e of events)
    expected.set(e.partition, [...(expected.get(e.partition) ?? []), `${e.position}#${e.txn.index}`])
  const records = await until(
    'the change topic to hold every event',
    async () => {
      const rs = await readTopic()
      return rs.filter((r) => r.value !== null).length >= events.length ? rs : undefined
    },
    60_000,
  )
  // Exactly once and in commit order, per partition: the same sequence as the change stream.
  const got = new Map<number, string[]>()
  for (const r of records.filter((x) => x.value !== null))
    got.set(r.partition, [...(got.get(r.partition) ?? []), `${r.mark.txn}#${r.mark.index}`])
  assert.deepEqual(new Map([...got].sort()), new Map([...expected].sort()))
  const marks = records.map((r) => `${r.partition}/${r.mark.txn}/${r.mark.index}/${r.mark.tombstone}`)
  assert.equal(new Set(marks).size, marks.length, 'no record twice')

  // Debezium's envelope, and a tombstone right after each delete.
  records.forEach((r, i) => {
    if (r.value === null) {
      const prev = records[i - 1]
      assert.equal((prev.value as { op: string }).op, 'd')
      assert.deepEqual(prev.key, r.key)
      return
    }
    const v = r.value as { before: null; after: unknown; op: string; source: Record<string, unknown> }
    assert.equal(v.before, null)
    assert.ok(v.op === 'u' || v.op === 'd')
    assert.equal(v.source.connector, 'cortado')
    assert.equal(v.source.table, 'users')
    assert.equal(v.source.partition, r.partition)
    assert.deepEqual(Object.keys(r.key), ['id'])
    if (v.op === 'd') assert.equal(records[i + 1]?.value, null, 'a tombstone follows a delete')
  })

  // The table rebuilt from the topic is the database.
  const rebuilt = new Map<string, number>()
  for (const r of records) {
    if (r.value === null) continue
    const v = r.value as { op: string; after: { v: number } | null }
    if (v.op === 'd') rebuilt.delete(r.key.id)
    else rebuilt.set(r.key.id, v.after!.v)
  }
  for (let i = 0; i < 20; i++) {
    const id = `u${i}`
    const res = await cluster.http('GET', `/${DB}/users/${id}`)
    assert.equal(res.status === 404 ? undefined : (res.body as { v: number }).v, rebuilt.get(id), id)
  }

  // The lag, as a metric, drains to zero.
  await until(
    'lag 0',
    async () => {
      const text = await (await fetch(cdc!.metrics)).text()
      const lags = [...text.matchAll(/^cortado_cdc_lag_records\{db="cd",partition="\d"\} (\d+)$/gm)].map((m) =>
        Number(m[1]),
      )
      return lags.length === 4 && lags.every((l) => l === 0) ? true : undefined
    },
    30_000,
  )
})
