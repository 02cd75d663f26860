// LogReader: reads assigned topic-partitions from given offsets, without a consumer group, and
// hands each partition's records to its handler in offset order. The database's replicas and
// metadata readers use it: they keep their own position (a checkpoint in SQLite), so group
// management and committed offsets would only get in the way.
//
// One fetch loop per reader: every round sends one Fetch per leader broker covering all assigned
// partitions (long polling, so a record appended anywhere wakes the loop at once), then awaits the
// handlers of the partitions that returned records before fetching again. A handler that throws
// stops nothing but its own partition's progress: the same records are fetched again next round.
//
// A partition may linger: after records of it were delivered, it sits out of the fetches for about
// that long, so what arrives meanwhile comes in one batch (for readers nobody waits on, such as a
// database replica that answers no writer: fewer, larger handler calls). Lingering partitions come
// due on a shared grid (lingerDue), so they rejoin the fetches together. While a partition sits
// out, fetches wait at most until it is due again.
import { type ClusterMetadata, Consumer } from '@platformatic/kafka'
import { kafkaConnectionOptions, type KafkaSecurity } from './kafka-security.ts'

export interface LogRecord {
  topic: string
  partition: number
  offset: number
  key: Buffer | null
  value: Buffer | null
  headers: [string, Buffer][]
  timestamp: number
}

/** Called with a run of consecutive records of one partition; the next fetch starts after them. */
export type RecordsHandler = (records: LogRecord[], highWatermark: number) => void | Promise<void>

export interface LogReaderOptions {
  bootstrap: string[]
  clientId?: string
  /** TLS and SASL for the connections to the brokers (default: plaintext, no authentication). */
  security?: KafkaSecurity
  /** Longest a fetch waits for new records (default 500 ms). */
  maxWaitMs?: number
  /** Most bytes per fetch response (default 16 MiB) and per partition (default 4 MiB). */
  maxBytes?: number
  maxPartitionBytes?: number
  /** Called on fetch errors (they are retried after a short pause). */
  onError?: (error: Error) => void
}

interface Assignment {
  topic: string
  partition: number
  next: number
  handler: RecordsHandler
  /** Bumped on every (re)assignment, so a fetch started earlier cannot deliver. */
  epoch: number
  /** After a partition error, the partition is left out of fetches until then (ms since epoch). */
  retryAt: number
  failures: number
  /** How long the partition sits out after a delivery (0: never). */
  lingerMs: number
  /** Lingering: left out of fetches until then (ms since epoch). */
  dueAt: number
}

const METADATA_MAX_AGE_MS = 5000

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`

export class LogReader {
  readonly #consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly #options: LogReaderOptions
  readonly #assignments = new Map<string, Assignment>()
  #epoch = 0
  #running = false
  #closed = false
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined
  #metadata: { topics: string; at: number; value: ClusterMetadata } | undefined

  constructor(options: LogReaderOptions) {
    this.#options = options
    // A Consumer needs a group id to be constructed; fetch() never joins the group.
    this.#consumer = new Consumer({
      clientId: options.clientId ?? 'cortado-log-reader',
      bootstrapBrokers: options.bootstrap,
      ...kafkaConnectionOptions(options.security),
      groupId: `${options.clientId ?? 'cortado-log-reader'}-unused`,
      retries: 0,
      connectTimeout: 5000,
      requestTimeout: 30_000,
    })
  }

  /**
   * Reads `topic`/`partition` from `offset` on, replacing any earlier assignment of it; `lingerMs`:
   * how long the partition sits out of fetches after each delivery (see setLinger).
   */
  assign(topic: string, partition: number, offset: number, handler: RecordsHandler, lingerMs = 0): void {
    if (this.#closed) throw new Error('LogReader is closed')
    this.#assignments.set(key(topic, partition), {
      topic,
      partition,
      next: offset,
      handler,
      epoch: ++this.#epoch,
      retryAt: 0,
      failures: 0,
      lingerMs,
      dueAt: 0,
    })
    this.#wake?.()
    if (!this.#running) {
      this.#running = true
      this.#loop = this.#run()
    }
  }

  /**
   * Changes how long an assigned partition sits out after each delivery; 0 brings it back into
   * the fetches at once (a fetch in flight without it waits at most until it was due).
   */
  setLinger(topic: string, partition: number, lingerMs: number): void {
    const a = this.#assignments.get(key(topic, partition))
    if (a === undefined || a.lingerMs === lingerMs) return
    a.lingerMs = lingerMs
    if (lingerMs === 0 && a.dueAt > 0) {
      a.dueAt = 0
      this.#wake?.()
    }
  }

  unassign(topic: string, partition: number): void {
    this.#assignments.delete(key(topic, partition))
  }

  /** The next offset to read of an assigned partition. */
  position(topic: string, partition: number): number | undefined {
    return this.#assignments.get(key(topic, partition))?.next
  }

  /** The log end offset (high watermark) of a partition. */
  async endOffset(topic: string, partition: number): Promise<number> {
    const offsets = await this.#consumer.listOffsets({
      topics: [topic],
      partitions: { [topic]: [partition] },
      timestamp: -1n,
    })
    const value = offsets.get(topic)?.[partition]
    if (value === undefined) throw new Error(`no end offset for ${topic}/${partition}`)
    return Number(value)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#wake?.()
    await this.#loop
    await this.#consumer.close(true).catch(() => undefined)
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      if (this.#assignments.size === 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = undefined
        continue
      }
      try {
        await this.#round()
      } catch (error) {
        this.#metadata = undefined
        if (this.#closed) break
        this.#options.onError?.(error as Error)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }

  async #round(): Promise<void> {
    const assignments = [...this.#assignments.values()]
    const topics = [...new Set(assignments.map((a) => a.topic))].sort()
    // Metadata is looked up again when the topics change, after an error, or every few seconds.
    const wanted = topics.join('\u0000')
    if (
      this.#metadata === undefined ||
      this.#metadata.topics !== wanted ||
      Date.now() - this.#metadata.at > METADATA_MAX_AGE_MS
    ) {
      this.#metadata = {
        topics: wanted,
        at: Date.now(),
        value: await this.#consumer.metadata({
          topics,
          autocreateTopics: false,
          forceUpdate: this.#metadata !== undefined,
        }),
      }
    }
    const metadata = this.#metadata.value
    const byLeader = new Map<number, Assignment[]>()
    const now = Date.now()
    // The soonest a lingering partition is due: no fetch waits longer than that.
    let due = Infinity
    for (const a of assignments) {
      if (a.retryAt > now) continue
      if (a.dueAt > now) {
        due = Math.min(due, a.dueAt)
        continue
      }
      const leader = metadata.topics.get(a.topic)?.partitions[a.partition]?.leader
      if (leader === undefined || leader < 0) continue
      let list = byLeader.get(leader)
      if (list === undefined) byLeader.set(leader, (list = []))
      list.push(a)
    }
    if (byLeader.size === 0 && due < Infinity) {
      // Every partition with a leader is lingering: wait until the first is due (or a change).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, due - now)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#wake = undefined
      return
    }
    if (byLeader.size === 0) {
      // No leader known for any assigned partition yet (topic being created): wait and retry.
      this.#metadata = undefined
      await new Promise((resolve) => setTimeout(resolve, 100))
      return
    }
    const maxWaitMs = Math.min(this.#options.maxWaitMs ?? 500, Math.max(0, due - now))
    await Promise.all([...byLeader].map(([leader, list]) => this.#fetchFrom(leader, list, metadata.topics, maxWaitMs)))
  }

  async #fetchFrom(
    leader: number,
    list: Assignment[],
    topics: Map<string, { id: string }>,
    maxWaitMs: number,
  ): Promise<void> {
    const maxPartitionBytes = this.#options.maxPartitionBytes ?? 4 * 1024 * 1024
    const byTopic = new Map<string, Assignment[]>()
    for (const a of list) {
      let l = byTopic.get(a.topic)
      if (l === undefined) byTopic.set(a.topic, (l = []))
      l.push(a)
    }
    const requested = list.map((a) => ({ a, epoch: a.epoch, next: a.next }))
    const request = {
      node: leader,
      maxWaitTime: maxWaitMs,
      minBytes: 1,
      maxBytes: this.#options.maxBytes ?? 16 * 1024 * 1024,
      topics: [...byTopic].map(([topic, as]) => ({
        topicId: topics.get(topic)!.id,
        partitions: as.map((a) => ({
          partition: a.partition,
          fetchOffset: BigInt(a.next),
          partitionMaxBytes: maxPartitionBytes,
          currentLeaderEpoch: -1,
          lastFetchedEpoch: -1,
        })),
      })),
    }
    // A partition-level error (say OFFSET_OUT_OF_RANGE) fails the whole call, with the response
    // attached: the other partitions' records are in it, and the failing one is handled below.
    const response = await this.#consumer.fetch(request).catch((error: unknown) => {
      const attached = fetchResponseOf(error)
      if (attached === undefined) throw error
      return attached
    })
    const topicById = new Map([...topics].map(([name, t]) => [t.id, name]))
    const work: Promise<void>[] = []
    for (const t of response.responses) {
      const topic = topicById.get(t.topicId)
      if (topic === undefined) continue
      for (const p of t.partitions) {
        const req = requested.find((r) => r.a.topic === topic && r.a.partition === p.partitionIndex)
        if (req === undefined) continue
        if (p.errorCode !== 0) {
          // This partition backs off (100 ms doubling to 5 s); the others carry on.
          this.#metadata = undefined
          req.a.failures++
          req.a.retryAt = Date.now() + Math.min(5000, 100 * 2 ** Math.min(6, req.a.failures - 1))
          this.#options.onError?.(
            new Error(`fetch ${topic}/${p.partitionIndex} at ${req.next}: Kafka error ${p.errorCode}`),
          )
          continue
        }
        req.a.failures = 0
        const records: LogRecord[] = []
        for (const batch of p.records ?? []) {
          // Control batches (transaction markers) carry no data records.
          if ((batch.attributes & 0x20) !== 0) continue
          for (const r of batch.records) {
            const offset = Number(batch.firstOffset) + r.offsetDelta
            if (offset < req.next) continue
            records.push({
              topic,
              partition: p.partitionIndex,
              offset,
              key: r.key,
              value: r.value,
              headers: r.headers.map(([k, v]) => [k === null ? '' : k.toString(), v ?? Buffer.alloc(0)]),
              timestamp: Number(batch.firstTimestamp + r.timestampDelta),
            })
          }
        }
        if (records.length === 0) continue
        work.push(this.#deliver(req.a, req.epoch, records, Number(p.highWatermark)))
      }
    }
    await Promise.all(work)
  }

  async #deliver(a: Assignment, epoch: number, records: LogRecord[], highWatermark: number): Promise<void> {
    const current = this.#assignments.get(key(a.topic, a.partition))
    if (current === undefined || current.epoch !== epoch || this.#closed) return
    try {
      await a.handler(records, highWatermark)
    } catch (error) {
      this.#options.onError?.(error as Error)
      return
    }
    // Advance only if the assignment was not replaced while the handler ran.
    if (this.#assignments.get(key(a.topic, a.partition))?.epoch === epoch) {
      a.next = records[records.length - 1].offset + 1
      if (a.lingerMs > 0) a.dueAt = lingerDue(Date.now(), a.lingerMs)
    }
  }
}

/**
 * When a partition lingering `lingerMs` after a delivery at `now` is due again: the first step of a
 * grid of `lingerMs` steps at least half a linger away (so it sits out lingerMs on average, between
 * half and one and a half). Partitions delivered around the same time come due at the same step, so
 * a reader following many lingering partitions fetches them together, one round per step, instead
 * of one round each at scattered times (a storage node following every partition as a replica).
 */
export function lingerDue(now: number, lingerMs: number): number {
  return Math.ceil((now + lingerMs / 2) / lingerMs) * lingerMs
}

type FetchResponse = Awaited<ReturnType<Consumer<Buffer, Buffer, Buffer, Buffer>['fetch']>>

/** The Fetch response @platformatic/kafka attaches to a ResponseError (possibly nested), if any. */
function fetchResponseOf(error: unknown, depth = 0): FetchResponse | undefined {
  if (typeof error !== 'object' || error === null || depth > 3) return undefined
  const e = error as { response?: { responses?: unknown }; errors?: unknown[] }
  if (e.response !== undefined && Array.isArray(e.response.responses)) return e.response as FetchResponse
  for (const inner of e.errors ?? []) {
    const found = fetchResponseOf(inner, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}
