// The cluster metadata topic `__cortado_metadata`: one compacted partition of JSON records keyed
//   node/<id>              → NodeInfo          (written by each storage node at start)
//   db/<name>              → DatabaseInfo      (written by the admin API)
//   partition/<db>/<p>     → PartitionInfo     (written by the admin API; the controller later)
// Every process reads it from the beginning into a MetadataView and follows it; writes go through
// the reliable producer, and a writer can wait until its own write is visible.
import { LogReader, type LogRecord } from '../../client/log-reader.ts'
import { ReliableProducer } from '../../client/reliable-producer.ts'
import { ensureTopic } from '../kafka-topics.ts'
import { type DatabaseInfo, type NodeInfo, type PartitionInfo } from './model.ts'

export const METADATA_TOPIC = '__cortado_metadata'

export interface MetadataView {
  nodes: Map<string, NodeInfo>
  databases: Map<string, DatabaseInfo>
  /** Keyed `${db}/${partition}`. */
  partitions: Map<string, PartitionInfo>
  /** Next metadata offset to read: everything below it is in the view. */
  offset: number
}

export const partitionKey = (db: string, partition: number): string => `${db}/${partition}`

export interface MetadataLogOptions {
  bootstrap: string[]
  clientId: string
  /** Replication factor for creating the metadata topic (1 on the embedded broker). */
  replicationFactor?: number
  onError?: (error: Error) => void
}

export class MetadataLog {
  readonly view: MetadataView = { nodes: new Map(), databases: new Map(), partitions: new Map(), offset: 0 }
  readonly #options: MetadataLogOptions
  readonly #reader: LogReader
  #producer: ReliableProducer | undefined
  readonly #listeners: ((changed: string[]) => void)[] = []
  #waiters: { offset: number; resolve: () => void }[] = []

  constructor(options: MetadataLogOptions) {
    this.#options = options
    this.#reader = new LogReader({ bootstrap: options.bootstrap, clientId: `${options.clientId}-metadata`, maxWaitMs: 1000, onError: options.onError })
  }

  /** Creates the topic if needed, then reads it up to its current end before resolving. */
  async start(): Promise<void> {
    await ensureTopic(this.#options.bootstrap, {
      name: METADATA_TOPIC,
      partitions: 1,
      replicationFactor: this.#options.replicationFactor ?? 1,
      configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '3600000' },
    })
    this.#reader.assign(METADATA_TOPIC, 0, 0, (records) => this.#apply(records))
    const end = await this.#reader.endOffset(METADATA_TOPIC, 0)
    await this.waitFor(end)
  }

  /** Called with the keys that changed, after the view is updated. */
  onChange(listener: (changed: string[]) => void): void {
    this.#listeners.push(listener)
  }

  /** Resolves once every metadata record below `offset` is in the view. */
  waitFor(offset: number): Promise<void> {
    if (this.view.offset >= offset) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ offset, resolve }))
  }

  /** Writes a record (null deletes) and resolves with the offset after it, once it is in the view. */
  async put(key: string, value: NodeInfo | DatabaseInfo | PartitionInfo | null): Promise<number> {
    this.#producer ??= new ReliableProducer({ bootstrap: this.#options.bootstrap, clientId: `${this.#options.clientId}-metadata-writer` })
    const ack = await this.#producer.send({ topic: METADATA_TOPIC, partition: 0, key: Buffer.from(key), value: value === null ? null : Buffer.from(JSON.stringify(value)) })
    const next = Number(ack.offset) + 1
    await this.waitFor(next)
    return next
  }

  async close(): Promise<void> {
    await this.#reader.close()
    await this.#producer?.close()
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
      const [kind, ...rest] = key.split('/')
      const id = rest.join('/')
      if (kind === 'node') setOrDelete(this.view.nodes, id, value as NodeInfo | null)
      else if (kind === 'db') setOrDelete(this.view.databases, id, value as DatabaseInfo | null)
      else if (kind === 'partition') setOrDelete(this.view.partitions, id, value as PartitionInfo | null)
      else continue
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
