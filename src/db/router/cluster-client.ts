// What the router knows and how it reaches storage nodes: the metadata view (databases,
// placement, nodes) and requests to a partition's master or to any of its replicas, retried while
// mastership is moving (answers known not to have been applied), up to a deadline.
import { DbError, RETRIABLE_CODES } from '../errors.ts'
import { type MetadataLog, partitionKey } from '../metadata/metadata-log.ts'
import { type DatabaseInfo, type NodeInfo, type PartitionInfo } from '../metadata/model.ts'
import { type NodeStatus } from '../node-api.ts'
import { NodeClient, NodeUnreachableError } from '../node-client/node-client.ts'

export interface ClusterClientOptions {
  /** How long a request keeps retrying while a partition has no (reachable) master. Default 10 s. */
  retryMs?: number
  /** Sent with every call to a node, when the cluster has one (node-api.ts CLUSTER_SECRET_HEADER). */
  clusterSecret?: string
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export class ClusterClient {
  readonly metadata: MetadataLog
  readonly nodes: NodeClient
  readonly #retryMs: number
  /** Round robin over replicas for reads that allow any replica. */
  #next = 0

  constructor(metadata: MetadataLog, options: ClusterClientOptions = {}) {
    this.metadata = metadata
    this.#retryMs = options.retryMs ?? 10_000
    this.nodes = new NodeClient(undefined, options.clusterSecret)
  }

  database(name: string): DatabaseInfo {
    const db = this.metadata.view.databases.get(name)
    if (db === undefined) throw new DbError('UNKNOWN_DATABASE', `no database ${name}`)
    return db
  }

  partition(db: string, partition: number): PartitionInfo {
    const p = this.metadata.view.partitions.get(partitionKey(db, partition))
    if (p === undefined) throw new DbError('UNKNOWN_PARTITION', `database ${db} has no partition ${partition}`)
    return p
  }

  node(id: string): NodeInfo | undefined {
    return this.metadata.view.nodes.get(id)
  }

  /**
   * Sends to the partition's master. Retries answers known not to have been applied (no master,
   * not master, fenced) and refused connections until the deadline. A write whose connection broke
   * after it was sent has an unknown outcome: it is not retried (TIMEOUT).
   */
  async toMaster<T>(db: string, partition: number, path: string, body: unknown, kind: 'read' | 'write'): Promise<T> {
    return this.callMaster(db, partition, kind, (url) => this.nodes.post<T>(url, path, body))
  }

  /** As toMaster, with any request to the master's URL. */
  async callMaster<T>(
    db: string,
    partition: number,
    kind: 'read' | 'write',
    call: (url: string) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.#retryMs
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      const p = this.partition(db, partition)
      const node = p.master === null ? undefined : this.node(p.master)
      if (node !== undefined) {
        try {
          return await call(node.url)
        } catch (error) {
          if (error instanceof DbError && !RETRIABLE_CODES.has(error.code)) throw error
          if (error instanceof NodeUnreachableError && error.maybeExecuted && kind === 'write') {
            throw new DbError(
              'TIMEOUT',
              `the master of partition ${partition} of ${db} (${node.id}) went away during the write; its outcome is unknown`,
            )
          }
          last = error
        }
      }
      if (Date.now() >= deadline) {
        const why = last instanceof Error ? `: ${last.message}` : ''
        throw new DbError('NO_MASTER', `partition ${partition} of ${db} has no master taking requests${why}`)
      }
      await sleep(Math.min(25 * 2 ** attempt, 250))
    }
  }

  /** Sends a read to any replica (round robin), falling back to the others, then to retries. */
  async toAnyReplica<T>(db: string, partition: number, path: string, body: unknown): Promise<T> {
    return this.callAnyReplica(db, partition, (url) => this.nodes.post<T>(url, path, body))
  }

  /** As toAnyReplica, with any request to a replica's URL. */
  async callAnyReplica<T>(db: string, partition: number, call: (url: string) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#retryMs
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      const p = this.partition(db, partition)
      const start = this.#next++
      for (let i = 0; i < p.replicas.length; i++) {
        const node = this.node(p.replicas[(start + i) % p.replicas.length])
        if (node === undefined) continue
        try {
          return await call(node.url)
        } catch (error) {
          if (error instanceof DbError && !RETRIABLE_CODES.has(error.code) && error.code !== 'UNKNOWN_PARTITION')
            throw error
          last = error
        }
      }
      if (Date.now() >= deadline)
        throw new DbError(
          'NO_MASTER',
          `no replica of partition ${partition} of ${db} is answering${last instanceof Error ? `: ${last.message}` : ''}`,
        )
      await sleep(Math.min(25 * 2 ** attempt, 250))
    }
  }

  /** Each registered node's status, or null for a node that does not answer within a second. */
  async statuses(): Promise<Map<string, NodeStatus | null>> {
    const nodes = [...this.metadata.view.nodes.values()]
    const results = await Promise.all(
      nodes.map((n) => this.nodes.get<NodeStatus>(n.url, '/_node/status', 1000).catch(() => null)),
    )
    return new Map(nodes.map((n, i) => [n.id, results[i]]))
  }

  /** Polls node statuses until `done` holds or the timeout passes; returns whether it held. */
  async waitUntil(done: (statuses: Map<string, NodeStatus | null>) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (done(await this.statuses())) return true
      if (Date.now() >= deadline) return false
      await sleep(50)
    }
  }

  async close(): Promise<void> {
    await this.nodes.close()
  }
}
