import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { ErrorCode } from '../../src/protocol/errors.ts'
import { crc32c } from '../../src/protocol/crc32c.ts'
import {
  ATTR_CONTROL_MASK,
  ATTR_TIMESTAMP_TYPE_MASK,
  ATTRIBUTES_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BATCH_HEADER_SIZE,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  decodeRecords,
  encodeRecordBatch,
  LAST_OFFSET_DELTA_OFFSET,
  MAGIC_OFFSET,
  readBatchHeader,
  readInt64,
  RECORDS_COUNT_OFFSET,
  RecordBatchError,
  setBatchOffsets,
  validateProducedBatches,
  type ValidationResult,
  writeInt64,
} from '../../src/protocol/record-batch.ts'
import { mulberry32 } from '../../src/util/random.ts'

function fixCrc(buf: Buffer, pos = 0): Buffer {
  const end = pos + 12 + buf.readInt32BE(pos + BATCH_LENGTH_OFFSET)
  buf.writeUInt32BE(crc32c(buf, pos + ATTRIBUTES_OFFSET, end), pos + CRC_OFFSET)
  return buf
}

function errorOf(r: ValidationResult): { error: number; message: string } {
  assert.ok('error' in r, 'expected a validation error')
  return r
}

function sample(): Buffer {
  return encodeRecordBatch({
    records: [
      { key: Buffer.from('k1'), value: Buffer.from('v1'), timestamp: 1_700_000_000_000 },
      {
        key: null,
        value: Buffer.from('v2'),
        timestamp: 1_700_000_000_005,
        headers: [{ key: 'h', value: Buffer.from('x') }],
      },
      { key: Buffer.from('k3'), value: null, timestamp: 1_699_999_999_990 },
    ],
  })
}

test('encode, validate and decode round trip', () => {
  const batch = encodeRecordBatch({
    baseOffset: 42,
    records: [
      { key: Buffer.from('key'), value: Buffer.from('value'), timestamp: 1000 },
      {
        key: null,
        value: null,
        timestamp: 900,
        headers: [
          { key: 'a', value: null },
          { key: 'ü', value: Buffer.alloc(300, 7) },
        ],
      },
      { key: Buffer.alloc(200, 1), value: Buffer.alloc(70000, 2), timestamp: 5000 },
    ],
    producerId: 7,
    producerEpoch: 3,
    baseSequence: 11,
    partitionLeaderEpoch: 5,
  })
  const result = validateProducedBatches(batch)
  assert.ok('batches' in result)
  assert.equal(result.batches.length, 1)
  const h = result.batches[0]
  assert.equal(h.baseOffset, 42)
  assert.equal(h.batchLength, batch.length - 12)
  assert.equal(h.partitionLeaderEpoch, 5)
  assert.equal(h.magic, 2)
  assert.equal(h.crc, crc32c(batch, 21))
  assert.equal(h.lastOffsetDelta, 2)
  assert.equal(h.recordsCount, 3)
  assert.equal(h.baseTimestamp, 1000)
  assert.equal(h.maxTimestamp, 5000)
  assert.equal(h.producerId, 7)
  assert.equal(h.producerEpoch, 3)
  assert.equal(h.baseSequence, 11)

  const records = decodeRecords(batch)
  assert.equal(records.length, 3)
  assert.deepEqual(
    records.map((r) => r.offset),
    [42, 43, 44],
  )
  assert.deepEqual(
    records.map((r) => r.timestamp),
    [1000, 900, 5000],
  )
  assert.deepEqual(records[0].key, Buffer.from('key'))
  assert.deepEqual(records[0].value, Buffer.from('value'))
  assert.equal(records[1].key, null)
  assert.equal(records[1].value, null)
  assert.deepEqual(records[1].headers, [
    { key: 'a', value: null },
    { key: 'ü', value: Buffer.alloc(300, 7) },
  ])
  assert.deepEqual(records[2].key, Buffer.alloc(200, 1))
  assert.deepEqual(records[2].value, Buffer.alloc(70000, 2))
})

test('LogAppendTime batches decode every record with the max timestamp', () => {
  const batch = encodeRecordBatch({
    attributes: ATTR_TIMESTAMP_TYPE_MASK,
    records: [
      { key: null, value: Buffer.from('a'), timestamp: 10 },
      { key: null, value: Buffer.from('b'), timestamp: 20 },
    ],
  })
  assert.deepEqual(
    decodeRecords(batch).map((r) => r.timestamp),
    [20, 20],
  )
})

test('several concatenated batches validate', () => {
  const blob = Buffer.concat([
    sample(),
    sample(),
    encodeRecordBatch({ records: [{ key: null, value: Buffer.from('x') }] }),
  ])
  const result = validateProducedBatches(blob)
  assert.ok('batches' in result)
  assert.deepEqual(
    result.batches.map((b) => b.recordsCount),
    [3, 3, 1],
  )
})

test('setBatchOffsets rewrites offset and epoch without breaking the CRC', () => {
  const batch = sample()
  setBatchOffsets(batch, 0, 2 ** 40 + 5, 9)
  assert.ok('batches' in validateProducedBatches(batch))
  const h = readBatchHeader(batch, 0)
  assert.equal(h.baseOffset, 2 ** 40 + 5)
  assert.equal(h.partitionLeaderEpoch, 9)
  assert.equal(decodeRecords(batch)[2].offset, 2 ** 40 + 7)
})

test('int64 helpers handle negative and large values', () => {
  const buf = Buffer.alloc(8)
  for (const v of [
    0,
    1,
    -1,
    -2,
    2 ** 32,
    2 ** 32 - 1,
    -(2 ** 32) - 1,
    1_700_000_000_000,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
  ]) {
    writeInt64(buf, v, 0)
    assert.equal(buf.readBigInt64BE(0), BigInt(v))
    assert.equal(readInt64(buf, 0), v)
  }
})

test('batches encoded by KafkaJS validate and decode', async () => {
  const require = createRequire(import.meta.url)
  type KjsRecordBatch = (opts: Record<string, unknown>) => Promise<{ buffer: Buffer }>
  type KjsRecord = (opts: Record<string, unknown>) => unknown
  const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: KjsRecordBatch }
  const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as KjsRecord
  const records = [0, 1, 2, 3].map((i) =>
    Record({
      offsetDelta: i,
      timestampDelta: i * 10,
      key: Buffer.from(`k${i}`),
      value: Buffer.from(`value-${i}`),
      headers: { trace: `t${i}` },
    }),
  )
  const common = {
    firstTimestamp: 1000,
    maxTimestamp: 1030,
    lastOffsetDelta: 3,
    records,
    producerId: 5,
    producerEpoch: 0,
    firstSequence: 0,
  }
  const plain = (await RecordBatch({ ...common, compression: 0 })).buffer
  const r = validateProducedBatches(plain)
  assert.ok('batches' in r, JSON.stringify(r))
  const decoded = decodeRecords(plain)
  assert.deepEqual(
    decoded.map((d) => d.value?.toString()),
    ['value-0', 'value-1', 'value-2', 'value-3'],
  )
  assert.deepEqual(
    decoded.map((d) => d.timestamp),
    [1000, 1010, 1020, 1030],
  )
  assert.deepEqual(decoded[2].headers, [{ key: 'trace', value: Buffer.from('t2') }])

  const gzipped = (await RecordBatch({ ...common, compression: 1 })).buffer
  const g = validateProducedBatches(gzipped)
  assert.ok('batches' in g, JSON.stringify(g))
  assert.equal(g.batches[0].attributes & 7, 1)
  assert.throws(
    () => decodeRecords(gzipped),
    (e) => e instanceof RecordBatchError && e.code === ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
  )
})

test('rejects each kind of bad batch with the right error code', () => {
  const cases: [string, (b: Buffer) => Buffer, number, RegExp?][] = [
    ['empty', () => Buffer.alloc(0), ErrorCode.INVALID_RECORD],
    ['magic 0', (b) => (b.writeInt8(0, MAGIC_OFFSET), b), ErrorCode.INVALID_RECORD, /v0\/v1 not supported/],
    ['magic 1', (b) => (b.writeInt8(1, MAGIC_OFFSET), b), ErrorCode.INVALID_RECORD, /v0\/v1 not supported/],
    ['magic 3', (b) => (b.writeInt8(3, MAGIC_OFFSET), b), ErrorCode.INVALID_RECORD],
    ['bad CRC', (b) => ((b[b.length - 1] ^= 1), b), ErrorCode.CORRUPT_MESSAGE, /CRC/],
    ['CRC field flipped', (b) => ((b[CRC_OFFSET] ^= 0x80), b), ErrorCode.CORRUPT_MESSAGE],
    ['compression 5', (b) => fixCrc((b.writeInt16BE(5, ATTRIBUTES_OFFSET), b)), ErrorCode.UNSUPPORTED_COMPRESSION_TYPE],
    ['compression 7', (b) => fixCrc((b.writeInt16BE(7, ATTRIBUTES_OFFSET), b)), ErrorCode.UNSUPPORTED_COMPRESSION_TYPE],
    [
      'control batch',
      (b) => fixCrc((b.writeInt16BE(ATTR_CONTROL_MASK | 0x10, ATTRIBUTES_OFFSET), b)),
      ErrorCode.INVALID_RECORD,
      /control/,
    ],
    [
      'zero records',
      (b) => fixCrc((b.writeInt32BE(0, RECORDS_COUNT_OFFSET), b.writeInt32BE(-1, LAST_OFFSET_DELTA_OFFSET), b)),
      ErrorCode.INVALID_RECORD,
    ],
    [
      'lastOffsetDelta mismatch',
      (b) => fixCrc((b.writeInt32BE(1, LAST_OFFSET_DELTA_OFFSET), b)),
      ErrorCode.INVALID_RECORD,
    ],
    [
      'count too high',
      (b) => fixCrc((b.writeInt32BE(4, RECORDS_COUNT_OFFSET), b.writeInt32BE(3, LAST_OFFSET_DELTA_OFFSET), b)),
      ErrorCode.INVALID_RECORD,
    ],
    [
      'count too low',
      (b) => fixCrc((b.writeInt32BE(2, RECORDS_COUNT_OFFSET), b.writeInt32BE(1, LAST_OFFSET_DELTA_OFFSET), b)),
      ErrorCode.INVALID_RECORD,
    ],
    [
      'huge count',
      (b) =>
        fixCrc(
          (b.writeInt32BE(0x7fffffff, RECORDS_COUNT_OFFSET), b.writeInt32BE(0x7ffffffe, LAST_OFFSET_DELTA_OFFSET), b),
        ),
      ErrorCode.INVALID_RECORD,
    ],
    [
      'producer id without sequence',
      (b) => fixCrc((writeInt64(b, 12, 43), b.writeInt32BE(-1, BASE_SEQUENCE_OFFSET), b)),
      ErrorCode.INVALID_RECORD,
    ],
    ['trailing garbage', (b) => Buffer.concat([b, Buffer.alloc(5)]), ErrorCode.CORRUPT_MESSAGE],
    ['trailing partial header', (b) => Buffer.concat([b, b.subarray(0, 40)]), ErrorCode.CORRUPT_MESSAGE],
    ['truncated', (b) => b.subarray(0, b.length - 1), ErrorCode.CORRUPT_MESSAGE],
    ['header only', (b) => b.subarray(0, 30), ErrorCode.CORRUPT_MESSAGE],
    ['batchLength too small', (b) => (b.writeInt32BE(48, BATCH_LENGTH_OFFSET), b), ErrorCode.CORRUPT_MESSAGE],
    ['batchLength negative', (b) => (b.writeInt32BE(-5, BATCH_LENGTH_OFFSET), b), ErrorCode.CORRUPT_MESSAGE],
    ['batchLength overrun', (b) => (b.writeInt32BE(b.length, BATCH_LENGTH_OFFSET), b), ErrorCode.CORRUPT_MESSAGE],
    ['record length too long', (b) => fixCrc(((b[BATCH_HEADER_SIZE] += 2), b)), ErrorCode.INVALID_RECORD],
    [
      'extra bytes inside batch',
      (b) => {
        const grown = Buffer.concat([b, Buffer.from([0])])
        grown.writeInt32BE(grown.length - 12, BATCH_LENGTH_OFFSET)
        return fixCrc(grown)
      },
      ErrorCode.INVALID_RECORD,
    ],
  ]
  for (const [name, mutate, code, message] of cases) {
    const e = errorOf(validateProducedBatches(mutate(sample())))
    assert.equal(e.error, code, `${name}: ${e.message}`)
    if (message) assert.match(e.message, message, name)
  }
  // A bad batch after a good one fails the whole blob.
  const bad = sample()
  bad[bad.length - 1] ^= 1
  assert.equal(errorOf(validateProducedBatches(Buffer.concat([sample(), bad]))).error, ErrorCode.CORRUPT_MESSAGE)
})

test('a wrong offset delta inside a record is rejected', () => {
  const b = encodeRecordBatch({
    records: [
      { key: null, value: Buffer.from('a') },
      { key: null, value: Buffer.from('b') },
    ],
  })
  // Second record: length varint, attributes, timestampDelta varint(0), offsetDelta varint(1 -> zigzag 2).
  const first = b[BATCH_HEADER_SIZE] / 2 // zig-zag length of record 0
  const second = BATCH_HEADER_SIZE + 1 + first
  assert.equal(b[second + 3], 2)
  b[second + 3] = 4
  const e = errorOf(validateProducedBatches(fixCrc(b)))
  assert.equal(e.error, ErrorCode.INVALID_RECORD)
  assert.throws(() => decodeRecords(b), RecordBatchError)
})

test('fuzz: validation never throws on random, truncated or mutated input', () => {
  const random = mulberry32(12345)
  const rand = (n: number): number => Math.floor(random() * n)
  const check = (buf: Buffer): void => {
    const r = validateProducedBatches(buf)
    if ('error' in r) {
      assert.ok(
        (
          [ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE] as number[]
        ).includes(r.error),
        r.message,
      )
    } else {
      // Whatever passes must also decode (uncompressed) without a non-typed error.
      try {
        decodeRecords(buf)
      } catch (e) {
        assert.ok(e instanceof RecordBatchError, String(e))
      }
    }
  }
  for (let i = 0; i < 2000; i++) check(randomBytes(rand(300)))
  const base = Buffer.concat([
    sample(),
    encodeRecordBatch({
      records: [{ key: Buffer.alloc(150, 1), value: Buffer.alloc(400, 2), headers: [{ key: 'k', value: null }] }],
    }),
  ])
  for (let len = 0; len <= base.length; len++) check(Buffer.from(base.subarray(0, len)))
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.from(base)
    const flips = 1 + rand(4)
    for (let f = 0; f < flips; f++) b[rand(b.length)] = rand(256)
    check(b)
    // With the CRC repaired, the record walk sees the damage.
    if (b.readInt32BE(BATCH_LENGTH_OFFSET) >= 49 && b.readInt32BE(BATCH_LENGTH_OFFSET) + 12 <= b.length) {
      fixCrc(b)
      check(b)
      try {
        decodeRecords(b)
      } catch (e) {
        assert.ok(e instanceof RecordBatchError, String(e))
      }
    }
  }
})
