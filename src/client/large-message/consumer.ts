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
// the group coordinator over a connection of our own (OffsetCommit v8 / OffsetFetch v8, which
// Apache Kafka and our broker both serve), with the member's generation and id.
import {
  Connection,
  type Consumer,
  type Message,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  type MessagesStream,
  offsetCommitV8,
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
}

export interface LargeMessageConsumerStats extends AssemblerStats {
  commits: number
  commitErrors: number
  invalidHeaders: number
}

export type MessageHandler = (message: LargeMessage) => void | Promise<void>

const pkey = (topic: string, partition: number) => `${topic}\u0000${partition}`

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
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = await this.#coordinator()
        const res = await offsetCommitV8.api.async(
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
        if (attempt >= 5 || this.#closing) {
          this.#commitErrors++
          void err
          return
        }
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)))
      }
    }
  }

  async #fetchCommitted(
    topic: string,
    partition: number,
  ): Promise<{ offset: number; highWatermark: number | undefined } | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = await this.#coordinator()
        const res = await offsetFetchV8.api.async(
          conn,
          [
            {
              groupId: this.#consumer.groupId,
              memberId: null,
              memberEpoch: -1,
              topics: [{ name: topic, partitionIndexes: [partition] }],
            },
          ],
          false,
        )
        const p = res.groups[0]?.topics
          .find((t) => t.name === topic)
          ?.partitions.find((x) => x.partitionIndex === partition)
        if (p === undefined || p.committedOffset < 0n) return undefined
        return { offset: Number(p.committedOffset), highWatermark: decodeCommitMetadata(p.metadata) }
      } catch (err) {
        await this.#dropConnection()
        if (attempt >= 10) throw err
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)))
      }
    }
  }

  async #coordinator(): Promise<Connection> {
    if (this.#connection !== undefined) return this.#connection
    const id = await this.#consumer.findGroupCoordinator()
    const metadata = await this.#consumer.metadata({ topics: this.#topics })
    const broker = metadata.brokers.get(id)
    if (broker === undefined) throw new Error(`group coordinator ${id} not in the cluster metadata`)
    const conn = new Connection(`${this.#consumer.clientId}-lm-commits`)
    await conn.connect(broker.host, broker.port)
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
