// `cortado backup` and `cortado restore`: a database's backups in a directory, taken online from its
// change stream (GET /{db}/_changes) through the router, and restored into a database of another
// name (on this cluster or another) as it was at a time or position.
//
// A backup directory holds:
//   manifest.json        the database's definition (tables, every schema version), the base
//                        snapshot's token and time, and each increment's
//   base.ndjson          every document as of the base token: {"table", "key", "doc"} lines, a
//                        consistent snapshot of each partition at its position in the token
//   incr-0001.ndjson …   the change events after the previous token, as the stream gives them
//                        (with each transaction's partition, position, commit time and token)
// The first backup into a directory takes the base; each later one appends an increment: the
// log's tail since the last token.
//
// Restoring writes the base's documents (a transaction per document group, as `cortado import`)
// and then replays the increments' transactions whole, in commit order per partition, up to
// `--until` (a time: transactions committed at or before it; or a token: those at or before each
// partition's position in it).
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileDurably } from '../util/durable-file.ts'
import { type RouterTarget } from './admin-commands.ts'
import {
  BulkError,
  byTableAndKey,
  describeAnswer,
  type ExportedDocument,
  fold,
  getJson,
  MAX_TRANSACTION_OPS,
  readToEnd,
  sendRetrying,
  writeAtomically,
} from './bulk-commands.ts'
import { Progress } from './progress.ts'

const MANIFEST = 'manifest.json'
const MANIFEST_FORMAT = 1

interface TableDefinition {
  key: string[]
  schemas: unknown[]
  indexes: string[]
}

interface Definition {
  name: string
  partitions: number
  replicas: number
  tables: Record<string, TableDefinition>
}

interface Manifest {
  format: number
  db: string
  definition: Definition
  base: { file: string; token: string; at: number; documents: number }
  increments: { file: string; token: string; at: number; events: number }[]
}

/** A change event as the stream gives it (the fields a restore needs). */
interface StreamEvent {
  op: 'put' | 'delete'
  table: string
  key: string[]
  after: Record<string, unknown> | null
  partition: number
  txn: { id: string; index: number; size: number }
  ts: number
  position: string
}

export interface BackupOptions {
  router: RouterTarget
  db: string
  to: string
  say: (line: string) => void
}

/** Reads the change stream from `since` to the end of the log, with progress: the token reached. */
async function readStream(
  router: RouterTarget,
  db: string,
  since: string | undefined,
  onEvents: (events: StreamEvent[]) => void,
): Promise<string> {
  const progress = new Progress('backup')
  let count = 0
  try {
    return await readToEnd({ router, db }, since, (events) => {
      onEvents(events as StreamEvent[])
      count += events.length
      progress.update({ events: count })
    })
  } finally {
    progress.done()
  }
}

/** Takes the base (into an empty or new directory) or the next increment (into a backup directory). */
export async function backup(o: BackupOptions): Promise<void> {
  const manifestPath = join(o.to, MANIFEST)
  if (!existsSync(manifestPath)) return takeBase(o, manifestPath)
  const manifest = readManifest(o.to)
  if (manifest.db !== o.db)
    throw new BulkError(`${o.to} holds backups of database ${manifest.db}, not ${o.db}: give another directory`)
  const last = manifest.increments.at(-1) ?? manifest.base
  const events: string[] = []
  const at = Date.now()
  const token = await readStream(o.router, o.db, last.token, (batch) => {
    for (const e of batch) events.push(JSON.stringify(e))
  })
  if (events.length === 0) {
    o.say(`backup: nothing new since ${new Date(last.at).toISOString()}`)
    return
  }
  const file = `incr-${String(manifest.increments.length + 1).padStart(4, '0')}.ndjson`
  await writeAtomically(join(o.to, file), events)
  manifest.increments.push({ file, token, at, events: events.length })
  writeFileDurably(manifestPath, JSON.stringify(manifest, null, 2) + '\n', 0o644)
  o.say(`backup: increment ${file}, ${events.length} changes, as of token ${token}`)
}

async function takeBase(o: BackupOptions, manifestPath: string): Promise<void> {
  const definition = (await getJson(o.router, `/_admin/databases/${encodeURIComponent(o.db)}`)) as Definition
  mkdirSync(o.to, { recursive: true })
  const documents = new Map<string, ExportedDocument>()
  const at = Date.now()
  const token = await readStream(o.router, o.db, undefined, (batch) => {
    for (const e of batch) fold(documents, e)
  })
  const sorted = [...documents.values()].sort(byTableAndKey)
  await writeAtomically(
    join(o.to, 'base.ndjson'),
    sorted.map((d) => JSON.stringify({ table: d.table, key: d.key, doc: d.doc })),
  )
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    db: o.db,
    definition: {
      name: definition.name,
      partitions: definition.partitions,
      replicas: definition.replicas,
      tables: definition.tables,
    },
    base: { file: 'base.ndjson', token, at, documents: sorted.length },
    increments: [],
  }
  writeFileDurably(manifestPath, JSON.stringify(manifest, null, 2) + '\n', 0o644)
  o.say(`backup: base of ${o.db}, ${sorted.length} documents, as of token ${token}`)
}

function readManifest(dir: string): Manifest {
  let m: Manifest
  try {
    m = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest
  } catch (error) {
    throw new BulkError(`${join(dir, MANIFEST)}: ${(error as Error).message}`)
  }
  if (m.format !== MANIFEST_FORMAT || typeof m.db !== 'string' || !Array.isArray(m.increments))
    throw new BulkError(`${join(dir, MANIFEST)} is not a backup manifest of this version`)
  return m
}

// ---------------------------------------------------------------------------------------------
// restore

/** Where a restore stops: a time (ms since the epoch), or each partition's (generation, scn). */
export type RestoreUntil = { time: number } | { token: string } | undefined

export interface RestoreOptions {
  router: RouterTarget
  from: string
  /** The database to create. */
  db: string
  until: RestoreUntil
  concurrency: number
  say: (line: string) => void
}

/** Each partition's (generation, scn) in a change-stream token. */
function tokenPositions(token: string): Map<number, [number, number]> {
  try {
    const entries = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as number[][]
    return new Map(entries.map(([p, , generation, scn]) => [p, [generation, scn]]))
  } catch {
    throw new BulkError('--until-token is not a token of the change stream')
  }
}

/** Whether an event's transaction is at or before `until`. */
function within(e: StreamEvent, until: RestoreUntil, positions: Map<number, [number, number]> | undefined): boolean {
  if (until === undefined) return true
  if ('time' in until) return e.ts <= until.time
  const [generation, scn] = e.position.split(':').map(Number)
  const limit = positions!.get(e.partition)
  return limit !== undefined && (generation < limit[0] || (generation === limit[0] && scn <= limit[1]))
}

/** A request retried while the answer is 503 or 504 (sendRetrying); any status but `ok` fails the restore. */
async function call(
  o: RestoreOptions,
  method: 'PUT' | 'POST',
  path: string,
  body: unknown,
  ok: number[],
): Promise<void> {
  const a = await sendRetrying(o.router, method, path, body)
  if (!ok.includes(a.status)) throw new BulkError(`${method} ${path}: ${describeAnswer(a)}`)
}

/** Creates the database with the backup's definition: its first schema versions, then each later one. */
async function createDatabase(o: RestoreOptions, d: Definition): Promise<void> {
  const tables = Object.fromEntries(
    Object.entries(d.tables).map(([t, def]) => [t, { key: def.key, schema: def.schemas[0], indexes: def.indexes }]),
  )
  const path = `/_admin/databases/${encodeURIComponent(o.db)}`
  // 202: created, its masters not all taking writes yet (the writes below retry until they do).
  await call(o, 'PUT', path, { partitions: d.partitions, replicas: d.replicas, tables }, [201, 202])
  for (const [t, def] of Object.entries(d.tables))
    for (const schema of def.schemas.slice(1))
      await call(o, 'POST', `${path}/tables/${encodeURIComponent(t)}/schemas`, schema, [201])
}

type Operation = { op: 'put' | 'delete'; table: string; key: string[]; doc?: Record<string, unknown> }

/** Runs transactions, `concurrency` at a time, each group's in order (a group is one worker's). */
async function writeTransactions(o: RestoreOptions, byGroup: Map<string, Operation[][]>, progress: Progress) {
  const groups = [...byGroup.values()]
  let next = 0
  let written = 0
  const worker = async () => {
    while (next < groups.length) {
      for (const operations of groups[next++]) {
        await call(o, 'POST', `/${encodeURIComponent(o.db)}/_transaction`, { operations }, [200])
        written += operations.length
        progress.update({ operations: written })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(o.concurrency, groups.length) }, worker))
  return written
}

/** Restores the backup into a new database, up to `until`. */
export async function restore(o: RestoreOptions): Promise<void> {
  const manifest = readManifest(o.from)
  if (o.until !== undefined && 'time' in o.until && o.until.time < manifest.base.at)
    throw new BulkError(
      `the backup's base was taken at ${new Date(manifest.base.at).toISOString()}: restore to a time after it`,
    )
  const positions = o.until !== undefined && 'token' in o.until ? tokenPositions(o.until.token) : undefined
  if (positions !== undefined) {
    const base = tokenPositions(manifest.base.token)
    for (const [p, [g, s]] of base) {
      const [lg, ls] = positions.get(p) ?? [-1, -1]
      if (lg < g || (lg === g && ls < s))
        throw new BulkError(`--until-token is before the backup's base in partition ${p}: give a later token`)
    }
  }
  const existing = await sendRetrying(o.router, 'GET', `/_admin/databases/${encodeURIComponent(o.db)}`)
  if (existing.status !== 404) throw new BulkError(`database ${o.db} exists: restore into a new name`)
  await createDatabase(o, manifest.definition)
  const progress = new Progress('restore', { rateOf: 'operations' })
  let operations = 0
  let transactions = 0
  try {
    // The base: each document group's documents, in transactions of at most 1,000.
    const base = new Map<string, Operation[][]>()
    for (const line of readLines(join(o.from, manifest.base.file))) {
      const d = JSON.parse(line) as { table: string; key: string[]; doc: Record<string, unknown> }
      const group = base.get(d.key[0]) ?? [[]]
      if (group.at(-1)!.length >= MAX_TRANSACTION_OPS) group.push([])
      group.at(-1)!.push({ op: 'put', table: d.table, key: d.key, doc: d.doc })
      base.set(d.key[0], group)
    }
    operations += await writeTransactions(o, base, progress)
    // The increments: each source transaction whole, in commit order per partition (one worker
    // per partition keeps that order; partitions are independent).
    const byPartition = new Map<string, Operation[][]>()
    const open = new Map<number, Operation[]>()
    for (const inc of manifest.increments) {
      for (const line of readLines(join(o.from, inc.file))) {
        const e = JSON.parse(line) as StreamEvent
        if (!within(e, o.until, positions)) continue
        let tx = open.get(e.partition)
        if (e.txn.index === 0 || tx === undefined) {
          tx = []
          open.set(e.partition, tx)
          const list = byPartition.get(String(e.partition)) ?? []
          list.push(tx)
          byPartition.set(String(e.partition), list)
          transactions++
        }
        tx.push(
          e.op === 'put'
            ? { op: 'put', table: e.table, key: e.key, doc: e.after! }
            : { op: 'delete', table: e.table, key: e.key },
        )
      }
    }
    operations += await writeTransactions(o, byPartition, progress)
  } finally {
    progress.done()
  }
  o.say(`restore: database ${o.db} from ${o.from}: ${operations} operations (${transactions} replayed transactions)`)
}

function readLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
}
