// `cortado export` and `cortado import`: a database's documents to and from NDJSON files, through
// the router's HTTP API (docs/database.md, "Bulk import and export").
//
// export  reads the change stream (GET /{db}/_changes) from the beginning until a poll brings
//         nothing new, folds the events into each document's last state, and writes the documents
//         sorted by table and key, to a temporary file renamed into place.
// import  reads a file of one table's documents, one JSON object a line, in batches; each batch's
//         documents go by document group (partition key) into POST /{db}/_transaction requests,
//         several in flight. Refused lines are reported with their numbers; answers that promise
//         a retry (503) or leave the outcome unknown (504) are retried, which is safe since a put
//         of a keyed document is idempotent; a state file records the lines done after each batch.
import { createReadStream, existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { indexValue } from '../db/schema/documents.ts'
import { writeFileDurably } from '../util/durable-file.ts'
import { type RouterTarget } from './admin-commands.ts'
import { Progress } from './progress.ts'

/** How long a request is retried while the database answers 503 or 504, or cannot be reached. */
const RETRY_FOR_MS = 30_000
/** The most operations one transaction takes (POST /{db}/_transaction). */
export const MAX_TRANSACTION_OPS = 1000
/** Events asked for by each poll of the change stream. */
const POLL_LIMIT = 5000

/** A failure that stops a bulk command (exit code 1), with what the router answered. */
export class BulkError extends Error {}

interface Answer {
  status: number
  text: string
  retryAfterMs?: number
}

// ---------------------------------------------------------------------------------------------
// HTTP

async function send(router: RouterTarget, method: string, path: string, body?: string): Promise<Answer> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }
  if (router.authorization !== undefined) headers.authorization = router.authorization
  const res = await fetch(`${router.url}${path}`, { method, headers, body })
  const text = await res.text()
  const retryAfter = Number(res.headers.get('retry-after') ?? NaN)
  return { status: res.status, text, ...(Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}) }
}

/** `409 CODE message (details)` from an error answer `{"error": {"code", "message", "details"}}`. */
export function describeAnswer(a: Answer): string {
  try {
    const e = (JSON.parse(a.text) as { error?: { code?: string; message?: string; details?: string[] } }).error
    if (e !== undefined) {
      const details = e.details === undefined || e.details.length === 0 ? '' : ` (${e.details.join('; ')})`
      return `${a.status} ${e.code ?? ''} ${e.message ?? ''}${details}`.replace(/\s+/g, ' ').trim()
    }
  } catch {
    // not JSON: the text as it came
  }
  return `${a.status} ${a.text.slice(0, 200)}`.trim()
}

const isRetriable = (status: number) => status === 503 || status === 504

/**
 * A request retried, backing off, while the answer is 503 (not applied: NO_MASTER, NOT_MASTER, …)
 * or 504 (outcome unknown) or the router cannot be reached, for up to 30 s; then any answer.
 */
export async function sendRetrying(
  router: RouterTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const deadline = Date.now() + RETRY_FOR_MS
  const text = body === undefined ? undefined : JSON.stringify(body)
  let backoffMs = 100
  for (;;) {
    let last: string
    let waitMs = backoffMs
    try {
      const a = await send(router, method, path, text)
      if (!isRetriable(a.status)) return a
      last = describeAnswer(a)
      waitMs = a.retryAfterMs ?? backoffMs
    } catch (error) {
      last = (error as Error).message
      const cause = (error as { cause?: { message?: string } }).cause?.message
      if (cause !== undefined) last += `: ${cause}`
    }
    if (Date.now() + waitMs > deadline)
      throw new BulkError(`${method} ${path}: still failing after ${RETRY_FOR_MS / 1000} s: ${last}`)
    await new Promise((r) => setTimeout(r, waitMs))
    backoffMs = Math.min(backoffMs * 2, 2000)
  }
}

/** The JSON of a successful answer; any other answer is a BulkError naming the request. */
export async function getJson(router: RouterTarget, path: string): Promise<unknown> {
  const a = await sendRetrying(router, 'GET', path)
  if (a.status < 200 || a.status > 299) throw new BulkError(`GET ${path}: ${describeAnswer(a)}`)
  return JSON.parse(a.text) as unknown
}

interface DatabaseDefinition {
  tables: Record<string, { key: string[] }>
}

/** The database's definition (GET /_admin/databases/{db}). */
async function definitionOf(router: RouterTarget, db: string): Promise<DatabaseDefinition> {
  return (await getJson(router, `/_admin/databases/${encodeURIComponent(db)}`)) as DatabaseDefinition
}

function tableOf(definition: DatabaseDefinition, db: string, table: string): { key: string[] } {
  if (!Object.hasOwn(definition.tables, table)) throw new BulkError(`database ${db} has no table ${table}`)
  return definition.tables[table]
}

// ---------------------------------------------------------------------------------------------
// export

export interface ExportOptions {
  router: RouterTarget
  db: string
  /** Only this table (its lines are then the bare documents). */
  table?: string
  /** A file, or an existing directory (one `<table>.ndjson` per table). */
  out: string
  say: (line: string) => void
}

export interface ChangeEvent {
  op: 'put' | 'delete'
  table: string
  key: string[]
  after: Record<string, unknown> | null
}

export interface ExportedDocument {
  table: string
  key: string[]
  doc: Record<string, unknown>
}

/** One long poll (timeout=0) of the change stream from `since` (the beginning when undefined). */
async function pollChanges(
  o: { router: RouterTarget; db: string; table?: string },
  since: string | undefined,
): Promise<{ events: ChangeEvent[]; token: string }> {
  const query = new URLSearchParams({ timeout: '0', limit: String(POLL_LIMIT) })
  if (o.table !== undefined) query.set('table', o.table)
  if (since !== undefined) query.set('since', since)
  const path = `/${encodeURIComponent(o.db)}/_changes?${query.toString()}`
  const a = await sendRetrying(o.router, 'GET', path)
  if (a.status !== 200) throw new BulkError(`GET ${path}: ${describeAnswer(a)}`)
  const lines = a.text.split('\n').filter((l) => l.length > 0)
  const last = JSON.parse(lines.pop() ?? '{}') as { token?: string }
  if (typeof last.token !== 'string') throw new BulkError(`GET ${path}: the answer does not end with a token`)
  return { events: lines.map((l) => JSON.parse(l) as ChangeEvent), token: last.token }
}

/**
 * Reads the change stream from `since` (the beginning when undefined) to the end of the log,
 * handing each poll's events to `onEvents`; resolves with the token reached. Done when a poll
 * (timeout=0: everything up to the log end as of the request, or nothing) brings no event and
 * does not move the token (a filtered stream moves it past other tables' transactions).
 */
export async function readToEnd(
  o: { router: RouterTarget; db: string; table?: string },
  since: string | undefined,
  onEvents: (events: ChangeEvent[]) => void,
): Promise<string> {
  for (;;) {
    const poll = await pollChanges(o, since)
    onEvents(poll.events)
    const empty = poll.events.length === 0 && poll.token === since
    since = poll.token
    if (empty) return since
  }
}

/** A put sets the document, a delete removes it. */
export function fold(documents: Map<string, ExportedDocument>, e: ChangeEvent): void {
  const id = JSON.stringify([e.table, ...e.key])
  if (e.op === 'put' && e.after !== null) documents.set(id, { table: e.table, key: e.key, doc: e.after })
  else documents.delete(id)
}

function compareKeys(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1
  return a.length - b.length
}

export function byTableAndKey(a: ExportedDocument, b: ExportedDocument): number {
  if (a.table !== b.table) return a.table < b.table ? -1 : 1
  return compareKeys(a.key, b.key)
}

/** Writes `lines` to a temporary file next to `path`, then renames it into place. */
export async function writeAtomically(path: string, lines: Iterable<string>): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const file = await open(tmp, 'w')
  try {
    let chunk = ''
    for (const line of lines) {
      chunk += line + '\n'
      if (chunk.length >= 1 << 20) {
        await file.write(chunk)
        chunk = ''
      }
    }
    await file.write(chunk)
    await file.sync()
    await file.close()
    await rename(tmp, path)
  } catch (error) {
    await file.close().catch(() => undefined)
    await rm(tmp, { force: true })
    throw error
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** Writes the documents: one file of `{table, key, doc}` lines (bare documents with --table), or one file per table. */
async function writeExport(o: ExportOptions, tables: string[], documents: ExportedDocument[]): Promise<string[]> {
  if (!isDirectory(o.out)) {
    const line = (d: ExportedDocument) =>
      JSON.stringify(o.table === undefined ? { table: d.table, key: d.key, doc: d.doc } : d.doc)
    await writeAtomically(o.out, documents.map(line))
    return [o.out]
  }
  const written: string[] = []
  for (const table of tables) {
    const path = join(o.out, `${table}.ndjson`)
    await writeAtomically(
      path,
      documents.filter((d) => d.table === table).map((d) => JSON.stringify(d.doc)),
    )
    written.push(path)
  }
  return written
}

/**
 * Exports the database (or one table): every document as of the position the change stream
 * reached, a consistent snapshot of each partition at that position.
 */
export async function exportDatabase(o: ExportOptions): Promise<void> {
  const started = Date.now()
  const definition = await definitionOf(o.router, o.db)
  if (o.table !== undefined) tableOf(definition, o.db, o.table)
  const tables = o.table === undefined ? Object.keys(definition.tables).sort() : [o.table]
  const documents = new Map<string, ExportedDocument>()
  const progress = new Progress('export')
  progress.update({ events: 0, documents: 0 })
  let events = 0
  let since: string
  try {
    since = await readToEnd(o, undefined, (batch) => {
      for (const e of batch) fold(documents, e)
      events += batch.length
      progress.update({ events, documents: documents.size })
    })
  } finally {
    progress.done()
  }
  const sorted = [...documents.values()].sort(byTableAndKey)
  const files = await writeExport(o, tables, sorted)
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  o.say(
    `export: ${sorted.length} documents to ${files.join(', ')} (${events} events read in ${seconds} s), as of token ${since}`,
  )
}

// ---------------------------------------------------------------------------------------------
// import

export interface ImportOptions {
  router: RouterTarget
  db: string
  table: string
  file: string
  onError: 'skip' | 'fail'
  /** Lines per batch (the state file is written after each). */
  batch: number
  /** Transactions in flight. */
  concurrency: number
  /** The state file (resuming). */
  state: string
  say: (line: string) => void
}

/** A document to write, with its line number. */
interface DocumentLine {
  line: number
  key: string[]
  doc: Record<string, unknown>
}

/**
 * A line's document and key (each key field's value as the database makes it a string:
 * indexValue), or why the line cannot be imported.
 */
export function parseLine(text: string, keyFields: string[]): { key: string[]; doc: Record<string, unknown> } | string {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (error) {
    return `not JSON (${(error as Error).message})`
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return `not a JSON object (${Array.isArray(doc) ? 'an array' : doc === null ? 'null' : typeof doc})`
  const record = doc as Record<string, unknown>
  const key: string[] = []
  for (const field of keyFields) {
    if (!Object.hasOwn(record, field) || record[field] === null) return `key field ${field} is missing`
    const value = indexValue(record[field])
    if (value === null) return `key field ${field} is not a string, number or boolean`
    if (value.length === 0) return `key field ${field} is empty`
    key.push(value)
  }
  return { key, doc: record }
}

interface ImportState {
  db: string
  table: string
  file: string
  /** Lines of the file done (written or skipped). */
  lines: number
}

/** The lines a previous run finished, from the state file (0 without one). */
function readState(o: ImportOptions): number {
  if (!existsSync(o.state)) return 0
  let state: Partial<ImportState>
  try {
    state = JSON.parse(readFileSync(o.state, 'utf8')) as Partial<ImportState>
  } catch (error) {
    throw new BulkError(`cannot read the state file ${o.state}: ${(error as Error).message}`)
  }
  if (state.db !== o.db || state.table !== o.table || typeof state.lines !== 'number')
    throw new BulkError(
      `the state file ${o.state} is of an import into ${state.db}/${state.table}, not ${o.db}/${o.table}: remove it to start over, or give another --state`,
    )
  return state.lines
}

function saveState(o: ImportOptions, lines: number): void {
  const state: ImportState = { db: o.db, table: o.table, file: o.file, lines }
  writeFileDurably(o.state, JSON.stringify(state) + '\n', 0o644)
}

/** A run's shared state: counts, the progress display, and whether it must stop. */
interface ImportRun {
  o: ImportOptions
  progress: Progress
  read: number
  written: number
  skipped: number
  bytes: number
  /** Of the lines a previous run finished (resuming). */
  resumedBytes: number
  /** --on-error fail met a bad line: no new work. */
  stopped: boolean
  /** Set by the first request that failed for good: no new work, and the import fails. */
  error: Error | undefined
}

/**
 * The counts, and how far into the file the import is: the bytes read, less the share of the lines
 * read but not written yet (lines read ahead wait for their batch).
 */
function showProgress(run: ImportRun): void {
  const pending = run.read === 0 ? 0 : 1 - (run.written + run.skipped) / run.read
  const position = run.bytes - (run.bytes - run.resumedBytes) * pending
  run.progress.update({ lines: run.read, written: run.written, skipped: run.skipped }, position)
}

/** A bad line: reported with its number and counted; with --on-error fail, the import stops. */
function badLine(run: ImportRun, line: number, reason: string): void {
  run.progress.log(`import: line ${line}: ${reason}`)
  run.skipped++
  if (run.o.onError === 'fail') run.stopped = true
}

type WriteResult = 'written' | { refused: string }

/** One transaction of one document group's documents; a refusal (400, 413) is returned, not thrown. */
async function writeDocuments(run: ImportRun, docs: DocumentLine[]): Promise<WriteResult> {
  const { o } = run
  const operations = docs.map((d) => ({ op: 'put', table: o.table, key: d.key, doc: d.doc }))
  const path = `/${encodeURIComponent(o.db)}/_transaction`
  const a = await sendRetrying(o.router, 'POST', path, { operations })
  if (a.status >= 200 && a.status <= 299) return 'written'
  if (a.status === 400 || a.status === 413) return { refused: describeAnswer(a) }
  throw new BulkError(`POST ${path}: ${describeAnswer(a)}`)
}

/**
 * A document group's documents of a batch, in transactions of at most 1000, in file order. A
 * refused transaction is written again one document at a time, to find and report the refused ones.
 */
async function writeGroup(run: ImportRun, docs: DocumentLine[]): Promise<void> {
  for (let i = 0; i < docs.length && !run.stopped && run.error === undefined; i += MAX_TRANSACTION_OPS) {
    const chunk = docs.slice(i, i + MAX_TRANSACTION_OPS)
    const result = await writeDocuments(run, chunk)
    if (result === 'written') {
      run.written += chunk.length
      showProgress(run)
      continue
    }
    for (const d of chunk) {
      if (run.stopped || run.error !== undefined) return
      const one = chunk.length === 1 ? result : await writeDocuments(run, [d])
      if (one === 'written') run.written++
      else badLine(run, d.line, `refused by the database: ${one.refused}`)
      showProgress(run)
    }
  }
}

/** Runs `work` on each item, `concurrency` at a time; the first error stops new work and is kept in run.error. */
async function inParallel<T>(run: ImportRun, items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length && !run.stopped && run.error === undefined) {
      const item = items[next++]
      try {
        await work(item)
      } catch (error) {
        run.error ??= error as Error
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(run.o.concurrency, items.length) }, worker))
}

/** A batch's documents by document group (the first key part), in file order within each. */
function byGroup(batch: DocumentLine[]): DocumentLine[][] {
  const groups = new Map<string, DocumentLine[]>()
  for (const d of batch) {
    const group = groups.get(d.key[0])
    if (group === undefined) groups.set(d.key[0], [d])
    else group.push(d)
  }
  return [...groups.values()]
}

/** Writes a batch; once it is all written (or skipped), records `linesDone` in the state file. */
async function writeBatch(run: ImportRun, batch: DocumentLine[], linesDone: number): Promise<void> {
  await inParallel(run, byGroup(batch), (group) => writeGroup(run, group))
  if (run.error !== undefined) throw run.error
  if (!run.stopped) saveState(run.o, linesDone)
}

/** The file's lines, numbered from 1, with the bytes read so far. */
async function* numberedLines(file: string): AsyncGenerator<{ line: number; text: string; bytes: number }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity })
  let line = 0
  let bytes = 0
  for await (const text of lines) {
    line++
    bytes += Buffer.byteLength(text) + 1
    yield { line, text, bytes }
  }
}

/** Imports the file into the table: the exit code (0: every line written or skipped; 1: stopped at a bad line). */
export async function importFile(o: ImportOptions): Promise<number> {
  const started = Date.now()
  const definition = await definitionOf(o.router, o.db)
  const keyFields = tableOf(definition, o.db, o.table).key
  const resumeAfter = readState(o)
  if (resumeAfter > 0) o.say(`import: resuming after line ${resumeAfter} (state file ${o.state})`)
  const progress = new Progress('import', { total: statSync(o.file).size, rateOf: 'written' })
  const run: ImportRun = {
    o,
    progress,
    read: 0,
    written: 0,
    skipped: 0,
    bytes: 0,
    resumedBytes: 0,
    stopped: false,
    error: undefined,
  }
  try {
    let batch: DocumentLine[] = []
    let lastLine = resumeAfter
    for await (const { line, text, bytes } of numberedLines(o.file)) {
      run.bytes = bytes
      if (line <= resumeAfter) {
        run.resumedBytes = bytes
        continue
      }
      lastLine = line
      if (text.trim() === '') continue
      run.read++
      const parsed = parseLine(text, keyFields)
      if (typeof parsed === 'string') {
        badLine(run, line, parsed)
        // --on-error fail: what came before the bad line is written, then the import stops.
        if (run.stopped) {
          run.stopped = false
          await writeBatch(run, batch, line - 1)
          run.stopped = true
          break
        }
      } else batch.push({ line, ...parsed })
      showProgress(run)
      if (batch.length >= o.batch) {
        await writeBatch(run, batch, line)
        batch = []
        if (run.stopped) break
      }
    }
    if (!run.stopped) await writeBatch(run, batch, lastLine)
  } finally {
    progress.done()
  }
  const seconds = (Date.now() - started) / 1000
  if (!run.stopped) rmSync(o.state, { force: true })
  else
    o.say(
      `import: stopped at the first bad line (--on-error fail)${existsSync(o.state) ? `; the state file ${o.state} has the lines done` : ''}`,
    )
  o.say(
    `import: ${run.written} documents written, ${run.skipped} lines skipped, in ${seconds.toFixed(1)} s (${Math.round(run.written / Math.max(seconds, 0.001))}/s)`,
  )
  return run.stopped ? 1 : 0
}
