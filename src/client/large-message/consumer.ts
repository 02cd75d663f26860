// LargeMessageConsumer: a consumer-group member over @platformatic/kafka's Consumer (manual
// commits) that hands the application whole messages only, reassembled from `_lm` segments
// (assembler.ts), and commits only safe offsets.
//
// After the handler returns for a message, the consumer commits, for that partition, the safe
// offset (never past the start of an incomplete message) with the delivered high watermark in
// the commit metadata (`<hw>,`, as li-apache-kafka-clients does). When a partition is assigned
// (start, restart, rebalance) its committed offset and watermark are read back before its first
// record is processed, so messages delivered before the commit are skipped and none is lost.
// @platformatic/kafka's Consumer.commit writes no metadata, so commits and their read-back go to
// the group coordinator over a connection of our own, with the member's generation and id.
//
// That path does for itself what the Consumer does for its own group requests:
// - it uses the highest OffsetCommit (v2-v8) and OffsetFetch (v1-v8) version the cluster offers,
//   so an older or locked-down Kafka (librdkafka's mock offers OffsetCommit 0-7 and OffsetFetch
//   0-5 and closes the connection on anything newer) works too;
// - it finds the coordinator itself (FindCoordinator on any broker), because the Consumer keeps
//   the coordinator it found until one of its own requests fails, and a commit can be the first
//   request to meet a moved coordinator;
// - it retries NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, network
//   errors and the rebalance errors (the Consumer rejoins meanwhile and the generation is read
//   again each attempt) for as long as the partition stays assigned, up to `coordinatorTimeoutMs`.
import {
  Connection,
  type Consumer,
  findCoordinatorV0,
  findCoordinatorV1,
  findCoordinatorV2,
  findCoordinatorV3,
  findErrorBy,
  type Message,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  type MessagesStream,
  offsetCommitV2,
  offsetCommitV3,
  offsetCommitV4,
  offsetCommitV5,
  offsetCommitV6,
  offsetCommitV7,
  offsetCommitV8,
  offsetFetchV1,
  offsetFetchV2,
  offsetFetchV3,
  offsetFetchV4,
  offsetFetchV5,
  offsetFetchV6,
  offsetFetchV7,
  offsetFetchV8,
} from '@platformatic/kafka'
import {
  type AssemblerOptions,
  decodeCommitMetadata,
  encodeCommitMetadata,
  MessageAssembler,
  type AssemblerStats,
} from './assembler.ts'
import { decodeLargeMessageHeader, LARGE_MESSAGE_HEADER, type LargeMessageHeader } from './segment.ts'
import { kafkaConnectionOptions, type KafkaSecurity } from '../kafka-security.ts'

export interface LargeMessage {
  topic: string
  partition: number
  /** Offset of the last segment. */
  offset: bigint
  /** Offset of the first segment. */
  startOffset: bigint
  key: Buffer | null
  value: Buffer | null
  /** The record's headers, `_lm` removed. */
  headers: [string, Buffer][]
  timestamp: bigint
}

export interface SegmentEvent {
  topic: string
  partition: number
  offset: bigint
  header: LargeMessageHeader | null
  result: 'message' | 'incomplete' | 'duplicate' | 'delivered' | 'invalid' | 'stale' | 'not-assigned'
}

export interface LargeMessageConsumerOptions {
  /** A Consumer with a groupId; its deserializers must leave keys, values and headers as Buffers. */
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  /** TLS and SASL of our own connections to the coordinator (for commits): the same as the Consumer's. */
  security?: KafkaSecurity
  topics: string[]
  /** Where a partition without a committed offset starts (default earliest). */
  startAt?: 'earliest' | 'latest'
  assembler?: AssemblerOptions
  /** Extra consume() options (fetch sizes, wait times, session timeouts). */
  consume?: {
    maxWaitTime?: number
    maxBytes?: number
    maxBytesPerPartition?: number
    sessionTimeout?: number
    heartbeatInterval?: number
    rebalanceTimeout?: number
  }
  /** Observes every record read (tests, metrics). */
  onRecord?: (event: SegmentEvent) => void
  /** Observes every commit the coordinator acknowledged. */
  onCommit?: (event: { topic: string; partition: number; offset: number; highWatermark: number }) => void
  /**
   * How long a commit or a read-back of committed offsets keeps retrying while the coordinator
   * is moving, loading or unreachable (default 60 s). A commit then gives up (counted in
   * stats.commitErrors; the next commit of the partition covers it); a read-back fails run().
   */
  coordinatorTimeoutMs?: number
}

export interface LargeMessageConsumerStats extends AssemblerStats {
  commits: number
  commitErrors: number
  invalidHeaders: number
}

export type MessageHandler = (message: LargeMessage) => void | Promise<void>

const pkey = (topic: string, partition: number) => `${topic}\u0000${partition}`

// The request versions this consumer can send, highest first (all take the same arguments).
const OFFSET_COMMIT = [
  offsetCommitV8.api,
  offsetCommitV7.api,
  offsetCommitV6.api,
  offsetCommitV5.api,
  offsetCommitV4.api,
  offsetCommitV3.api,
  offsetCommitV2.api,
]
const OFFSET_FETCH = [
  offsetFetchV8.api,
  offsetFetchV7.api,
  offsetFetchV6.api,
  offsetFetchV5.api,
  offsetFetchV4.api,
  offsetFetchV3.api,
  offsetFetchV2.api,
  offsetFetchV1.api,
]
const FIND_COORDINATOR = [findCoordinatorV3.api, findCoordinatorV2.api, findCoordinatorV1.api, findCoordinatorV0.api]
type OffsetCommitApi = (typeof OFFSET_COMMIT)[number]
type OffsetFetchApi = (typeof OFFSET_FETCH)[number]
type FindCoordinatorApi = (typeof FIND_COORDINATOR)[number]
type FetchedTopic = {
  name: string
  partitions: { partitionIndex: number; committedOffset: bigint; metadata: string | null }[]
}

/** The highest version of `versions` within what the cluster offers for `apiKey`, or an error naming both. */
function pickVersion<A extends { key: number; version: number }>(
  versions: A[],
  offered: { apiKey: number; minVersion: number; maxVersion: number }[],
  name: string,
): A {
  const o = offered.find((a) => a.apiKey === versions[0].key)
  const v = versions.find((x) => o !== undefined && x.version >= o.minVersion && x.version <= o.maxVersion)
  if (v === undefined) {
    const range = `v${versions.at(-1)!.version}-v${versions[0].version}`
    const has = o === undefined ? 'not offered' : `offered v${o.minVersion}-v${o.maxVersion}`
    throw new Error(`${name}: this client speaks ${range}, the cluster: ${has}`)
  }
  return v
}

/** Errors after which the same request may succeed: a moved or loading coordinator, a lost connection, a rebalance. */
function retriable(err: unknown): boolean {
  const e = err instanceof Error ? err : null
  if (findErrorBy(e, 'code', 'PLT_KFK_NETWORK') !== null) return true
  if (e !== null && 'code' in e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return true // ECONNREFUSED…
  return [
    'NOT_COORDINATOR',
    'COORDINATOR_NOT_AVAILABLE',
    'COORDINATOR_LOAD_IN_PROGRESS',
    'REBALANCE_IN_PROGRESS',
    'ILLEGAL_GENERATION',
    'UNKNOWN_MEMBER_ID',
    'REQUEST_TIMED_OUT',
  ].some((id) => findErrorBy(e, 'apiId', id) !== null)
}

export class LargeMessageConsumer {
  readonly #consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly #topics: string[]
  readonly #options: LargeMessageConsumerOptions
  readonly #assembler: MessageAssembler
  /** Partitions whose commit has been read back since they were assigned. */
  readonly #loaded = new Set<string>()
  readonly #owned = new Set<string>()
  readonly #lastCommit = new Map<string, string>()
  #connection: Connection | undefined
  #apis: { commit: OffsetCommitApi; fetch: OffsetFetchApi; find: FindCoordinatorApi } | undefined
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined
  #closing = false
  #commits = 0
  #commitErrors = 0
  #invalidHeaders = 0

  constructor(options: LargeMessageConsumerOptions) {
    this.#consumer = options.consumer
    this.#topics = options.topics
    this.#options = options
    this.#assembler = new MessageAssembler(options.assembler)
    this.#consumer.on('consumer:group:join', (p) => this.#assigned(p.assignments ?? []))
  }

  get stats(): LargeMessageConsumerStats {
    return {
      ...this.#assembler.stats,
      commits: this.#commits,
      commitErrors: this.#commitErrors,
      invalidHeaders: this.#invalidHeaders,
    }
  }

  #assigned(assignments: { topic: string; partitions: number[] }[]): void {
    const now = new Set(assignments.flatMap((a) => a.partitions.map((p) => pkey(a.topic, p))))
    for (const k of this.#owned) {
      if (now.has(k)) continue
      this.#assembler.revoke(k)
      this.#loaded.delete(k)
      this.#lastCommit.delete(k)
    }
    this.#owned.clear()
    for (const k of now) this.#owned.add(k)
  }

  /** Consumes until close(): calls the handler with each whole message, in offset order per partition. */
  async run(handler: MessageHandler): Promise<void> {
    const c = this.#options.consume ?? {}
    this.#stream = await this.#consumer.consume({
      topics: this.#topics,
      mode: MessagesStreamModes.COMMITTED,
      fallbackMode:
        this.#options.startAt === 'latest' ? MessagesStreamFallbackModes.LATEST : MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
      ...c,
    })
    try {
      for await (const record of this.#stream) {
        if (this.#closing) break
        await this.#record(record, handler)
      }
    } finally {
      this.#closing = true
    }
  }

  async #record(record: Message<Buffer, Buffer, Buffer, Buffer>, handler: MessageHandler): Promise<void> {
    const k = pkey(record.topic, record.partition)
    let header: LargeMessageHeader | null = null
    const headers: [string, Buffer][] = []
    for (const [hk, hv] of record.headerEntries) {
      const name = hk.toString()
      if (name !== LARGE_MESSAGE_HEADER) {
        headers.push([name, hv])
        continue
      }
      const d = decodeLargeMessageHeader(hv)
      if (d.ok) header = d.header
      else this.#invalidHeaders++ // treated as a plain record, as treat.bad.segments.as.payload
    }
    const event = (result: SegmentEvent['result']) =>
      this.#options.onRecord?.({
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        header,
        result,
      })
    // A fetch sent before a rebalance can return records of partitions no longer assigned.
    if (!this.#owned.has(k)) {
      event('not-assigned')
      return
    }
    if (!this.#loaded.has(k)) {
      const committed = await this.#fetchCommitted(record.topic, record.partition)
      if (committed !== undefined) this.#assembler.restore(k, committed.offset, committed.highWatermark)
      this.#loaded.add(k)
    }
    const r = this.#assembler.process(k, { offset: Number(record.offset), header, value: record.value ?? null })
    if (r.kind !== 'message') {
      event(r.kind === 'incomplete' ? 'incomplete' : r.reason)
      return
    }
    event('message')
    await handler({
      topic: record.topic,
      partition: record.partition,
      offset: BigInt(r.message.offset),
      startOffset: BigInt(r.message.startOffset),
      key: record.key ?? null,
      value: r.message.value,
      headers,
      timestamp: record.timestamp,
    })
    await this.commit(record.topic, record.partition)
  }

  /** Commits the safe offset (and delivered high watermark) of a partition, if it moved. */
  async commit(topic: string, partition: number): Promise<void> {
    const k = pkey(topic, partition)
    const point = this.#assembler.commitPoint(k)
    if (point === undefined) return
    const metadata = encodeCommitMetadata(point.highWatermark)
    const fingerprint = `${point.offset}/${metadata}`
    if (this.#lastCommit.get(k) === fingerprint) return
    const topics = [
      {
        name: topic,
        partitions: [
          {
            partitionIndex: partition,
            committedOffset: BigInt(point.offset),
            committedLeaderEpoch: -1,
            committedMetadata: metadata,
          },
        ],
      },
    ]
    const deadline = Date.now() + (this.#options.coordinatorTimeoutMs ?? 60_000)
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = await this.#coordinator()
        const { commit } = await this.#versions()
        const res = await commit.async(
          conn,
          this.#consumer.groupId,
          this.#consumer.generationId,
          this.#consumer.memberId ?? '',
          null,
          topics,
        )
        const code = res.topics[0]?.partitions[0]?.errorCode ?? 0
        if (code !== 0) throw new Error(`OffsetCommit error code ${code}`)
        this.#commits++
        this.#lastCommit.set(k, fingerprint)
        this.#options.onCommit?.({ topic, partition, offset: point.offset, highWatermark: point.highWatermark })
        return
      } catch (err) {
        await this.#dropConnection()
        // Once the partition has gone to another member, its commit is that member's to make:
        // it resumes at our last acknowledged commit and reads what follows again.
        if (this.#closing || !this.#owned.has(k) || !retriable(err) || Date.now() >= deadline) {
          this.#commitErrors++
          return
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)))
      }
    }
  }

  async #fetchCommitted(
    topic: string,
    partition: number,
  ): Promise<{ offset: number; highWatermark: number | undefined } | undefined> {
    const deadline = Date.now() + (this.#options.coordinatorTimeoutMs ?? 60_000)
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = await this.#coordinator()
        const { fetch } = await this.#versions()
        const group = {
          groupId: this.#consumer.groupId,
          memberId: null,
          memberEpoch: -1,
          topics: [{ name: topic, partitionIndexes: [partition] }],
        }
        const res = await fetch.async(conn, [group], false)
        // v8 answers per group; v1-v7 answer for the one group at the top level.
        const r = res as { topics?: FetchedTopic[]; groups?: { topics: FetchedTopic[] }[] }
        const topics = fetch.version >= 8 ? r.groups?.[0]?.topics : r.topics
        const p = topics?.find((t) => t.name === topic)?.partitions.find((x) => x.partitionIndex === partition)
        if (p === undefined || p.committedOffset < 0n) return undefined
        return { offset: Number(p.committedOffset), highWatermark: decodeCommitMetadata(p.metadata) }
      } catch (err) {
        await this.#dropConnection()
        if (this.#closing || !retriable(err) || Date.now() >= deadline) throw err
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)))
      }
    }
  }

  /** The request versions to use, chosen once from what the cluster offers. */
  async #versions(): Promise<{ commit: OffsetCommitApi; fetch: OffsetFetchApi; find: FindCoordinatorApi }> {
    if (this.#apis !== undefined) return this.#apis
    const offered = await this.#consumer.listApis()
    this.#apis = {
      commit: pickVersion(OFFSET_COMMIT, offered, 'OffsetCommit'),
      fetch: pickVersion(OFFSET_FETCH, offered, 'OffsetFetch'),
      find: pickVersion(FIND_COORDINATOR, offered, 'FindCoordinator'),
    }
    return this.#apis
  }

  /** A connection to the group coordinator, found afresh (FindCoordinator) after each failure. */
  async #coordinator(): Promise<Connection> {
    if (this.#connection !== undefined) return this.#connection
    const { find } = await this.#versions()
    const metadata = await this.#consumer.metadata({ topics: this.#topics })
    // Any broker answers FindCoordinator; one that is down is skipped.
    let coordinator: { host: string; port: number } | undefined
    let lastError: unknown
    for (const broker of metadata.brokers.values()) {
      const conn = new Connection(`${this.#consumer.clientId}-lm-commits`, {
        ...kafkaConnectionOptions(this.#options.security),
      })
      try {
        await conn.connect(broker.host, broker.port)
        const res = await find.async(conn, 0, [this.#consumer.groupId])
        const c = res.coordinators[0]
        coordinator = { host: c.host, port: c.port }
        break
      } catch (err) {
        lastError = err
      } finally {
        await conn.close().catch(() => undefined)
      }
    }
    if (coordinator === undefined)
      throw lastError instanceof Error
        ? lastError
        : new Error('no broker answered FindCoordinator', { cause: lastError })
    const conn = new Connection(`${this.#consumer.clientId}-lm-commits`, {
      ...kafkaConnectionOptions(this.#options.security),
    })
    try {
      await conn.connect(coordinator.host, coordinator.port)
    } catch (err) {
      await conn.close().catch(() => undefined)
      throw err
    }
    this.#connection = conn
    return conn
  }

  async #dropConnection(): Promise<void> {
    const conn = this.#connection
    this.#connection = undefined
    if (conn !== undefined) await conn.close().catch(() => undefined)
  }

  /** Stops consuming and closes the stream, the consumer (leaving the group) and our connection. */
  async close(): Promise<void> {
    this.#closing = true
    if (this.#stream !== undefined) await this.#stream.close().catch(() => undefined)
    await this.#consumer.close(true).catch(() => undefined)
    await this.#dropConnection()
  }
}
