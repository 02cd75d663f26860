// AuditCounter (pure aggregation) and computeAuditReport (pure report), without a broker.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AuditCounter, auditBytes, bucketStartOf } from '../../../src/client/audit/counter.ts'
import { type AuditRecord, decodeAuditRecord, encodeAuditRecord } from '../../../src/client/audit/publisher.ts'
import { computeAuditReport } from '../../../src/client/audit/report.ts'

const T0 = Date.UTC(2024, 0, 1, 13, 0, 0)
const MIN = 60_000

void test('counts messages and bytes per (topic, bucket, outcome); drain returns and resets', () => {
  const c = new AuditCounter({ side: 'produce' })
  c.record('t', T0 + 5, 'attempt', 10)
  c.record('t', T0 + 59_999, 'attempt', 20)
  c.record('t', BigInt(T0 + 60_000), 'attempt', 1)
  c.record('t', new Date(T0 + 1), 'success', 10)
  c.record('u', String(T0), 'failure', 3)
  assert.equal(c.size, 4)
  assert.deepEqual(c.drain(), [
    {
      side: 'produce',
      topic: 't',
      group: null,
      bucketStart: T0,
      bucketMs: MIN,
      outcome: 'attempt',
      messages: 2,
      bytes: 30,
    },
    {
      side: 'produce',
      topic: 't',
      group: null,
      bucketStart: T0,
      bucketMs: MIN,
      outcome: 'success',
      messages: 1,
      bytes: 10,
    },
    {
      side: 'produce',
      topic: 't',
      group: null,
      bucketStart: T0 + MIN,
      bucketMs: MIN,
      outcome: 'attempt',
      messages: 1,
      bytes: 1,
    },
    {
      side: 'produce',
      topic: 'u',
      group: null,
      bucketStart: T0,
      bucketMs: MIN,
      outcome: 'failure',
      messages: 1,
      bytes: 3,
    },
  ])
  assert.equal(c.size, 0)
  assert.deepEqual(c.drain(), [])
})

void test('consume side keys by group; configurable bucket; bad input rejected', () => {
  const c = new AuditCounter({ side: 'consume', group: 'g1', bucketMs: 10_000 })
  c.record('t', T0 + 12_345, 'success', 7)
  c.record('t', T0 + 12_345, 'success', 7, 'g2')
  c.record('t', T0 + 19_999, 'success', 1)
  assert.deepEqual(
    c.drain().map((x) => [x.group, x.bucketStart - T0, x.messages, x.bytes]),
    [
      ['g1', 10_000, 2, 8],
      ['g2', 10_000, 1, 7],
    ],
  )
  assert.throws(() => new AuditCounter({ side: 'consume' }).record('t', T0, 'success', 1), TypeError)
  assert.throws(() => new AuditCounter({ side: 'produce' }).record('t', T0, 'success', 1, 'g'), TypeError)
  assert.throws(() => c.record('t', T0, 'success', -1), RangeError)
  assert.throws(() => c.record('t', Number.NaN, 'success', 1), RangeError)
  assert.throws(() => c.record('', T0, 'success', 1), TypeError)
  assert.throws(() => new AuditCounter({ side: 'produce', bucketMs: 0 }), RangeError)
  assert.equal(bucketStartOf(-1, 1000), -1000)
  assert.equal(auditBytes('ké', Buffer.alloc(5)), 8)
  assert.equal(auditBytes(null, undefined), 0)
})

void test('a large message is one record() call: counted once with its whole size', () => {
  const c = new AuditCounter({ side: 'consume', group: 'g' })
  const whole = 20 * 1024 * 1024
  c.record('t', T0, 'success', whole)
  assert.deepEqual(
    c.drain().map((x) => [x.messages, x.bytes]),
    [[1, whole]],
  )
})

function rec(id: string, seq: number, counts: AuditRecord['counts']): AuditRecord {
  return { v: 1, reporter: { id, clientId: 'c', host: 'h', pid: 1 }, seq, publishedAt: T0, counts }
}

void test('computeAuditReport: side by side per bucket, window [from, to), duplicates by (reporter, seq), verdicts', () => {
  const p = (bucket: number, messages: number, outcome: 'success' | 'attempt' = 'success') => ({
    side: 'produce' as const,
    topic: 't',
    group: null,
    bucketStart: T0 + bucket * MIN,
    bucketMs: MIN,
    outcome,
    messages,
    bytes: messages * 10,
  })
  const k = (bucket: number, messages: number, group = 'g') => ({
    side: 'consume' as const,
    topic: 't',
    group,
    bucketStart: T0 + bucket * MIN,
    bucketMs: MIN,
    outcome: 'success' as const,
    messages,
    bytes: messages * 10,
  })
  const records = [
    rec('P', 0, [p(-1, 5), p(0, 10), p(0, 10, 'attempt'), p(1, 4), p(60, 9)]),
    rec('P', 0, [p(-1, 5), p(0, 10), p(0, 10, 'attempt'), p(1, 4), p(60, 9)]), // republished
    rec('C', 0, [k(0, 7), k(1, 4), k(60, 9), k(0, 10, 'other')]),
    rec('C', 1, [k(0, 3)]),
  ]
  const r = computeAuditReport(records, { topic: 't', group: 'g', from: T0, to: new Date(T0 + 60 * MIN) })
  assert.deepEqual(
    r.buckets.map((b) => [b.bucketStart - T0, b.produced.messages, b.consumed.messages, b.difference]),
    [
      [0, 10, 10, 0],
      [MIN, 4, 4, 0],
    ],
  )
  assert.deepEqual(
    [r.total.produced, r.total.consumed, r.total.produceAttempts.messages],
    [{ messages: 14, bytes: 140 }, { messages: 14, bytes: 140 }, 10],
  )
  assert.deepEqual(
    [r.verdict, r.complete, r.missing, r.extra, r.recordsRead, r.duplicateRecords],
    ['complete', true, 0, 0, 4, 1],
  )
  assert.match(r.text, /verdict: complete/)

  const missing = computeAuditReport(records.slice(0, 3), { topic: 't', group: 'g', from: T0, to: T0 + 60 * MIN })
  assert.deepEqual(
    [missing.verdict, missing.complete, missing.missing, missing.total.consumed.messages],
    ['missing', false, 3, 11],
  )
  assert.match(missing.text, /verdict: missing 3\n/)

  const extra = computeAuditReport([...records, rec('C', 2, [k(1, 2)])], {
    topic: 't',
    group: 'g',
    from: T0,
    to: T0 + 60 * MIN,
  })
  assert.deepEqual([extra.verdict, extra.extra], ['extra', 2])
  assert.match(extra.text, /verdict: extra 2 \(duplicates\)/)

  const odd = computeAuditReport(records, { topic: 't', group: 'g', from: T0 + 1, to: T0 + 2 * MIN })
  assert.equal(odd.aligned, false)
  assert.match(odd.text, /not aligned/)
  assert.throws(() => computeAuditReport(records, { topic: 't', group: 'g', from: T0, to: T0 }), RangeError)
})

void test('decodeAuditRecord: round trip; bad values are typed errors, never throws', () => {
  const r = rec('R', 3, [
    {
      side: 'consume',
      topic: 't',
      group: 'g',
      bucketStart: T0,
      bucketMs: MIN,
      outcome: 'success',
      messages: 2,
      bytes: 9,
    },
  ])
  assert.deepEqual(decodeAuditRecord(encodeAuditRecord(r)), { ok: true, record: r })
  for (const bad of [
    null,
    Buffer.from('{'),
    Buffer.from('[]'),
    Buffer.from('{"v":2}'),
    Buffer.from(JSON.stringify({ ...r, seq: -1 })),
    Buffer.from(JSON.stringify({ ...r, counts: [{ ...r.counts[0], outcome: 'maybe' }] })),
    Buffer.alloc((1 << 20) + 1),
  ]) {
    const d = decodeAuditRecord(bad)
    assert.equal(d.ok, false)
  }
})
