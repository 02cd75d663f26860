// MessageAssembler: reassembly, duplicates, offsets of large messages, the safe offset and the
// delivered high watermark across restarts, eviction and expiry; and a seeded random
// interleaving of several producers' segments (with retried duplicates) in one partition,
// restarted at random points from its commits: every message delivered whole, once, in order.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  decodeCommitMetadata,
  encodeCommitMetadata,
  LargeMessageDroppedError,
  MessageAssembler,
  type ProcessResult,
  type SegmentInput,
} from '../../../src/client/large-message/assembler.ts'
import { HEADER_TYPE_V3, type LargeMessageHeader } from '../../../src/client/large-message/segment.ts'
import { mulberry32 } from '../../../src/util/random.ts'

const P = 't/0'

function id(n: number): Buffer {
  const b = Buffer.alloc(16)
  b.writeUInt32BE(n, 12)
  return b
}

function seg(offset: number, msg: number, seq: number, n: number, value: Buffer, size: number): SegmentInput {
  const header: LargeMessageHeader = {
    type: HEADER_TYPE_V3,
    messageId: id(msg),
    segmentNumber: seq,
    numberOfSegments: n,
    messageSizeInBytes: size,
  }
  return { offset, header, value }
}

function plain(offset: number, value: string): SegmentInput {
  return { offset, header: null, value: Buffer.from(value) }
}

const valueOf = (r: ProcessResult) =>
  r.kind === 'message' ? r.message.value?.toString() : r.kind === 'skipped' ? `skipped:${r.reason}` : r.kind

void test('segments reassemble; the offset of a large message is that of its last segment', () => {
  const a = new MessageAssembler()
  assert.equal(valueOf(a.process(P, seg(10, 1, 0, 3, Buffer.from('ab'), 5))), 'incomplete')
  assert.equal(valueOf(a.process(P, seg(11, 1, 2, 3, Buffer.from('e'), 5))), 'incomplete')
  const r = a.process(P, seg(12, 1, 1, 3, Buffer.from('cd'), 5))
  assert.deepEqual(r, { kind: 'message', message: { value: Buffer.from('abcde'), startOffset: 10, offset: 12 } })
  assert.equal(a.stats.bufferUsed, 0)
})

void test('safe offset: the javadoc example (0 = m0s0, 1 = m1, 2 = m0s1)', () => {
  const a = new MessageAssembler()
  a.process(P, seg(0, 0, 0, 2, Buffer.from('x'), 2))
  assert.equal(valueOf(a.process(P, plain(1, 'm1'))), 'm1')
  assert.deepEqual(a.commitPoint(P), { offset: 0, highWatermark: 2 })
  assert.equal(valueOf(a.process(P, seg(2, 0, 1, 2, Buffer.from('y'), 2))), 'xy')
  assert.deepEqual(a.commitPoint(P), { offset: 3, highWatermark: 3 })
  assert.equal(a.commitPoint('other/0'), undefined)
})

void test('restart from a commit: delivered messages skipped, the incomplete one reassembled', () => {
  const log = [seg(0, 0, 0, 2, Buffer.from('x'), 2), plain(1, 'm1'), seg(2, 0, 1, 2, Buffer.from('y'), 2)]
  const a = new MessageAssembler()
  a.process(P, log[0])
  a.process(P, log[1])
  const c = a.commitPoint(P)!
  const meta = encodeCommitMetadata(c.highWatermark)
  assert.equal(meta, '2,')
  const b = new MessageAssembler()
  b.restore(P, c.offset, decodeCommitMetadata(meta))
  assert.deepEqual(
    log.slice(c.offset).map((s) => valueOf(b.process(P, s))),
    ['incomplete', 'skipped:delivered', 'xy'],
  )
  assert.equal(decodeCommitMetadata(null), undefined)
  assert.equal(decodeCommitMetadata('junk'), undefined)
})

void test('restart: the tail of a delivered message whose head precedes the commit is skipped and holds nothing back', () => {
  const log = [
    seg(0, 0, 0, 2, Buffer.from('a'), 2),
    seg(1, 1, 0, 2, Buffer.from('c'), 2),
    seg(2, 0, 1, 2, Buffer.from('b'), 2),
    seg(3, 1, 1, 2, Buffer.from('d'), 2),
  ]
  const a = new MessageAssembler()
  assert.deepEqual(
    log.slice(0, 3).map((s) => valueOf(a.process(P, s))),
    ['incomplete', 'incomplete', 'ab'],
  )
  const c = a.commitPoint(P)!
  assert.deepEqual(c, { offset: 1, highWatermark: 3 })
  const b = new MessageAssembler()
  b.restore(P, c.offset, c.highWatermark)
  assert.deepEqual(
    log.slice(1).map((s) => valueOf(b.process(P, s))),
    ['incomplete', 'skipped:stale', 'cd'],
  )
  assert.deepEqual(b.commitPoint(P), { offset: 4, highWatermark: 4 })
})

void test('duplicated segments are ignored, also after their message completed', () => {
  const a = new MessageAssembler()
  const s0 = seg(0, 1, 0, 2, Buffer.from('a'), 2)
  a.process(P, s0)
  assert.equal(valueOf(a.process(P, { ...s0, offset: 1 })), 'skipped:duplicate')
  assert.equal(valueOf(a.process(P, seg(2, 1, 1, 2, Buffer.from('b'), 2))), 'ab')
  assert.equal(valueOf(a.process(P, seg(3, 1, 1, 2, Buffer.from('b'), 2))), 'skipped:duplicate')
  assert.deepEqual(
    a.commitPoint(P),
    { offset: 4, highWatermark: 4 },
    'a late duplicate does not hold the safe offset back',
  )
  assert.equal(a.stats.duplicates, 2)
})

void test('conflicting, overflowing and out-of-order segments are invalid', () => {
  const a = new MessageAssembler()
  a.process(P, seg(5, 1, 0, 3, Buffer.from('aa'), 5))
  assert.equal(valueOf(a.process(P, seg(6, 1, 1, 2, Buffer.from('b'), 5))), 'skipped:invalid')
  assert.equal(valueOf(a.process(P, seg(7, 1, 1, 3, Buffer.from('bbbb'), 5))), 'skipped:invalid')
  assert.equal(valueOf(a.process(P, seg(4, 1, 1, 3, Buffer.from('b'), 5))), 'skipped:invalid')
  assert.equal(valueOf(a.process(P, seg(8, 2, 0, 2, Buffer.from('toolong'), 3))), 'skipped:invalid')
  assert.equal(a.stats.invalid, 4)
})

void test('buffer pool: eldest incomplete message evicted first when over capacity (counted)', () => {
  const a = new MessageAssembler({ bufferCapacity: 10 })
  a.process('t/0', seg(0, 1, 0, 2, Buffer.alloc(4), 8))
  a.process('t/1', seg(0, 2, 0, 2, Buffer.alloc(4), 8))
  a.process('t/0', seg(1, 3, 0, 2, Buffer.alloc(4), 8)) // 12 > 10: message 1 (eldest) goes
  assert.deepEqual([a.stats.evicted, a.stats.bufferUsed], [1, 8])
  assert.equal(a.eldestIncomplete('t/0'), 1)
  assert.equal(valueOf(a.process('t/0', seg(2, 1, 1, 2, Buffer.alloc(4), 8))), 'incomplete', 'its tail now starts over')
  assert.equal(a.stats.evicted, 2, 'message 2 of t/1 was next eldest')
  assert.equal(valueOf(a.process('t/1', seg(1, 4, 0, 1, Buffer.from('ok'), 2))), 'ok')
})

void test('buffer pool: onDrop "throw" raises LargeMessageDroppedError', () => {
  const a = new MessageAssembler({ bufferCapacity: 5, onDrop: 'throw' })
  a.process(P, seg(0, 1, 0, 2, Buffer.alloc(4), 8))
  assert.throws(
    () => a.process(P, seg(1, 2, 0, 2, Buffer.alloc(4), 8)),
    (e: unknown) => e instanceof LargeMessageDroppedError && e.reason === 'capacity' && e.startOffset === 0,
  )
  assert.equal(a.eldestIncomplete(P), 1, 'message 2 is kept')
})

void test('incomplete messages expire after the offset gap; the safe offset moves on', () => {
  const a = new MessageAssembler({ expirationOffsetGap: 3 })
  a.process(P, seg(0, 1, 0, 2, Buffer.from('a'), 2))
  for (let o = 1; o <= 3; o++) a.process(P, plain(o, `p${o}`))
  assert.deepEqual(a.commitPoint(P), { offset: 0, highWatermark: 4 })
  a.process(P, plain(4, 'p4'))
  assert.equal(a.stats.expired, 1)
  assert.deepEqual(a.commitPoint(P), { offset: 5, highWatermark: 5 })
  const t = new MessageAssembler({ expirationOffsetGap: 3, onDrop: 'throw' })
  t.process(P, seg(0, 1, 0, 2, Buffer.from('a'), 2))
  assert.throws(
    () => t.process(P, plain(4, 'x')),
    (e: unknown) => e instanceof LargeMessageDroppedError && e.reason === 'expired',
  )
})

for (const seed of [1, 2, 3, 42, 1234]) {
  void test(`seeded interleaving of 4 producers' segments with duplicates and restarts (seed ${seed})`, () => {
    const rnd = mulberry32(seed)
    const SEG = 8
    // Each producer's records in its own order; a message is its segments (or one plain record).
    const queues: SegmentInput[][] = []
    const values = new Map<string, string>()
    let msg = 0
    for (let p = 0; p < 4; p++) {
      const q: SegmentInput[] = []
      for (let m = 0; m < 30; m++) {
        const n = ++msg
        const value = Buffer.from(Array.from({ length: Math.floor(rnd() * 60) }, () => 97 + Math.floor(rnd() * 26)))
        values.set(String(n), value.toString())
        if (value.length <= SEG) {
          q.push({ offset: -1, header: null, value: Buffer.concat([Buffer.from(`${n}:`), value]) })
          values.set(String(n), `${n}:${value.toString()}`)
          continue
        }
        const count = Math.ceil(value.length / SEG)
        for (let s = 0; s < count; s++) {
          const part = seg(-1, n, s, count, value.subarray(s * SEG, (s + 1) * SEG), value.length)
          q.push(part)
          if (rnd() < 0.1) q.push(part) // a retried send written twice
        }
      }
      queues.push(q)
    }
    const log: SegmentInput[] = []
    while (queues.some((q) => q.length > 0)) {
      const live = queues.filter((q) => q.length > 0)
      log.push({ ...live[Math.floor(rnd() * live.length)].shift()!, offset: log.length })
    }
    // Expected: each message once, at the offset where its last missing segment arrives.
    const expected: string[] = []
    const got = new Map<string, Set<number>>()
    for (const r of log) {
      if (r.header === null) {
        expected.push(r.value!.toString())
        continue
      }
      const k = r.header.messageId.readUInt32BE(12)
      const s = got.get(String(k)) ?? new Set<number>()
      got.set(String(k), s)
      if (s.has(r.header.segmentNumber) || s.size === r.header.numberOfSegments) continue
      s.add(r.header.segmentNumber)
      if (s.size === r.header.numberOfSegments) expected.push(values.get(String(k))!)
    }
    const delivered: string[] = []
    let a = new MessageAssembler()
    let restarts = 0
    for (let o = 0; o < log.length;) {
      const r = a.process(P, log[o])
      if (r.kind === 'message') {
        assert.equal(r.message.offset, o)
        delivered.push(r.message.value!.toString())
      }
      o++
      const c = a.commitPoint(P)!
      assert.ok(c.offset <= o && c.highWatermark >= c.offset)
      if (rnd() < 0.05) {
        // Killed here: a new consumer resumes from the commit and its metadata.
        a = new MessageAssembler()
        a.restore(P, c.offset, decodeCommitMetadata(encodeCommitMetadata(c.highWatermark)))
        o = c.offset
        restarts++
      }
    }
    assert.ok(restarts > 0)
    assert.equal(delivered.length, 120)
    assert.deepEqual(delivered, expected)
  })
}
