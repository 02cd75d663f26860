// The storage node's internal HTTP API, as the router calls it (JSON bodies). Documents travel
// as JSON objects; keys as lists of key parts, the partition key first.
import { timingSafeEqual } from 'node:crypto'

export interface WriteRequestOp {
  kind: 'put' | 'delete'
  table: string
  key: string[]
  doc?: Record<string, unknown>
  ifMatch?: string
  ifNoneMatch?: string
}

/** POST /_node/write: one transaction on one document group of one partition. */
export interface WriteRequest {
  db: string
  partition: number
  ops: WriteRequestOp[]
  /** Who asked for the write (the router's authenticated user), recorded in the replication record. */
  principal?: string
}

export interface WriteResponse {
  etag: string
}

export type ReadFrom = 'master' | 'any'

/** POST /_node/read: documents by key (a multi-get), from one partition. */
export interface ReadRequest {
  db: string
  partition: number
  from: ReadFrom
  keys: { table: string; key: string[] }[]
}

export interface DocumentView {
  table: string
  key: string[]
  etag: string
  schemaVersion: number
  doc: Record<string, unknown>
}

export interface ReadResponse {
  docs: (DocumentView | null)[]
}

/** POST /_node/group: a document group, optionally filtered by an indexed field. */
export interface GroupRequest {
  db: string
  partition: number
  from: ReadFrom
  table: string
  partitionKey: string
  query?: { field: string; value: string }
  limit: number
}

export interface GroupResponse {
  docs: DocumentView[]
}

export interface ReplicaStatus {
  db: string
  partition: number
  role: 'bootstrapping' | 'slave' | 'promoting' | 'master' | 'error'
  masterGeneration: number
  applied: { generation: number; scn: number }
  /** Offset after the last applied transaction (the checkpoint). */
  checkpointOffset: number
  /** Offset after the last record read. */
  readOffset: number
  documents: number
  counters: {
    applied: number
    duplicates: number
    zombies: number
    discarded: number
    invalid: number
    integrityGaps: number
  }
  bootstrappedFrom: string | null
  /** Why the replica stopped applying (it needs a restart), or null. */
  failure: string | null
}

/** GET /_node/status */
export interface NodeStatus {
  id: string
  pid: number
  rack: string | null
  url: string
  metadataOffset: number
  /** The node session its master lease is cut from (`--node-session-ms`). */
  sessionMs: number
  replicas: ReplicaStatus[]
}

/** GET /_node/digest/{db}/{partition} */
export interface DigestResponse {
  /** Of the content: documents, index entries, last applied (generation, scn). */
  digest: string
  /** Of the SQLite file in canonical (VACUUM INTO) form. */
  fileDigest: string
  generation: number
  scn: number
  documents: number
}

/**
 * The header that carries the cluster secret on every call to a node's internal API (HTTP, and
 * the channel's upgrade request), when the cluster has one: the router, the nodes fetching
 * snapshots from their peers, and the client library prove with it that they are the cluster's.
 */
export const CLUSTER_SECRET_HEADER = 'x-cortado-cluster-secret'

/** Whether a request's header holds the cluster secret (always, when the cluster has none). */
export function hasClusterSecret(secret: string | undefined, header: string | string[] | undefined): boolean {
  if (secret === undefined) return true
  if (typeof header !== 'string') return false
  const expected = Buffer.from(secret)
  const given = Buffer.from(header)
  return expected.length === given.length && timingSafeEqual(expected, given)
}

/** The headers that prove a caller is the cluster's (none when the cluster has no secret). */
export const clusterSecretHeaders = (secret: string | undefined): Record<string, string> =>
  secret === undefined ? {} : { [CLUSTER_SECRET_HEADER]: secret }
