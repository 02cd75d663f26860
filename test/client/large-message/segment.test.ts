// The `_lm` header codec against golden bytes (li-apache-kafka-clients LargeMessageHeaderValue,
// V3: type | uuid.lsb | uuid.msb | segmentNumber | numberOfSegments | messageSizeInBytes, all
// big-endian), decoding's typed errors, and splitting.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  decodeLargeMessageHeader,
  encodeLargeMessageHeader,
  HEADER_TYPE_LEGACY,
  HEADER_TYPE_V3,
  LARGE_MESSAGE_HEADER,
  messageIdToString,
  splitRecord,
} from '../../../src/client/large-message/segment.ts'

const ID = Buffer.from('00112233445566778899aabbccddeeff', 'hex') // UUID 00112233-4455-6677-8899-aabbccddeeff

void test('V3 header: golden bytes, lsb before msb', () => {
  const bytes = encodeLargeMessageHeader({
    type: HEADER_TYPE_V3,
    messageId: ID,
    segmentNumber: 1,
    numberOfSegments: 3,
    messageSizeInBytes: 2_000_000,
  })
  assert.equal(
    bytes.toString('hex'),
    '02' + '8899aabbccddeeff' + '0011223344556677' + '00000001' + '00000003' + '001e8480',
  )
  const d = decodeLargeMessageHeader(bytes)
  assert.ok(d.ok)
  assert.deepEqual(d.header, {
    type: 2,
    messageId: ID,
    segmentNumber: 1,
    numberOfSegments: 3,
    messageSizeInBytes: 2_000_000,
  })
  assert.equal(messageIdToString(d.header.messageId), '00112233-4455-6677-8899-aabbccddeeff')
})

void test('LEGACY header (25 bytes, no size) decodes with size -1', () => {
  const bytes = encodeLargeMessageHeader({
    type: HEADER_TYPE_LEGACY,
    messageId: ID,
    segmentNumber: 0,
    numberOfSegments: 2,
    messageSizeInBytes: 0,
  })
  assert.equal(bytes.toString('hex'), '00' + '8899aabbccddeeff' + '0011223344556677' + '00000000' + '00000002')
  const d = decodeLargeMessageHeader(bytes)
  assert.ok(d.ok)
  assert.equal(d.header.messageSizeInBytes, -1)
})

void test('bad headers are typed errors, never throws', () => {
  const good = encodeLargeMessageHeader({
    type: HEADER_TYPE_V3,
    messageId: ID,
    segmentNumber: 0,
    numberOfSegments: 2,
    messageSizeInBytes: 10,
  })
  const cases: [string, Buffer, RegExp][] = [
    ['short', good.subarray(0, 10), /10 bytes/],
    ['long', Buffer.concat([good, Buffer.alloc(1)]), /30 bytes/],
    ['type', Buffer.concat([Buffer.from([7]), good.subarray(1)]), /type 7/],
    [
      'seq out of range',
      (() => {
        const b = Buffer.from(good)
        b.writeInt32BE(2, 17)
        return b
      })(),
      /out of range/,
    ],
    [
      'no segments',
      (() => {
        const b = Buffer.from(good)
        b.writeInt32BE(0, 21)
        return b
      })(),
      /> 0/,
    ],
    [
      'negative size',
      (() => {
        const b = Buffer.from(good)
        b.writeInt32BE(-5, 25)
        return b
      })(),
      /negative/,
    ],
  ]
  for (const [name, bytes, re] of cases) {
    const d = decodeLargeMessageHeader(bytes)
    assert.equal(d.ok, false, name)
    if (!d.ok) assert.match(d.error, re, name)
  }
})

void test('split: segments of at most segmentSize, null key becomes the message id, headers kept', () => {
  const value = Buffer.from(Array.from({ length: 25 }, (_, i) => i))
  const segs = splitRecord(
    {
      topic: 't',
      key: null,
      value,
      headers: [
        ['h', Buffer.from('x')],
        [LARGE_MESSAGE_HEADER, Buffer.from('old')],
      ],
      timestamp: 5,
    },
    10,
    ID,
  )
  assert.equal(segs.length, 3)
  assert.deepEqual(
    segs.map((s) => s.value?.length),
    [10, 10, 5],
  )
  assert.deepEqual(Buffer.concat(segs.map((s) => s.value!)), value)
  for (const [i, s] of segs.entries()) {
    assert.deepEqual(s.key, ID)
    assert.equal(s.partition, undefined)
    assert.equal(s.timestamp, 5)
    assert.deepEqual(
      s.headers!.map(([k]) => k),
      ['h', LARGE_MESSAGE_HEADER],
    )
    const d = decodeLargeMessageHeader(s.headers![1][1])
    assert.ok(d.ok)
    assert.deepEqual(d.header, {
      type: HEADER_TYPE_V3,
      messageId: ID,
      segmentNumber: i,
      numberOfSegments: 3,
      messageSizeInBytes: 25,
    })
  }
})

void test('split: explicit key and partition kept; small, empty and null values unchanged', () => {
  const segs = splitRecord({ topic: 't', partition: 4, key: Buffer.from('k'), value: Buffer.alloc(21) }, 10, ID)
  assert.equal(segs.length, 3)
  assert.ok(segs.every((s) => s.partition === 4 && s.key?.toString() === 'k'))
  for (const value of [Buffer.alloc(10), Buffer.alloc(0), null]) {
    const r = { topic: 't', key: null, value }
    assert.deepEqual(splitRecord(r, 10, ID), [r])
  }
  assert.throws(() => splitRecord({ topic: 't', key: null, value: Buffer.alloc(1) }, 0, ID), RangeError)
})
