// A storage node: follows the cluster metadata, holds the partition replicas placed on it (one
// SQLite file each under <data-dir>/<db>/<partition>.sqlite), feeds them their partitions' logs,
// and serves the internal HTTP API the router calls (node-http.ts).
//
// A replica placed here with no local file is bootstrapped from a snapshot of another replica
// (its SQLite file, checkpoint included) and then reads the log after the snapshot's checkpoint.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { closeSync, createWriteStream, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs'
import { type Server } from 'node:http'
import { join } from 'node:path'
import { type Registry } from 'prom-client'
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { LogReader } from '../../client/log-reader.ts'
import { ReliableProducer } from '../../client/reliable-producer.ts'
import { lockDataDir } from '../../util/data-dir-lock.ts'
import { type Logger } from '../../util/log.ts'
import {
  CLOSE_FLUSH_TIMEOUT_MS,
  METADATA_TOPIC,
  type MetadataView,
  MetadataLog,
  partitionKey,
} from '../metadata/metadata-log.ts'
import { type NodeInfo, type NodeReport, type PartitionInfo } from '../metadata/model.ts'
import { clusterSecretHeaders, type NodeStatus, type ReplicaStatus } from '../node-api.ts'
import { DEFAULT_NODE_SESSION_MS, takeoverAt } from './master-lease.ts'
import { startNodeHttp } from './node-http.ts'
import { acceptRpc } from './node-rpc-server.ts'
import { createNodeMetrics, type NodeMetrics } from './node-metrics.ts'
import { PartitionReplica } from './partition-replica.ts'

/**
 * How long a follower replica's partition sits out of the fetches after records of it arrived
 * (LogReader linger): a follower answers no writer, so it applies in batches (one SQLite commit
 * for many transactions) at the cost of lagging its master by about this much more. A replica
 * that becomes master (or starts taking over) reads without lingering at once.
 */
export const FOLLOWER_LINGER_MS = 50

/**
 * How often a node writes its heartbeat: a third of the default node session, as Kafka's consumers
 * heartbeat (heartbeat.interval.ms = session.timeout.ms / 3). Each heartbeat is a produce, an fsync
 * and a fetch answer to every metadata reader, so it sets most of an idle cluster's CPU (about a
 * seventh of a core at 500 ms, a fifth at 250). The master lease, renewed from each heartbeat read
 * back, runs 1,200 ms from the send: a heartbeat may be read back up to 700 ms late, or one be lost
 * and the next read back within 200 ms, before a master pauses.
 */
export const DEFAULT_HEARTBEAT_MS = 500

/** One follower apply in this many has its CPU measured (cortado_node_replica_apply_cpu_seconds_total). */
const APPLY_CPU_SAMPLING = 8

/** The longest wait between attempts to register the node. */
const REGISTER_MAX_BACKOFF_MS = 10_000

export interface StorageNodeOptions {
  id: string
  dataDir: string
  bootstrap: string[]
  /** TLS and SASL for the connections to Kafka (default: plaintext, no authentication). */
  security?: KafkaSecurity
  host?: string
  /** Port of the internal HTTP API (0 picks one). */
  port?: number
  rack?: string | null
  /** Largest replication record before it is split into large-message segments (default 800,000). */
  segmentSize?: number
  log: Logger
  registry: Registry
  /** Replication factor for topics this node may create (1 on the embedded broker). */
  replicationFactor?: number
  /** How often the node writes its heartbeat (default DEFAULT_HEARTBEAT_MS). */
  heartbeatMs?: number
  /**
   * The controller's node session (`cortado controller --node-session-ms`, default 1500): the master
   * lease is cut from it (master-lease.ts). Give the node the same value as the controller.
   */
  nodeSessionMs?: number
  /** The monotonic clock of the master lease (default performance.now). */
  clock?: () => number
  /**
   * How long a fetch waits at Kafka for new records (Kafka's fetch.max.wait.ms). Apache Kafka
   * answers a waiting fetch as soon as records arrive; a Kafka that holds it for the whole wait
   * (librdkafka's mock cluster) adds up to this much to every write: shorten it there.
   */
  fetchMaxWaitMs?: number
  /** How long a follower replica's partition sits out of fetches after a delivery (default FOLLOWER_LINGER_MS). */
  followerLingerMs?: number
  /**
   * The cluster secret: the internal API answers only calls that carry it (node-api.ts
   * CLUSTER_SECRET_HEADER), and the node sends it to its peers. Default: none needed.
   */
  clusterSecret?: string
}

export class StorageNode {
  readonly id: string
  readonly metadata: MetadataLog
  readonly replicas = new Map<string, PartitionReplica>()
  readonly clusterSecret: string | undefined
  readonly #options: StorageNodeOptions
  /** One producer per partition replica, so partitions do not wait on each other's requests. */
  readonly #producers = new Map<string, ReliableProducer>()
  readonly #reader: LogReader
  readonly #metrics: NodeMetrics
  readonly #bootstrappedFrom = new Map<string, string>()
  /** Replicas placed here and still opening (downloading a snapshot): BOOTSTRAPPING. */
  readonly #bootstrapping = new Map<string, { db: string; partition: number }>()
  #server: Server | undefined
  /** Follower applies so far (for sampling their CPU). */
  #applies = 0
  /** The routers' pipelined channels (node-rpc-server.ts). */
  #rpc: { closeAll(): void } | undefined
  #url = ''
  #reconciling: Promise<void> = Promise.resolve()
  #closed = false
  #heartbeat: NodeJS.Timeout | undefined
  #heartbeatInFlight = false
  #unlock: () => void = () => undefined
  readonly #clock: () => number
  readonly #sessionMs: number
  /** Heartbeats sent and not yet read back: nonce → monotonic send time. */
  readonly #sent = new Map<string, number>()
  /** Monotonic time this node last read its own heartbeat back (-Infinity: never). */
  #heardAt = -Infinity
  /** Per node, when this node last read its heartbeat (monotonic) and the session it announced. */
  readonly #lastHeartbeat = new Map<string, { at: number; sessionMs: number }>()

  private constructor(options: StorageNodeOptions) {
    this.id = options.id
    this.clusterSecret = options.clusterSecret
    this.#options = options
    const log = options.log
    this.metadata = new MetadataLog({
      bootstrap: options.bootstrap,
      security: options.security,
      clientId: `cortado-node-${options.id}`,
      replicationFactor: options.replicationFactor,
      onError: (e) => log.warn('metadata read error', { error: e.message }),
      maxWaitMs: options.fetchMaxWaitMs,
    })
    this.#reader = new LogReader({
      bootstrap: options.bootstrap,
      security: options.security,
      clientId: `cortado-node-${options.id}-replication`,
      maxWaitMs: options.fetchMaxWaitMs ?? 500,
      onError: (e) => log.warn('replication read error', { error: e.message }),
    })
    this.#metrics = createNodeMetrics(options.registry, this)
    this.#clock = options.clock ?? (() => performance.now())
    this.#sessionMs = options.nodeSessionMs ?? DEFAULT_NODE_SESSION_MS
    // Registered before the metadata is read, so the replay at start is seen too.
    this.metadata.onRecord((key, value, offset) => this.#onMetadataRecord(key, value, offset))
  }

  /**
   * The master lease, from the metadata log in log order (called before the view takes the record,
   * after it took every earlier one):
   * - our own heartbeat read back renews the lease of each replica the view still names master
   *   under its generation (a placement replacing us comes before, and stops the renewals);
   * - a placement that takes mastership from another node makes our replica of the partition wait
   *   until that node's lease has surely run out, counted from when we read its last heartbeat;
   * - unless that node reports, in a heartbeat written after it read that placement, that it no
   *   longer masters the partition (a planned move: it stepped down, and can serve the partition
   *   again only once a later placement names it, which would set a new wait).
   */
  #onMetadataRecord(key: string, value: unknown, offset: number): void {
    const now = this.#clock()
    const slash = key.indexOf('/')
    const kind = key.slice(0, slash)
    const id = key.slice(slash + 1)
    if (kind === 'heartbeat' && value !== null && typeof value === 'object') {
      const report = value as Partial<NodeReport>
      const sessionMs = typeof report.sessionMs === 'number' ? report.sessionMs : DEFAULT_NODE_SESSION_MS
      this.#lastHeartbeat.set(id, { at: now, sessionMs })
      this.#clearFencesOf(id, report)
      if (id !== this.id || typeof report.nonce !== 'string') return
      const sentAt = this.#sent.get(report.nonce)
      if (sentAt === undefined) return
      this.#sent.delete(report.nonce)
      this.#heardAt = now
      for (const [k, r] of this.replicas) {
        const p = this.view.partitions.get(k)
        if (p !== undefined && p.master === this.id) r.renewLease(p.generation, sentAt, sessionMs)
      }
    } else if (kind === 'partition' && value !== null && typeof value === 'object') {
      const before = this.view.partitions.get(id)?.master ?? null
      const after = (value as { master?: string | null }).master ?? null
      if (before === null || before === this.id || before === after) return
      const hb = this.#lastHeartbeat.get(before)
      const at = takeoverAt(hb?.at, hb?.sessionMs ?? this.#sessionMs)
      const fence = this.#takeoverFences.get(id)
      if (fence === undefined || at > fence.at) this.#takeoverFences.set(id, { at, from: before, offset })
      this.replicas.get(id)?.setTakeoverAt(at)
    }
  }

  #clearFencesOf(node: string, report: Partial<NodeReport>): void {
    if (typeof report.metadataOffset !== 'number' || !Array.isArray(report.replicas)) return
    for (const [k, fence] of this.#takeoverFences) {
      if (fence.from !== node || report.metadataOffset <= fence.offset) continue
      const role = report.replicas.find((r) => partitionKey(r.db, r.partition) === k)?.role
      if (role === 'master' || role === 'promoting' || role === 'error') continue
      this.#takeoverFences.delete(k)
      this.replicas.get(k)?.setTakeoverAt(-Infinity, true)
    }
  }

  /**
   * Per partition, when the master last replaced there may have stopped serving, at the latest
   * (monotonic), which node that was and the offset of the placement that replaced it.
   */
  readonly #takeoverFences = new Map<string, { at: number; from: string; offset: number }>()

  /** Milliseconds since this node last read its own heartbeat back from the log (null: never). */
  logAgeMs(): number | null {
    return this.#heardAt === -Infinity ? null : this.#clock() - this.#heardAt
  }

  static async start(options: StorageNodeOptions): Promise<StorageNode> {
    mkdirSync(options.dataDir, { recursive: true })
    // Two nodes on one data directory would apply every transaction twice into the same files.
    const unlock = lockDataDir(options.dataDir)
    const node = new StorageNode(options)
    node.#unlock = unlock
    await node.metadata.start()
    const { server, url } = await startNodeHttp(node, options.host ?? '127.0.0.1', options.port ?? 0, options.log)
    node.#rpc = acceptRpc(server, node, options.log)
    node.#server = server
    node.#url = url
    node.metadata.onChange(() => node.#scheduleReconcile())
    const info: NodeInfo = { id: options.id, url, rack: options.rack ?? null, pid: process.pid, startedAt: Date.now() }
    await node.#register(info)
    node.#startHeartbeats(options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS)
    node.#scheduleReconcile()
    await node.#reconciling
    options.log.info('storage node ready', { id: options.id, url, replicas: node.replicas.size })
    return node
  }

  /**
   * Writes `node/<id>`, retrying until it is written. A Kafka that refuses the write for good (say,
   * the producer is given no producer id) is a fault for the operator to fix, not a reason to exit:
   * a node that exits before it is ready stops `cortado start` altogether, and a supervisor would
   * only restart it into the same failure. Each failed attempt is logged with Kafka's error.
   */
  async #register(info: NodeInfo): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.metadata.put(`node/${info.id}`, info)
        if (attempt > 1) this.#options.log.info('node registered', { attempts: attempt })
        return
      } catch (error) {
        const retryInMs = Math.min(REGISTER_MAX_BACKOFF_MS, 500 * 2 ** Math.min(10, attempt - 1))
        this.#options.log.warn('node registration not written to Kafka; retrying', {
          topic: METADATA_TOPIC,
          attempt,
          retryInMs,
          error: error instanceof Error ? error.message : String(error),
        })
        await new Promise((resolve) => setTimeout(resolve, retryInMs))
      }
    }
  }

  get url(): string {
    return this.#url
  }

  get view(): MetadataView {
    return this.metadata.view
  }

  get registry(): Registry {
    return this.#options.registry
  }

  get log(): Logger {
    return this.#options.log
  }

  replica(db: string, partition: number): PartitionReplica | undefined {
    return this.replicas.get(partitionKey(db, partition))
  }

  /**
   * Liveness and current state for the controller: `heartbeat/<id>` with each replica's role and
   * applied (generation, scn), every `intervalMs` (one in flight at a time).
   */
  #startHeartbeats(intervalMs: number): void {
    this.#heartbeat = setInterval(() => this.#sendHeartbeat(), intervalMs)
  }

  /**
   * Writes one heartbeat (unless one is in flight), stamped with a nonce whose monotonic send time
   * is kept until it is read back: that read renews the master leases.
   */
  #sendHeartbeat(): void {
    if (this.#heartbeatInFlight || this.#closed) return
    this.#heartbeatInFlight = true
    const nonce = randomBytes(8).toString('hex')
    // Heartbeats lost on the way are never read back; their send times go after a while.
    if (this.#sent.size > 64) this.#sent.clear()
    this.#sent.set(nonce, this.#clock())
    const report: NodeReport = {
      id: this.id,
      nonce,
      sessionMs: this.#sessionMs,
      metadataOffset: this.view.offset,
      replicas: [
        ...[...this.replicas.values()].map((r) => ({
          db: r.db,
          partition: r.partition,
          role: r.role,
          generation: r.applied.generation,
          scn: r.applied.scn,
        })),
        ...[...this.#bootstrapping.values()].map(({ db, partition }) => ({
          db,
          partition,
          role: 'bootstrapping',
          generation: -1,
          scn: -1,
        })),
      ],
    }
    this.metadata
      .send(`heartbeat/${this.id}`, report)
      .catch((error: unknown) => this.#options.log.warn('heartbeat not written', { error: String(error) }))
      .finally(() => (this.#heartbeatInFlight = false))
  }

  #scheduleReconcile(): void {
    this.#reconciling = this.#reconciling
      .then(() => this.#reconcile())
      .catch((error: unknown) => {
        // A replica that failed to open (a bootstrap that broke off, say) is tried again shortly.
        this.#options.log.error('reconcile failed; retrying in 1 s', { error: String(error) })
        setTimeout(() => {
          if (!this.#closed) this.#scheduleReconcile()
        }, 1000).unref()
      })
  }

  /** Opens, follows and closes replicas so that they match the metadata's placement. */
  async #reconcile(): Promise<void> {
    if (this.#closed) return
    const wanted = new Map<string, PartitionInfo>()
    for (const [k, p] of this.view.partitions)
      if (p.replicas.includes(this.id) && this.view.databases.has(p.db)) wanted.set(k, p)
    for (const [k, r] of this.replicas) {
      if (wanted.has(k)) continue
      this.#reader.unassign(r.topic, r.partition)
      r.close()
      this.replicas.delete(k)
      void this.#producers
        .get(k)
        ?.close()
        .catch(() => undefined)
      this.#producers.delete(k)
      // DROPPED: the partition moved to other nodes; its file goes (a later placement here bootstraps afresh).
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${r.store.path}${suffix}`, { force: true })
      this.#options.log.info('replica dropped (no longer placed here)', { db: r.db, partition: r.partition })
    }
    // New replicas open (and bootstrap) in parallel, four at a time.
    const opening = [...wanted].filter(([k]) => !this.replicas.has(k))
    const next = async (): Promise<void> => {
      for (let item = opening.shift(); item !== undefined; item = opening.shift()) {
        const [k, p] = item
        this.#bootstrapping.set(k, { db: p.db, partition: p.partition })
        try {
          const r = await this.#open(p)
          if (this.#closed) return
          this.replicas.set(k, r)
          this.#reader.assign(
            r.topic,
            r.partition,
            r.readOffset,
            (records) => {
              if (r.role === 'master' || r.role === 'promoting' || ++this.#applies % APPLY_CPU_SAMPLING !== 0)
                return r.onRecords(records)
              // A replica's apply CPU apart from the master's work (bench:db reads it per role),
              // measured on one call in APPLY_CPU_SAMPLING: each measurement costs two syscalls.
              const before = process.cpuUsage()
              r.onRecords(records)
              const cpu = process.cpuUsage(before)
              this.#metrics.onReplicaApply({
                user: cpu.user * APPLY_CPU_SAMPLING,
                system: cpu.system * APPLY_CPU_SAMPLING,
              })
            },
            this.#lingerOf(r),
          )
        } finally {
          this.#bootstrapping.delete(k)
        }
      }
    }
    await Promise.all([next(), next(), next(), next()])
    let promoting = false
    for (const [k, p] of wanted) {
      // The latest placement (it may have changed while replicas were opening).
      const latest = this.view.partitions.get(k) ?? p
      const r = this.replicas.get(k)
      if (r === undefined) continue
      const fence = this.#takeoverFences.get(k)
      if (fence !== undefined) r.setTakeoverAt(fence.at)
      r.setMastership(latest.master === this.id ? latest.generation : null)
      if (r.role === 'promoting') promoting = true
      this.#reader.setLinger(r.topic, r.partition, this.#lingerOf(r))
    }
    // A new master needs a lease: a heartbeat now rather than at the next tick.
    if (promoting) this.#sendHeartbeat()
  }

  /** Followers read in batches; a master, or a replica taking over, reads each record at once. */
  #lingerOf(r: PartitionReplica): number {
    return r.role === 'slave' ? (this.#options.followerLingerMs ?? FOLLOWER_LINGER_MS) : 0
  }

  async #open(p: PartitionInfo): Promise<PartitionReplica> {
    const db = this.view.databases.get(p.db)!
    const dir = join(this.#options.dataDir, p.db)
    mkdirSync(dir, { recursive: true })
    const path = join(dir, `${p.partition}.sqlite`)
    if (!existsSync(path)) await this.#bootstrap(p, path)
    return new PartitionReplica(p.db, p.partition, db.topic, path, {
      nodeId: this.id,
      send: (record) =>
        this.#producerFor(p.db, p.partition).send({
          ...record,
          timestamp: record.timestamp === undefined ? undefined : Number(record.timestamp),
        }),
      segmentSize: this.#options.segmentSize ?? 800_000,
      log: this.#options.log.child({ db: p.db, partition: p.partition }),
      onAction: (a) => this.#metrics.onAction(p.db, p.partition, a),
      leaseClock: this.#clock,
    })
  }

  #producerFor(db: string, partition: number): ReliableProducer {
    const key = partitionKey(db, partition)
    let producer = this.#producers.get(key)
    if (producer === undefined) {
      const log = this.#options.log
      producer = new ReliableProducer({
        bootstrap: this.#options.bootstrap,
        security: this.#options.security,
        clientId: `cortado-node-${this.id}-${db}-${partition}`,
        maxBatchBytes: 1024 * 1024,
        onFailure: (f) => {
          log.error('replication producer failed; writes in flight are answered NOT_APPLIED', {
            db,
            partition,
            error: f.error.message,
            abandoned: f.abandoned,
          })
          this.replicas.get(key)?.producerReset()
        },
      })
      this.#producers.set(key, producer)
    }
    return producer
  }

  /** Copies another replica's snapshot into `path`, if any replica has one; else the replica starts empty. */
  async #bootstrap(p: PartitionInfo, path: string): Promise<void> {
    for (const peerId of p.replicas) {
      if (peerId === this.id) continue
      const peer = this.view.nodes.get(peerId)
      if (peer === undefined) continue
      try {
        const res = await fetch(`${peer.url}/_node/snapshot/${encodeURIComponent(p.db)}/${p.partition}`, {
          headers: clusterSecretHeaders(this.clusterSecret),
        })
        if (res.status !== 200 || res.body === null) continue
        const tmp = `${path}.bootstrap`
        const bytes = await download(res.body, tmp, (done) =>
          this.#options.log.info('bootstrap in progress', {
            db: p.db,
            partition: p.partition,
            from: peerId,
            bytes: done,
          }),
        )
        // A WAL left by an earlier store at this path would be replayed over the snapshot.
        rmSync(`${path}-wal`, { force: true })
        rmSync(`${path}-shm`, { force: true })
        renameSync(tmp, path)
        this.#bootstrappedFrom.set(partitionKey(p.db, p.partition), peerId)
        this.#options.log.info('replica bootstrapped from a snapshot', {
          db: p.db,
          partition: p.partition,
          from: peerId,
          bytes,
        })
        return
      } catch (error) {
        rmSync(`${path}.bootstrap`, { force: true })
        this.#options.log.warn('snapshot from peer failed; trying the next', {
          db: p.db,
          partition: p.partition,
          peer: peerId,
          error: String(error),
        })
      }
    }
    this.#options.log.info('replica starts empty and replays the log', { db: p.db, partition: p.partition })
  }

  status(): NodeStatus {
    const replicas: ReplicaStatus[] = [...this.replicas.values()].map((r) => ({
      db: r.db,
      partition: r.partition,
      role: r.role,
      masterGeneration: r.masterGeneration,
      applied: r.applied,
      checkpointOffset: r.store.checkpoint().nextOffset,
      readOffset: r.readOffset,
      documents: r.store.count(),
      counters: { ...r.counters },
      bootstrappedFrom: this.#bootstrappedFrom.get(partitionKey(r.db, r.partition)) ?? null,
      failure: r.failure,
    }))
    for (const { db, partition } of this.#bootstrapping.values()) {
      replicas.push({
        db,
        partition,
        role: 'bootstrapping',
        masterGeneration: 0,
        applied: { generation: 0, scn: 0 },
        checkpointOffset: 0,
        readOffset: 0,
        documents: 0,
        counters: { applied: 0, duplicates: 0, zombies: 0, discarded: 0, invalid: 0, integrityGaps: 0 },
        bootstrappedFrom: null,
        failure: null,
      })
    }
    return {
      id: this.id,
      pid: process.pid,
      rack: this.#options.rack ?? null,
      url: this.#url,
      metadataOffset: this.view.offset,
      sessionMs: this.#sessionMs,
      replicas,
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#heartbeat)
    const server = this.#server
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      this.#rpc?.closeAll()
      await closed
    }
    await this.#reader.close()
    await Promise.all([...this.#producers.values()].map((p) => p.close(CLOSE_FLUSH_TIMEOUT_MS).catch(() => undefined)))
    for (const r of this.replicas.values()) r.close()
    this.replicas.clear()
    await this.metadata.close()
    this.#unlock()
  }
}

/**
 * Streams a snapshot into `file` (fsynced), reporting progress every few seconds, and fails if no
 * byte arrives for 30 s. Resolves with the size.
 */
async function download(
  body: ReadableStream<Uint8Array>,
  file: string,
  progress: (bytes: number) => void,
): Promise<number> {
  const out = createWriteStream(file)
  let bytes = 0
  let lastReport = Date.now()
  const reader = body.getReader()
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined
      const stalled = new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error('snapshot download stalled for 30 s')), 30_000)),
      )
      const chunk = await Promise.race([reader.read(), stalled]).finally(() => clearTimeout(timer))
      if (chunk.done) break
      bytes += chunk.value.length
      if (!out.write(chunk.value)) await once(out, 'drain')
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now()
        progress(bytes)
      }
    }
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())))
    const fd = openSync(file, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    return bytes
  } catch (error) {
    out.destroy()
    await reader.cancel().catch(() => undefined)
    throw error
  }
}
