// The storage node's internal HTTP API (types in ../node-api.ts). Every request body is bounded
// and checked; every refusal is a DbError answered as {"error": {code, message, details}}.
import { createReadStream, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Registry } from 'prom-client'
import { type Logger } from '../../util/log.ts'
import { DbError } from '../errors.ts'
import { type MetadataView } from '../metadata/metadata-log.ts'
import { type DatabaseInfo, partitionOf, type TableInfo } from '../metadata/model.ts'
import {
  CLUSTER_SECRET_HEADER,
  hasClusterSecret,
  type DigestResponse,
  type DocumentView,
  type GroupRequest,
  type NodeStatus,
  type ReadRequest,
  type WriteRequest,
  type WriteRequestOp,
} from '../node-api.ts'
import { checkKey, preparePut, schemaVersionsOf } from '../schema/documents.ts'
import { type PartitionReplica, type WriteOp } from './partition-replica.ts'
import { type StoredDocument } from './replica-store.ts'

/** Largest request body: a transaction of large documents. */
export const MAX_BODY_BYTES = 256 * 1024 * 1024
const MAX_OPS = 1000
const MAX_KEYS = 1000

/** What the HTTP API uses of its storage node (the StorageNode provides it). */
export interface NodeHttpContext {
  readonly id: string
  /** Read per request: the metadata log moves on. */
  readonly view: Pick<MetadataView, 'databases'>
  readonly registry: Registry
  replica(db: string, partition: number): PartitionReplica | undefined
  status(): NodeStatus
  /** Milliseconds since the node last read its own heartbeat back from the log (null: never). */
  logAgeMs(): number | null
  /** Every call but GET /metrics must carry it (CLUSTER_SECRET_HEADER); undefined: none needed. */
  readonly clusterSecret: string | undefined
}

export async function startNodeHttp(
  node: NodeHttpContext,
  host: string,
  port: number,
  log: Logger,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics' && !hasClusterSecret(node.clusterSecret, req.headers[CLUSTER_SECRET_HEADER])) {
      const e = new DbError('UNAUTHENTICATED', "a node's internal API takes only the cluster's own calls")
      res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify(e.toJSON()))
      return
    }
    handle(node, req, res).catch((error: unknown) => {
      const e =
        error instanceof DbError
          ? error
          : new DbError('INTERNAL', error instanceof Error ? error.message : String(error))
      if (e.code === 'INTERNAL')
        log.error('node request failed', { url: req.url, error: String(error), stack: (error as Error).stack })
      if (!res.headersSent) res.writeHead(e.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(e.toJSON()))
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const address = server.address()
  const actual = typeof address === 'object' && address !== null ? address.port : port
  return { server, url: `http://${host}:${actual}` }
}

/** A JSON answer of the API, for either transport (HTTP or the router's channel, node-rpc.ts). */
export interface NodeAnswer {
  status: number
  /** The body: JSON text. */
  text: string
  /** Headers beyond content-type and content-length (the document read's ETag and staleness). */
  headers: Record<string, string> | null
}

async function handle(node: NodeHttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://node')
  const parts = url.pathname
    .split('/')
    .filter((p) => p.length > 0)
    .map(decodeURIComponent)
  const route = `${req.method} /${parts.slice(0, 2).join('/')}`
  switch (route) {
    case 'GET /metrics': {
      const registry = node.registry
      res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics())
      return
    }
    case 'GET /_node/snapshot':
      return snapshot(replicaOf(node, parts[2], Number(parts[3])), res)
  }
  const a = await answer(node, req.method ?? 'GET', url, parts, req.method === 'POST' ? await body(req) : undefined)
  res
    .writeHead(a.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(a.text),
      ...a.headers,
    })
    .end(a.text)
}

/**
 * Answers a call of the API (everything but the metrics and the snapshot stream, which only HTTP
 * serves); `body` is the parsed JSON of a POST. Refusals are thrown as DbError.
 */
export async function answer(
  node: NodeHttpContext,
  method: string,
  url: URL,
  parts: string[],
  body: unknown,
): Promise<NodeAnswer> {
  const route = `${method} /${parts.slice(0, 2).join('/')}`
  switch (route) {
    case 'GET /_node/status':
      return json(200, node.status())
    case 'POST /_node/write':
      return json(200, { etag: await write(node, body as WriteRequest) })
    case 'POST /_node/read':
      return json(200, read(node, body as ReadRequest))
    case 'POST /_node/group':
      return json(200, group(node, body as GroupRequest))
    case 'GET /_node/doc':
      return document(node, parts, url.searchParams.get('from') === 'any' ? 'any' : 'master')
    case 'GET /_node/digest': {
      const r = replicaOf(node, parts[2], Number(parts[3]))
      const applied = r.applied
      const out: DigestResponse = {
        digest: r.store.digest(),
        fileDigest: r.store.fileDigest(),
        generation: applied.generation,
        scn: applied.scn,
        documents: r.store.count(),
      }
      return json(200, out)
    }
    default:
      throw new DbError('NOT_FOUND', `no route ${method} ${url.pathname}`)
  }
}

function json(status: number, value: unknown): NodeAnswer {
  return { status, text: JSON.stringify(value), headers: null }
}

/** A request body's JSON (a DbError if it is not JSON). */
export function parseBody(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown
  } catch {
    throw new DbError('BAD_REQUEST', 'request body is not valid JSON')
  }
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES)
      throw new DbError('PAYLOAD_TOO_LARGE', `request body larger than ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  return parseBody(Buffer.concat(chunks))
}

function replicaOf(node: NodeHttpContext, db: unknown, partition: unknown): PartitionReplica {
  if (typeof db !== 'string' || !node.view.databases.has(db))
    throw new DbError('UNKNOWN_DATABASE', `no database ${String(db)}`)
  if (!Number.isInteger(partition)) throw new DbError('BAD_REQUEST', 'partition must be an integer')
  const r = node.replica(db, partition as number)
  if (r === undefined)
    throw new DbError('UNKNOWN_PARTITION', `partition ${String(partition)} of ${db} has no replica on node ${node.id}`)
  return r
}

/** A table of the database (own properties only: not constructor, __proto__ and the like). */
function tableOf(db: DatabaseInfo, name: string): TableInfo | undefined {
  return Object.hasOwn(db.tables, name) ? db.tables[name] : undefined
}

function isKey(key: unknown): key is string[] {
  return Array.isArray(key) && key.length > 0 && key.every((k) => typeof k === 'string')
}

async function write(node: NodeHttpContext, req: WriteRequest): Promise<string> {
  if (
    typeof req !== 'object' ||
    req === null ||
    !Array.isArray(req.ops) ||
    req.ops.length === 0 ||
    req.ops.length > MAX_OPS
  ) {
    throw new DbError('BAD_REQUEST', `a write needs 1 to ${MAX_OPS} operations`)
  }
  const replica = replicaOf(node, req.db, req.partition)
  const db = node.view.databases.get(req.db)!
  const partitionKeys = new Set<string>()
  const ops: WriteOp[] = req.ops.map((o: WriteRequestOp) => {
    if (typeof o !== 'object' || o === null || typeof o.table !== 'string' || !isKey(o.key))
      throw new DbError('BAD_REQUEST', 'each operation needs a table and a key')
    const table = tableOf(db, o.table)
    if (table === undefined) throw new DbError('UNKNOWN_TABLE', `database ${db.name} has no table ${o.table}`)
    partitionKeys.add(o.key[0])
    const conditions = {
      ...(typeof o.ifMatch === 'string' ? { ifMatch: o.ifMatch } : {}),
      ...(typeof o.ifNoneMatch === 'string' ? { ifNoneMatch: o.ifNoneMatch } : {}),
    }
    if (o.kind === 'put')
      return { op: preparePut(`${db.name}/${o.table}`, o.table, table, o.key, o.doc), ...conditions }
    if (o.kind === 'delete') {
      checkKey(o.table, table, o.key)
      return { op: { kind: 'delete', table: o.table, key: o.key }, ...conditions }
    }
    throw new DbError('BAD_REQUEST', `unknown operation kind ${String(o.kind)}`)
  })
  if (partitionKeys.size > 1)
    throw new DbError(
      'CROSS_GROUP_TRANSACTION',
      `a transaction covers one document group; got partition keys ${[...partitionKeys].join(', ')}`,
    )
  const pk = [...partitionKeys][0]
  if (partitionOf(pk, db.partitions) !== req.partition)
    throw new DbError(
      'BAD_REQUEST',
      `partition key ${pk} belongs to partition ${partitionOf(pk, db.partitions)}, not ${req.partition}`,
    )
  return replica.write(ops, typeof req.principal === 'string' ? req.principal : undefined)
}

function readable(node: NodeHttpContext, req: { db: string; partition: number; from: string }): PartitionReplica {
  const replica = replicaOf(node, req.db, req.partition)
  if (req.from !== 'any' && replica.role !== 'master')
    throw new DbError('NOT_MASTER', `node ${node.id} is not the master of partition ${req.partition} of ${req.db}`)
  // A master read needs the master lease: a master cut off from the log may have been replaced.
  if (req.from !== 'any') replica.checkMasterRead()
  return replica
}

/**
 * GET /_node/doc/{db}/{partition}/{table}/{key…}?from=master|any: one document, its stored JSON
 * text passed through when it is already in the latest schema version (the hot read path: no
 * parse, no re-serialization), with `etag` and `x-cortado-schema-version` headers, and how stale
 * it may be: `x-cortado-applied` (the replica's last applied generation.scn) and
 * `x-cortado-log-age-ms` (time since this node last heard back from the log; absent if never).
 */
function document(node: NodeHttpContext, parts: string[], from: 'master' | 'any'): NodeAnswer {
  const [, , dbName, partition, tableName, ...key] = parts
  const replica = readable(node, { db: dbName, partition: Number(partition), from })
  const db = node.view.databases.get(dbName)!
  const table = tableOf(db, tableName ?? '')
  if (table === undefined) throw new DbError('UNKNOWN_TABLE', `database ${db.name} has no table ${String(tableName)}`)
  if (key.length === 0) throw new DbError('BAD_REQUEST', 'no key')
  const d = replica.store.getText(tableName, key)
  if (d === undefined) throw new DbError('NOT_FOUND', `no document ${tableName}/${key.join('/')} in ${db.name}`)
  const versions = schemaVersionsOf(`${db.name}/${tableName}`, table)
  const text =
    d.schemaVersion >= versions.latestVersion
      ? d.doc
      : JSON.stringify(versions.readLatest(JSON.parse(d.doc), d.schemaVersion))
  const applied = replica.applied
  const age = node.logAgeMs()
  const headers: Record<string, string> = {
    etag: d.etag,
    'x-cortado-schema-version': String(Math.max(d.schemaVersion, versions.latestVersion)),
    'x-cortado-applied': `${applied.generation}.${applied.scn}`,
  }
  if (age !== null) headers['x-cortado-log-age-ms'] = String(Math.round(age))
  return { status: 200, text, headers }
}

function view(node: NodeHttpContext, dbName: string, d: StoredDocument): DocumentView {
  const table = node.view.databases.get(dbName)!.tables[d.table]
  const versions = schemaVersionsOf(`${dbName}/${d.table}`, table)
  // Versions this node has not heard of yet (metadata behind the writer) are returned as written.
  const doc =
    d.schemaVersion <= versions.latestVersion
      ? (versions.readLatest(d.doc, d.schemaVersion) as Record<string, unknown>)
      : d.doc
  return {
    table: d.table,
    key: d.key,
    etag: d.etag,
    schemaVersion: Math.max(d.schemaVersion, versions.latestVersion),
    doc,
  }
}

function read(node: NodeHttpContext, req: ReadRequest): { docs: (DocumentView | null)[] } {
  if (
    typeof req !== 'object' ||
    req === null ||
    !Array.isArray(req.keys) ||
    req.keys.length === 0 ||
    req.keys.length > MAX_KEYS
  )
    throw new DbError('BAD_REQUEST', `a read needs 1 to ${MAX_KEYS} keys`)
  const replica = readable(node, req)
  const db = node.view.databases.get(req.db)!
  return {
    docs: req.keys.map(({ table, key }) => {
      if (typeof table !== 'string' || tableOf(db, table) === undefined)
        throw new DbError('UNKNOWN_TABLE', `database ${db.name} has no table ${String(table)}`)
      if (!isKey(key)) throw new DbError('BAD_REQUEST', 'each key must be a list of strings')
      const d = replica.get(table, key)
      return d === undefined ? null : view(node, db.name, d)
    }),
  }
}

function group(node: NodeHttpContext, req: GroupRequest): { docs: DocumentView[] } {
  if (typeof req !== 'object' || req === null || typeof req.table !== 'string' || typeof req.partitionKey !== 'string')
    throw new DbError('BAD_REQUEST', 'a group read needs a table and a partition key')
  const replica = readable(node, req)
  const db = node.view.databases.get(req.db)!
  const table = tableOf(db, req.table)
  if (table === undefined) throw new DbError('UNKNOWN_TABLE', `database ${db.name} has no table ${req.table}`)
  const limit = Number.isInteger(req.limit) && req.limit > 0 ? Math.min(req.limit, 10_000) : 1000
  let docs: StoredDocument[]
  if (req.query === undefined) docs = replica.store.group(req.table, req.partitionKey, limit)
  else {
    if (!table.indexes.includes(req.query.field))
      throw new DbError(
        'BAD_REQUEST',
        `field ${req.query.field} of ${req.table} is not indexed (indexes: ${table.indexes.join(', ') || 'none'})`,
      )
    docs = replica.store.query(req.table, req.partitionKey, req.query.field, String(req.query.value), limit)
  }
  return { docs: docs.map((d) => view(node, db.name, d)) }
}

async function snapshot(replica: PartitionReplica, res: ServerResponse): Promise<void> {
  const file = join(tmpdir(), `cortado-snapshot-${process.pid}-${replica.db}-${replica.partition}-${Date.now()}.sqlite`)
  replica.store.snapshotTo(file)
  res.writeHead(200, { 'content-type': 'application/vnd.sqlite3' })
  await new Promise<void>((resolve, reject) => {
    const stream = createReadStream(file)
    stream.on('error', reject)
    res.on('finish', resolve)
    res.on('close', resolve)
    stream.pipe(res)
  }).finally(() => rmSync(file, { force: true }))
}
