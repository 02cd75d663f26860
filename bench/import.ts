// `npm run bench:import`: bulk loading, Cortado against PostgreSQL, in the same run.
//
// The same N documents (default 1,000,000; `--docs N`; `--quick`: 2,000), ~1 KB of JSON each and
// of bench:db's shape (db-load.ts makeDoc(), so the table's Avro schema DOC_SCHEMA accepts them),
// are generated once into a temp dir, as NDJSON for `cortado import` and in COPY's text format for
// PostgreSQL. Then, one system at a time (so that neither competes with the other for the CPUs):
//
//   PostgreSQL  bench:db's setup (db-postgres.ts): PostgreSQL 15, a primary and one synchronous
//               streaming standby, fsync on; `CREATE TABLE import_docs (id text PRIMARY KEY, doc
//               jsonb NOT NULL)`, then psql's `\copy ... FROM '<file>'`, one COPY of every row.
//               Timed: the COPY (psql's run) only.
//   Cortado     bench:db's cluster (db-cortado.ts): a broker, a router, a controller and three
//               storage nodes, each its own process; a database of 8 partitions x 3 replicas with
//               one table keyed ['id']; `cortado import` (src/cli/bulk-commands.ts importFile, in
//               this process, with the CLI's default batch and concurrency) of the NDJSON file.
//               Timed: importFile only.
//
// Each side's row count is checked afterwards (PostgreSQL: count(*); Cortado: what importFile says
// it wrote). Prints documents/s for both and the ratio Cortado/PostgreSQL beside the 0.5x target.
// Never asserts on timing.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, createWriteStream, mkdtempSync, rmSync, statSync, type WriteStream } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { Client } from 'pg'
import { importFile } from '../src/cli/bulk-commands.ts'
import { DATABASE, DOC_SCHEMA, PARTITIONS, REPLICAS, startCortado, TABLE } from './db-cortado.ts'
import { docBytes, makeDoc, type ProcessGroup } from './db-load.ts'
import { ensurePostgres, PG_BIN, startPostgres } from './db-postgres.ts'
import { freePorts } from './free-ports.ts'
import { cpuBetween, processTable } from './process-cpu.ts'

const exec = promisify(execFile)
const HOST = '127.0.0.1'
/** `cortado import`'s defaults (src/cli/main.ts). */
const IMPORT_BATCH = 500
const IMPORT_CONCURRENCY = 8
const TARGET_RATIO = 0.5
const PG_TABLE = 'import_docs'

const { values: args } = parseArgs({
  options: {
    docs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    dir: { type: 'string', default: tmpdir() },
  },
})
const docs = args.docs !== undefined ? Number(args.docs) : args.quick ? 2000 : 1_000_000
if (!(Number.isInteger(docs) && docs > 0)) {
  console.error('--docs must be a positive integer')
  process.exit(2)
}

/** The import's keys: apart from the 128 keys startCortado() writes to warm the partitions up. */
const keyOf = (i: number) => `imp-${String(i).padStart(9, '0')}`

const fmt = (n: number, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits })

/** COPY's text format: a backslash, tab, newline or carriage return in a value is escaped. */
function copyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'))
}

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain')
}

async function close(out: WriteStream): Promise<void> {
  out.end()
  await once(out, 'finish')
}

/** Writes the documents as NDJSON and as COPY text (id, tab, the JSON). */
async function generate(ndjson: string, copy: string): Promise<void> {
  const a = createWriteStream(ndjson)
  const b = createWriteStream(copy)
  const chunk = 1000
  for (let start = 0; start < docs; start += chunk) {
    let lines = ''
    let rows = ''
    for (let i = start; i < Math.min(docs, start + chunk); i++) {
      const doc = makeDoc(keyOf(i), i)
      const json = JSON.stringify(doc)
      lines += json + '\n'
      rows += `${copyText(doc.id)}\t${copyText(json)}\n`
    }
    await write(a, lines)
    await write(b, rows)
    if ((start / chunk) % 100 === 99) console.log(`generate: ${fmt(start + chunk, 0)} of ${fmt(docs, 0)} documents`)
  }
  await Promise.all([close(a), close(b)])
}

interface Result {
  system: string
  documents: number
  seconds: number
  /** Server CPU seconds by process group during the timed part. */
  cpu: Map<string, number>
}

function groupsOf(processes: ProcessGroup[]): Map<number, string> {
  return new Map(processes.flatMap((g) => g.pids.map((pid) => [pid, g.role] as const)))
}

async function measurePostgres(
  dir: string,
  copyFile: string,
  ports: number[],
  defer: (stop: () => Promise<void>) => void,
): Promise<Result> {
  const p = await startPostgres({ parentDir: dir, primaryPort: ports[0], standbyPort: ports[1], concurrency: 1 }, defer)
  console.log(`postgres: ${p.version.split(',')[0]}; ${p.replication}`)
  console.log(`postgres: ${p.settings.join(', ')}`)
  const client = new Client({ host: HOST, port: ports[0], user: 'postgres', database: 'postgres' })
  await client.connect()
  try {
    await client.query(`CREATE TABLE ${PG_TABLE} (id text PRIMARY KEY, doc jsonb NOT NULL)`)
    console.log(`postgres: COPY of ${fmt(docs, 0)} rows into ${PG_TABLE} (id text PRIMARY KEY, doc jsonb) ...`)
    const before = processTable()
    const started = performance.now()
    // psql's \copy reads the file itself (as this user) and sends it as COPY FROM STDIN.
    await exec(
      join(PG_BIN, 'psql'),
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        HOST,
        '-p',
        String(ports[0]),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-c',
        `\\copy ${PG_TABLE}(id, doc) FROM '${copyFile.replace(/'/g, "''")}' WITH (FORMAT text)`,
      ],
      { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 16 * 1024 * 1024 },
    )
    const seconds = (performance.now() - started) / 1000
    const cpu = cpuBetween(before, processTable(), groupsOf(p.processes()))
    const count = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${PG_TABLE}`)).rows[0].n)
    if (count !== docs) throw new Error(`PostgreSQL holds ${count} rows after the COPY, not ${docs}`)
    console.log(`postgres: ${fmt(docs, 0)} rows in ${fmt(seconds, 2)} s`)
    return { system: 'postgres', documents: count, seconds, cpu }
  } finally {
    await client.end().catch(() => {})
    await p.stop()
  }
}

async function measureCortado(
  dir: string,
  ndjson: string,
  ports: number[],
  defer: (stop: () => Promise<void>) => void,
): Promise<Result> {
  const c = await startCortado(
    { parentDir: dir, httpPort: ports[2], brokerPort: ports[3], metricsPort: ports[4], concurrency: 4 },
    defer,
  )
  try {
    console.log(`cortado: ${c.ready}`)
    console.log(
      `cortado: database ${DATABASE}, ${PARTITIONS} partitions x ${REPLICAS} replicas, table ${TABLE} key ['id'] ` +
        `(${DOC_SCHEMA.fields.length} fields)`,
    )
    console.log(
      `cortado: cortado import of ${fmt(docs, 0)} documents, --batch ${IMPORT_BATCH} --concurrency ${IMPORT_CONCURRENCY} (the defaults) ...`,
    )
    const said: string[] = []
    const before = processTable()
    const started = performance.now()
    const code = await importFile({
      router: { url: `http://${HOST}:${ports[2]}` },
      db: DATABASE,
      table: TABLE,
      file: ndjson,
      onError: 'fail',
      batch: IMPORT_BATCH,
      concurrency: IMPORT_CONCURRENCY,
      state: `${ndjson}.import-state`,
      say: (line) => {
        said.push(line)
        console.log(`cortado: ${line}`)
      },
    })
    const seconds = (performance.now() - started) / 1000
    const cpu = cpuBetween(before, processTable(), groupsOf(c.processes()))
    if (code !== 0) throw new Error(`cortado import exited ${code}: ${said.join('\n')}`)
    const m = said.map((l) => /^import: (\d+) documents written, (\d+) lines skipped/.exec(l)).find((x) => x !== null)
    if (m === undefined || Number(m[1]) !== docs || Number(m[2]) !== 0)
      throw new Error(`cortado import did not write all ${docs} documents: ${said.join('\n')}`)
    return { system: 'cortado', documents: Number(m[1]), seconds, cpu }
  } finally {
    await c.stop()
  }
}

function printTable(results: Result[]): void {
  const pgRate = (() => {
    const r = results.find((x) => x.system === 'postgres')
    return r === undefined ? NaN : r.documents / r.seconds
  })()
  const rows = [
    ['system', 'documents', 'seconds', 'documents/s', 'ratio to postgres', 'target', 'server CPU s (by process)'],
  ]
  for (const r of results) {
    const rate = r.documents / r.seconds
    const total = [...r.cpu.values()].reduce((a, b) => a + b, 0)
    const split = [...r.cpu.entries()].map(([role, s]) => `${role} ${fmt(s)}`).join(', ')
    rows.push([
      r.system,
      fmt(r.documents, 0),
      fmt(r.seconds, 2),
      fmt(rate, 0),
      `${(rate / pgRate).toFixed(3)}x`,
      r.system === 'postgres' ? '' : `>= ${TARGET_RATIO}x`,
      `${fmt(total)} (${split})`,
    ])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  console.log('')
  for (const r of rows)
    console.log(
      r
        .map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
        .join('  ')
        .trimEnd(),
    )
  const cortado = results.find((x) => x.system === 'cortado')
  if (cortado !== undefined && Number.isFinite(pgRate)) {
    const ratio = cortado.documents / cortado.seconds / pgRate
    console.log(
      `\nratio cortado/postgres: ${ratio.toFixed(3)}x (target >= ${TARGET_RATIO}x: ${ratio >= TARGET_RATIO ? 'met' : 'not met'})`,
    )
  }
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  const cleanups: (() => Promise<void>)[] = []
  const defer = (stop: () => Promise<void>) => {
    cleanups.push(stop)
  }
  const stopAll = () =>
    Promise.all(cleanups.map((stop) => stop().catch((e: unknown) => console.error(`cleanup: ${String(e)}`))))
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the databases and removing their data...`)
      setTimeout(() => process.exit(code), 60_000).unref()
      void stopAll().then(() => process.exit(code))
    })
  }

  const work = mkdtempSync(join(args.dir, 'cortado-bench-import-'))
  cleanups.push(() => {
    rmSync(work, { recursive: true, force: true })
    return Promise.resolve()
  })
  try {
    if (!(await ensurePostgres((line) => console.log(line)))) throw new Error('PostgreSQL 15 is not installed')
    // startPostgres's dir goes under `work`, and the postgres user must reach it.
    chmodSync(work, 0o755)
    const ndjson = join(work, 'docs.ndjson')
    const copy = join(work, 'docs.copy')
    console.log(
      `import bench: ${fmt(docs, 0)} documents of ~${docBytes()} bytes of JSON; ${availableParallelism()} CPUs; data under ${work}`,
    )
    const genStarted = performance.now()
    await generate(ndjson, copy)
    console.log(
      `generate: ${fmt(statSync(ndjson).size / 1e6)} MB of NDJSON, ${fmt(statSync(copy).size / 1e6)} MB of COPY text, ` +
        `in ${fmt((performance.now() - genStarted) / 1000)} s`,
    )
    const ports = await freePorts(HOST, 5)
    // One at a time: neither system competes with the other for the CPUs.
    const results = [await measurePostgres(work, copy, ports, defer), await measureCortado(work, ndjson, ports, defer)]
    printTable(results)
    console.log(
      'postgres: the same setup as bench:db (a primary and one synchronous streaming standby, ' +
        'synchronous_commit=on, fsync=on); cortado: 3 storage nodes, 3 replicas per partition, ' +
        `cortado import --batch ${IMPORT_BATCH} --concurrency ${IMPORT_CONCURRENCY}`,
    )
    console.log(`total ${fmt((performance.now() - startedAt) / 1000)} s`)
  } finally {
    // The temp dir last, after the servers whose data is in it.
    const rmWork = cleanups.shift()!
    await stopAll()
    await rmWork()
  }
}

await main()
