// The replication record envelope (src/db/replication/envelope.ts): round trips of every record
// type, golden bytes (a format change must be deliberate), and every malformed input decoding to
// an error value, never an exception (invariant 6, docs/invariants.md), including a seeded fuzz.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  decodeEnvelope,
  encodeEnvelope,
  type Envelope,
  HEADER_SIZE,
  MAGIC,
  RecordType,
  VERSION,
} from '../../../src/db/replication/envelope.ts'
import { mulberry32 } from '../../../src/util/random.ts'

const GUID = Buffer.from('00112233445566778899aabbccddeeff', 'hex')

/** An independent bitwise CRC-32 (IEEE, reflected), to check the checksum field by another route. */
function crc32Reference(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const b of bytes) {
    crc ^= b
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

const samples: Envelope[] = [
  { generation: 3, scn: 7, producerGuid: GUID, sequence: 0, payload: { type: RecordType.BEGIN, count: 2 } },
  {
    generation: 3,
    scn: 7,
    producerGuid: GUID,
    sequence: 1,
    payload: {
      type: RecordType.DATA,
      op: {
        kind: 'put',
        table: 'users',
        key: ['alice', 'x'],
        doc: { name: 'Alice', n: 1, nested: { a: [1, 'é'] } },
        schemaVersion: 2,
        index: [['name', 'Alice']],
      },
    },
  },
  {
    generation: 3,
    scn: 7,
    producerGuid: GUID,
    sequence: 2,
    payload: { type: RecordType.DATA, op: { kind: 'delete', table: 't', key: ['a'] } },
  },
  { generation: 3, scn: 7, producerGuid: GUID, sequence: 3, payload: { type: RecordType.END, count: 2 } },
  {
    generation: 4,
    scn: 0,
    producerGuid: GUID,
    sequence: 0,
    payload: { type: RecordType.GENERATION_START, node: 'node-1', nonce: 'c0ffee' },
  },
  {
    generation: 4,
    scn: 1,
    producerGuid: GUID,
    sequence: 1,
    payload: {
      type: RecordType.TXN,
      ops: [
        { kind: 'put', table: 'users', key: ['bob'], doc: { name: 'Bob' }, schemaVersion: 1, index: [] },
        { kind: 'delete', table: 't', key: ['b'] },
      ],
    },
  },
  // Extremes of each header field.
  {
    generation: 0x7fffffff,
    scn: 2 ** 48 - 1,
    producerGuid: Buffer.alloc(16, 0xff),
    sequence: 0x7fffffff,
    payload: { type: RecordType.BEGIN, count: 0 },
  },
  {
    generation: 0,
    scn: 0,
    producerGuid: Buffer.alloc(16),
    sequence: 0,
    payload: { type: RecordType.END, count: 1_000_000 },
  },
]

test('every record type round-trips, header fields included', () => {
  for (const e of samples) {
    const bytes = encodeEnvelope(e)
    const r = decodeEnvelope(bytes)
    assert.ok(r.ok, `decode failed: ${r.ok ? '' : r.error}`)
    assert.equal(r.envelope.generation, e.generation)
    assert.equal(r.envelope.scn, e.scn)
    assert.equal(r.envelope.sequence, e.sequence)
    assert.ok(r.envelope.producerGuid.equals(e.producerGuid))
    assert.deepEqual(r.envelope.payload, e.payload)
    // The decoded guid is a copy, not a view into the record buffer.
    bytes.fill(0)
    assert.ok(r.envelope.producerGuid.equals(e.producerGuid))
  }
})

test('encoding is deterministic', () => {
  for (const e of samples) assert.ok(encodeEnvelope(e).equals(encodeEnvelope(e)))
})

test('the header layout is as documented', () => {
  assert.equal(HEADER_SIZE, 37)
  assert.equal(MAGIC, 0x43)
  assert.equal(VERSION, 1)
  assert.deepEqual(RecordType, { BEGIN: 1, DATA: 2, END: 3, TXN: 4, GENERATION_START: 10 })
  const bytes = encodeEnvelope({
    generation: 0x01020304,
    scn: 0x0a0b0c0d0e0f,
    producerGuid: GUID,
    sequence: 0x11223344,
    payload: { type: RecordType.END, count: 5 },
  })
  assert.equal(bytes[0], 0x43)
  assert.equal(bytes[1], 1)
  assert.equal(bytes[2], 3)
  assert.equal(bytes.subarray(3, 7).toString('hex'), '01020304')
  assert.equal(bytes.subarray(7, 13).toString('hex'), '0a0b0c0d0e0f')
  assert.equal(bytes.subarray(13, 29).toString('hex'), GUID.toString('hex'))
  assert.equal(bytes.subarray(29, 33).toString('hex'), '11223344')
  assert.equal(bytes.readUInt32BE(33), crc32Reference(bytes.subarray(37)))
  assert.equal(bytes.subarray(37).toString('utf8'), '{"count":5}')
})

// Golden records, written out byte by byte: a change to the format fails here first.
const golden: { name: string; envelope: Envelope; hex: string }[] = [
  {
    name: 'BEGIN',
    envelope: samples[0],
    hex:
      '43' +
      '01' +
      '01' +
      '00000003' +
      '000000000007' +
      '00112233445566778899aabbccddeeff' +
      '00000000' +
      'f1f6316a' +
      Buffer.from('{"count":2}').toString('hex'),
  },
  {
    name: 'DATA',
    envelope: samples[2],
    hex:
      '43' +
      '01' +
      '02' +
      '00000003' +
      '000000000007' +
      '00112233445566778899aabbccddeeff' +
      '00000002' +
      'f4f4c73b' +
      Buffer.from('{"op":{"kind":"delete","table":"t","key":["a"]}}').toString('hex'),
  },
  {
    name: 'END',
    envelope: { ...samples[3], sequence: 2 },
    hex:
      '43' +
      '01' +
      '03' +
      '00000003' +
      '000000000007' +
      '00112233445566778899aabbccddeeff' +
      '00000002' +
      'f1f6316a' +
      Buffer.from('{"count":2}').toString('hex'),
  },
  {
    name: 'TXN',
    envelope: {
      generation: 3,
      scn: 8,
      producerGuid: GUID,
      sequence: 5,
      payload: { type: RecordType.TXN, ops: [{ kind: 'delete', table: 't', key: ['a'] }] },
    },
    hex:
      '43' +
      '01' +
      '04' +
      '00000003' +
      '000000000008' +
      '00112233445566778899aabbccddeeff' +
      '00000005' +
      'b0ae18d3' +
      Buffer.from('{"ops":[{"kind":"delete","table":"t","key":["a"]}]}').toString('hex'),
  },
  {
    name: 'GENERATION_START',
    envelope: {
      generation: 4,
      scn: 0,
      producerGuid: GUID,
      sequence: 0,
      payload: { type: RecordType.GENERATION_START, node: 'n1', nonce: 'ab' },
    },
    hex:
      '43' +
      '01' +
      '0a' +
      '00000004' +
      '000000000000' +
      '00112233445566778899aabbccddeeff' +
      '00000000' +
      '7c53fde2' +
      Buffer.from('{"node":"n1","nonce":"ab"}').toString('hex'),
  },
]

test('golden bytes for one record of each type', () => {
  for (const g of golden) {
    const bytes = encodeEnvelope(g.envelope)
    assert.equal(bytes.toString('hex'), g.hex, g.name)
    // The golden checksum is the CRC-32 of the payload, computed independently.
    assert.equal(bytes.readUInt32BE(33), crc32Reference(bytes.subarray(HEADER_SIZE)), g.name)
    const r = decodeEnvelope(Buffer.from(g.hex, 'hex'))
    assert.ok(r.ok, g.name)
    assert.deepEqual(
      { ...r.envelope, producerGuid: r.envelope.producerGuid.toString('hex') },
      { ...g.envelope, producerGuid: GUID.toString('hex') },
      g.name,
    )
  }
})

test('a producer guid that is not 16 bytes is refused by the encoder, not padded with stale memory', () => {
  for (const len of [0, 8, 15, 17]) {
    assert.throws(
      () => encodeEnvelope({ ...samples[0], producerGuid: Buffer.alloc(len, 1) }),
      RangeError,
      `guid of ${len} bytes`,
    )
  }
})

/** A record with a valid header and checksum around any payload bytes. */
function withPayload(
  type: number,
  payload: Buffer | string,
  header: Partial<{ magic: number; version: number }> = {},
): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const out = Buffer.alloc(HEADER_SIZE + body.length)
  out[0] = header.magic ?? MAGIC
  out[1] = header.version ?? VERSION
  out[2] = type
  out.writeInt32BE(1, 3)
  out.writeUIntBE(1, 7, 6)
  GUID.copy(out, 13)
  out.writeInt32BE(0, 29)
  out.writeUInt32BE(crc32Reference(body), 33)
  body.copy(out, HEADER_SIZE)
  return out
}

function assertError(bytes: Buffer | null, pattern: RegExp, label: string): void {
  let r
  assert.doesNotThrow(() => {
    r = decodeEnvelope(bytes)
  }, label)
  assert.ok(r !== undefined)
  const result = r as ReturnType<typeof decodeEnvelope>
  assert.equal(result.ok, false, label)
  if (!result.ok) {
    assert.equal(typeof result.error, 'string', label)
    assert.match(result.error, pattern, label)
  }
}

test('short input and null are errors', () => {
  assertError(null, /shorter/, 'null')
  assertError(Buffer.alloc(0), /shorter/, 'empty')
  const valid = encodeEnvelope(samples[0])
  for (let n = 0; n < HEADER_SIZE; n++) assertError(valid.subarray(0, n), /shorter/, `truncated to ${n}`)
  // Header present, payload cut: the checksum no longer matches.
  for (let n = HEADER_SIZE; n < valid.length; n++)
    assertError(valid.subarray(0, n), /checksum/, `payload truncated to ${n}`)
})

test('bad magic and bad version are errors', () => {
  for (const magic of [0, 0x42, 0x44, 0xff])
    assertError(withPayload(RecordType.BEGIN, '{"count":1}', { magic }), /magic/, `magic ${magic}`)
  for (const version of [0, 2, 0xff])
    assertError(withPayload(RecordType.BEGIN, '{"count":1}', { version }), /version/, `version ${version}`)
})

test('a checksum mismatch is an error, for a flip in the payload or in the checksum itself', () => {
  const valid = encodeEnvelope(samples[1])
  for (let i = HEADER_SIZE; i < valid.length; i += 7) {
    const bad = Buffer.from(valid)
    bad[i] ^= 0x01
    assertError(bad, /checksum/, `payload byte ${i}`)
  }
  for (let i = 33; i < 37; i++) {
    const bad = Buffer.from(valid)
    bad[i] ^= 0x80
    assertError(bad, /checksum/, `checksum byte ${i}`)
  }
})

test('a payload that is not JSON, or not an object, is an error', () => {
  for (const text of ['', '{', 'count:1', '{"count":1', '\u0000', 'undefined', "{'count':1}"])
    assertError(withPayload(RecordType.BEGIN, text), /not JSON/, JSON.stringify(text))
  assertError(withPayload(RecordType.BEGIN, Buffer.from([0xff, 0xfe, 0x00])), /not JSON/, 'binary')
  for (const text of ['null', '1', '"x"', 'true'])
    assertError(withPayload(RecordType.END, text), /not an object|count/, text)
})

test('missing or mistyped fields are errors', () => {
  const cases: [number, string, RegExp][] = [
    [RecordType.BEGIN, '{}', /count/],
    [RecordType.BEGIN, '{"count":"2"}', /count/],
    [RecordType.BEGIN, '{"count":1.5}', /count/],
    [RecordType.BEGIN, '{"count":null}', /count/],
    [RecordType.BEGIN, '[2]', /count/],
    [RecordType.END, '{"n":2}', /count/],
    [RecordType.END, '{"count":[2]}', /count/],
    [RecordType.DATA, '{}', /operation/],
    [RecordType.DATA, '{"op":null}', /operation/],
    [RecordType.DATA, '{"op":"put"}', /operation/],
    [RecordType.DATA, '{"op":3}', /operation/],
    [RecordType.GENERATION_START, '{}', /node\/nonce/],
    [RecordType.GENERATION_START, '{"node":"n1"}', /node\/nonce/],
    [RecordType.GENERATION_START, '{"nonce":"x"}', /node\/nonce/],
    [RecordType.GENERATION_START, '{"node":1,"nonce":"x"}', /node\/nonce/],
    [RecordType.GENERATION_START, '{"node":"n","nonce":7}', /node\/nonce/],
  ]
  for (const [type, text, pattern] of cases) assertError(withPayload(type, text), pattern, `type ${type} ${text}`)
})

test('a TXN record without operations is an error', () => {
  assertError(withPayload(RecordType.TXN, '{"ops":[]}'), /TXN without operations/, 'empty ops')
  assertError(withPayload(RecordType.TXN, '{"ops":{}}'), /TXN without operations/, 'ops not a list')
  assertError(withPayload(RecordType.TXN, '{"count":1}'), /TXN without operations/, 'no ops')
})

test('an unknown record type is an error', () => {
  for (const type of [0, 5, 9, 11, 0x7f, 0xff])
    assertError(withPayload(type, '{"count":1,"op":{},"node":"a","nonce":"b"}'), /unknown record type/, `type ${type}`)
})

test('fuzz: 10k random inputs never throw, and garbage is never accepted', () => {
  const seed = 0x5eed
  const rand = mulberry32(seed)
  const int = (n: number): number => Math.floor(rand() * n)
  const valid = samples.map(encodeEnvelope)
  let accepted = 0
  for (let i = 0; i < 10_000; i++) {
    const mode = i % 4
    let bytes: Buffer
    if (mode === 0) {
      // Pure garbage.
      bytes = Buffer.alloc(int(120))
      for (let j = 0; j < bytes.length; j++) bytes[j] = int(256)
    } else if (mode === 1) {
      // A valid record with a few bytes flipped, or truncated / extended.
      bytes = Buffer.from(valid[int(valid.length)])
      for (let k = 1 + int(3); k > 0; k--) bytes[int(bytes.length)] ^= 1 + int(255)
      if (rand() < 0.3) bytes = bytes.subarray(0, int(bytes.length + 1))
    } else if (mode === 2) {
      // A valid garbage-bearing header with a correct checksum over random payload bytes, so the
      // decoder's JSON and field checks are reached.
      const body = Buffer.alloc(int(40))
      for (let j = 0; j < body.length; j++) body[j] = int(256)
      bytes = withPayload([1, 2, 3, 4, 10, int(256)][int(6)], body)
    } else {
      // JSON-ish payloads with random field shapes behind a correct checksum.
      const values = [
        '1',
        '-1',
        '0.5',
        '"s"',
        'null',
        'true',
        '[]',
        '{}',
        '{"kind":"put"}',
        '[1,2]',
        '1e400',
        '"\\ud800"',
      ]
      const fields = ['count', 'op', 'ops', 'node', 'nonce', 'type', '__proto__', 'constructor']
      const parts: string[] = []
      for (let k = int(4); k > 0; k--) parts.push(`"${fields[int(fields.length)]}":${values[int(values.length)]}`)
      let text = `{${parts.join(',')}}`
      if (rand() < 0.2) text = text.slice(0, int(text.length))
      bytes = withPayload([1, 2, 3, 4, 10, int(256)][int(6)], text)
    }
    let r: ReturnType<typeof decodeEnvelope> | undefined
    try {
      r = decodeEnvelope(bytes)
    } catch (error) {
      assert.fail(`seed ${seed} case ${i} (mode ${mode}) threw ${String(error)} on ${bytes.toString('hex')}`)
    }
    if (mode === 0) assert.equal(r.ok, false, `seed ${seed} case ${i}: garbage accepted: ${bytes.toString('hex')}`)
    if (!r.ok) {
      assert.equal(typeof r.error, 'string')
      assert.ok(r.error.length > 0)
      continue
    }
    accepted++
    // Whatever is accepted is well-typed.
    const p = r.envelope.payload
    assert.ok([1, 2, 3, 4, 10].includes(p.type), `case ${i}`)
    if (p.type === RecordType.TXN) assert.ok(Array.isArray(p.ops) && p.ops.length > 0, `case ${i}`)
    if (p.type === RecordType.BEGIN || p.type === RecordType.END) assert.ok(Number.isInteger(p.count), `case ${i}`)
    if (p.type === RecordType.DATA) assert.ok(typeof p.op === 'object' && p.op !== null, `case ${i}`)
    if (p.type === RecordType.GENERATION_START)
      assert.ok(typeof p.node === 'string' && typeof p.nonce === 'string', `case ${i}`)
    assert.equal(r.envelope.producerGuid.length, 16)
    assert.ok(
      Number.isInteger(r.envelope.generation) &&
        Number.isInteger(r.envelope.scn) &&
        Number.isInteger(r.envelope.sequence),
    )
  }
  // The structured modes do reach acceptance sometimes: the fuzz exercises both outcomes.
  assert.ok(accepted > 0, 'no fuzz case was accepted: the structured modes are not reaching the field checks')
})
