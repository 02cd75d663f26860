// The schema-driven codec: golden bytes captured from real clients, round trips of every API at
// every version, and hostile input (truncated, random) that must fail with ProtocolError only.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { APIS } from '../../src/protocol/apis.ts'
import { ProtocolError } from '../../src/protocol/errors.ts'
import { type ApiVersionsRequest } from '../../src/protocol/messages/api-versions-request.ts'
import { apiVersionsResponseSchema } from '../../src/protocol/messages/api-versions-response.ts'
import { type MetadataRequest, metadataRequestSchema } from '../../src/protocol/messages/metadata-request.ts'
import { type ProduceRequest, produceRequestSchema } from '../../src/protocol/messages/produce-request.ts'
import { Reader } from '../../src/protocol/reader.ts'
import { decode, encode, type FieldSchema, type MessageSchema } from '../../src/protocol/schema.ts'
import { Writer } from '../../src/protocol/writer.ts'
import { mulberry32 } from '../../src/util/random.ts'

function encodeToBuffer(schema: MessageSchema, version: number, value: unknown): Buffer {
  const w = new Writer()
  encode(schema, version, value, w)
  return w.toBuffer()
}

void test('decodes the ApiVersions v3 request librdkafka 2.0.2 sends first (captured bytes)', () => {
  // Body after the v2 request header: compact "librdkafka", compact "2.0.2", no tagged fields.
  const body = Buffer.concat([
    Buffer.from([0x0b]),
    Buffer.from('librdkafka'),
    Buffer.from([0x06]),
    Buffer.from('2.0.2'),
    Buffer.from([0x00]),
  ])
  const spec = APIS.get(18)!
  const req = decode<ApiVersionsRequest>(spec.request, 3, new Reader(body))
  assert.equal(req.clientSoftwareName, 'librdkafka')
  assert.equal(req.clientSoftwareVersion, '2.0.2')
})

void test('encodes an ApiVersions v0 response byte for byte', () => {
  const bytes = encodeToBuffer(apiVersionsResponseSchema, 0, {
    errorCode: 35,
    apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }],
  })
  assert.deepEqual([...bytes], [0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3])
})

void test('encodes an ApiVersions v3 response with compact arrays and tagged fields', () => {
  const bytes = encodeToBuffer(apiVersionsResponseSchema, 3, {
    errorCode: 0,
    apiKeys: [{ apiKey: 0, minVersion: 0, maxVersion: 11 }],
    throttleTimeMs: 0,
  })
  // error 0, compact array of 1 (len+1 = 2), key 0 min 0 max 11, entry tags 0, throttle 0, top-level tags 0
  assert.deepEqual([...bytes], [0, 0, 2, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0])
})

void test('Metadata v0 with no topics and v1 with a null topic list are told apart', () => {
  const v0 = decode<MetadataRequest>(metadataRequestSchema, 0, new Reader(Buffer.from([0, 0, 0, 0])))
  assert.deepEqual(v0.topics, [])
  const v1 = decode<MetadataRequest>(metadataRequestSchema, 1, new Reader(Buffer.from([0xff, 0xff, 0xff, 0xff])))
  assert.equal(v1.topics, null)
  assert.throws(
    () => decode(metadataRequestSchema, 0, new Reader(Buffer.from([0xff, 0xff, 0xff, 0xff]))),
    ProtocolError,
  )
})

void test('Produce v3 (classic) and v9 (flexible) decode the records as a view of the frame', () => {
  const records = Buffer.from('not-really-a-batch')
  for (const version of [3, 9]) {
    const bytes = encodeToBuffer(produceRequestSchema, version, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 30000,
      topicData: [{ name: 'orders', partitionData: [{ index: 2, records }] }],
    })
    const req = decode<ProduceRequest>(produceRequestSchema, version, new Reader(bytes))
    assert.equal(req.acks, -1)
    assert.equal(req.topicData[0].name, 'orders')
    assert.equal(req.topicData[0].partitionData[0].index, 2)
    assert.deepEqual(req.topicData[0].partitionData[0].records, records)
  }
})

void test('unknown tagged fields are skipped; known ones are read', () => {
  // ApiVersions v3 request with an unknown tag 7 (3 bytes) at the top level.
  const body = Buffer.concat([Buffer.from([0x02, 0x61, 0x02, 0x31, 0x01, 0x07, 0x03, 1, 2, 3])])
  const req = decode<ApiVersionsRequest>(APIS.get(18)!.request, 3, new Reader(body))
  assert.equal(req.clientSoftwareName, 'a')
  assert.equal(req.clientSoftwareVersion, '1')
})

function sample(
  fields: readonly FieldSchema[],
  version: number,
  rand: () => number,
  depth = 0,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of fields) {
    if (version < f.versions[0] || version > f.versions[1]) continue
    const nullable = f.nullable !== undefined && version >= f.nullable[0] && version <= f.nullable[1]
    if (nullable && rand() < 0.2 && f.type !== 'struct') {
      out[f.name] = null
      continue
    }
    if (f.type === 'array') {
      const n = depth > 2 ? 0 : Math.floor(rand() * 3)
      out[f.name] = Array.from({ length: n }, () =>
        f.items === 'struct' ? sample(f.fields ?? [], version, rand, depth + 1) : primitive(f.items ?? 'int8', rand),
      )
    } else if (f.type === 'struct') {
      out[f.name] = sample(f.fields ?? [], version, rand, depth + 1)
    } else {
      out[f.name] = primitive(f.type, rand)
    }
  }
  return out
}

function primitive(type: string, rand: () => number): unknown {
  const int = (bits: number) => Math.floor(rand() * 2 ** bits) - 2 ** (bits - 1)
  switch (type) {
    case 'int8':
      return int(8)
    case 'int16':
      return int(16)
    case 'int32':
      return int(32)
    case 'int64':
      return int(48)
    case 'uint16':
      return Math.floor(rand() * 65536)
    case 'uint32':
      return Math.floor(rand() * 2 ** 32)
    case 'float64':
      return rand() * 1000
    case 'bool':
      return rand() < 0.5
    case 'string':
      return 'héllo-'.repeat(Math.floor(rand() * 3))
    case 'uuid':
      return Buffer.from(Array.from({ length: 16 }, () => Math.floor(rand() * 256)))
    default:
      return Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)))
  }
}

/** Only the fields the version carries, so the comparison ignores filled-in defaults. */
function project(
  fields: readonly FieldSchema[],
  version: number,
  value: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of fields) {
    if (version < f.versions[0] || version > f.versions[1]) continue
    const v = value[f.name]
    if (f.fields !== undefined && v !== null && v !== undefined) {
      out[f.name] = Array.isArray(v)
        ? v.map((x: Record<string, unknown>) => project(f.fields ?? [], version, x))
        : project(f.fields, version, v as Record<string, unknown>)
    } else {
      out[f.name] = v
    }
  }
  return out
}

void test('every request and response of every API round-trips at every version', () => {
  const rand = mulberry32(42)
  let cases = 0
  for (const spec of APIS.values()) {
    for (const schema of [spec.request, spec.response]) {
      for (let v = schema.validVersions[0]; v <= schema.validVersions[1]; v++) {
        for (let i = 0; i < 5; i++) {
          const value = sample(schema.fields, v, rand)
          const bytes = encodeToBuffer(schema, v, value)
          const r = new Reader(bytes)
          const back = decode<Record<string, unknown>>(schema, v, r)
          assert.equal(r.remaining, 0, `${schema.name} v${v} left bytes unread`)
          assert.deepEqual(project(schema.fields, v, back), project(schema.fields, v, value), `${schema.name} v${v}`)
          cases++
        }
      }
    }
  }
  assert.ok(cases > 500)
})

void test('truncated and random frames fail with ProtocolError, never anything else', () => {
  const rand = mulberry32(7)
  for (const spec of APIS.values()) {
    for (let v = spec.versions[0]; v <= spec.versions[1]; v++) {
      const bytes = encodeToBuffer(spec.request, v, sample(spec.request.fields, v, rand))
      for (let cut = 0; cut < bytes.length; cut++) {
        try {
          decode(spec.request, v, new Reader(bytes.subarray(0, cut)))
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `${spec.name} v${v} cut at ${cut}: ${String(err)}`)
        }
      }
      for (let i = 0; i < 50; i++) {
        const junk = Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)))
        try {
          decode(spec.request, v, new Reader(junk))
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `${spec.name} v${v} junk: ${String(err)}`)
        }
      }
    }
  }
})

void test('a hostile array length cannot make the decoder allocate', () => {
  // Metadata v1: topics array claiming 2^31-1 entries in a 4-byte body.
  assert.throws(
    () => decode(metadataRequestSchema, 1, new Reader(Buffer.from([0x7f, 0xff, 0xff, 0xff]))),
    ProtocolError,
  )
})

void test('null in a field the version cannot make null is written as empty, never as unreadable bytes', () => {
  const bytes = encodeToBuffer(produceRequestSchema, 2, {
    acks: 1,
    timeoutMs: 1,
    topicData: [{ name: null, partitionData: null }],
  })
  const back = decode<ProduceRequest>(produceRequestSchema, 2, new Reader(bytes))
  assert.equal(back.topicData[0].name, '')
  assert.deepEqual(back.topicData[0].partitionData, [])
})
