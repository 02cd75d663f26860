// The idempotent producer state machine (src/broker/log/producer-state.ts), without I/O: Kafka's
// rules for duplicates, sequence gaps, epochs, sequence wrap-around and unknown producers, expiry,
// and the snapshot encoding.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ErrorCode } from '../../../src/protocol/errors.ts'
import {
  decodeSnapshot,
  encodeSnapshot,
  INT32_MAX,
  incrementSequence,
  type ProducerBatch,
  type ProducerCheck,
  ProducerStateTable,
  SnapshotError,
} from '../../../src/broker/log/producer-state.ts'

const PID = 42

function b(baseSequence: number, records = 1, producerEpoch = 0, producerId = PID): ProducerBatch {
  return { producerId, producerEpoch, baseSequence, lastOffsetDelta: records - 1, maxTimestamp: 1000 + baseSequence }
}

/** check() then, if allowed, recordAppend() at `offset`: what the produce path does. */
function produce(t: ProducerStateTable, batch: ProducerBatch, offset: number, now = 0): ProducerCheck {
  const decision = t.check([batch])
  if (decision.kind === 'append') t.recordAppend([batch], offset, now)
  return decision
}

function errorCode(d: ProducerCheck): number | undefined {
  return d.kind === 'error' ? d.errorCode : undefined
}

test('an unknown producer is accepted at any sequence', () => {
  const t = new ProducerStateTable()
  assert.deepEqual(produce(t, b(17, 3), 0), { kind: 'append' })
  assert.equal(t.get(PID)?.epoch, 0)
  assert.deepEqual(t.get(PID)?.batches, [{ firstSeq: 17, lastSeq: 19, firstOffset: 0, lastOffset: 2, timestamp: 1017 }])
  // ... and then must continue in sequence.
  assert.equal(produce(t, b(20), 3).kind, 'append')
  assert.equal(errorCode(produce(t, b(22), 4)), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
})

test('a retry of each of the last five batches is a duplicate with its original offsets; older ones are out of order', () => {
  const t = new ProducerStateTable()
  let offset = 100
  const sent: { batch: ProducerBatch; firstOffset: number; lastOffset: number }[] = []
  let seq = 0
  for (let i = 0; i < 7; i++) {
    const batch = b(seq, i + 1)
    assert.equal(produce(t, batch, offset).kind, 'append')
    sent.push({ batch, firstOffset: offset, lastOffset: offset + i })
    offset += i + 1
    seq += i + 1
  }
  assert.equal(t.get(PID)?.batches.length, 5)
  for (const s of sent.slice(-5)) {
    const d = t.check([s.batch])
    assert.equal(d.kind, 'duplicate')
    if (d.kind === 'duplicate') {
      assert.equal(d.batch.firstOffset, s.firstOffset)
      assert.equal(d.batch.lastOffset, s.lastOffset)
      assert.equal(d.batch.timestamp, s.batch.maxTimestamp)
    }
  }
  // The two oldest are no longer remembered: a retry of them is a sequence error, not a duplicate.
  for (const s of sent.slice(0, 2)) assert.equal(errorCode(t.check([s.batch])), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  // A batch overlapping a remembered one without matching it exactly is out of order too.
  const last = sent[sent.length - 1].batch
  assert.equal(errorCode(t.check([b(last.baseSequence, 2)])), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  // Duplicates do not change the state.
  assert.equal(produce(t, b(seq), offset).kind, 'append')
})

test('a gap in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER (45)', () => {
  const t = new ProducerStateTable()
  produce(t, b(0, 5), 0)
  const d = t.check([b(6)])
  assert.equal(errorCode(d), 45)
  assert.match(d.kind === 'error' ? d.message : '', /sequence 6 does not follow 4/)
  assert.equal(t.check([b(5)]).kind, 'append')
})

test('an older epoch is INVALID_PRODUCER_EPOCH (47), even for a batch that was a duplicate under it', () => {
  const t = new ProducerStateTable()
  produce(t, b(0, 1, 3), 0)
  produce(t, b(1, 1, 3), 1)
  assert.equal(errorCode(t.check([b(2, 1, 2)])), ErrorCode.INVALID_PRODUCER_EPOCH)
  assert.equal(errorCode(t.check([b(0, 1, 2)])), 47)
  assert.equal(t.check([b(1, 1, 3)]).kind, 'duplicate')
})

test("an epoch bump must start at sequence 0, and forgets the old epoch's batches", () => {
  const t = new ProducerStateTable()
  produce(t, b(0, 3, 0), 0)
  produce(t, b(3, 3, 0), 3)
  // librdkafka's local bump: epoch + 1, sequences restart at 0.
  assert.equal(errorCode(t.check([b(6, 1, 1)])), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  assert.equal(errorCode(t.check([b(1, 1, 1)])), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  assert.equal(produce(t, b(0, 2, 1), 6).kind, 'append')
  assert.equal(t.get(PID)?.epoch, 1)
  assert.deepEqual(
    t.get(PID)?.batches.map((m) => [m.firstSeq, m.lastSeq, m.firstOffset]),
    [[0, 1, 6]],
  )
  // The old epoch is now fenced, its batches are not duplicates any more.
  assert.equal(errorCode(t.check([b(3, 3, 0)])), ErrorCode.INVALID_PRODUCER_EPOCH)
  assert.equal(t.check([b(0, 2, 1)]).kind, 'duplicate')
  assert.equal(t.check([b(2, 1, 1)]).kind, 'append')
  // Any higher epoch works, not only + 1.
  assert.equal(t.check([b(0, 1, 7)]).kind, 'append')
})

test('sequences wrap from Int32.MAX to 0', () => {
  assert.equal(incrementSequence(INT32_MAX, 1), 0)
  assert.equal(incrementSequence(INT32_MAX - 2, 4), 1)
  assert.equal(incrementSequence(5, 4), 9)
  const t = new ProducerStateTable()
  // A batch ending exactly at Int32.MAX, then one starting at 0.
  assert.equal(produce(t, b(INT32_MAX - 4, 5), 0).kind, 'append')
  assert.equal(t.get(PID)?.batches[0].lastSeq, INT32_MAX)
  assert.equal(errorCode(t.check([b(INT32_MAX)])), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  assert.equal(produce(t, b(0, 2), 5).kind, 'append')
  // A batch spanning the wrap: Int32.MAX - 1 .. 2 (lastSeq wraps to 2).
  const u = new ProducerStateTable()
  assert.equal(produce(u, b(INT32_MAX - 1, 5), 0).kind, 'append')
  assert.equal(u.get(PID)?.batches[0].lastSeq, 2)
  assert.equal(u.check([b(INT32_MAX - 1, 5)]).kind, 'duplicate')
  assert.equal(u.check([b(3)]).kind, 'append')
  assert.equal(errorCode(u.check([b(0)])), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
})

test('producers are independent; batches without a producer id are never looked at', () => {
  const t = new ProducerStateTable()
  produce(t, b(0, 1, 0, 1), 0)
  produce(t, b(0, 1, 0, 2), 1)
  assert.equal(t.check([b(1, 1, 0, 1)]).kind, 'append')
  assert.equal(t.check([b(0, 1, 0, 2)]).kind, 'duplicate')
  const plain: ProducerBatch = {
    producerId: -1,
    producerEpoch: -1,
    baseSequence: -1,
    lastOffsetDelta: 0,
    maxTimestamp: 0,
  }
  assert.equal(t.check([plain]).kind, 'append')
  t.recordAppend([plain], 2, 0)
  assert.equal(t.size, 2)
})

test('several batches in one append (produce v0-2) must chain; a duplicate among them makes the whole append a duplicate', () => {
  const t = new ProducerStateTable()
  assert.equal(t.check([b(0, 2), b(2, 3), b(5)]).kind, 'append')
  assert.equal(errorCode(t.check([b(0, 2), b(3)])), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  t.recordAppend([b(0, 2), b(2, 3)], 10, 0)
  assert.deepEqual(
    t.get(PID)?.batches.map((m) => [m.firstSeq, m.lastSeq, m.firstOffset, m.lastOffset]),
    [
      [0, 1, 10, 11],
      [2, 4, 12, 14],
    ],
  )
  const d = t.check([b(2, 3), b(5)])
  assert.equal(d.kind, 'duplicate')
  assert.equal(d.kind === 'duplicate' ? d.batch.firstOffset : -1, 12)
})

test('producers idle for producer.id.expiration.ms are forgotten, then accepted at any sequence', () => {
  const t = new ProducerStateTable()
  produce(t, b(0, 1, 0, 1), 0, 1000)
  produce(t, b(0, 1, 0, 2), 1, 5000)
  assert.equal(t.removeExpired(5999, 5000), 0)
  assert.equal(t.removeExpired(6000, 5000), 1)
  assert.equal(t.get(1), undefined)
  assert.ok(t.get(2))
  assert.equal(t.check([b(99, 1, 0, 1)]).kind, 'append')
  // maybeRemoveExpired runs at most once per interval.
  assert.equal(t.maybeRemoveExpired(20_000, 5000, 60_000), 1)
  produce(t, b(0, 1, 0, 3), 2, 20_000)
  assert.equal(t.maybeRemoveExpired(70_000, 5000, 60_000), 0)
  assert.equal(t.maybeRemoveExpired(80_000, 5000, 60_000), 1)
})

test('snapshots round-trip every entry and reject torn or corrupt bytes', () => {
  const t = new ProducerStateTable()
  let offset = 0
  for (let i = 0; i < 8; i++) {
    produce(t, b(i * 2, 2, 1, 7), offset, 123)
    offset += 2
  }
  produce(t, b(INT32_MAX, 3, 32767, 2 ** 40), offset, 456)
  const buf = encodeSnapshot(offset + 3, t.entries())
  const snap = decodeSnapshot(buf)
  assert.equal(snap.offset, offset + 3)
  assert.deepEqual(snap.entries, [...t.entries()])
  assert.deepEqual(decodeSnapshot(encodeSnapshot(0, [])), { offset: 0, entries: [] })
  assert.throws(() => decodeSnapshot(buf.subarray(0, buf.length - 1)), SnapshotError)
  assert.throws(() => decodeSnapshot(buf.subarray(0, 10)), SnapshotError)
  const flipped = Buffer.from(buf)
  flipped[flipped.length - 5] ^= 1
  assert.throws(() => decodeSnapshot(flipped), /CRC/)
  const versioned = Buffer.from(buf)
  versioned.writeInt16BE(9, 0)
  assert.throws(() => decodeSnapshot(versioned), /version 9/)
})
