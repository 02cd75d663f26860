// The cluster metadata topic `__cortado_metadata`: one compacted partition of JSON records keyed
//   node/<id>              → NodeInfo          (written by each storage node at start)
//   heartbeat/<id>         → NodeReport        (each storage node, every 500 ms: liveness and
//                                               the current state of its replicas)
//   db/<name>              → DatabaseInfo      (written by the admin API)
//   command/<id>           → a request to the controller (admin API), deleted once done
//   controller             → {id, epoch}       (the active controller's claim and heartbeats)
//   decommission/<id>      → {at}              (admin API: move every replica off this node)
//   partition/<db>/<p>     → PartitionInfo + controllerEpoch (written by the active controller)
//   load                   → LoadReport        (the active controller, every 2 s: measured write
//                                               rates, for the admin API's rebalance dry run)
//   user/<name>            → UserRecord        (admin API: a database user, its password hash
//                                               and roles; src/db/access/users.ts)
//   token/<id>             → TokenRecord       (admin API: an API token's hash and its user)
// Every process reads it from the beginning into a MetadataView and follows it; writes go through
// the reliable producer, and a writer can wait until its own write is visible. A placement whose
// controller epoch is below the highest epoch read so far comes from a deposed controller and is
// not followed.
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { LogReader, type LogRecord } from '../../client/log-reader.ts'
import { ReliableProducer } from '../../client/reliable-producer.ts'
import { ensureTopic } from '../kafka-topics.ts'
import { type LoadReport } from '../controller/controller-state.ts'
import { type TokenRecord, type UserRecord } from '../access/users.ts'
import { type DatabaseInfo, type NodeInfo, type PartitionInfo } from './model.ts'

/** How long closing waits for unacknowledged writes before giving them up. */
export const CLOSE_FLUSH_TIMEOUT_MS = 5000

export const METADATA_TOPIC = '__cortado_metadata'

export interface MetadataView {
  nodes: Map<string, NodeInfo>
  databases: Map<string, DatabaseInfo>
  /** Keyed `${db}/${partition}`. */
  partitions: Map<string, PartitionInfo>
  /** Next metadata offset to read: everything below it is in the view. */
  offset: number
  /** The active controller as far as the log says (epoch 0: none yet). */
  controller: { id: string | null; epoch: number }
  /** Nodes being decommissioned. */
  decommissioned: Set<string>
  /** The latest write rates measured by the active controller (null: none read yet). */
  load: LoadReport | null
  /** The database API's users and tokens (src/db/access/). */
  users: Map<string, UserRecord>
  tokens: Map<string, TokenRecord>
}

export const partitionKey = (db: string, partition: number): string => `${db}/${partition}`

export interface MetadataLogOptions {
  bootstrap: string[]
  /** TLS and SASL for the connections to the brokers (default: plaintext, no authentication). */
  security?: KafkaSecurity
  clientId: string
  /** Replication factor for creating the metadata topic (1 on the embedded broker). */
  replicationFactor?: number
  onError?: (error: Error) => void
  /** How long a fetch waits at Kafka for new records (default 1000 ms). */
  maxWaitMs?: number
}

export class MetadataLog {
  readonly view: MetadataView = {
    nodes: new Map(),
    databases: new Map(),
    partitions: new Map(),
    offset: 0,
    controller: { id: null, epoch: 0 },
    decommissioned: new Set(),
    load: null,
    users: new Map(),
    tokens: new Map(),
  }
  readonly #options: MetadataLogOptions
  readonly #reader: LogReader
  #producer: ReliableProducer | undefined
  readonly #listeners: ((changed: string[]) => void)[] = []
  readonly #recordListeners: ((key: string, value: unknown, offset: number) => void)[] = []
  #waiters: { offset: number; resolve: () => void }[] = []

  constructor(options: MetadataLogOptions) {
    this.#options = options
    this.#reader = new LogReader({
      bootstrap: options.bootstrap,
      security: options.security,
      clientId: `${options.clientId}-metadata`,
      maxWaitMs: options.maxWaitMs ?? 1000,
      onError: options.onError,
    })
  }

  /** Creates the topic if needed, then reads it up to its current end before resolving. */
  async start(): Promise<void> {
    await ensureTopic(
      this.#options.bootstrap,
      {
        name: METADATA_TOPIC,
        partitions: 1,
        replicationFactor: this.#options.replicationFactor ?? 1,
        configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '3600000' },
      },
      this.#options.security,
    )
    this.#reader.assign(METADATA_TOPIC, 0, 0, (records) => this.#apply(records))
    const end = await this.#reader.endOffset(METADATA_TOPIC, 0)
    await this.waitFor(end)
  }

  /** Called with the keys that changed (nodes, databases, placements, controller), after the view is updated. */
  onChange(listener: (changed: string[]) => void): void {
    this.#listeners.push(listener)
  }

  /**
   * Called with every record and its offset, in log order (heartbeats and commands included),
   * before the view takes that record (and after it took every earlier one).
   */
  onRecord(listener: (key: string, value: unknown, offset: number) => void): void {
    this.#recordListeners.push(listener)
  }

  /** Resolves once every metadata record below `offset` is in the view. */
  waitFor(offset: number): Promise<void> {
    if (this.view.offset >= offset) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ offset, resolve }))
  }

  /** Writes a record (null deletes) and resolves with the offset after it, once it is in the view. */
  async put(key: string, value: unknown): Promise<number> {
    const next = await this.send(key, value)
    await this.waitFor(next)
    return next
  }

  /** Writes a record and resolves with the offset after it once the log has it (not waiting to read it back). */
  async send(key: string, value: unknown): Promise<number> {
    this.#producer ??= new ReliableProducer({
      bootstrap: this.#options.bootstrap,
      security: this.#options.security,
      clientId: `${this.#options.clientId}-metadata-writer`,
    })
    const ack = await this.#producer.send({
      topic: METADATA_TOPIC,
      partition: 0,
      key: Buffer.from(key),
      value: value === null ? null : Buffer.from(JSON.stringify(value)),
    })
    return Number(ack.offset) + 1
  }

  /** Writes not acknowledged within `flushTimeoutMs` (Kafka is gone, say) are given up, so a process can stop. */
  async close(flushTimeoutMs = CLOSE_FLUSH_TIMEOUT_MS): Promise<void> {
    await this.#reader.close()
    await this.#producer?.close(flushTimeoutMs)
  }

  #apply(records: LogRecord[]): void {
    const changed: string[] = []
    for (const r of records) {
      const key = r.key?.toString() ?? ''
      let value: unknown = null
      if (r.value !== null) {
        try {
          value = JSON.parse(r.value.toString())
        } catch {
          this.#options.onError?.(new Error(`metadata record ${key} at offset ${r.offset} is not JSON; ignored`))
          continue
        }
      }
      for (const l of this.#recordListeners) l(key, value, r.offset)
      const [kind, ...rest] = key.split('/')
      const id = rest.join('/')
      if (kind === 'node') setOrDelete(this.view.nodes, id, value as NodeInfo | null)
      else if (kind === 'db') setOrDelete(this.view.databases, id, value as DatabaseInfo | null)
      else if (kind === 'user') setOrDelete(this.view.users, id, value as UserRecord | null)
      else if (kind === 'token') setOrDelete(this.view.tokens, id, value as TokenRecord | null)
      else if (kind === 'partition') {
        // A deposed controller's placements are not followed.
        const epoch = (value as { controllerEpoch?: number } | null)?.controllerEpoch ?? 0
        if (value !== null && epoch < this.view.controller.epoch) continue
        setOrDelete(this.view.partitions, id, value as PartitionInfo | null)
      } else if (kind === 'decommission') {
        if (value === null) this.view.decommissioned.delete(id)
        else this.view.decommissioned.add(id)
      } else if (key === 'load') {
        // Only the active controller's (a deposed one may still write for a moment).
        const v = value as LoadReport | null
        if (v === null || typeof v.rates !== 'object' || v.epoch < this.view.controller.epoch) continue
        this.view.load = v
      } else if (key === 'controller') {
        const v = value as { id?: unknown; epoch?: unknown } | null
        if (
          v === null ||
          typeof v.id !== 'string' ||
          !Number.isInteger(v.epoch) ||
          (v.epoch as number) <= this.view.controller.epoch
        )
          continue
        this.view.controller = { id: v.id, epoch: v.epoch as number }
      } else continue
      changed.push(key)
    }
    this.view.offset = records[records.length - 1].offset + 1
    if (changed.length > 0) for (const l of this.#listeners) l(changed)
    const ready = this.#waiters.filter((w) => w.offset <= this.view.offset)
    this.#waiters = this.#waiters.filter((w) => w.offset > this.view.offset)
    for (const w of ready) w.resolve()
  }
}

function setOrDelete<T>(map: Map<string, T>, key: string, value: T | null): void {
  if (value === null) map.delete(key)
  else map.set(key, value)
}
