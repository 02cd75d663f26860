// Publishes drained audit counts (counter.ts) to the audit topic (default `__cortado_audit`) on an interval, and the
// remainder on close.
//
// Wire format, version 1: one Kafka record per batch of counts; key = the reporter id (UTF-8),
// so all of a reporter's records land in one partition, in order; value = UTF-8 JSON:
//
//   { "v": 1,
//     "reporter": { "id": "<uuid>", "clientId": "…", "host": "…", "pid": 1234 },
//     "seq": 0,                       // per reporter, +1 per record, starting at 0
//     "publishedAt": 1700000000000,   // ms since the epoch, when first published
//     "counts": [ { "side": "produce" | "consume", "topic": "t", "group": null | "g",
//                   "bucketStart": 1699999980000, "bucketMs": 60000,
//                   "outcome": "attempt" | "success" | "failure",
//                   "messages": 10, "bytes": 1234 }, … ] }
//
// A record that fails to publish is kept, with its sequence number, and sent again on the next
// flush (through a new producer if the old one failed). The log may then hold the same
// (reporter id, seq) twice — the idempotent producer removes resends within one producer
// session, not across producers — and the report (report.ts) counts each (reporter id, seq) once.
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import { AUDIT_OUTCOMES, AUDIT_SIDES, type AuditCount, type AuditCounter } from './counter.ts'
import { KafkaTopicError, kafkaRefusal } from '../errors.ts'
import { FIRST_INIT_PRODUCER } from '../idempotence.ts'
import { kafkaConnectionOptions, type KafkaSecurity } from '../kafka-security.ts'

export const DEFAULT_AUDIT_TOPIC = '__cortado_audit'
export const AUDIT_FORMAT_VERSION = 1
export const DEFAULT_AUDIT_INTERVAL_MS = 60_000
/** Counts per audit record (keeps each record far below any message.max.bytes). */
export const MAX_COUNTS_PER_RECORD = 500
/** Largest audit record value the decoder accepts. */
export const MAX_AUDIT_RECORD_BYTES = 1 << 20

export interface AuditReporter {
  /** Unique per publisher instance (a UUID unless given). */
  id: string
  clientId: string
  host: string
  pid: number
}

export interface AuditRecord {
  v: typeof AUDIT_FORMAT_VERSION
  reporter: AuditReporter
  seq: number
  publishedAt: number
  counts: AuditCount[]
}

export function encodeAuditRecord(record: AuditRecord): Buffer {
  return Buffer.from(JSON.stringify(record))
}

export type AuditDecodeResult = { ok: true; record: AuditRecord } | { ok: false; error: string }

/** Decodes and validates an audit record value; never throws. */
export function decodeAuditRecord(value: Uint8Array | null | undefined): AuditDecodeResult {
  if (value == null) return { ok: false, error: 'null value' }
  if (value.byteLength > MAX_AUDIT_RECORD_BYTES)
    return { ok: false, error: `value of ${value.byteLength} bytes exceeds ${MAX_AUDIT_RECORD_BYTES}` }
  let o: unknown
  try {
    o = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'))
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` }
  }
  if (!isObject(o)) return { ok: false, error: 'not an object' }
  if (o.v !== AUDIT_FORMAT_VERSION) return { ok: false, error: `unsupported version ${String(o.v)}` }
  const r = o.reporter
  if (
    !isObject(r) ||
    typeof r.id !== 'string' ||
    r.id === '' ||
    typeof r.clientId !== 'string' ||
    typeof r.host !== 'string' ||
    !isCount(r.pid)
  ) {
    return { ok: false, error: 'bad reporter' }
  }
  if (!isCount(o.seq)) return { ok: false, error: 'bad seq' }
  if (typeof o.publishedAt !== 'number' || !Number.isFinite(o.publishedAt))
    return { ok: false, error: 'bad publishedAt' }
  if (!Array.isArray(o.counts)) return { ok: false, error: 'bad counts' }
  const counts: AuditCount[] = []
  for (const c of o.counts as unknown[]) {
    if (!isObject(c)) return { ok: false, error: 'bad count' }
    const { side, topic, group, bucketStart, bucketMs, outcome, messages, bytes } = c
    if (
      !AUDIT_SIDES.includes(side as AuditCount['side']) ||
      typeof topic !== 'string' ||
      !(group === null || typeof group === 'string') ||
      typeof bucketStart !== 'number' ||
      !Number.isSafeInteger(bucketStart) ||
      !isCount(bucketMs) ||
      bucketMs === 0 ||
      !AUDIT_OUTCOMES.includes(outcome as AuditCount['outcome']) ||
      !isCount(messages) ||
      !isCount(bytes)
    ) {
      return { ok: false, error: 'bad count' }
    }
    counts.push({
      side: side as AuditCount['side'],
      topic,
      group,
      bucketStart,
      bucketMs,
      outcome: outcome as AuditCount['outcome'],
      messages,
      bytes,
    })
  }
  return {
    ok: true,
    record: {
      v: AUDIT_FORMAT_VERSION,
      reporter: { id: r.id, clientId: r.clientId, host: r.host, pid: r.pid },
      seq: o.seq,
      publishedAt: o.publishedAt,
      counts,
    },
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

export interface AuditPublisherOptions {
  /** host:port, or a list of them. */
  bootstrap: string | readonly string[]
  /** TLS and SASL for the connections to the brokers (default: plaintext, no authentication). */
  security?: KafkaSecurity
  counter: AuditCounter
  /** Audit topic (default `__cortado_audit`), created if missing. */
  auditTopic?: string
  /** Partitions of the audit topic when this publisher creates it (default 1). */
  auditTopicPartitions?: number
  /** Publish interval (default 1 minute); 0 disables the timer (flush()/close() only). */
  intervalMs?: number
  /** Client id of the audited client, reported in the reporter identity. */
  clientId?: string
  /** Reporter id (default: a random UUID). Must be unique per publisher instance. */
  reporterId?: string
  /** Records kept for resending while the audit topic is unreachable; the oldest are dropped past it (default 10000). */
  maxPendingRecords?: number
  /** Errors of timer-driven flushes (default: ignored; they are retried on the next flush). */
  onError?: (err: Error) => void
  /** Passed to the Kafka clients. */
  retries?: number
  retryDelay?: number
  timeout?: number
}

export class AuditPublisher {
  readonly reporter: AuditReporter
  readonly auditTopic: string
  /** Records dropped because more than maxPendingRecords awaited publication. */
  droppedRecords = 0
  #options: AuditPublisherOptions
  #bootstrap: string[]
  #nextSeq = 0
  #pending: AuditRecord[] = []
  #producer: Producer | undefined
  #topicReady = false
  #timer: NodeJS.Timeout | undefined
  #chain: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor(options: AuditPublisherOptions) {
    this.#options = options
    this.#bootstrap = typeof options.bootstrap === 'string' ? [options.bootstrap] : [...options.bootstrap]
    this.auditTopic = options.auditTopic ?? DEFAULT_AUDIT_TOPIC
    this.reporter = {
      id: options.reporterId ?? randomUUID(),
      clientId: options.clientId ?? 'cortado',
      host: hostname(),
      pid: process.pid,
    }
    const interval = options.intervalMs ?? DEFAULT_AUDIT_INTERVAL_MS
    if (interval > 0) {
      this.#timer = setInterval(() => {
        this.flush().catch((err: unknown) => this.#options.onError?.(err as Error))
      }, interval)
      this.#timer.unref()
    }
  }

  /** Records awaiting publication (after a failed flush). */
  get pendingRecords(): number {
    return this.#pending.length
  }

  /** The sequence number the next record will get. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /**
   * Drains the counter and publishes everything pending. Resolves with the number of records
   * published; rejects if publication failed (the records stay pending with their sequence numbers).
   */
  flush(): Promise<number> {
    const run = this.#chain.then(() => this.#flushNow())
    this.#chain = run.catch(() => undefined)
    return run
  }

  /** Stops the timer, publishes the remainder and closes the producer. Rejects if the final publish failed. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    try {
      await this.flush()
    } finally {
      await this.#dropProducer()
    }
  }

  async #flushNow(): Promise<number> {
    const counts = this.#options.counter.drain()
    const now = Date.now()
    for (let i = 0; i < counts.length; i += MAX_COUNTS_PER_RECORD) {
      this.#pending.push({
        v: AUDIT_FORMAT_VERSION,
        reporter: this.reporter,
        seq: this.#nextSeq++,
        publishedAt: now,
        counts: counts.slice(i, i + MAX_COUNTS_PER_RECORD),
      })
    }
    const max = this.#options.maxPendingRecords ?? 10_000
    if (this.#pending.length > max) {
      this.droppedRecords += this.#pending.length - max
      this.#pending.splice(0, this.#pending.length - max)
    }
    if (this.#pending.length === 0) return 0
    const batch = [...this.#pending]
    try {
      await this.#ensureTopic()
      this.#producer ??= new Producer({
        clientId: `${this.reporter.clientId}-audit`,
        bootstrapBrokers: this.#bootstrap,
        ...kafkaConnectionOptions(this.#options.security),
        idempotent: true,
        ...FIRST_INIT_PRODUCER,
        acks: ProduceAcks.ALL,
        retries: this.#options.retries ?? 5,
        retryDelay: this.#options.retryDelay ?? 200,
        ...(this.#options.timeout === undefined ? {} : { timeout: this.#options.timeout }),
      })
      const key = Buffer.from(this.reporter.id)
      await this.#producer.send({
        messages: batch.map((r) => ({
          topic: this.auditTopic,
          key,
          value: encodeAuditRecord(r),
          timestamp: BigInt(r.publishedAt),
        })),
      })
    } catch (err) {
      // Resend through a fresh producer next time; the report de-duplicates by (reporter id, seq).
      await this.#dropProducer()
      throw err
    }
    this.#pending.splice(0, batch.length)
    return batch.length
  }

  async #ensureTopic(): Promise<void> {
    if (this.#topicReady) return
    await ensureAuditTopic(
      this.#bootstrap,
      this.auditTopic,
      this.#options.auditTopicPartitions ?? 1,
      `${this.reporter.clientId}-audit-admin`,
      this.#options.security,
    )
    this.#topicReady = true
  }

  async #dropProducer(): Promise<void> {
    const p = this.#producer
    this.#producer = undefined
    if (p !== undefined) await p.close(true).catch(() => undefined)
  }
}

/**
 * Creates the audit topic unless it exists. A Kafka that will not create it (no CreateTopics, or
 * no ACL) gets a KafkaTopicError saying to create it beforehand.
 */
export async function ensureAuditTopic(
  bootstrap: readonly string[],
  topic: string,
  partitions = 1,
  clientId = 'cortado-audit-admin',
  security?: KafkaSecurity,
): Promise<void> {
  const admin = new Admin({
    clientId,
    bootstrapBrokers: [...bootstrap],
    ...kafkaConnectionOptions(security),
    retries: 3,
    retryDelay: 200,
  })
  try {
    if ((await admin.listTopics()).includes(topic)) return
    try {
      // replicas -1: the cluster's default.replication.factor.
      await admin.createTopics({ topics: [topic], partitions, replicas: -1 })
    } catch (err) {
      // Someone else created it meanwhile.
      if ((await admin.listTopics()).includes(topic)) return
      const why = kafkaRefusal(err)
      if (why === undefined) throw err
      throw new KafkaTopicError(
        `audit topic ${topic} does not exist and cannot be created: CreateTopics failed, ${why}. ` +
          `Create it beforehand with ${partitions} partition${partitions === 1 ? '' : 's'}.`,
        { cause: err },
      )
    }
  } finally {
    await admin.close()
  }
}
