// The TypeScript client library: documents read and written straight at the storage node that
// serves them, as Cassandra's and MongoDB's drivers do, instead of through a router. It learns the
// placement (every partition's master and replicas, the nodes' URLs, the tables' keys) from a
// router's GET /_admin/placement, maps a partition key to its partition as the router does
// (partitionOf), and calls the node over the same pipelined channel the router uses
// (src/db/node-client/). Why: a router hop costs a request parse, a forward and an answer on
// every operation; docs/database.md ("Client library") has the figures.
//
// Guarantees are the router's, because the same node code answers: a write is answered only
// after its master read it back from the log and applied it. Retries follow the router's rule
// (src/db/router/cluster-client.ts): an answer known not to have been applied (RETRIABLE_CODES,
// or UNKNOWN_PARTITION from a node that no longer holds the partition) and a call that never left
// this process are retried against a freshly read placement until `retryMs` has passed; a write
// whose connection broke after it was sent has an unknown outcome and fails with TIMEOUT.
import { request } from 'undici'
import { DbError, type DbErrorCode, RETRIABLE_CODES } from '../errors.ts'
import { partitionOf, type PartitionInfo, type Placement } from '../metadata/model.ts'
import { type WriteRequest, type WriteResponse } from '../node-api.ts'
import { NodeClient, NodeUnreachableError } from '../node-client/node-client.ts'

export { DbError, type DbErrorCode } from '../errors.ts'

export interface CortadoClientOptions {
  /** A router's base URL (http://host:port): where the placement is read. */
  router: string
  /**
   * The Authorization header for the router, when it requires authentication (`Basic …` or
   * `Bearer <token>`). The nodes' internal API takes none: the library acts as a trusted service.
   */
  authorization?: string
  /** The cluster secret the storage nodes require, when the cluster has one (StorageNodeOptions.clusterSecret). */
  clusterSecret?: string
  /** How long a request keeps retrying while its partition has no reachable master. Default 10 s. */
  retryMs?: number
  /** Longest wait for one node's answer. Default 30 s. */
  timeoutMs?: number
}

/** A document as read: its fields (in the table's latest schema version) and its ETag. */
export interface DocumentRead {
  doc: Record<string, unknown>
  etag: string
}

/** One operation of a transaction: every operation of one transaction has the same partition key. */
export type TransactionOp =
  | { kind: 'put'; table: string; key: string[]; doc: Record<string, unknown>; ifMatch?: string; ifNoneMatch?: string }
  | { kind: 'delete'; table: string; key: string[]; ifMatch?: string }

export type Consistency = 'master' | 'any'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Codes a node answers when the placement the client used is stale: retried after a refresh. */
const STALE_PLACEMENT: ReadonlySet<DbErrorCode> = new Set([...RETRIABLE_CODES, 'UNKNOWN_PARTITION'])

export class CortadoClient {
  readonly #router: string
  readonly #authorization: string | undefined
  readonly #retryMs: number
  readonly #nodes: NodeClient
  #placement: Placement = { nodes: [], databases: [], partitions: [] }
  #urls = new Map<string, string>()
  #partitions = new Map<string, PartitionInfo>()
  /** The placement read in progress, shared by every caller that wants a fresh one. */
  #refreshing: Promise<void> | undefined
  /** Round robin over replicas for reads from any replica. */
  #next = 0

  private constructor(options: CortadoClientOptions) {
    this.#router = options.router.replace(/\/$/, '')
    this.#authorization = options.authorization
    this.#retryMs = options.retryMs ?? 10_000
    this.#nodes = new NodeClient(options.timeoutMs ?? 30_000, options.clusterSecret)
  }

  /** A client with the router's current placement. */
  static async connect(options: CortadoClientOptions): Promise<CortadoClient> {
    const client = new CortadoClient(options)
    await client.refresh()
    return client
  }

  /** Reads the placement again from the router (done by itself whenever a node says it moved). */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#readPlacement().finally(() => (this.#refreshing = undefined))
    return this.#refreshing
  }

  async #readPlacement(): Promise<void> {
    let res
    try {
      const headers = this.#authorization === undefined ? {} : { authorization: this.#authorization }
      res = await request(`${this.#router}/_admin/placement`, { headers })
    } catch (error) {
      throw new DbError('NO_MASTER', `router ${this.#router} unreachable: ${(error as Error).message}`)
    }
    const text = await res.body.text()
    if (res.statusCode === 401 || res.statusCode === 403)
      throw new DbError(
        res.statusCode === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN',
        `router ${this.#router} refused GET /_admin/placement (${res.statusCode}): pass authorization`,
      )
    if (res.statusCode !== 200)
      throw new DbError('INTERNAL', `router ${this.#router} answered ${res.statusCode} to GET /_admin/placement`)
    const placement = JSON.parse(text) as Placement
    this.#placement = placement
    this.#urls = new Map(placement.nodes.map((n) => [n.id, n.url]))
    this.#partitions = new Map(placement.partitions.map((p) => [`${p.db}/${p.partition}`, p]))
  }

  /** Creates or replaces a document; resolves with its new ETag once its master applied it. */
  async put(
    db: string,
    table: string,
    key: string | string[],
    doc: Record<string, unknown>,
    conditions: { ifMatch?: string; ifNoneMatch?: string } = {},
  ): Promise<string> {
    return this.transaction(db, [{ kind: 'put', table, key: keyOf(key), doc, ...conditions }])
  }

  /** Deletes a document; resolves with the transaction's ETag. */
  async delete(
    db: string,
    table: string,
    key: string | string[],
    conditions: { ifMatch?: string } = {},
  ): Promise<string> {
    return this.transaction(db, [{ kind: 'delete', table, key: keyOf(key), ...conditions }])
  }

  /** Writes several documents of one document group (one partition key) atomically; resolves with the ETag. */
  async transaction(db: string, ops: TransactionOp[]): Promise<string> {
    if (ops.length === 0) throw new DbError('BAD_REQUEST', 'a transaction needs at least one operation')
    const partitionKeys = new Set(ops.map((o) => o.key[0]))
    if (partitionKeys.size !== 1)
      throw new DbError(
        'CROSS_GROUP_TRANSACTION',
        `a transaction covers one document group (one partition key); got ${[...partitionKeys].join(', ')}`,
      )
    const partition = await this.#partitionOf(db, ops)
    const body: WriteRequest = { db, partition, ops }
    const { etag } = await this.#toMaster(db, partition, 'write', (url) =>
      this.#nodes.post<WriteResponse>(url, '/_node/write', body),
    )
    return etag
  }

  /**
   * Reads a document: from its partition's master (default: it sees every acknowledged write), or
   * from any replica (`consistency: 'any'`: may lag). Null when there is none.
   */
  async get(
    db: string,
    table: string,
    key: string | string[],
    options: { consistency?: Consistency } = {},
  ): Promise<DocumentRead | null> {
    const parts = keyOf(key)
    const from = options.consistency ?? 'master'
    const partition = await this.#partitionOf(db, [{ table, key: parts }])
    const path = `/_node/doc/${[db, String(partition), table, ...parts].map(encodeURIComponent).join('/')}?from=${from}`
    const call = (url: string) => this.#nodes.getDocument(url, path)
    try {
      const d =
        from === 'any'
          ? await this.#toAnyReplica(db, partition, call)
          : await this.#toMaster(db, partition, 'read', call)
      return { doc: JSON.parse(d.text) as Record<string, unknown>, etag: d.etag }
    } catch (error) {
      if (error instanceof DbError && error.code === 'NOT_FOUND') return null
      throw error
    }
  }

  /** The partition of the operations' partition key, after checking the database and tables exist. */
  async #partitionOf(db: string, ops: { table: string; key: string[] }[]): Promise<number> {
    let info = this.#placement.databases.find((d) => d.name === db)
    // Created after the last placement read, perhaps.
    if (info === undefined || ops.some((o) => !Object.hasOwn(info!.tables, o.table))) {
      await this.refresh()
      info = this.#placement.databases.find((d) => d.name === db)
    }
    if (info === undefined) throw new DbError('UNKNOWN_DATABASE', `no database ${db}`)
    for (const o of ops) {
      if (!Object.hasOwn(info.tables, o.table))
        throw new DbError('UNKNOWN_TABLE', `database ${db} has no table ${o.table}`)
      if (o.key.length === 0 || o.key.some((k) => typeof k !== 'string' || k.length === 0))
        throw new DbError('BAD_REQUEST', `a key is one or more non-empty strings, the partition key first`)
    }
    return partitionOf(ops[0].key[0], info.partitions)
  }

  /** Calls the partition's master, retrying (with a fresh placement) what is known not to have run. */
  async #toMaster<T>(
    db: string,
    partition: number,
    kind: 'read' | 'write',
    call: (url: string) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.#retryMs
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      const p = this.#partitions.get(`${db}/${partition}`)
      const url = p?.master === null || p === undefined ? undefined : this.#urls.get(p.master)
      if (url !== undefined) {
        try {
          return await call(url)
        } catch (error) {
          if (error instanceof DbError && !STALE_PLACEMENT.has(error.code)) throw error
          if (error instanceof NodeUnreachableError && error.maybeExecuted && kind === 'write')
            throw new DbError(
              'TIMEOUT',
              `the master of partition ${partition} of ${db} (${p!.master}) went away during the write; its outcome is unknown`,
            )
          last = error
        }
      }
      last = (await this.#retryAfter(attempt, deadline)) ?? last
      if (Date.now() >= deadline)
        throw new DbError(
          'NO_MASTER',
          `partition ${partition} of ${db} has no master taking requests${last instanceof Error ? `: ${last.message}` : ''}`,
        )
    }
  }

  /** Calls any replica of the partition (round robin), falling back to the others, then retrying. */
  async #toAnyReplica<T>(db: string, partition: number, call: (url: string) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#retryMs
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      const replicas = this.#partitions.get(`${db}/${partition}`)?.replicas ?? []
      const start = this.#next++
      for (let i = 0; i < replicas.length; i++) {
        const url = this.#urls.get(replicas[(start + i) % replicas.length])
        if (url === undefined) continue
        try {
          return await call(url)
        } catch (error) {
          if (error instanceof DbError && !STALE_PLACEMENT.has(error.code)) throw error
          last = error
        }
      }
      last = (await this.#retryAfter(attempt, deadline)) ?? last
      if (Date.now() >= deadline)
        throw new DbError(
          'NO_MASTER',
          `no replica of partition ${partition} of ${db} is answering${last instanceof Error ? `: ${last.message}` : ''}`,
        )
    }
  }

  /** Backs off, then reads the placement again; returns the error if the router could not be read. */
  async #retryAfter(attempt: number, deadline: number): Promise<unknown> {
    await sleep(Math.max(0, Math.min(25 * 2 ** attempt, 250, deadline - Date.now())))
    try {
      await this.refresh()
      return undefined
    } catch (error) {
      return error
    }
  }

  async close(): Promise<void> {
    await this.#nodes.close()
  }
}

function keyOf(key: string | string[]): string[] {
  return typeof key === 'string' ? [key] : key
}
