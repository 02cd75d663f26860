// __consumer_offsets records in Kafka's byte layout, checked against an independent reading of
// the layout Burrow 1.2.1 parses (docs/reference/kafka-protocol.md §2).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  decodeOffsetsRecord,
  groupMetadataKey,
  groupMetadataValue,
  javaStringHash,
  offsetCommitKey,
  offsetCommitValue,
  partitionForGroup,
} from '../../../src/broker/groups/offsets-topic.ts'

/** Burrow's reader: int16 length strings, big-endian integers. */
class BurrowReader {
  pos = 0
  readonly b: Buffer
  constructor(b: Buffer) {
    this.b = b
  }
  i16() {
    const v = this.b.readInt16BE(this.pos)
    this.pos += 2
    return v
  }
  i32() {
    const v = this.b.readInt32BE(this.pos)
    this.pos += 4
    return v
  }
  i64() {
    const v = Number(this.b.readBigInt64BE(this.pos))
    this.pos += 8
    return v
  }
  str() {
    const n = this.i16()
    if (n < 0) return ''
    const s = this.b.toString('utf8', this.pos, this.pos + n)
    this.pos += n
    return s
  }
  bytes() {
    const n = this.i32()
    if (n < 0) return Buffer.alloc(0)
    const v = this.b.subarray(this.pos, this.pos + n)
    this.pos += n
    return v
  }
}

void test('offset commit key v1 and value v3 have the layout Burrow reads', () => {
  const key = new BurrowReader(offsetCommitKey('my-group', 'orders', 7))
  assert.equal(key.i16(), 1)
  assert.equal(key.str(), 'my-group')
  assert.equal(key.str(), 'orders')
  assert.equal(key.i32(), 7)
  assert.equal(key.pos, key.b.length)
  const value = new BurrowReader(
    offsetCommitValue({ offset: 12345, leaderEpoch: -1, metadata: 'm', commitTimestamp: 1_700_000_000_000 }),
  )
  assert.equal(value.i16(), 3)
  assert.equal(value.i64(), 12345)
  assert.equal(value.i32(), -1)
  assert.equal(value.str(), 'm')
  assert.equal(value.i64(), 1_700_000_000_000)
  assert.equal(value.pos, value.b.length)
})

void test('group metadata key v2 and value v1 carry members and their assignments for Burrow', () => {
  const key = new BurrowReader(groupMetadataKey('my-group'))
  assert.equal(key.i16(), 2)
  assert.equal(key.str(), 'my-group')
  // ConsumerProtocolAssignment v0: one topic, partitions 0 and 2, no user data.
  const assignment = Buffer.from([
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    6,
    ...Buffer.from('orders'),
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    2,
    0xff,
    0xff,
    0xff,
    0xff,
  ])
  const bytes = groupMetadataValue({
    protocolType: 'consumer',
    generation: 4,
    protocol: 'range',
    leader: 'm-1',
    currentStateTimestamp: 5,
    members: [
      {
        memberId: 'm-1',
        groupInstanceId: null,
        clientId: 'c',
        clientHost: '/127.0.0.1',
        rebalanceTimeout: 300,
        sessionTimeout: 100,
        subscription: Buffer.from([1]),
        assignment,
      },
    ],
  })
  const v = new BurrowReader(bytes)
  assert.equal(v.i16(), 1)
  assert.equal(v.str(), 'consumer')
  assert.equal(v.i32(), 4)
  assert.equal(v.str(), 'range')
  assert.equal(v.str(), 'm-1')
  assert.equal(v.i32(), 1)
  assert.equal(v.str(), 'm-1')
  assert.equal(v.str(), 'c')
  assert.equal(v.str(), '/127.0.0.1')
  assert.equal(v.i32(), 300)
  assert.equal(v.i32(), 100)
  assert.deepEqual(v.bytes(), Buffer.from([1]))
  assert.deepEqual(v.bytes(), assignment)
  assert.equal(v.pos, v.b.length)
})

void test('static members need group metadata v3, which carries the instance id', () => {
  const bytes = groupMetadataValue({
    protocolType: 'consumer',
    generation: 1,
    protocol: 'range',
    leader: 'm',
    currentStateTimestamp: 9,
    members: [
      {
        memberId: 'm',
        groupInstanceId: 'worker-1',
        clientId: 'c',
        clientHost: 'h',
        rebalanceTimeout: 1,
        sessionTimeout: 2,
        subscription: Buffer.alloc(0),
        assignment: Buffer.alloc(0),
      },
    ],
  })
  assert.equal(bytes.readInt16BE(0), 3)
  const rec = decodeOffsetsRecord(groupMetadataKey('g'), bytes)
  assert.ok(rec.type === 'group' && rec.value !== null)
  assert.equal(rec.value.members[0].groupInstanceId, 'worker-1')
  assert.equal(rec.value.currentStateTimestamp, 9)
})

void test('records decode back, tombstones are null, unknown key versions are reported', () => {
  const rec = decodeOffsetsRecord(
    offsetCommitKey('g', 't', 1),
    offsetCommitValue({ offset: 5, leaderEpoch: 2, metadata: '', commitTimestamp: 1 }),
  )
  assert.deepEqual(rec, {
    type: 'offset',
    group: 'g',
    topic: 't',
    partition: 1,
    value: { offset: 5, leaderEpoch: 2, metadata: '', commitTimestamp: 1, expireTimestamp: -1 },
  })
  assert.deepEqual(decodeOffsetsRecord(offsetCommitKey('g', 't', 1), null), {
    type: 'offset',
    group: 'g',
    topic: 't',
    partition: 1,
    value: null,
  })
  assert.deepEqual(decodeOffsetsRecord(Buffer.from([0, 7, 0, 0]), null), { type: 'unknown', keyVersion: 7 })
})

void test('groups map to partitions as Kafka does (Java String.hashCode, abs, modulo)', () => {
  const reference = (s: string) => {
    let h = 0n
    for (const ch of s) h = BigInt.asIntN(32, h * 31n + BigInt(ch.charCodeAt(0)))
    return Number(h)
  }
  for (const s of ['', 'a', 'ab', 'my-consumer-group', 'x'.repeat(100), 'polygenelubricants'])
    assert.equal(javaStringHash(s), reference(s))
  assert.equal(javaStringHash('polygenelubricants'), -2147483648) // Java's famous MIN_VALUE hash
  assert.equal(partitionForGroup('polygenelubricants', 50), 0)
  assert.equal(partitionForGroup('ab', 50), 3105 % 50)
})
