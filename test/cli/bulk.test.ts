// `cortado import` and `cortado export` against a cluster of processes: bad lines reported by
// number and skipped (or stopping the import), documents the database refuses found one by one,
// a document group larger than a transaction split, an import SIGKILLed and resumed from its state
// file, exports (one file, one table, a directory) equal to the database after deletes and
// overwrites, and the progress display.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Progress } from '../../src/cli/progress.ts'
import { MAIN, removeDir, tempDir } from '../helpers/broker-process.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'
import { until } from '../helpers/wait.ts'

let cluster: DbCluster
let dir: string

type Doc = Record<string, unknown>

const record = (name: string, fields: [string, string][]) => ({
  type: 'record',
  name,
  fields: fields.map(([n, type]) => ({ name: n, type })),
})
const TABLES = {
  users: {
    key: ['id'],
    schema: record('User', [
      ['id', 'string'],
      ['name', 'string'],
      ['age', 'int'],
    ]),
  },
  items: {
    key: ['owner', 'item'],
    schema: record('Item', [
      ['owner', 'string'],
      ['item', 'string'],
      ['qty', 'int'],
    ]),
  },
}

before(async () => {
  cluster = await startDbCluster({ nodes: 3 })
  dir = tempDir('bulk')
})

after(async () => {
  await cluster.stop()
  removeDir(dir)
})

async function createDb(name: string): Promise<void> {
  const res = await cluster.http('PUT', `/_admin/databases/${name}`, { partitions: 4, replicas: 3, tables: TABLES })
  assert.equal(res.status, 201, JSON.stringify(res.body))
}

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** `cortado …` against the cluster's router; `onStart` gets the process (to kill it). */
function cortado(args: string[], onStart?: (p: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args, '--router', cluster.router.url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }))
    onStart?.(p)
  })
}

function writeLines(name: string, lines: string[]): string {
  const path = join(dir, name)
  writeFileSync(path, lines.map((l) => l + '\n').join(''))
  return path
}

const readLines = (path: string): Doc[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Doc)

/** Key order, as the export sorts: element by element, by UTF-16 code units. */
function compareKeys(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1
  return a.length - b.length
}
const itemKey = (d: Doc) => [d.owner as string, d.item as string]
const userKey = (d: Doc) => [d.id as string]

/** The summary line of an import: documents written, lines skipped, seconds, rate. */
function importSummary(stderr: string): { written: number; skipped: number; seconds: number; rate: number } {
  const m = /^import: (\d+) documents written, (\d+) lines skipped, in ([\d.]+) s \((\d+)\/s\)$/m.exec(stderr)
  assert.ok(m !== null, `no summary line in:\n${stderr}`)
  return { written: Number(m[1]), skipped: Number(m[2]), seconds: Number(m[3]), rate: Number(m[4]) }
}

/** Runs `work` over `items`, 16 at a time. */
async function forEach<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < items.length) await work(items[next++])
    }),
  )
}

void test('usage mistakes exit 2 with the usage; an unknown table exits 1 naming it', async () => {
  const file = writeLines('one.ndjson', ['{"id": "u1", "name": "A", "age": 1}'])
  const mistakes = [
    ['import', 'db', '--table', 'users', '--file', file, '--on-error', 'maybe'],
    ['import', 'db', '--table', 'users', '--file', file, '--batch', '0'],
    ['import', 'db', '--table', 'users', '--file', join(dir, 'missing.ndjson')],
    ['import', '--table', 'users', '--file', file],
    ['export', 'db'],
    ['export', 'db', 'other', '--out', join(dir, 'x')],
  ]
  for (const args of mistakes) {
    const res = await cortado(args)
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`)
    assert.match(res.stderr, new RegExp(`usage: cortado ${args[0]} `), args.join(' '))
  }
  await createDb('bulkusage')
  const unknown = await cortado(['import', 'bulkusage', '--table', 'nope', '--file', file])
  assert.equal(unknown.code, 1, unknown.stderr)
  assert.match(unknown.stderr, /database bulkusage has no table nope/)
})

void test('import: bad lines reported by number and skipped, refused documents found one by one, every other document written', async (t) => {
  await createDb('bulkimport')
  // 299 groups of 3 items, and one group of 1,103 (more than a transaction takes), interleaved.
  const docs: Doc[] = []
  for (let i = 0; i < 1103; i++) {
    if (i < 897) docs.push({ owner: `o${String(i % 299).padStart(3, '0')}`, item: `i${i}`, qty: i })
    docs.push({ owner: 'big', item: `b${String(i).padStart(4, '0')}`, qty: i })
  }
  assert.equal(docs.length, 2000)
  const lines = docs.map((d) => JSON.stringify(d))
  // Bad lines at known (1-based) line numbers; the refused document shares its group with others.
  const bad: [number, string, RegExp][] = [
    [10, '{"owner": "o001", "item": ', /not JSON/],
    [500, '[1, 2, 3]', /not a JSON object \(an array\)/],
    [1000, '{"item": "x", "qty": 1}', /key field owner is missing/],
    [1500, '{"owner": "o005", "item": "bad", "qty": "many"}', /refused by the database: 400 INVALID_DOCUMENT/],
  ]
  for (const [line, text] of bad) lines.splice(line - 1, 0, text)
  assert.equal(lines.length, 2004)
  const file = writeLines('items.ndjson', lines)

  const res = await cortado(['import', 'bulkimport', '--table', 'items', '--file', file, '--batch', '2500'])
  assert.equal(res.code, 0, res.stderr)
  for (const [line, , reason] of bad)
    assert.match(res.stderr, new RegExp(`^import: line ${line}: ${reason.source}`, 'm'), `line ${line}`)
  assert.equal(res.stderr.match(/^import: line \d+:/gm)?.length, 4, res.stderr)
  const summary = importSummary(res.stderr)
  assert.equal(summary.written, 2000)
  assert.equal(summary.skipped, 4)
  t.diagnostic(`import of 2,000 documents (--batch 2500): ${summary.rate} documents/s`)
  assert.ok(!existsSync(`${file}.import-state`), 'the state file is removed at the end')

  await forEach(docs, async (d) => {
    const res = await cluster.http('GET', `/bulkimport/items/${d.owner as string}/${d.item as string}`)
    assert.equal(res.status, 200, `${d.owner as string}/${d.item as string}`)
    assert.deepEqual(res.body, d)
  })
  assert.equal((await cluster.http('GET', '/bulkimport/items/o005/bad')).status, 404)
})

void test('import --on-error fail: what comes before the first bad line is written, then exit 1', async () => {
  await createDb('bulkfail')
  const user = (i: number) => JSON.stringify({ id: `u${i}`, name: `user ${i}`, age: i })
  const lines = [
    ...Array.from({ length: 50 }, (_, i) => user(i)),
    'not json at all', // line 51
    ...Array.from({ length: 20 }, (_, i) => user(100 + i)),
    '"a string"', // line 72
    user(200),
  ]
  const file = writeLines('fail.ndjson', lines)
  const res = await cortado(['import', 'bulkfail', '--table', 'users', '--file', file, '--on-error', 'fail'])
  assert.equal(res.code, 1, res.stderr)
  assert.match(res.stderr, /^import: line 51: not JSON/m)
  assert.doesNotMatch(res.stderr, /line 72/)
  const summary = importSummary(res.stderr)
  assert.equal(summary.written, 50)
  assert.equal(summary.skipped, 1)
  for (let i = 0; i < 50; i++) assert.equal((await cluster.http('GET', `/bulkfail/users/u${i}`)).status, 200)
  assert.equal((await cluster.http('GET', '/bulkfail/users/u100')).status, 404)
  const state = JSON.parse(readFileSync(`${file}.import-state`, 'utf8')) as { lines: number }
  assert.equal(state.lines, 50, 'the state file has the lines done before the bad line')
})

void test('import SIGKILLed mid-way resumes from its state file: the table holds exactly the file', async (t) => {
  await createDb('bulkresume')
  const docs: Doc[] = []
  // 3,000 groups of 2: with one transaction in flight, about 3,000 round trips.
  for (let g = 0; g < 3000; g++)
    for (let i = 0; i < 2; i++) docs.push({ owner: `g${String(g).padStart(4, '0')}`, item: `i${i}`, qty: g * 2 + i })
  const file = writeLines(
    'resume.ndjson',
    docs.map((d) => JSON.stringify(d)),
  )
  const state = `${file}.import-state`
  const args = ['import', 'bulkresume', '--table', 'items', '--file', file]

  // One transaction in flight and small batches: slow enough to run past the first 2 s progress
  // line (stderr is a pipe: plain lines, none redrawn), then be killed once the state file exists.
  const progressLine = /^import: \d+ lines, \d+ written, \d+ skipped, \d+ written\/s, \d+%, ETA /m
  const killed = await cortado([...args, '--batch', '20', '--concurrency', '1'], (p) => {
    let stderr = ''
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const poll = setInterval(() => {
      if (existsSync(state) && progressLine.test(stderr)) p.kill('SIGKILL')
    }, 10)
    p.once('exit', () => clearInterval(poll))
  })
  assert.equal(killed.signal, 'SIGKILL', `the first run was killed before it finished:\n${killed.stderr}`)
  assert.match(killed.stderr, progressLine)
  assert.ok(!killed.stderr.includes('\r'), 'no line redrawn in place when stderr is not a terminal')
  const done = (JSON.parse(readFileSync(state, 'utf8')) as { lines: number }).lines
  assert.ok(done >= 20 && done < docs.length, `lines done ${done}`)

  const resumed = await cortado(args)
  assert.equal(resumed.code, 0, resumed.stderr)
  const after = Number(/^import: resuming after line (\d+) /m.exec(resumed.stderr)?.[1])
  assert.equal(after, done, 'resumed after the lines the state file has')
  const summary = importSummary(resumed.stderr)
  assert.equal(summary.written, docs.length - after, 'the lines after the state, all written')
  assert.equal(summary.skipped, 0)
  t.diagnostic(`first run: ${killed.stderr.trim().split('\n').pop()}`)
  t.diagnostic(
    `resumed import of ${summary.written} documents (--batch 500 --concurrency 8): ${summary.rate} documents/s`,
  )
  assert.ok(!existsSync(state), 'the state file is removed at the end')

  assert.ok(!resumed.stderr.includes('\r'))

  const out = join(dir, 'resume-export.ndjson')
  const exported = await cortado(['export', 'bulkresume', '--table', 'items', '--out', out])
  assert.equal(exported.code, 0, exported.stderr)
  const expected = [...docs].sort((a, b) => compareKeys(itemKey(a), itemKey(b)))
  assert.deepEqual(readLines(out), expected)
})

void test('export to one file, of one table, and to a directory: the documents after deletes and overwrites', async (t) => {
  const db = 'bulkexport'
  await createDb(db)
  const users = new Map<string, Doc>()
  const items = new Map<string, Doc>()
  const userLines: string[] = []
  for (let i = 0; i < 200; i++) {
    const d = { id: `u${String(i).padStart(3, '0')}`, name: `user ${i}`, age: i }
    users.set(d.id, d)
    userLines.push(JSON.stringify(d))
  }
  const itemLines: string[] = []
  for (let i = 0; i < 300; i++) {
    const d = { owner: `o${i % 40}`, item: `i${i}`, qty: i }
    items.set(`${d.owner}/${d.item}`, d)
    itemLines.push(JSON.stringify(d))
  }
  for (const [table, lines] of [
    ['users', userLines],
    ['items', itemLines],
  ] as const) {
    const res = await cortado(['import', db, '--table', table, '--file', writeLines(`${table}-export.ndjson`, lines)])
    assert.equal(res.code, 0, res.stderr)
  }
  // Deletes and overwrites through the HTTP API, which the export must reflect.
  for (let i = 0; i < 200; i += 10) {
    const id = `u${String(i).padStart(3, '0')}`
    assert.equal((await cluster.http('DELETE', `/${db}/users/${id}`)).status, 200)
    users.delete(id)
    const other = `u${String(i + 1).padStart(3, '0')}`
    const d = { id: other, name: `renamed ${i}`, age: 1000 + i }
    assert.equal((await cluster.http('PUT', `/${db}/users/${other}`, d)).status, 200)
    users.set(other, d)
  }
  for (let i = 0; i < 300; i += 30) {
    const d = items.get(`o${i % 40}/i${i}`)!
    assert.equal((await cluster.http('DELETE', `/${db}/items/${d.owner as string}/i${i}`)).status, 200)
    items.delete(`o${i % 40}/i${i}`)
    const next = items.get(`o${(i + 1) % 40}/i${i + 1}`)!
    const changed = { ...next, qty: -1 }
    assert.equal(
      (await cluster.http('PUT', `/${db}/items/${next.owner as string}/${next.item as string}`, changed)).status,
      200,
    )
    items.set(`${next.owner as string}/${next.item as string}`, changed)
  }
  const put = { id: 'zz-new', name: 'new', age: 7 }
  assert.equal((await cluster.http('PUT', `/${db}/users/zz-new`, put)).status, 200)
  users.set('zz-new', put)

  const sortedUsers = [...users.values()].sort((a, b) => compareKeys(userKey(a), userKey(b)))
  const sortedItems = [...items.values()].sort((a, b) => compareKeys(itemKey(a), itemKey(b)))

  // All tables to one file: {table, key, doc} lines, by table then key.
  const all = join(dir, 'all.ndjson')
  const res = await cortado(['export', db, '--out', all])
  assert.equal(res.code, 0, res.stderr)
  assert.deepEqual(readLines(all), [
    ...sortedItems.map((doc) => ({ table: 'items', key: itemKey(doc), doc })),
    ...sortedUsers.map((doc) => ({ table: 'users', key: userKey(doc), doc })),
  ])
  const m = /^export: (\d+) documents to .* as of token (\S+)$/m.exec(res.stderr)
  assert.ok(m !== null, res.stderr)
  t.diagnostic(m[0].replace(/, as of token .*/, ''))
  assert.equal(Number(m[1]), users.size + items.size)

  // One table: bare documents.
  const one = join(dir, 'users-only.ndjson')
  const single = await cortado(['export', db, '--table', 'users', '--out', one])
  assert.equal(single.code, 0, single.stderr)
  assert.deepEqual(readLines(one), sortedUsers)

  // A directory: <table>.ndjson each, and nothing else left there.
  const outDir = join(dir, 'export-dir')
  mkdirSync(outDir)
  const perTable = await cortado(['export', db, '--out', outDir])
  assert.equal(perTable.code, 0, perTable.stderr)
  assert.deepEqual(readdirSync(outDir).sort(), ['items.ndjson', 'users.ndjson'])
  assert.deepEqual(readLines(join(outDir, 'users.ndjson')), sortedUsers)
  assert.deepEqual(readLines(join(outDir, 'items.ndjson')), sortedItems)
})

void test('progress: plain lines when not on a terminal, one line redrawn in place on a terminal', async () => {
  const capture = (isTTY: boolean) => {
    const stream = { isTTY, text: '', write: (s: string) => (stream.text += s) }
    return stream
  }
  const plain = capture(false)
  const p = new Progress('import', { total: 1000, stream: plain, intervalMs: 20, rateOf: 'written' })
  p.update({ lines: 0, written: 0, skipped: 0 }, 0)
  p.update({ lines: 40, written: 30, skipped: 2 }, 250)
  await until('a progress line', () => Promise.resolve(plain.text.includes('\n') ? true : undefined))
  p.done()
  assert.match(plain.text, /^import: 40 lines, 30 written, 2 skipped, \d+ written\/s, 25%, ETA \d+ s\n/)
  assert.ok(!plain.text.includes('\r'))

  const tty = capture(true)
  const q = new Progress('export', { stream: tty, intervalMs: 20 })
  q.update({ events: 10, documents: 4 })
  await until('a redrawn line', () => Promise.resolve(tty.text.includes('\r') ? true : undefined))
  q.log('a message')
  q.done()
  assert.match(tty.text, /^\rexport: 10 events, 4 documents, \d+ events\/s\x1b\[K/)
  assert.match(tty.text, /\r\x1b\[Ka message\n/, 'a message clears the progress line first')
  assert.ok(!tty.text.slice(tty.text.indexOf('a message')).includes('\n\n'))
})

void test('import across a master SIGKILLed under it: 503 and 504 answers retried, every document written', async () => {
  const db = 'bulkfailover'
  await createDb(db)
  const docs = Array.from({ length: 10_000 }, (_, i) => ({ id: `u${String(i).padStart(5, '0')}`, name: 'x', age: i }))
  const file = writeLines(
    'failover.ndjson',
    docs.map((d) => JSON.stringify(d)),
  )
  let started: (() => void) | undefined
  let exited = false
  const progressed = new Promise<void>((resolve) => (started = resolve))
  const importing = cortado(['import', db, '--table', 'users', '--file', file, '--batch', '200'], (p) => {
    const poll = setInterval(() => {
      if (existsSync(`${file}.import-state`)) started?.()
    }, 10)
    p.once('exit', () => {
      exited = true
      clearInterval(poll)
      started?.()
    })
  })
  await progressed
  const view = (await cluster.http('GET', '/_admin/cluster')).body as {
    databases: { name: string; partitions: { master: string }[] }[]
  }
  const victim = view.databases.find((d) => d.name === db)!.partitions[0].master
  await cluster.nodes.get(victim)!.kill()
  assert.ok(!exited, 'the master was killed while the import ran')
  const res = await importing
  await cluster.startNode(victim)
  assert.equal(res.code, 0, res.stderr)
  assert.equal(importSummary(res.stderr).written, docs.length)
  await cluster.waitCaughtUp(db)
  const out = join(dir, 'failover-export.ndjson')
  const exported = await cortado(['export', db, '--table', 'users', '--out', out])
  assert.equal(exported.code, 0, exported.stderr)
  assert.deepEqual(readLines(out), docs)
})
