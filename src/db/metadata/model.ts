// The cluster's metadata: databases (tables, schema versions, indexes), storage nodes, and for
// each partition its generation, master and replicas. It lives in a compacted Kafka topic (see
// metadata-log.ts); this module holds the types, the validation of what clients send, the
// partitioning function and the static placement used until the controller exists.
import { hash } from 'node:crypto'
import { DbError } from '../errors.ts'
import { checkBackwardCompatible, parseRecordSchema, SchemaError } from '../schema/table-schema.ts'

export interface NodeInfo {
  id: string
  /** Base URL of the node's internal HTTP API. */
  url: string
  rack: string | null
  pid: number
  startedAt: number
}

/**
 * The default node session: a node whose heartbeat the controller has not read for this long is
 * dead, and a storage node's master lease is cut from the same value (src/db/storage/master-lease.ts).
 * `cortado controller` and `cortado node` both take `--node-session-ms`; give them the same value.
 */
export const DEFAULT_NODE_SESSION_MS = 1500

/** What a node reports in its heartbeat (`heartbeat/<id>`): the current state of its replicas. */
export interface NodeReport {
  id: string
  /** Names this heartbeat, so its writer knows it when it reads it back (master lease). */
  nonce?: string
  /** The node session this node's master lease is cut from (master-lease.ts). */
  sessionMs?: number
  /** The metadata offset the node had read up to when it wrote this report (every record below it). */
  metadataOffset?: number
  replicas: { db: string; partition: number; role: string; generation: number; scn: number }[]
}

export interface TableInfo {
  /** Key field names; the first is the partition key. */
  key: string[]
  /** Avro record schemas, oldest first; version n is schemas[n - 1]. */
  schemas: unknown[]
  /** Indexed top-level fields. */
  indexes: string[]
}

export interface DatabaseInfo {
  name: string
  partitions: number
  replicas: number
  /** The replication topic: one Kafka partition per database partition. */
  topic: string
  tables: Record<string, TableInfo>
}

export interface PartitionInfo {
  db: string
  partition: number
  /** Bumped on every change of master; the master writes under it. */
  generation: number
  master: string | null
  /** All replica nodes, the master included. */
  replicas: string[]
}

/**
 * Where every partition is served, as a client that routes its own requests needs it (the
 * router's GET /_admin/placement; src/db/client/): the nodes' URLs, each database's partition
 * count and tables' keys, and each partition's master and replicas.
 */
export interface Placement {
  nodes: { id: string; url: string }[]
  databases: { name: string; partitions: number; tables: Record<string, { key: string[] }> }[]
  partitions: PartitionInfo[]
}

export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/
export const MAX_PARTITIONS = 1024
export const MAX_TABLES = 256
export const MAX_KEY_PARTS = 8

export const topicOf = (db: string): string => `cortado-db-${db}`

/** The partition of a partition key: the first 4 bytes of its MD5, modulo the count (stable across processes). */
export function partitionOf(partitionKey: string, partitions: number): number {
  // The first 4 bytes of the MD5 of the key's UTF-8, big-endian (one-shot hash: ~5x cheaper than createHash here).
  return Number.parseInt(hash('md5', partitionKey).slice(0, 8), 16) % partitions
}

function invalid(message: string, details: string[] = []): never {
  throw new DbError('INVALID_DATABASE', message, details)
}

/** Validates a table definition as sent to the admin API. */
export function parseTable(name: string, body: unknown): TableInfo {
  if (!NAME_PATTERN.test(name)) invalid(`table name ${JSON.stringify(name)} must match ${NAME_PATTERN.source}`)
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    invalid(`table ${name}: expected an object with key, schema and indexes`)
  const t = body as Record<string, unknown>
  const key = t.key
  if (
    !Array.isArray(key) ||
    key.length === 0 ||
    key.length > MAX_KEY_PARTS ||
    !key.every((k) => typeof k === 'string' && NAME_PATTERN.test(k))
  ) {
    invalid(`table ${name}: key must be a list of 1 to ${MAX_KEY_PARTS} field names, the partition key first`)
  }
  if (new Set(key).size !== key.length) invalid(`table ${name}: key fields repeat`)
  const indexes = t.indexes ?? []
  if (!Array.isArray(indexes) || !indexes.every((f) => typeof f === 'string' && NAME_PATTERN.test(f)))
    invalid(`table ${name}: indexes must be a list of field names`)
  let type
  try {
    type = parseRecordSchema(t.schema)
  } catch (error) {
    if (error instanceof SchemaError)
      throw new DbError('INVALID_SCHEMA', `table ${name}: ${error.message}`, error.problems)
    throw error
  }
  const fields = new Set((type as unknown as { fields: { name: string }[] }).fields.map((f) => f.name))
  for (const k of key as string[]) if (!fields.has(k)) invalid(`table ${name}: key field ${k} is not in the schema`)
  for (const f of indexes as string[])
    if (!fields.has(f)) invalid(`table ${name}: indexed field ${f} is not in the schema`)
  return { key: key as string[], schemas: [t.schema], indexes: indexes as string[] }
}

/** Validates `PUT /_admin/databases/{db}`'s body. */
export function parseDatabase(name: string, body: unknown): DatabaseInfo {
  if (!NAME_PATTERN.test(name)) invalid(`database name ${JSON.stringify(name)} must match ${NAME_PATTERN.source}`)
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    invalid('expected {"partitions": n, "replicas": r, "tables": {...}}')
  const b = body as Record<string, unknown>
  const partitions = b.partitions
  const replicas = b.replicas ?? 3
  if (!Number.isInteger(partitions) || (partitions as number) < 1 || (partitions as number) > MAX_PARTITIONS)
    invalid(`partitions must be an integer from 1 to ${MAX_PARTITIONS}`)
  if (!Number.isInteger(replicas) || (replicas as number) < 1 || (replicas as number) > 7)
    invalid('replicas must be an integer from 1 to 7')
  if (typeof b.tables !== 'object' || b.tables === null || Array.isArray(b.tables))
    invalid('tables must be an object of table definitions')
  const entries = Object.entries(b.tables)
  if (entries.length === 0 || entries.length > MAX_TABLES) invalid(`a database needs 1 to ${MAX_TABLES} tables`)
  const tables: Record<string, TableInfo> = {}
  for (const [tableName, def] of entries) tables[tableName] = parseTable(tableName, def)
  return { name, partitions: partitions as number, replicas: replicas as number, topic: topicOf(name), tables }
}

/** A table with one more schema version, refused unless it reads every earlier version's documents. */
export function withSchemaVersion(table: TableInfo, schema: unknown): TableInfo {
  let next, previous
  try {
    next = parseRecordSchema(schema)
    for (const old of table.schemas) {
      previous = parseRecordSchema(old)
      checkBackwardCompatible(next, previous)
    }
  } catch (error) {
    if (error instanceof SchemaError)
      throw new DbError(
        error.code === 'INCOMPATIBLE_SCHEMA' ? 'INCOMPATIBLE_SCHEMA' : 'INVALID_SCHEMA',
        error.message,
        error.problems,
      )
    throw error
  }
  const fields = new Set((next as unknown as { fields: { name: string }[] }).fields.map((f) => f.name))
  for (const k of table.key)
    if (!fields.has(k)) throw new DbError('INCOMPATIBLE_SCHEMA', `key field ${k} cannot be removed`)
  for (const f of table.indexes)
    if (!fields.has(f)) throw new DbError('INCOMPATIBLE_SCHEMA', `indexed field ${f} cannot be removed`)
  return { ...table, schemas: [...table.schemas, schema] }
}

/**
 * Static placement (until the controller exists): replicas of partition p on `replicas`
 * consecutive nodes starting at p mod n, in a rack-aware order when nodes declare racks
 * (nodes interleaved rack by rack, so consecutive nodes sit in different racks where possible);
 * the first is the master, so masters spread evenly.
 */
export function placePartitions(db: DatabaseInfo, nodes: NodeInfo[]): PartitionInfo[] {
  if (nodes.length < db.replicas)
    throw new DbError(
      'NOT_ENOUGH_NODES',
      `database ${db.name} needs ${db.replicas} storage nodes, ${nodes.length} are registered`,
    )
  const byRack = new Map<string, NodeInfo[]>()
  for (const n of [...nodes].sort((a, b) => a.id.localeCompare(b.id))) {
    const rack = n.rack ?? ''
    let list = byRack.get(rack)
    if (list === undefined) byRack.set(rack, (list = []))
    list.push(n)
  }
  const order: NodeInfo[] = []
  const racks = [...byRack.values()]
  for (let i = 0; order.length < nodes.length; i++) for (const r of racks) if (i < r.length) order.push(r[i])
  const out: PartitionInfo[] = []
  for (let p = 0; p < db.partitions; p++) {
    const replicas = Array.from({ length: db.replicas }, (_, i) => order[(p + i) % order.length].id)
    out.push({ db: db.name, partition: p, generation: 1, master: replicas[0], replicas })
  }
  return out
}
