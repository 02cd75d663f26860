// Audit counting: pure aggregation of message and byte counts per (side, topic, time bucket of
// the record's timestamp, outcome[, consumer group]), in the shape of li-apache-kafka-clients'
// CountingAuditStats / AuditKey(topic, bucket, auditType) (docs/reference/anchors.md §4.4).
//
// The producer and consumer wrappers call record() once per *application-level* message (a
// large message split into segments is one message, counted with its whole size), never per
// segment. drain() hands the accumulated counts to the publisher and starts afresh.

export type AuditSide = 'produce' | 'consume'
export type AuditOutcome = 'attempt' | 'success' | 'failure'

export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['attempt', 'success', 'failure']
export const AUDIT_SIDES: readonly AuditSide[] = ['produce', 'consume']

/** Default bucket size: one minute of record timestamps. */
export const DEFAULT_BUCKET_MS = 60_000

/** One aggregated count, as drained and as published (see publisher.ts for the format). */
export interface AuditCount {
  side: AuditSide
  topic: string
  /** The consumer group (consume side); null on the produce side. */
  group: string | null
  /** Start of the bucket, ms since the epoch: the record timestamp floored to bucketMs. */
  bucketStart: number
  bucketMs: number
  outcome: AuditOutcome
  messages: number
  bytes: number
}

export interface AuditCounterOptions {
  side: AuditSide
  /** Bucket size in ms (default 1 minute). */
  bucketMs?: number
  /** Default consumer group for record() calls that give none (consume side only). */
  group?: string
}

/** A record timestamp as the Kafka clients give it: ms since the epoch. */
export type AuditTimestamp = number | bigint | string | Date

/** The record timestamp (ms) floored to the bucket size. */
export function bucketStartOf(timestampMs: number, bucketMs: number): number {
  return Math.floor(timestampMs / bucketMs) * bucketMs
}

/** The audited size of a message: key plus value bytes (as li-apache-kafka-clients counts it). */
export function auditBytes(
  key: Uint8Array | string | null | undefined,
  value: Uint8Array | string | null | undefined,
): number {
  const size = (x: Uint8Array | string | null | undefined) =>
    x == null ? 0 : typeof x === 'string' ? Buffer.byteLength(x) : x.byteLength
  return size(key) + size(value)
}

function toMillis(timestamp: AuditTimestamp): number {
  if (timestamp instanceof Date) return timestamp.getTime()
  if (typeof timestamp === 'bigint') return Number(timestamp)
  if (typeof timestamp === 'string') return Number(timestamp)
  return timestamp
}

export class AuditCounter {
  readonly side: AuditSide
  readonly bucketMs: number
  readonly group: string | null
  #counts = new Map<string, AuditCount>()

  constructor(options: AuditCounterOptions) {
    if (options.side !== 'produce' && options.side !== 'consume')
      throw new TypeError(`audit side must be produce or consume, got ${String(options.side)}`)
    const bucketMs = options.bucketMs ?? DEFAULT_BUCKET_MS
    if (!Number.isSafeInteger(bucketMs) || bucketMs <= 0)
      throw new RangeError(`audit bucketMs must be a positive integer, got ${bucketMs}`)
    if (options.side === 'produce' && options.group !== undefined)
      throw new TypeError('a produce-side audit counter has no consumer group')
    this.side = options.side
    this.bucketMs = bucketMs
    this.group = options.group ?? null
  }

  /**
   * Counts one application-level message of `bytes` bytes whose record timestamp is `timestamp`.
   * On the consume side the group is `group`, else the counter's default group.
   */
  record(topic: string, timestamp: AuditTimestamp, outcome: AuditOutcome, bytes: number, group?: string): void {
    if (typeof topic !== 'string' || topic.length === 0) throw new TypeError('audit topic must be a non-empty string')
    if (!AUDIT_OUTCOMES.includes(outcome))
      throw new TypeError(`audit outcome must be attempt, success or failure, got ${String(outcome)}`)
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      throw new RangeError(`audit bytes must be a non-negative integer, got ${bytes}`)
    const ms = toMillis(timestamp)
    if (!Number.isFinite(ms)) throw new RangeError(`audit timestamp must be a finite time, got ${String(timestamp)}`)
    let g: string | null = null
    if (this.side === 'consume') {
      g = group ?? this.group
      if (g === null) throw new TypeError('a consume-side audit count needs a consumer group')
    } else if (group !== undefined) {
      throw new TypeError('a produce-side audit count has no consumer group')
    }
    const bucketStart = bucketStartOf(ms, this.bucketMs)
    const key = JSON.stringify([topic, g, bucketStart, outcome])
    const c = this.#counts.get(key)
    if (c === undefined) {
      this.#counts.set(key, {
        side: this.side,
        topic,
        group: g,
        bucketStart,
        bucketMs: this.bucketMs,
        outcome,
        messages: 1,
        bytes,
      })
    } else {
      c.messages++
      c.bytes += bytes
    }
  }

  /** How many distinct keys are counted and not yet drained. */
  get size(): number {
    return this.#counts.size
  }

  /** The counts since the last drain (ordered by topic, group, bucket, outcome), and resets them. */
  drain(): AuditCount[] {
    const out = [...this.#counts.values()]
    this.#counts = new Map()
    return out.sort(compareCounts)
  }
}

export function compareCounts(a: AuditCount, b: AuditCount): number {
  return (
    cmp(a.side, b.side) ||
    cmp(a.topic, b.topic) ||
    cmp(a.group ?? '', b.group ?? '') ||
    a.bucketStart - b.bucketStart ||
    AUDIT_OUTCOMES.indexOf(a.outcome) - AUDIT_OUTCOMES.indexOf(b.outcome)
  )
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
