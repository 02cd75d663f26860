// The audit report: "did consumer group G receive every message produced to topic T between
// 13:00 and 14:00?" Reads the audit topic (publisher.ts) from the beginning up to its current
// end — a plain fetch from the earliest offset, no consumer group, nothing committed — keeps
// each (reporter id, seq) once, and sets produced successes beside consumed successes of group G
// for T, per bucket and in total.
//
// A bucket belongs to the window [from, to) when its start does: bucketStart ∈ [from, to). Align
// from/to to the bucket size (1 minute by default) for an exact answer; the text says when they
// are not aligned.
import { Consumer, protocolErrors } from '@platformatic/kafka'
import { type AuditCount } from './counter.ts'
import { type AuditRecord, DEFAULT_AUDIT_TOPIC, decodeAuditRecord } from './publisher.ts'
import { kafkaConnectionOptions, type KafkaSecurity } from '../kafka-security.ts'

export interface AuditTally {
  messages: number
  bytes: number
}

export interface AuditBucketRow {
  bucketStart: number
  bucketEnd: number
  produced: AuditTally
  consumed: AuditTally
  /** Produce-side attempts and failures, for context. */
  produceAttempts: AuditTally
  produceFailures: AuditTally
  /** produced.messages - consumed.messages */
  difference: number
}

export type AuditVerdict = 'complete' | 'missing' | 'extra' | 'missing+extra'

export interface AuditReport {
  topic: string
  group: string
  from: number
  to: number
  buckets: AuditBucketRow[]
  total: Omit<AuditBucketRow, 'bucketStart' | 'bucketEnd'>
  /** Messages produced but not consumed, summed over buckets where produced > consumed. */
  missing: number
  /** Messages consumed more often than produced (duplicates), summed over buckets where consumed > produced. */
  extra: number
  verdict: AuditVerdict
  complete: boolean
  /** Audit records read, republished duplicates dropped, and undecodable records skipped. */
  recordsRead: number
  duplicateRecords: number
  invalidRecords: number
  /** Bucket sizes seen in the window, and whether from/to are aligned to all of them. */
  bucketSizes: number[]
  aligned: boolean
  text: string
}

export interface AuditReportQuery {
  topic: string
  group: string
  from: number | Date
  to: number | Date
}

const zero = (): AuditTally => ({ messages: 0, bytes: 0 })
const add = (t: AuditTally, c: AuditCount) => {
  t.messages += c.messages
  t.bytes += c.bytes
}
const ms = (t: number | Date) => (t instanceof Date ? t.getTime() : t)

/** Computes the report from decoded audit records (pure). Records with a (reporter id, seq) already seen are ignored. */
export function computeAuditReport(
  records: Iterable<AuditRecord>,
  query: AuditReportQuery,
  invalidRecords = 0,
): AuditReport {
  const from = ms(query.from)
  const to = ms(query.to)
  if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to)
    throw new RangeError(`audit window [${from}, ${to}) is empty or invalid`)
  const seen = new Set<string>()
  let recordsRead = 0
  let duplicateRecords = 0
  const rows = new Map<number, AuditBucketRow>()
  const sizes = new Set<number>()
  for (const r of records) {
    recordsRead++
    const id = `${r.reporter.id}\u0000${r.seq}`
    if (seen.has(id)) {
      duplicateRecords++
      continue
    }
    seen.add(id)
    for (const c of r.counts) {
      if (c.topic !== query.topic || c.bucketStart < from || c.bucketStart >= to) continue
      if (c.side === 'consume' && c.group !== query.group) continue
      let row = rows.get(c.bucketStart)
      if (row === undefined) {
        row = {
          bucketStart: c.bucketStart,
          bucketEnd: c.bucketStart + c.bucketMs,
          produced: zero(),
          consumed: zero(),
          produceAttempts: zero(),
          produceFailures: zero(),
          difference: 0,
        }
        rows.set(c.bucketStart, row)
      }
      row.bucketEnd = Math.max(row.bucketEnd, c.bucketStart + c.bucketMs)
      sizes.add(c.bucketMs)
      if (c.side === 'produce') {
        add(
          c.outcome === 'success' ? row.produced : c.outcome === 'attempt' ? row.produceAttempts : row.produceFailures,
          c,
        )
      } else if (c.outcome === 'success') {
        add(row.consumed, c)
      }
    }
  }
  const buckets = [...rows.values()].sort((a, b) => a.bucketStart - b.bucketStart)
  const total = { produced: zero(), consumed: zero(), produceAttempts: zero(), produceFailures: zero(), difference: 0 }
  let missing = 0
  let extra = 0
  for (const b of buckets) {
    b.difference = b.produced.messages - b.consumed.messages
    if (b.difference > 0) missing += b.difference
    else extra -= b.difference
    for (const k of ['produced', 'consumed', 'produceAttempts', 'produceFailures'] as const) {
      total[k].messages += b[k].messages
      total[k].bytes += b[k].bytes
    }
  }
  total.difference = total.produced.messages - total.consumed.messages
  const verdict: AuditVerdict =
    missing === 0 && extra === 0
      ? 'complete'
      : missing > 0 && extra > 0
        ? 'missing+extra'
        : missing > 0
          ? 'missing'
          : 'extra'
  const bucketSizes = [...sizes].sort((a, b) => a - b)
  const aligned = bucketSizes.every((s) => from % s === 0 && to % s === 0)
  const report: AuditReport = {
    topic: query.topic,
    group: query.group,
    from,
    to,
    buckets,
    total,
    missing,
    extra,
    verdict,
    complete: verdict === 'complete',
    recordsRead,
    duplicateRecords,
    invalidRecords,
    bucketSizes,
    aligned,
    text: '',
  }
  report.text = renderAuditReport(report)
  return report
}

/** Two counts side by side per bucket, the total, and the verdict. */
export function renderAuditReport(r: AuditReport): string {
  const iso = (t: number) => new Date(t).toISOString()
  const head = ['bucket start', 'produced msgs', 'consumed msgs', 'produced bytes', 'consumed bytes', 'diff']
  const cells = r.buckets.map((b) =>
    [
      iso(b.bucketStart),
      b.produced.messages,
      b.consumed.messages,
      b.produced.bytes,
      b.consumed.bytes,
      signed(b.difference),
    ].map(String),
  )
  cells.push(
    [
      'total',
      r.total.produced.messages,
      r.total.consumed.messages,
      r.total.produced.bytes,
      r.total.consumed.bytes,
      signed(r.total.difference),
    ].map(String),
  )
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i])))
      .join('  ')
      .trimEnd()
  const lines = [
    `audit of topic ${r.topic}, consumer group ${r.group}, [${iso(r.from)}, ${iso(r.to)})`,
    '',
    line(head),
    ...cells.slice(0, -1).map(line),
    line(widths.map((w) => '-'.repeat(w))),
    line(cells[cells.length - 1]),
    '',
  ]
  if (r.total.produceAttempts.messages > 0 || r.total.produceFailures.messages > 0) {
    lines.push(`producer attempts ${r.total.produceAttempts.messages}, failures ${r.total.produceFailures.messages}`)
  }
  if (r.buckets.length === 0) lines.push('no audit counts in this window')
  if (!r.aligned)
    lines.push(
      `note: the window is not aligned to the bucket size (${r.bucketSizes.join(', ')} ms); buckets are included by their start`,
    )
  lines.push(
    `audit records: ${r.recordsRead} read, ${r.duplicateRecords} republished duplicates ignored, ${r.invalidRecords} invalid skipped`,
  )
  const parts: string[] = []
  if (r.missing > 0) parts.push(`missing ${r.missing}`)
  if (r.extra > 0) parts.push(`extra ${r.extra} (duplicates)`)
  lines.push(`verdict: ${parts.length === 0 ? 'complete' : parts.join(', ')}`)
  return `${lines.join('\n')}\n`
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n)
}

export interface ReadAuditOptions {
  bootstrap: string | readonly string[]
  /** TLS and SASL for the connections to the brokers (default: plaintext, no authentication). */
  security?: KafkaSecurity
  auditTopic?: string
  clientId?: string
  /** Give up after this long (default 30 s). */
  timeoutMs?: number
}

/**
 * Every decodable record of the audit topic, from the earliest offset of each partition up to its
 * high watermark when first fetched. A missing audit topic reads as empty.
 */
export async function readAuditRecords(
  options: ReadAuditOptions,
): Promise<{ records: AuditRecord[]; invalid: number }> {
  const topic = options.auditTopic ?? DEFAULT_AUDIT_TOPIC
  const bootstrap = typeof options.bootstrap === 'string' ? [options.bootstrap] : [...options.bootstrap]
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  // groupId is required by the constructor; fetch() never joins the group or commits.
  const consumer = new Consumer({
    clientId: options.clientId ?? 'cortado-audit-report',
    groupId: 'cortado-audit-report-unused',
    bootstrapBrokers: bootstrap,
    ...kafkaConnectionOptions(options.security),
    retries: 3,
    retryDelay: 200,
  })
  const records: AuditRecord[] = []
  let invalid = 0
  try {
    let md
    try {
      md = await consumer.metadata({ topics: [topic], forceUpdate: true, autocreateTopics: false })
    } catch (err) {
      if (/unknown.?topic|UNKNOWN_TOPIC/i.test(describe(err))) return { records, invalid }
      throw err
    }
    const t = md.topics.get(topic)
    if (t === undefined) return { records, invalid }
    for (let partition = 0; partition < t.partitionsCount; partition++) {
      let next = 0n
      let high = -1n
      while (high < 0n || next < high) {
        if (Date.now() > deadline)
          throw new Error(`reading audit topic ${topic} partition ${partition} timed out at offset ${next} of ${high}`)
        const r = await consumer.fetch({
          node: t.partitions[partition].leader,
          maxWaitTime: 100,
          topics: [
            {
              topicId: t.id,
              partitions: [
                {
                  partition,
                  fetchOffset: next,
                  partitionMaxBytes: 8 << 20,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                },
              ],
            },
          ],
        })
        const p = r.responses[0]?.partitions[0]
        if (p === undefined) throw new Error(`audit fetch of ${topic}/${partition}: empty response`)
        if (p.errorCode === protocolErrors.OFFSET_OUT_OF_RANGE.code) {
          // Retention removed the start; begin at the log start offset.
          next = BigInt(p.logStartOffset)
          continue
        }
        if (p.errorCode !== protocolErrors.NONE.code)
          throw new Error(`audit fetch of ${topic}/${partition} at ${next}: error code ${p.errorCode}`)
        if (high < 0n) high = BigInt(p.highWatermark)
        if (next < BigInt(p.logStartOffset)) next = BigInt(p.logStartOffset)
        for (const batch of p.records ?? []) {
          for (const rec of batch.records) {
            const offset = BigInt(batch.firstOffset) + BigInt(rec.offsetDelta)
            if (offset < next) continue
            next = offset + 1n
            if (offset >= high) continue
            const d = decodeAuditRecord(rec.value)
            if (d.ok) records.push(d.record)
            else invalid++
          }
        }
      }
    }
  } finally {
    await consumer.close()
  }
  return { records, invalid }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const nested = (err as Error & { errors?: unknown[] }).errors
    return `${err.message} ${Array.isArray(nested) ? nested.map(describe).join(' ') : ''} ${JSON.stringify(err)}`
  }
  return String(err)
}

export interface RunAuditReportOptions extends ReadAuditOptions {
  topic: string
  group: string
  from: number | Date
  to: number | Date
}

/** Reads the audit topic and computes the report for topic/group over [from, to). */
export async function runAuditReport(options: RunAuditReportOptions): Promise<AuditReport> {
  const { records, invalid } = await readAuditRecords(options)
  return computeAuditReport(records, options, invalid)
}
