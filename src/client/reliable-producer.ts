// A no-loss, in-order producer over @platformatic/kafka, configured and handled the way the
// mission-critical messaging talk asks (acks=all, idempotence, unbounded retries, block rather
// than drop), for the database's replication stream and the client layer built on it.
//
// How it keeps order and loses nothing:
// - The underlying Producer is idempotent with acks=all, unbounded retries and exponential
//   backoff. Its retries resend a produce request with the same producer id and sequence
//   numbers, so a request the broker already appended is answered as a duplicate, not written
//   twice.
// - At most ONE produce request is in flight at a time. @platformatic/kafka 2.12.1 forces
//   maxInflights=1 per connection for idempotent producers, and its send() assigns sequence
//   numbers when it is called and resets the producer id and sequences when any send fails, so
//   concurrent send() calls are not safe to pipeline: after a failure of one, the others could be
//   written out of order or under a new producer id. We therefore batch instead: every request
//   carries a run of consecutive queued records for ONE topic-partition, so a request either
//   succeeds or fails as a whole (the broker accepts or refuses a partition's batch whole).
// - Back-pressure: records are buffered up to `maxBufferedBytes` / `maxBufferedRecords`; when the
//   buffer is full, send() waits (its promise stays pending, in order) instead of dropping.
//   A single record larger than `maxBufferedBytes` is admitted alone, when the buffer is empty.
// - A non-retriable error (the underlying client gives up only on those, retries being
//   unbounded; a failed SASL authentication counts as one) stops sending at once: the failed
//   record's send() rejects with ProducerSendError; every record behind it (the rest of its
//   batch, the queue, and sends waiting for room) rejects with RecordAbandonedError and is never
//   sent; the underlying producer is closed and a new one (a new producer id) created; `onFailure` is called exactly once, synchronously, with the
//   failure. Sends made after that go to the new producer.
//
// The caller decides what to resend, typically everything from its last checkpoint (the last
// acknowledged record). A record replayed that way may appear twice in the log (if it had been
// written but its acknowledgement was lost together with the producer), and the log may also hold
// the earlier records of a partial transaction: consumers must tell duplicates apart (the
// replication stream's (generation, scn) fencing rule and BEGIN…END framing do).
import { compatibilityPartitioner, Producer, type ProduceResult } from '@platformatic/kafka'
import { errorChain, kafkaErrorInfo, ProducerClosedError, ProducerSendError, RecordAbandonedError } from './errors.ts'
import { FIRST_INIT_PRODUCER } from './idempotence.ts'
import { kafkaConnectionOptions, type KafkaSecurity } from './kafka-security.ts'

export { ProducerClosedError, ProducerSendError, RecordAbandonedError } from './errors.ts'

export interface ProducerRecord {
  topic: string
  /** The partition; when absent, the partition is murmur2(key) as in the Java client, or round-robin for a null key. */
  partition?: number
  key: Buffer | null
  value: Buffer | null
  /** Header keys and values, in order; a key may repeat. */
  headers?: [string, Buffer][]
  /** Milliseconds since the epoch; the send time when absent. */
  timestamp?: number
}

export interface RecordMetadata {
  topic: string
  partition: number
  offset: bigint
}

/** The one signal given for each non-retriable failure. */
export interface ProducerFailure {
  /** The error of the failed record, with the Kafka error code (`error.kafkaCode`, `error.kafkaName`). */
  error: ProducerSendError
  /** The first record that was not written. */
  record: ProducerRecord
  /** How many records behind it were failed without being sent (RecordAbandonedError). */
  abandoned: number
}

export interface ReliableProducerOptions {
  /** host:port of one or more brokers. */
  bootstrap: string[]
  clientId?: string
  /** TLS and SASL for the connections to the brokers (default: plaintext, no authentication). */
  security?: KafkaSecurity
  /** Ask the broker to create unknown topics (if it allows); off by default, as the database creates its own. */
  autocreateTopics?: boolean
  /** Bound on the bytes of records buffered (queued or in flight). Default 32 MiB. */
  maxBufferedBytes?: number
  /** Bound on the number of records buffered (queued or in flight). Default 10 000. */
  maxBufferedRecords?: number
  /** Called once per non-retriable failure, after the fresh producer is in place. */
  onFailure?: (failure: ProducerFailure) => void
  /** Most records in one produce request. Default 500. */
  maxBatchRecords?: number
  /** Most record bytes in one produce request. Default 512 KiB (a larger single record goes alone). */
  maxBatchBytes?: number
  /** First retry backoff; doubles per attempt up to `maxRetryBackoffMs`, with ±20% jitter. Default 100. */
  retryBackoffMs?: number
  /** Default 1000. */
  maxRetryBackoffMs?: number
  /** Per-request timeout (a timed-out request is retried). Default 10 000. */
  requestTimeoutMs?: number
}

interface Entry {
  record: ProducerRecord
  size: number
  partition: number | undefined
  resolve: (m: RecordMetadata) => void
  reject: (e: Error) => void
}

const DEFAULTS = {
  maxBufferedBytes: 32 * 1024 * 1024,
  maxBufferedRecords: 10_000,
  maxBatchRecords: 500,
  maxBatchBytes: 512 * 1024,
  retryBackoffMs: 100,
  maxRetryBackoffMs: 1000,
  requestTimeoutMs: 10_000,
}

/** Cached partition counts are re-read after this long. */
const PARTITION_COUNT_TTL_MS = 30_000

/** The library's error for a broker that refused our SASL credentials, anywhere in the error's chain. */
function isAuthenticationFailure(error: unknown): boolean {
  for (const e of errorChain(error)) if (e.code === 'PLT_KFK_AUTHENTICATION') return true
  return false
}

/** Approximate bytes a record occupies in the buffer. */
function recordSize(r: ProducerRecord): number {
  let n = 64 + (r.key?.length ?? 0) + (r.value?.length ?? 0) + Buffer.byteLength(r.topic)
  for (const [k, v] of r.headers ?? []) n += Buffer.byteLength(k) + v.length + 8
  return n
}

export class ReliableProducer {
  readonly #options: Required<Omit<ReliableProducerOptions, 'onFailure' | 'clientId' | 'security'>> & {
    clientId: string
  }
  readonly #security: KafkaSecurity | undefined
  readonly #onFailure: ((f: ProducerFailure) => void) | undefined
  #producer: Producer<Buffer, Buffer, Buffer, Buffer>
  /** Admitted records not yet sent, in send order. */
  #queue: Entry[] = []
  /** Records waiting for room in the buffer, in send order. */
  #waiting: Entry[] = []
  /** The batch of the one request in flight. */
  #inflight: Entry[] = []
  #busy = false
  #pumpScheduled = false
  #closed = false
  /** Bumped on every failure, so work started for an earlier producer can tell it is stale. */
  #epoch = 0
  #bufferedBytes = 0
  #bufferedRecords = 0
  #peakBytes = 0
  #peakRecords = 0
  #failures = 0
  #roundRobin = new Map<string, number>()
  #partitionCounts = new Map<string, { count: number; at: number }>()
  #idleWaiters: (() => void)[] = []

  constructor(options: ReliableProducerOptions) {
    if (options.bootstrap.length === 0) throw new TypeError('bootstrap must name at least one broker')
    this.#options = {
      bootstrap: options.bootstrap,
      clientId: options.clientId ?? 'cortado-reliable-producer',
      maxBufferedBytes: options.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
      maxBufferedRecords: options.maxBufferedRecords ?? DEFAULTS.maxBufferedRecords,
      maxBatchRecords: options.maxBatchRecords ?? DEFAULTS.maxBatchRecords,
      maxBatchBytes: options.maxBatchBytes ?? DEFAULTS.maxBatchBytes,
      retryBackoffMs: options.retryBackoffMs ?? DEFAULTS.retryBackoffMs,
      maxRetryBackoffMs: options.maxRetryBackoffMs ?? DEFAULTS.maxRetryBackoffMs,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      autocreateTopics: options.autocreateTopics ?? false,
    }
    if (!(this.#options.maxBufferedRecords >= 1)) throw new RangeError('maxBufferedRecords must be at least 1')
    if (!(this.#options.maxBufferedBytes >= 1)) throw new RangeError('maxBufferedBytes must be at least 1')
    this.#onFailure = options.onFailure
    this.#security = options.security
    this.#producer = this.#createProducer()
  }

  /** Bytes of records buffered now (queued or in flight). */
  get bufferedBytes(): number {
    return this.#bufferedBytes
  }

  /** Records buffered now (queued or in flight). */
  get bufferedRecords(): number {
    return this.#bufferedRecords
  }

  /** The most bytes ever buffered at once. */
  get peakBufferedBytes(): number {
    return this.#peakBytes
  }

  /** The most records ever buffered at once. */
  get peakBufferedRecords(): number {
    return this.#peakRecords
  }

  /** Sends waiting for room in the buffer. */
  get waitingRecords(): number {
    return this.#waiting.length
  }

  /** How many non-retriable failures (signals) there have been. */
  get failures(): number {
    return this.#failures
  }

  /**
   * Queues a record; resolves once it is acknowledged by all in-sync replicas. While the buffer
   * is full the record waits for room (back-pressure). Rejects with ProducerSendError if the
   * record failed, RecordAbandonedError if an earlier record failed, ProducerClosedError after
   * close().
   */
  send(record: ProducerRecord): Promise<RecordMetadata> {
    if (this.#closed) return Promise.reject(new ProducerClosedError())
    return new Promise<RecordMetadata>((resolve, reject) => {
      const entry: Entry = { record, size: recordSize(record), partition: record.partition, resolve, reject }
      if (this.#waiting.length === 0 && this.#hasRoom(entry)) this.#admit(entry)
      else this.#waiting.push(entry)
      this.#schedulePump()
    })
  }

  /** Resolves once every record sent so far is acknowledged or failed. */
  flush(): Promise<void> {
    if (this.#idle()) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  /**
   * Flushes, then closes the underlying producer; later sends reject with ProducerClosedError.
   * With `timeoutMs`, as Kafka's `close(Duration)`: records still unacknowledged by then (say,
   * the broker is gone) reject with ProducerClosedError instead of being waited for. Their outcome
   * is unknown to the caller (a request in flight may still be written), never reported as success.
   */
  async close(timeoutMs = Infinity): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const flushed = await this.#flushWithin(timeoutMs)
    if (!flushed) this.#abandonAll()
    await this.#producer.close(!flushed).catch(() => undefined)
  }

  async #flushWithin(timeoutMs: number): Promise<boolean> {
    if (timeoutMs === Infinity) {
      await this.flush()
      return true
    }
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))
    const flushed = await Promise.race([this.flush().then(() => true as const), expired])
    clearTimeout(timer)
    return flushed
  }

  /** Closing gave up waiting: fails every buffered record; work in flight sees a new epoch and stops. */
  #abandonAll(): void {
    this.#epoch++
    const abandoned = [...this.#inflight, ...this.#queue, ...this.#waiting]
    this.#queue = []
    this.#waiting = []
    this.#inflight = []
    this.#bufferedBytes = 0
    this.#bufferedRecords = 0
    const error = new ProducerClosedError()
    for (const e of abandoned) e.reject(error)
    this.#checkIdle()
  }

  #createProducer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    const { retryBackoffMs, maxRetryBackoffMs } = this.#options
    return new Producer<Buffer, Buffer, Buffer, Buffer>({
      clientId: this.#options.clientId,
      bootstrapBrokers: this.#options.bootstrap,
      ...kafkaConnectionOptions(this.#security),
      idempotent: true,
      ...FIRST_INIT_PRODUCER,
      acks: -1,
      retries: Number.MAX_SAFE_INTEGER,
      retryDelay: (client: unknown, _op: string, attempt: number, _retries: number, error: Error) => {
        // A failed SASL authentication is final, as in Kafka's clients (KIP-152), but the library
        // retries it (it comes wrapped in a retriable network error), which with unbounded retries
        // would block every send for ever. Closing the producer ends the retries: the send fails
        // with SASL_AUTHENTICATION_FAILED through the non-retriable path.
        if (isAuthenticationFailure(error))
          setImmediate(
            () => void (client as Producer<Buffer, Buffer, Buffer, Buffer>).close(true).catch(() => undefined),
          )
        const base = Math.min(maxRetryBackoffMs, retryBackoffMs * 2 ** Math.min(30, Math.max(0, attempt - 1)))
        return Math.round(base * (0.8 + 0.4 * Math.random()))
      },
      // `timeout` is only the time the broker may take (Produce's own timeout field); the
      // connection's `requestTimeout` (30 s by default) is what gives up on an unanswered request
      // and retries it, so both are set.
      timeout: this.#options.requestTimeoutMs,
      requestTimeout: this.#options.requestTimeoutMs,
      autocreateTopics: this.#options.autocreateTopics,
    })
  }

  #hasRoom(e: Entry): boolean {
    if (this.#bufferedRecords === 0) return true // a record larger than the byte bound goes alone
    return (
      this.#bufferedRecords + 1 <= this.#options.maxBufferedRecords &&
      this.#bufferedBytes + e.size <= this.#options.maxBufferedBytes
    )
  }

  #admit(e: Entry): void {
    this.#queue.push(e)
    this.#bufferedRecords++
    this.#bufferedBytes += e.size
    if (this.#bufferedRecords > this.#peakRecords) this.#peakRecords = this.#bufferedRecords
    if (this.#bufferedBytes > this.#peakBytes) this.#peakBytes = this.#bufferedBytes
  }

  #release(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.#bufferedRecords--
      this.#bufferedBytes -= e.size
    }
    while (this.#waiting.length > 0 && this.#hasRoom(this.#waiting[0])) this.#admit(this.#waiting.shift() as Entry)
  }

  #idle(): boolean {
    return this.#queue.length === 0 && this.#waiting.length === 0 && this.#inflight.length === 0
  }

  #checkIdle(): void {
    if (!this.#idle()) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }

  /**
   * Pumps once the caller's synchronous code is done, so records sent together (a transaction's
   * BEGIN, DATA and END) leave in one request instead of the first alone.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return
    this.#pumpScheduled = true
    queueMicrotask(() => {
      this.#pumpScheduled = false
      this.#pump()
    })
  }

  #pump(): void {
    if (this.#busy || this.#queue.length === 0) return
    this.#busy = true
    void this.#sendNext().finally(() => {
      this.#busy = false
      this.#checkIdle()
      this.#pump()
    })
  }

  /** Sends one batch from the head of the queue and settles it. */
  async #sendNext(): Promise<void> {
    const epoch = this.#epoch
    const producer = this.#producer
    const head = this.#queue[0]
    let batch: Entry[]
    try {
      head.partition ??= await this.#partitionFor(producer, head.record)
      if (epoch !== this.#epoch) return
      batch = this.#takeBatch()
    } catch (error) {
      if (epoch === this.#epoch) this.#fail(error, this.#queue.splice(0, 1))
      return
    }
    if (epoch !== this.#epoch) return
    this.#inflight = batch
    let result: ProduceResult
    try {
      result = await producer.send({
        messages: batch.map((e) => ({
          topic: e.record.topic,
          partition: e.partition,
          key: e.record.key ?? undefined,
          value: e.record.value ?? undefined,
          headers: new Map((e.record.headers ?? []).map(([k, v]): [Buffer, Buffer] => [Buffer.from(k), v])),
          timestamp: e.record.timestamp === undefined ? undefined : BigInt(e.record.timestamp),
        })),
      })
    } catch (error) {
      if (epoch !== this.#epoch) return // abandoned by close()
      this.#inflight = []
      this.#fail(error, batch)
      return
    }
    if (epoch !== this.#epoch) return // abandoned by close()
    this.#inflight = []
    const { topic } = head.record
    const partition = head.partition
    const ack = result.offsets?.find((o) => o.topic === topic && o.partition === partition)
    if (ack === undefined) {
      this.#fail(new Error(`produce response without an offset for ${topic}-${partition}`), batch)
      return
    }
    this.#release(batch)
    batch.forEach((e, i) => e.resolve({ topic, partition, offset: ack.offset + BigInt(i) }))
  }

  /** Removes and returns the run of queued records, from the head, that go to the head's partition. */
  #takeBatch(): Entry[] {
    const head = this.#queue[0]
    let n = 1
    let bytes = head.size
    while (n < this.#queue.length && n < this.#options.maxBatchRecords) {
      const e = this.#queue[n]
      if (e.record.topic !== head.record.topic || bytes + e.size > this.#options.maxBatchBytes) break
      if (e.partition === undefined) {
        // Only a cached partition count is used here, so as not to wait while the batch forms.
        const count = this.#cachedPartitionCount(e.record.topic)
        if (count === undefined) break
        e.partition = this.#choosePartition(e.record, count)
      }
      if (e.partition !== head.partition) break
      bytes += e.size
      n++
    }
    return this.#queue.splice(0, n)
  }

  #cachedPartitionCount(topic: string): number | undefined {
    const c = this.#partitionCounts.get(topic)
    return c !== undefined && Date.now() - c.at < PARTITION_COUNT_TTL_MS ? c.count : undefined
  }

  async #partitionFor(producer: Producer<Buffer, Buffer, Buffer, Buffer>, record: ProducerRecord): Promise<number> {
    let count = this.#cachedPartitionCount(record.topic)
    if (count === undefined) {
      const md = await producer.metadata({ topics: [record.topic] })
      const t = md.topics.get(record.topic)
      if (t === undefined) throw new Error(`no metadata for topic ${record.topic}`)
      count = t.partitionsCount
      this.#partitionCounts.set(record.topic, { count, at: Date.now() })
    }
    return this.#choosePartition(record, count)
  }

  #choosePartition(record: ProducerRecord, count: number): number {
    if (record.partition !== undefined) return record.partition
    if (record.key !== null) return compatibilityPartitioner(undefined as never, record.key) % count
    const next = this.#roundRobin.get(record.topic) ?? 0
    this.#roundRobin.set(record.topic, next + 1)
    return next % count
  }

  /**
   * The non-retriable path: fail `failed` (its first record is the failed one), abandon everything
   * behind it, replace the underlying producer, signal once.
   */
  #fail(cause: unknown, failed: Entry[]): void {
    this.#epoch++
    this.#failures++
    const first = failed[0]
    const info = kafkaErrorInfo(cause)
    const detail = info.serverMessage ?? (cause instanceof Error ? cause.message : String(cause))
    const error = new ProducerSendError(
      `send to ${first.record.topic}${first.partition === undefined ? '' : `-${first.partition}`} failed: ${info.kafkaName} (${info.kafkaCode}): ${detail}`,
      info,
      { cause },
    )
    const abandoned = [...failed.slice(1), ...this.#queue, ...this.#waiting]
    this.#queue = []
    this.#waiting = []
    this.#inflight = []
    this.#bufferedBytes = 0
    this.#bufferedRecords = 0
    const old = this.#producer
    void old.close().catch(() => undefined)
    this.#partitionCounts.clear()
    this.#producer = this.#createProducer()
    first.reject(error)
    const abandonedError = new RecordAbandonedError(error)
    for (const e of abandoned) e.reject(abandonedError)
    if (this.#onFailure !== undefined) {
      try {
        this.#onFailure({ error, record: first.record, abandoned: abandoned.length })
      } catch {
        // The callback's own failure must not break the producer.
      }
    }
    this.#checkIdle()
  }
}
