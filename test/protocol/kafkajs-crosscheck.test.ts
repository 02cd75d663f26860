// Our schema-driven codecs checked against an independent implementation: KafkaJS 2.2.4's
// hand-written per-version encoders and decoders. For every API and version both implement:
//   (1) KafkaJS encodes a request -> our decoder reads every field the version carries, with the
//       expected values, and consumes exactly all the bytes;
//   (2) our encoder writes a response -> KafkaJS decodes it to the expected values and reads
//       exactly all the bytes;
//   (3) where both sides encode the same request, the bytes are identical.
// Versions KafkaJS does not implement are left out. KafkaJS never speaks a flexible version of
// these APIs, so this covers the classic encodings only. Besides the nine APIs the broker
// advertises, the generated schemas it does not serve yet (groups, offsets, SASL, admin) are
// checked the same way at the end.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { APIS } from '../../src/protocol/apis.ts'
import {
  type AlterConfigsRequest,
  alterConfigsRequestSchema,
} from '../../src/protocol/messages/alter-configs-request.ts'
import {
  type AlterConfigsResponse,
  alterConfigsResponseSchema,
} from '../../src/protocol/messages/alter-configs-response.ts'
import { apiVersionsRequestSchema } from '../../src/protocol/messages/api-versions-request.ts'
import {
  type ApiVersionsResponse,
  apiVersionsResponseSchema,
} from '../../src/protocol/messages/api-versions-response.ts'
import {
  type CreatePartitionsRequest,
  createPartitionsRequestSchema,
} from '../../src/protocol/messages/create-partitions-request.ts'
import {
  type CreatePartitionsResponse,
  createPartitionsResponseSchema,
} from '../../src/protocol/messages/create-partitions-response.ts'
import {
  type CreateTopicsRequest,
  createTopicsRequestSchema,
} from '../../src/protocol/messages/create-topics-request.ts'
import {
  type CreateTopicsResponse,
  createTopicsResponseSchema,
} from '../../src/protocol/messages/create-topics-response.ts'
import {
  type DeleteGroupsRequest,
  deleteGroupsRequestSchema,
} from '../../src/protocol/messages/delete-groups-request.ts'
import {
  type DeleteGroupsResponse,
  deleteGroupsResponseSchema,
} from '../../src/protocol/messages/delete-groups-response.ts'
import {
  type DeleteRecordsRequest,
  deleteRecordsRequestSchema,
} from '../../src/protocol/messages/delete-records-request.ts'
import {
  type DeleteRecordsResponse,
  deleteRecordsResponseSchema,
} from '../../src/protocol/messages/delete-records-response.ts'
import {
  type DeleteTopicsRequest,
  deleteTopicsRequestSchema,
} from '../../src/protocol/messages/delete-topics-request.ts'
import {
  type DeleteTopicsResponse,
  deleteTopicsResponseSchema,
} from '../../src/protocol/messages/delete-topics-response.ts'
import {
  type DescribeConfigsRequest,
  describeConfigsRequestSchema,
} from '../../src/protocol/messages/describe-configs-request.ts'
import {
  type DescribeConfigsResponse,
  describeConfigsResponseSchema,
} from '../../src/protocol/messages/describe-configs-response.ts'
import {
  type DescribeGroupsRequest,
  describeGroupsRequestSchema,
} from '../../src/protocol/messages/describe-groups-request.ts'
import {
  type DescribeGroupsResponse,
  describeGroupsResponseSchema,
} from '../../src/protocol/messages/describe-groups-response.ts'
import { type FetchRequest, fetchRequestSchema } from '../../src/protocol/messages/fetch-request.ts'
import { type FetchResponse, fetchResponseSchema } from '../../src/protocol/messages/fetch-response.ts'
import {
  type FindCoordinatorRequest,
  findCoordinatorRequestSchema,
} from '../../src/protocol/messages/find-coordinator-request.ts'
import {
  type FindCoordinatorResponse,
  findCoordinatorResponseSchema,
} from '../../src/protocol/messages/find-coordinator-response.ts'
import { type HeartbeatRequest, heartbeatRequestSchema } from '../../src/protocol/messages/heartbeat-request.ts'
import { type HeartbeatResponse, heartbeatResponseSchema } from '../../src/protocol/messages/heartbeat-response.ts'
import {
  type InitProducerIdRequest,
  initProducerIdRequestSchema,
} from '../../src/protocol/messages/init-producer-id-request.ts'
import {
  type InitProducerIdResponse,
  initProducerIdResponseSchema,
} from '../../src/protocol/messages/init-producer-id-response.ts'
import { type JoinGroupRequest, joinGroupRequestSchema } from '../../src/protocol/messages/join-group-request.ts'
import { type JoinGroupResponse, joinGroupResponseSchema } from '../../src/protocol/messages/join-group-response.ts'
import { type LeaveGroupRequest, leaveGroupRequestSchema } from '../../src/protocol/messages/leave-group-request.ts'
import { type LeaveGroupResponse, leaveGroupResponseSchema } from '../../src/protocol/messages/leave-group-response.ts'
import { type ListGroupsRequest, listGroupsRequestSchema } from '../../src/protocol/messages/list-groups-request.ts'
import { type ListGroupsResponse, listGroupsResponseSchema } from '../../src/protocol/messages/list-groups-response.ts'
import { type ListOffsetsRequest, listOffsetsRequestSchema } from '../../src/protocol/messages/list-offsets-request.ts'
import {
  type ListOffsetsResponse,
  listOffsetsResponseSchema,
} from '../../src/protocol/messages/list-offsets-response.ts'
import { type MetadataRequest, metadataRequestSchema } from '../../src/protocol/messages/metadata-request.ts'
import { type MetadataResponse, metadataResponseSchema } from '../../src/protocol/messages/metadata-response.ts'
import {
  type OffsetCommitRequest,
  offsetCommitRequestSchema,
} from '../../src/protocol/messages/offset-commit-request.ts'
import {
  type OffsetCommitResponse,
  offsetCommitResponseSchema,
} from '../../src/protocol/messages/offset-commit-response.ts'
import { type OffsetFetchRequest, offsetFetchRequestSchema } from '../../src/protocol/messages/offset-fetch-request.ts'
import {
  type OffsetFetchResponse,
  offsetFetchResponseSchema,
} from '../../src/protocol/messages/offset-fetch-response.ts'
import { type ProduceRequest, produceRequestSchema } from '../../src/protocol/messages/produce-request.ts'
import { type ProduceResponse, produceResponseSchema } from '../../src/protocol/messages/produce-response.ts'
import {
  type SaslHandshakeRequest,
  saslHandshakeRequestSchema,
} from '../../src/protocol/messages/sasl-handshake-request.ts'
import {
  type SaslHandshakeResponse,
  saslHandshakeResponseSchema,
} from '../../src/protocol/messages/sasl-handshake-response.ts'
import { type SyncGroupRequest, syncGroupRequestSchema } from '../../src/protocol/messages/sync-group-request.ts'
import { type SyncGroupResponse, syncGroupResponseSchema } from '../../src/protocol/messages/sync-group-response.ts'
import { Reader } from '../../src/protocol/reader.ts'
import {
  ATTR_TRANSACTIONAL_MASK,
  decodeRecords,
  encodeRecordBatch,
  type RecordInput,
  validateProducedBatches,
} from '../../src/protocol/record-batch.ts'
import { decode, encode, type FieldSchema, type MessageSchema, type Shape } from '../../src/protocol/schema.ts'
import { Writer } from '../../src/protocol/writer.ts'

// ---------------------------------------------------------------- KafkaJS, minimally typed

const require = createRequire(import.meta.url)
const KAFKAJS = 'kafkajs/src/protocol'

interface KafkajsRequest {
  readonly apiKey: number
  readonly apiVersion: number
  encode(): Promise<{ readonly buffer: Buffer }>
}
type KafkajsRequestFactory = (args: object) => KafkajsRequest
interface KafkajsResponseModule {
  decode(rawData: Buffer): Promise<unknown>
}
/** DeleteRecords' response module is a factory taking the request's arguments. */
type KafkajsResponseExport = KafkajsResponseModule | ((requestArgs: object) => KafkajsResponseModule)
interface KafkajsDecoderState {
  readonly buffer: Buffer
  readonly offset: number
}

/** KafkaJS request encoder for one API version (`api` is KafkaJS's directory name). */
function kafkajsRequest(api: string, version: number): KafkajsRequestFactory {
  return require(`${KAFKAJS}/requests/${api}/v${version}/request.js`) as KafkajsRequestFactory
}

async function kafkajsEncode(api: string, apiKey: number, version: number, args: object): Promise<Buffer> {
  const request = kafkajsRequest(api, version)(args)
  assert.equal(request.apiKey, apiKey, `${api} v${version} api key`)
  assert.equal(request.apiVersion, version, `${api} v${version} version`)
  return (await request.encode()).buffer
}

// KafkaJS response decoders do not report how much they read. To check that they read the whole
// body, the read methods of its Decoder class are wrapped to remember the decoder working on the
// body under test (nested decoders over slices see other buffers); its final offset is compared
// with the body length. The wrapping only observes: arguments and results pass through unchanged.
const probe: { body: Buffer | null; decoder: KafkajsDecoderState | null } = { body: null, decoder: null }
{
  const decoderClass = require(`${KAFKAJS}/decoder.js`) as { prototype: object }
  const proto = decoderClass.prototype as Record<string, unknown>
  for (const name of Object.getOwnPropertyNames(proto)) {
    const original = proto[name]
    if (!name.startsWith('read') || typeof original !== 'function') continue
    const method = original as (...args: unknown[]) => unknown
    proto[name] = function (this: KafkajsDecoderState, ...args: unknown[]): unknown {
      if (probe.body !== null && this.buffer === probe.body) probe.decoder = this
      return method.apply(this, args)
    }
  }
}

function probedOffset(): number | undefined {
  return probe.decoder?.offset
}

/** Decodes a response body with KafkaJS and checks that it read exactly every byte. */
async function kafkajsDecode(api: string, version: number, body: Buffer, requestArgs: object = {}): Promise<unknown> {
  const exported = require(`${KAFKAJS}/requests/${api}/v${version}/response.js`) as KafkajsResponseExport
  const mod = typeof exported === 'function' ? exported(requestArgs) : exported
  probe.body = body
  probe.decoder = null
  try {
    const decoded = await mod.decode(body)
    assert.equal(probedOffset(), body.length, `KafkaJS ${api} v${version} response: bytes read vs body length`)
    return decoded
  } finally {
    probe.body = null
    probe.decoder = null
  }
}

// ---------------------------------------------------------------- our side

function ourEncode(schema: MessageSchema, version: number, value: unknown): Buffer {
  const w = new Writer()
  encode(schema, version, value, w)
  return w.toBuffer()
}

/** Decodes with our codec and checks that every byte was consumed. */
function ourDecode<T>(schema: MessageSchema, version: number, body: Buffer): T {
  const r = new Reader(body)
  const value = decode<T>(schema, version, r)
  assert.equal(r.remaining, 0, `${schema.name} v${version}: ${r.remaining} bytes left unread`)
  return value
}

/** Only the fields this version carries (recursively), so fields of other versions are ignored. */
function project(fields: readonly FieldSchema[], version: number, value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  const struct = value as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const f of fields) {
    if (version < f.versions[0] || version > f.versions[1]) continue
    const v = struct[f.name]
    const inner = f.fields
    if (inner === undefined || v === null || v === undefined) out[f.name] = v
    else if (Array.isArray(v)) out[f.name] = v.map((x: unknown) => project(inner, version, x))
    else out[f.name] = project(inner, version, v)
  }
  return out
}

/**
 * Checks (1) and (3) for one request: KafkaJS's bytes decode, field for field, to `expected`
 * (restricted to the version's fields), and our encoding of `expected` is the same bytes.
 */
async function checkRequest<T>(
  schema: MessageSchema,
  api: string,
  version: number,
  args: object,
  expected: Shape<T>,
): Promise<T> {
  const theirs = await kafkajsEncode(api, schema.apiKey, version, args)
  const decoded = ourDecode<T>(schema, version, theirs)
  assert.deepEqual(
    project(schema.fields, version, decoded),
    project(schema.fields, version, expected),
    `${schema.name} v${version} fields`,
  )
  assert.equal(
    ourEncode(schema, version, expected).toString('hex'),
    theirs.toString('hex'),
    `${schema.name} v${version} bytes`,
  )
  return decoded
}

/** Checks (2) for one response: our encoding of `value` decodes in KafkaJS to `expected`. */
async function checkResponse<T>(
  schema: MessageSchema,
  api: string,
  version: number,
  value: Shape<T>,
  expected: unknown,
  requestArgs?: object,
): Promise<void> {
  const decoded = await kafkajsDecode(api, version, ourEncode(schema, version, value), requestArgs)
  assert.deepEqual(decoded, expected, `${schema.name} v${version} as KafkaJS reads it`)
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

/** KafkaJS v(n) responses after the throttling change report the broker's value on the side. */
function throttle(version: number, clientSideFrom: number, ms: number): Record<string, number> {
  return version >= clientSideFrom ? { throttleTime: 0, clientSideThrottleTime: ms } : { throttleTime: ms }
}

// ---------------------------------------------------------------- Metadata

void test('Metadata v0-6 requests from KafkaJS', async () => {
  for (const v of range(0, 6)) {
    await checkRequest<MetadataRequest>(
      metadataRequestSchema,
      'metadata',
      v,
      { topics: ['orders', 'payments-ü'], allowAutoTopicCreation: false },
      { topics: [{ name: 'orders' }, { name: 'payments-ü' }], allowAutoTopicCreation: false },
    )
    // KafkaJS asks for "all topics" with []: an empty array in v0, null from v1 on.
    await checkRequest<MetadataRequest>(
      metadataRequestSchema,
      'metadata',
      v,
      { topics: [] },
      { topics: v === 0 ? [] : null, allowAutoTopicCreation: true },
    )
  }
})

void test('Metadata v0-6 responses read by KafkaJS', async () => {
  const value: Shape<MetadataResponse> = {
    throttleTimeMs: 7,
    brokers: [
      { nodeId: 1, host: 'broker-1.cortado.local', port: 9092, rack: 'rack-a' },
      { nodeId: 2, host: 'broker-2', port: 19093, rack: null },
    ],
    clusterId: 'cortado-cluster',
    controllerId: 1,
    topics: [
      {
        errorCode: 0,
        name: 'orders',
        isInternal: false,
        partitions: [
          {
            errorCode: 0,
            partitionIndex: 0,
            leaderId: 1,
            leaderEpoch: 4,
            replicaNodes: [1, 2],
            isrNodes: [1, 2],
            offlineReplicas: [],
          },
          {
            errorCode: 9,
            partitionIndex: 1,
            leaderId: -1,
            leaderEpoch: 4,
            replicaNodes: [2, 1],
            isrNodes: [1],
            offlineReplicas: [2],
          },
        ],
      },
      { errorCode: 3, name: 'missing', isInternal: true, partitions: [] },
    ],
  }
  for (const v of range(0, 6)) {
    const partition = (p: {
      errorCode: number
      partitionIndex: number
      leaderId: number
      replicas: number[]
      isr: number[]
      offline: number[]
    }) => ({
      partitionErrorCode: p.errorCode,
      partitionId: p.partitionIndex,
      leader: p.leaderId,
      replicas: p.replicas,
      isr: p.isr,
      ...(v >= 5 ? { offlineReplicas: p.offline } : {}),
    })
    const expected = {
      ...(v >= 3 ? throttle(v, 6, 7) : {}),
      brokers: [
        { nodeId: 1, host: 'broker-1.cortado.local', port: 9092, ...(v >= 1 ? { rack: 'rack-a' } : {}) },
        { nodeId: 2, host: 'broker-2', port: 19093, ...(v >= 1 ? { rack: null } : {}) },
      ],
      ...(v >= 2 ? { clusterId: 'cortado-cluster' } : {}),
      ...(v >= 1 ? { controllerId: 1 } : {}),
      topicMetadata: [
        {
          topicErrorCode: 0,
          topic: 'orders',
          ...(v >= 1 ? { isInternal: false } : {}),
          partitionMetadata: [
            partition({ errorCode: 0, partitionIndex: 0, leaderId: 1, replicas: [1, 2], isr: [1, 2], offline: [] }),
            partition({ errorCode: 9, partitionIndex: 1, leaderId: -1, replicas: [2, 1], isr: [1], offline: [2] }),
          ],
        },
        { topicErrorCode: 3, topic: 'missing', ...(v >= 1 ? { isInternal: true } : {}), partitionMetadata: [] },
      ],
    }
    await checkResponse<MetadataResponse>(metadataResponseSchema, 'metadata', v, value, expected)
  }
})

// ---------------------------------------------------------------- Produce

const T0 = 1_700_000_000_000

/** The records KafkaJS is asked to produce, and what they look like as our RecordInput. */
const produceMessages = [
  { key: 'k0', value: 'v0', timestamp: T0, headers: { trace: 'abc' } },
  { key: null, value: 'v1', timestamp: T0 + 5 },
  { key: 'k2', value: Buffer.from([0, 1, 2, 255]), timestamp: T0 + 10, headers: { a: 'x', b: '' } },
]
const produceRecords: RecordInput[] = [
  {
    key: Buffer.from('k0'),
    value: Buffer.from('v0'),
    timestamp: T0,
    headers: [{ key: 'trace', value: Buffer.from('abc') }],
  },
  { key: null, value: Buffer.from('v1'), timestamp: T0 + 5, headers: [] },
  {
    key: Buffer.from('k2'),
    value: Buffer.from([0, 1, 2, 255]),
    timestamp: T0 + 10,
    headers: [
      { key: 'a', value: Buffer.from('x') },
      { key: 'b', value: Buffer.alloc(0) },
    ],
  },
]

void test('Produce v3-7 requests from KafkaJS carry record batches our validator and decoder accept', async () => {
  for (const v of range(3, 7)) {
    for (const idempotent of [false, true]) {
      const producer = idempotent
        ? { transactionalId: 'tx-orders', producerId: 4242, producerEpoch: 3, firstSequence: 17 }
        : { transactionalId: null, producerId: -1, producerEpoch: 0, firstSequence: 0 }
      const args = {
        acks: idempotent ? -1 : 1,
        timeout: 30000,
        compression: 0,
        transactionalId: producer.transactionalId ?? undefined,
        producerId: producer.producerId,
        producerEpoch: producer.producerEpoch,
        topicData: [
          {
            topic: 'orders',
            partitions: [
              { partition: 0, firstSequence: producer.firstSequence, messages: produceMessages },
              { partition: 5, firstSequence: producer.firstSequence, messages: produceMessages.slice(1, 2) },
            ],
          },
          {
            topic: 'payments',
            partitions: [{ partition: 2, firstSequence: producer.firstSequence, messages: produceMessages.slice(2) }],
          },
        ],
      }
      // The same batches built by our encoder: KafkaJS writes partition leader epoch 0.
      const batch = (records: RecordInput[]) =>
        encodeRecordBatch({
          records,
          producerId: producer.producerId,
          producerEpoch: producer.producerEpoch,
          baseSequence: producer.firstSequence,
          attributes: idempotent ? ATTR_TRANSACTIONAL_MASK : 0,
          partitionLeaderEpoch: 0,
        })
      const expected: Shape<ProduceRequest> = {
        transactionalId: producer.transactionalId,
        acks: args.acks,
        timeoutMs: 30000,
        topicData: [
          {
            name: 'orders',
            partitionData: [
              { index: 0, records: batch(produceRecords) },
              { index: 5, records: batch(produceRecords.slice(1, 2)) },
            ],
          },
          { name: 'payments', partitionData: [{ index: 2, records: batch(produceRecords.slice(2)) }] },
        ],
      }
      const req = await checkRequest<ProduceRequest>(produceRequestSchema, 'produce', v, args, expected)

      const want = [[produceRecords, produceRecords.slice(1, 2)], [produceRecords.slice(2)]]
      req.topicData.forEach((topic, t) =>
        topic.partitionData.forEach((p, i) => {
          assert.ok(p.records !== null)
          const result = validateProducedBatches(p.records)
          assert.ok('batches' in result, `v${v} ${topic.name}/${p.index}: ${JSON.stringify(result)}`)
          assert.equal(result.batches.length, 1)
          const [h] = result.batches
          assert.deepEqual(
            [
              h.producerId,
              h.producerEpoch,
              h.baseSequence,
              (h.attributes & ATTR_TRANSACTIONAL_MASK) !== 0,
              h.recordsCount,
            ],
            [producer.producerId, producer.producerEpoch, producer.firstSequence, idempotent, want[t][i].length],
          )
          const records = decodeRecords(p.records).map((r) => ({
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
          }))
          assert.deepEqual(
            records,
            want[t][i].map((r, offset) => ({
              offset,
              timestamp: r.timestamp,
              key: r.key,
              value: r.value,
              headers: r.headers,
            })),
          )
        }),
      )
    }
  }
})

void test('Produce v0-2 requests from KafkaJS (message sets) decode; the legacy format is refused', async () => {
  for (const v of range(0, 2)) {
    const args = {
      acks: -1,
      timeout: 1500,
      compression: 0,
      topicData: [{ topic: 'orders', partitions: [{ partition: 1, messages: produceMessages.slice(0, 2) }] }],
    }
    const theirs = await kafkajsEncode('produce', 0, v, args)
    const req = ourDecode<ProduceRequest>(produceRequestSchema, v, theirs)
    assert.equal(req.acks, -1)
    assert.equal(req.timeoutMs, 1500)
    assert.deepEqual(
      req.topicData.map((t) => [t.name, t.partitionData.map((p) => p.index)]),
      [['orders', [1]]],
    )
    const records = req.topicData[0].partitionData[0].records
    assert.ok(records !== null)
    assert.equal(records.readInt8(16), v === 2 ? 1 : 0, 'message format magic')
    assert.ok('error' in validateProducedBatches(records))
    assert.equal(ourEncode(produceRequestSchema, v, req).toString('hex'), theirs.toString('hex'))
  }
})

void test('Produce v0-7 responses read by KafkaJS', async () => {
  const value: Shape<ProduceResponse> = {
    responses: [
      {
        name: 'orders',
        partitionResponses: [
          { index: 0, errorCode: 0, baseOffset: 2 ** 40 + 3, logAppendTimeMs: -1, logStartOffset: 12 },
          { index: 5, errorCode: 47, baseOffset: -1, logAppendTimeMs: T0, logStartOffset: -1 },
        ],
      },
      { name: 'payments', partitionResponses: [] },
    ],
    throttleTimeMs: 31,
  }
  for (const v of range(0, 7)) {
    const partition = (
      index: number,
      errorCode: number,
      baseOffset: string,
      logAppendTime: string,
      logStartOffset: string,
    ) => {
      if (v < 2) return { partition: index, errorCode, offset: baseOffset }
      if (v < 3) return { partition: index, errorCode, offset: baseOffset, timestamp: logAppendTime }
      return { partition: index, errorCode, baseOffset, logAppendTime, ...(v >= 5 ? { logStartOffset } : {}) }
    }
    const expected = {
      topics: [
        {
          topicName: 'orders',
          partitions: [partition(0, 0, String(2 ** 40 + 3), '-1', '12'), partition(5, 47, '-1', String(T0), '-1')],
        },
        { topicName: 'payments', partitions: [] },
      ],
      ...(v >= 1 ? throttle(v, 6, 31) : {}),
    }
    await checkResponse<ProduceResponse>(produceResponseSchema, 'produce', v, value, expected)
  }
})

// ---------------------------------------------------------------- Fetch

void test('Fetch v0-11 requests from KafkaJS', async () => {
  const args = {
    replicaId: -1,
    maxWaitTime: 500,
    minBytes: 1,
    maxBytes: 52428800,
    isolationLevel: 0,
    sessionId: 77,
    sessionEpoch: 3,
    rackId: 'rack-b',
    topics: [
      {
        topic: 'orders',
        partitions: [
          { partition: 0, currentLeaderEpoch: 6, fetchOffset: 12345678901, logStartOffset: 40, maxBytes: 1048576 },
          { partition: 3, fetchOffset: 0, maxBytes: 65536 },
        ],
      },
      { topic: 'payments', partitions: [] },
    ],
    forgottenTopics: [{ topic: 'old', partitions: [1, 2] }],
  }
  const expected: Shape<FetchRequest> = {
    replicaId: -1,
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: 52428800,
    isolationLevel: 0,
    sessionId: 77,
    sessionEpoch: 3,
    rackId: 'rack-b',
    topics: [
      {
        topic: 'orders',
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: 6,
            fetchOffset: 12345678901,
            logStartOffset: 40,
            partitionMaxBytes: 1048576,
          },
          // KafkaJS sends -1 for the leader epoch and log start offset it does not know.
          { partition: 3, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 65536 },
        ],
      },
      { topic: 'payments', partitions: [] },
    ],
    forgottenTopicsData: [{ topic: 'old', partitions: [1, 2] }],
  }
  for (const v of range(0, 11)) {
    await checkRequest<FetchRequest>(fetchRequestSchema, 'fetch', v, args, expected)
  }
})

interface KafkajsMessage {
  offset: string
  timestamp?: string
  key: Buffer | null
  value: Buffer | null
  headers?: Record<string, Buffer | Buffer[]>
}
interface KafkajsFetch {
  responses: { partitions: { messages: KafkajsMessage[] }[] }[]
}

/** KafkaJS's decoded messages carry batch context and attributes; keep what we compare. */
function simplifyMessages(decoded: unknown): unknown {
  const fetch = decoded as KafkajsFetch
  for (const topic of fetch.responses) {
    for (const p of topic.partitions) {
      p.messages = p.messages.map((m) => ({
        offset: m.offset,
        timestamp: m.timestamp,
        key: m.key,
        value: m.value,
        headers: m.headers,
      }))
    }
  }
  return decoded
}

void test('Fetch v4-11 responses with our record batch read by KafkaJS', async () => {
  const batch = encodeRecordBatch({
    baseOffset: 2 ** 33 + 100,
    partitionLeaderEpoch: 3,
    records: [
      ...produceRecords,
      {
        key: Buffer.from('k3'),
        value: null,
        timestamp: T0 + 7,
        headers: [
          { key: 'trace', value: Buffer.from('1') },
          { key: 'trace', value: Buffer.from('2') },
        ],
      },
    ],
  })
  const base = 2 ** 33 + 100
  const messages: KafkajsMessage[] = [
    {
      offset: String(base),
      timestamp: String(T0),
      key: Buffer.from('k0'),
      value: Buffer.from('v0'),
      headers: { trace: Buffer.from('abc') },
    },
    { offset: String(base + 1), timestamp: String(T0 + 5), key: null, value: Buffer.from('v1'), headers: {} },
    {
      offset: String(base + 2),
      timestamp: String(T0 + 10),
      key: Buffer.from('k2'),
      value: Buffer.from([0, 1, 2, 255]),
      headers: { a: Buffer.from('x'), b: Buffer.alloc(0) },
    },
    {
      offset: String(base + 3),
      timestamp: String(T0 + 7),
      key: Buffer.from('k3'),
      value: null,
      headers: { trace: [Buffer.from('1'), Buffer.from('2')] },
    },
  ]
  const value: Shape<FetchResponse> = {
    throttleTimeMs: 37,
    errorCode: 0,
    sessionId: 1234,
    responses: [
      {
        topic: 'orders',
        partitions: [
          {
            partitionIndex: 0,
            errorCode: 0,
            highWatermark: base + 4,
            lastStableOffset: base + 2,
            logStartOffset: 9,
            abortedTransactions: [{ producerId: 4242, firstOffset: base + 1 }],
            preferredReadReplica: 2,
            records: batch,
          },
          {
            partitionIndex: 1,
            errorCode: 1,
            highWatermark: 0,
            lastStableOffset: -1,
            logStartOffset: -1,
            abortedTransactions: null,
            preferredReadReplica: -1,
            records: null,
          },
        ],
      },
      {
        topic: 'empty',
        partitions: [
          {
            partitionIndex: 7,
            errorCode: 0,
            highWatermark: 5,
            lastStableOffset: 5,
            logStartOffset: 5,
            abortedTransactions: [],
            preferredReadReplica: -1,
            records: Buffer.alloc(0),
          },
        ],
      },
    ],
  }
  for (const v of range(4, 11)) {
    const partition = (p: {
      partition: number
      errorCode: number
      hw: string
      lso: string
      start: string
      aborted: object[]
      replica: number
      messages: KafkajsMessage[]
    }) => ({
      partition: p.partition,
      errorCode: p.errorCode,
      highWatermark: p.hw,
      lastStableOffset: p.lso,
      ...(v >= 5 ? { lastStartOffset: p.start } : {}),
      abortedTransactions: p.aborted,
      ...(v >= 11 ? { preferredReadReplica: p.replica } : {}),
      messages: p.messages,
    })
    const expected = {
      ...throttle(v, 8, 37),
      ...(v >= 7 ? { errorCode: 0, sessionId: 1234 } : {}),
      responses: [
        {
          topicName: 'orders',
          partitions: [
            partition({
              partition: 0,
              errorCode: 0,
              hw: String(base + 4),
              lso: String(base + 2),
              start: '9',
              aborted: [{ producerId: '4242', firstOffset: String(base + 1) }],
              replica: 2,
              messages,
            }),
            // A null aborted-transactions array reads as [] in KafkaJS.
            partition({
              partition: 1,
              errorCode: 1,
              hw: '0',
              lso: '-1',
              start: '-1',
              aborted: [],
              replica: -1,
              messages: [],
            }),
          ],
        },
        {
          topicName: 'empty',
          partitions: [
            partition({
              partition: 7,
              errorCode: 0,
              hw: '5',
              lso: '5',
              start: '5',
              aborted: [],
              replica: -1,
              messages: [],
            }),
          ],
        },
      ],
    }
    const decoded = await kafkajsDecode('fetch', v, ourEncode(fetchResponseSchema, v, value))
    assert.deepEqual(simplifyMessages(decoded), expected, `FetchResponse v${v} as KafkaJS reads it`)
  }
})

void test('Fetch v0-3 responses carrying a legacy message set read by KafkaJS', async () => {
  // Fetch v0-3 carry message format v0/v1, so the records are a KafkaJS-built v1 message set
  // (opaque to our codec) with offsets 100, 101.
  const messageSet = require(`${KAFKAJS}/messageSet/index.js`) as (args: object) => { buffer: Buffer }
  const records = messageSet({
    messageVersion: 1,
    entries: [
      { key: 'k0', value: 'v0', timestamp: T0 },
      { key: null, value: 'v1', timestamp: T0 + 1 },
    ],
  }).buffer
  for (let pos = 0, offset = 100; pos < records.length; offset++) {
    records.writeBigInt64BE(BigInt(offset), pos)
    pos += 12 + records.readInt32BE(pos + 8)
  }
  const value: Shape<FetchResponse> = {
    throttleTimeMs: 41,
    responses: [
      {
        topic: 'orders',
        partitions: [
          { partitionIndex: 0, errorCode: 0, highWatermark: 102, records },
          { partitionIndex: 1, errorCode: 6, highWatermark: -1, records: Buffer.alloc(0) },
        ],
      },
    ],
  }
  for (const v of range(0, 3)) {
    const expected = {
      ...(v >= 1 ? { throttleTime: 41 } : {}),
      responses: [
        {
          topicName: 'orders',
          partitions: [
            {
              partition: 0,
              errorCode: 0,
              highWatermark: '102',
              messages: [
                {
                  offset: '100',
                  timestamp: String(T0),
                  key: Buffer.from('k0'),
                  value: Buffer.from('v0'),
                  headers: undefined,
                },
                { offset: '101', timestamp: String(T0 + 1), key: null, value: Buffer.from('v1'), headers: undefined },
              ],
            },
            { partition: 1, errorCode: 6, highWatermark: '-1', messages: [] },
          ],
        },
      ],
    }
    const decoded = await kafkajsDecode('fetch', v, ourEncode(fetchResponseSchema, v, value))
    assert.deepEqual(simplifyMessages(decoded), expected, `FetchResponse v${v} as KafkaJS reads it`)
  }
})

// ---------------------------------------------------------------- ListOffsets

void test('ListOffsets v0-3 requests from KafkaJS', async () => {
  const args = {
    replicaId: -1,
    isolationLevel: 1,
    topics: [
      {
        topic: 'orders',
        partitions: [
          { partition: 0, timestamp: -1, maxNumOffsets: 3 },
          { partition: 4, timestamp: T0 },
        ],
      },
      { topic: 'payments', partitions: [{ partition: 1, timestamp: -2 }] },
    ],
  }
  const expected: Shape<ListOffsetsRequest> = {
    replicaId: -1,
    isolationLevel: 1,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, timestamp: -1, maxNumOffsets: 3 },
          { partitionIndex: 4, timestamp: T0, maxNumOffsets: 1 },
        ],
      },
      { name: 'payments', partitions: [{ partitionIndex: 1, timestamp: -2, maxNumOffsets: 1 }] },
    ],
  }
  for (const v of range(0, 3)) {
    await checkRequest<ListOffsetsRequest>(listOffsetsRequestSchema, 'listOffsets', v, args, expected)
  }
})

void test('ListOffsets v0-3 responses read by KafkaJS', async () => {
  const value: Shape<ListOffsetsResponse> = {
    throttleTimeMs: 43,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, errorCode: 0, oldStyleOffsets: [2 ** 35, 0], timestamp: T0, offset: 2 ** 35 },
          { partitionIndex: 4, errorCode: 6, oldStyleOffsets: [], timestamp: -1, offset: -1 },
        ],
      },
    ],
  }
  for (const v of range(0, 3)) {
    const partitions =
      v === 0
        ? [
            { partition: 0, errorCode: 0, offsets: [String(2 ** 35), '0'] },
            { partition: 4, errorCode: 6, offsets: [] },
          ]
        : [
            { partition: 0, errorCode: 0, timestamp: String(T0), offset: String(2 ** 35) },
            { partition: 4, errorCode: 6, timestamp: '-1', offset: '-1' },
          ]
    const expected = { ...(v >= 2 ? throttle(v, 3, 43) : {}), responses: [{ topic: 'orders', partitions }] }
    await checkResponse<ListOffsetsResponse>(listOffsetsResponseSchema, 'listOffsets', v, value, expected)
  }
})

// ---------------------------------------------------------------- ApiVersions

void test('ApiVersions v0-2: empty requests and the responses we advertise', async () => {
  const advertised = [...APIS.values()].map((s) => ({
    apiKey: s.key,
    minVersion: s.versions[0],
    maxVersion: s.versions[1],
  }))
  const value: Shape<ApiVersionsResponse> = { errorCode: 0, apiKeys: advertised, throttleTimeMs: 47 }
  for (const v of range(0, 2)) {
    await checkRequest(apiVersionsRequestSchema, 'apiVersions', v, {}, {})
    await checkResponse<ApiVersionsResponse>(apiVersionsResponseSchema, 'apiVersions', v, value, {
      errorCode: 0,
      apiVersions: advertised,
      ...(v >= 1 ? throttle(v, 2, 47) : {}),
    })
  }
})

// ---------------------------------------------------------------- CreateTopics

void test('CreateTopics v0-3 requests from KafkaJS', async () => {
  const args = {
    timeout: 7000,
    validateOnly: true,
    topics: [
      {
        topic: 'orders',
        numPartitions: 3,
        replicationFactor: 1,
        configEntries: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'retention.ms', value: null },
        ],
      },
      {
        topic: 'manual',
        replicaAssignment: [
          { partition: 0, replicas: [1, 2] },
          { partition: 1, replicas: [2, 3] },
        ],
      },
    ],
  }
  const expected: Shape<CreateTopicsRequest> = {
    timeoutMs: 7000,
    validateOnly: true,
    topics: [
      {
        name: 'orders',
        numPartitions: 3,
        replicationFactor: 1,
        assignments: [],
        configs: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'retention.ms', value: null },
        ],
      },
      {
        name: 'manual',
        numPartitions: -1,
        replicationFactor: -1,
        configs: [],
        assignments: [
          { partitionIndex: 0, brokerIds: [1, 2] },
          { partitionIndex: 1, brokerIds: [2, 3] },
        ],
      },
    ],
  }
  for (const v of range(0, 3)) {
    await checkRequest<CreateTopicsRequest>(createTopicsRequestSchema, 'createTopics', v, args, expected)
  }
})

void test('CreateTopics v0-3 responses read by KafkaJS', async () => {
  const value: Shape<CreateTopicsResponse> = {
    throttleTimeMs: 53,
    topics: [
      { name: 'bad', errorCode: 37, errorMessage: 'Number of partitions must be larger than 0.' },
      { name: 'orders', errorCode: 0, errorMessage: null },
    ],
  }
  for (const v of range(0, 3)) {
    const topicErrors = [
      {
        topic: 'bad',
        errorCode: 37,
        ...(v >= 1 ? { errorMessage: 'Number of partitions must be larger than 0.' } : {}),
      },
      { topic: 'orders', errorCode: 0, ...(v >= 1 ? { errorMessage: null } : {}) },
    ]
    await checkResponse<CreateTopicsResponse>(createTopicsResponseSchema, 'createTopics', v, value, {
      ...(v >= 2 ? throttle(v, 3, 53) : {}),
      topicErrors,
    })
  }
})

// ---------------------------------------------------------------- DeleteTopics

void test('DeleteTopics v0-1 requests and responses', async () => {
  const value: Shape<DeleteTopicsResponse> = {
    throttleTimeMs: 59,
    responses: [
      { name: 'a', errorCode: 0 },
      { name: 'b-é', errorCode: 3 },
    ],
  }
  for (const v of range(0, 1)) {
    await checkRequest<DeleteTopicsRequest>(
      deleteTopicsRequestSchema,
      'deleteTopics',
      v,
      { topics: ['a', 'b-é'], timeout: 3000 },
      { topicNames: ['a', 'b-é'], timeoutMs: 3000 },
    )
    await checkResponse<DeleteTopicsResponse>(deleteTopicsResponseSchema, 'deleteTopics', v, value, {
      ...(v >= 1 ? throttle(v, 1, 59) : {}),
      topicErrors: [
        { topic: 'a', errorCode: 0 },
        { topic: 'b-é', errorCode: 3 },
      ],
    })
  }
})

// ---------------------------------------------------------------- CreatePartitions

void test('CreatePartitions v0-1 requests and responses', async () => {
  const args = {
    timeout: 4000,
    validateOnly: true,
    topicPartitions: [
      { topic: 'orders', count: 6, assignments: [[1, 2], [2, 3], [3]] },
      { topic: 'other', count: 4 },
    ],
  }
  const expected: Shape<CreatePartitionsRequest> = {
    timeoutMs: 4000,
    validateOnly: true,
    topics: [
      { name: 'orders', count: 6, assignments: [{ brokerIds: [1, 2] }, { brokerIds: [2, 3] }, { brokerIds: [3] }] },
      // KafkaJS sends "no assignments" as a null array.
      { name: 'other', count: 4, assignments: null },
    ],
  }
  const value: Shape<CreatePartitionsResponse> = {
    throttleTimeMs: 61,
    results: [
      { name: 'orders', errorCode: 0, errorMessage: null },
      { name: 'other', errorCode: 37, errorMessage: 'Topic already has 8 partitions.' },
    ],
  }
  for (const v of range(0, 1)) {
    await checkRequest<CreatePartitionsRequest>(createPartitionsRequestSchema, 'createPartitions', v, args, expected)
    await checkResponse<CreatePartitionsResponse>(createPartitionsResponseSchema, 'createPartitions', v, value, {
      ...throttle(v, 1, 61),
      topicErrors: [
        { topic: 'orders', errorCode: 0, errorMessage: null },
        { topic: 'other', errorCode: 37, errorMessage: 'Topic already has 8 partitions.' },
      ],
    })
  }
})

// ---------------------------------------------------------------- DescribeConfigs

void test('DescribeConfigs v0-2 requests from KafkaJS', async () => {
  const args = {
    includeSynonyms: true,
    resources: [
      { type: 2, name: 'orders', configNames: ['cleanup.policy', 'retention.ms'] },
      { type: 4, name: '1' },
    ],
  }
  const expected: Shape<DescribeConfigsRequest> = {
    includeSynonyms: true,
    resources: [
      { resourceType: 2, resourceName: 'orders', configurationKeys: ['cleanup.policy', 'retention.ms'] },
      // No names means all of them: KafkaJS sends a null array.
      { resourceType: 4, resourceName: '1', configurationKeys: null },
    ],
  }
  for (const v of range(0, 2)) {
    await checkRequest<DescribeConfigsRequest>(describeConfigsRequestSchema, 'describeConfigs', v, args, expected)
  }
})

void test('DescribeConfigs v0-2 responses read by KafkaJS', async () => {
  const value: Shape<DescribeConfigsResponse> = {
    throttleTimeMs: 67,
    results: [
      {
        errorCode: 0,
        errorMessage: null,
        resourceType: 2,
        resourceName: 'orders',
        configs: [
          {
            name: 'cleanup.policy',
            value: 'compact',
            readOnly: false,
            isDefault: false,
            configSource: 1,
            isSensitive: false,
            synonyms: [
              { name: 'cleanup.policy', value: 'compact', source: 1 },
              { name: 'log.cleanup.policy', value: 'delete', source: 5 },
            ],
          },
          {
            name: 'retention.ms',
            value: '604800000',
            readOnly: false,
            isDefault: true,
            configSource: 5,
            isSensitive: false,
            synonyms: [],
          },
        ],
      },
      {
        errorCode: 0,
        errorMessage: null,
        resourceType: 4,
        resourceName: '1',
        configs: [
          {
            name: 'ssl.key.password',
            value: null,
            readOnly: true,
            isDefault: false,
            configSource: 4,
            isSensitive: true,
            synonyms: [],
          },
        ],
      },
      {
        errorCode: 3,
        errorMessage: 'Topic missing does not exist',
        resourceType: 2,
        resourceName: 'missing',
        configs: [],
      },
    ],
  }
  for (const v of range(0, 2)) {
    const entry = (e: {
      name: string
      value: string | null
      readOnly: boolean
      isDefault: boolean
      source: number
      v0Source: number
      isSensitive: boolean
      synonyms: object[]
    }) => ({
      configName: e.name,
      configValue: e.value,
      readOnly: e.readOnly,
      isDefault: e.isDefault,
      isSensitive: e.isSensitive,
      // v0 has no config source on the wire: KafkaJS derives it from isDefault and the resource type.
      ...(v === 0 ? { configSource: e.v0Source } : { configSource: e.source, configSynonyms: e.synonyms }),
    })
    const expected = {
      ...throttle(v, 2, 67),
      resources: [
        {
          errorCode: 0,
          errorMessage: null,
          resourceType: 2,
          resourceName: 'orders',
          configEntries: [
            entry({
              name: 'cleanup.policy',
              value: 'compact',
              readOnly: false,
              isDefault: false,
              source: 1,
              v0Source: 1,
              isSensitive: false,
              synonyms: [
                { configName: 'cleanup.policy', configValue: 'compact', configSource: 1 },
                { configName: 'log.cleanup.policy', configValue: 'delete', configSource: 5 },
              ],
            }),
            entry({
              name: 'retention.ms',
              value: '604800000',
              readOnly: false,
              isDefault: true,
              source: 5,
              v0Source: 5,
              isSensitive: false,
              synonyms: [],
            }),
          ],
        },
        {
          errorCode: 0,
          errorMessage: null,
          resourceType: 4,
          resourceName: '1',
          configEntries: [
            entry({
              name: 'ssl.key.password',
              value: null,
              readOnly: true,
              isDefault: false,
              source: 4,
              v0Source: 4,
              isSensitive: true,
              synonyms: [],
            }),
          ],
        },
        {
          errorCode: 3,
          errorMessage: 'Topic missing does not exist',
          resourceType: 2,
          resourceName: 'missing',
          configEntries: [],
        },
      ],
    }
    await checkResponse<DescribeConfigsResponse>(describeConfigsResponseSchema, 'describeConfigs', v, value, expected)
  }
})

// ---------------------------------------------------------------- APIs with generated schemas the
// broker does not advertise yet (group coordination, SASL, admin): same three checks.

void test('FindCoordinator v0-2 requests and responses', async () => {
  const value: Shape<FindCoordinatorResponse> = {
    throttleTimeMs: 71,
    errorCode: 0,
    errorMessage: null,
    nodeId: 2,
    host: 'broker-2.cortado.local',
    port: 9093,
  }
  const coordinator = { nodeId: 2, host: 'broker-2.cortado.local', port: 9093 }
  for (const v of range(0, 2)) {
    await checkRequest<FindCoordinatorRequest>(
      findCoordinatorRequestSchema,
      'findCoordinator',
      v,
      v === 0 ? { groupId: 'cg-orders' } : { coordinatorKey: 'tx-orders', coordinatorType: 1 },
      v === 0 ? { key: 'cg-orders' } : { key: 'tx-orders', keyType: 1 },
    )
    await checkResponse<FindCoordinatorResponse>(
      findCoordinatorResponseSchema,
      'findCoordinator',
      v,
      value,
      v === 0
        ? { errorCode: 0, coordinator }
        : { ...throttle(v, 2, 71), errorCode: 0, errorMessage: null, coordinator },
    )
  }
})

void test('Heartbeat v0-3 requests and responses', async () => {
  for (const v of range(0, 3)) {
    for (const groupInstanceId of v >= 3 ? ['instance-1', null] : [null]) {
      await checkRequest<HeartbeatRequest>(
        heartbeatRequestSchema,
        'heartbeat',
        v,
        { groupId: 'cg-orders', groupGenerationId: 5, memberId: 'member-1', groupInstanceId },
        { groupId: 'cg-orders', generationId: 5, memberId: 'member-1', groupInstanceId },
      )
    }
    await checkResponse<HeartbeatResponse>(
      heartbeatResponseSchema,
      'heartbeat',
      v,
      { throttleTimeMs: 73, errorCode: 27 },
      { ...(v >= 1 ? throttle(v, 2, 73) : {}), errorCode: 27 },
    )
  }
})

void test('JoinGroup v0-5 requests and responses', async () => {
  const subscription = Buffer.from([0, 1, 0, 0, 0, 1, 0, 6, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0xff, 0xff, 0xff, 0xff])
  const args = {
    groupId: 'cg-orders',
    sessionTimeout: 30000,
    rebalanceTimeout: 60000,
    memberId: '',
    groupInstanceId: 'instance-1',
    protocolType: 'consumer',
    groupProtocols: [{ name: 'RoundRobinAssigner', metadata: subscription }, { name: 'range' }],
  }
  const expected: Shape<JoinGroupRequest> = {
    groupId: 'cg-orders',
    sessionTimeoutMs: 30000,
    rebalanceTimeoutMs: 60000,
    memberId: '',
    groupInstanceId: 'instance-1',
    protocolType: 'consumer',
    protocols: [
      { name: 'RoundRobinAssigner', metadata: subscription },
      { name: 'range', metadata: Buffer.alloc(0) },
    ],
  }
  const value: Shape<JoinGroupResponse> = {
    throttleTimeMs: 79,
    errorCode: 0,
    generationId: 3,
    protocolName: 'RoundRobinAssigner',
    leader: 'member-1',
    memberId: 'member-2',
    members: [
      { memberId: 'member-1', groupInstanceId: null, metadata: subscription },
      { memberId: 'member-2', groupInstanceId: 'instance-2', metadata: Buffer.alloc(0) },
    ],
  }
  for (const v of range(0, 5)) {
    await checkRequest<JoinGroupRequest>(joinGroupRequestSchema, 'joinGroup', v, args, expected)
    const member = (memberId: string, groupInstanceId: string | null, memberMetadata: Buffer) => ({
      memberId,
      ...(v >= 5 ? { groupInstanceId } : {}),
      memberMetadata,
    })
    await checkResponse<JoinGroupResponse>(joinGroupResponseSchema, 'joinGroup', v, value, {
      ...(v >= 2 ? throttle(v, 3, 79) : {}),
      errorCode: 0,
      generationId: 3,
      groupProtocol: 'RoundRobinAssigner',
      leaderId: 'member-1',
      memberId: 'member-2',
      members: [member('member-1', null, subscription), member('member-2', 'instance-2', Buffer.alloc(0))],
    })
  }
})

void test('SyncGroup v0-3 requests and responses', async () => {
  const assignment = Buffer.from([
    0, 1, 0, 0, 0, 1, 0, 6, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
  ])
  const args = {
    groupId: 'cg-orders',
    generationId: 3,
    memberId: 'member-1',
    groupInstanceId: 'instance-1',
    groupAssignment: [
      { memberId: 'member-1', memberAssignment: assignment },
      { memberId: 'member-2', memberAssignment: Buffer.alloc(0) },
    ],
  }
  const expected: Shape<SyncGroupRequest> = {
    groupId: 'cg-orders',
    generationId: 3,
    memberId: 'member-1',
    groupInstanceId: 'instance-1',
    assignments: [
      { memberId: 'member-1', assignment },
      { memberId: 'member-2', assignment: Buffer.alloc(0) },
    ],
  }
  for (const v of range(0, 3)) {
    await checkRequest<SyncGroupRequest>(syncGroupRequestSchema, 'syncGroup', v, args, expected)
    await checkResponse<SyncGroupResponse>(
      syncGroupResponseSchema,
      'syncGroup',
      v,
      { throttleTimeMs: 89, errorCode: 0, assignment },
      { ...(v >= 1 ? throttle(v, 2, 89) : {}), errorCode: 0, memberAssignment: assignment },
    )
  }
})

void test('LeaveGroup v0-3 requests and responses', async () => {
  // v0-2 name one member; v3 a list (KIP-345). Each KafkaJS version reads the arguments it knows.
  const args = {
    groupId: 'cg-orders',
    memberId: 'member-1',
    members: [{ memberId: 'member-1', groupInstanceId: 'instance-1' }, { memberId: 'member-2' }],
  }
  const expected: Shape<LeaveGroupRequest> = {
    groupId: 'cg-orders',
    memberId: 'member-1',
    members: [
      { memberId: 'member-1', groupInstanceId: 'instance-1' },
      { memberId: 'member-2', groupInstanceId: null },
    ],
  }
  const value: Shape<LeaveGroupResponse> = {
    throttleTimeMs: 83,
    errorCode: 0,
    members: [
      { memberId: 'member-1', groupInstanceId: 'instance-1', errorCode: 0 },
      { memberId: 'member-2', groupInstanceId: null, errorCode: 25 },
    ],
  }
  for (const v of range(0, 3)) {
    await checkRequest<LeaveGroupRequest>(leaveGroupRequestSchema, 'leaveGroup', v, args, expected)
    await checkResponse<LeaveGroupResponse>(leaveGroupResponseSchema, 'leaveGroup', v, value, {
      ...(v >= 1 ? throttle(v, 2, 83) : {}),
      errorCode: 0,
      ...(v >= 3 ? { members: value.members } : {}),
    })
  }
})

void test('DescribeGroups v0-2 requests and responses', async () => {
  const metadata = Buffer.from([0, 1, 2])
  const assignment = Buffer.from([3, 4])
  const value: Shape<DescribeGroupsResponse> = {
    throttleTimeMs: 97,
    groups: [
      {
        errorCode: 0,
        groupId: 'cg-orders',
        groupState: 'Stable',
        protocolType: 'consumer',
        protocolData: 'RoundRobinAssigner',
        members: [
          {
            memberId: 'member-1',
            clientId: 'orders-app',
            clientHost: '/10.0.0.7',
            memberMetadata: metadata,
            memberAssignment: assignment,
          },
        ],
      },
      { errorCode: 0, groupId: 'cg-gone', groupState: 'Dead', protocolType: '', protocolData: '', members: [] },
    ],
  }
  for (const v of range(0, 2)) {
    await checkRequest<DescribeGroupsRequest>(
      describeGroupsRequestSchema,
      'describeGroups',
      v,
      { groupIds: ['cg-orders', 'cg-gone'] },
      { groups: ['cg-orders', 'cg-gone'] },
    )
    await checkResponse<DescribeGroupsResponse>(describeGroupsResponseSchema, 'describeGroups', v, value, {
      ...(v >= 1 ? throttle(v, 2, 97) : {}),
      groups: [
        {
          errorCode: 0,
          groupId: 'cg-orders',
          state: 'Stable',
          protocolType: 'consumer',
          protocol: 'RoundRobinAssigner',
          members: [
            {
              memberId: 'member-1',
              clientId: 'orders-app',
              clientHost: '/10.0.0.7',
              memberMetadata: metadata,
              memberAssignment: assignment,
            },
          ],
        },
        { errorCode: 0, groupId: 'cg-gone', state: 'Dead', protocolType: '', protocol: '', members: [] },
      ],
    })
  }
})

void test('ListGroups v0-2 requests and responses', async () => {
  const groups = [
    { groupId: 'cg-orders', protocolType: 'consumer' },
    { groupId: 'connect-cluster', protocolType: 'connect' },
  ]
  for (const v of range(0, 2)) {
    await checkRequest<ListGroupsRequest>(listGroupsRequestSchema, 'listGroups', v, {}, {})
    await checkResponse<ListGroupsResponse>(
      listGroupsResponseSchema,
      'listGroups',
      v,
      { throttleTimeMs: 101, errorCode: 0, groups },
      { ...(v >= 1 ? throttle(v, 2, 101) : {}), errorCode: 0, groups },
    )
  }
})

void test('OffsetCommit v0-5 requests and responses', async () => {
  const args = {
    groupId: 'cg-orders',
    groupGenerationId: 3,
    memberId: 'member-1',
    retentionTime: 86400000,
    topics: [
      {
        topic: 'orders',
        partitions: [
          { partition: 0, offset: 2 ** 35, timestamp: T0, metadata: 'by orders-app' },
          { partition: 1, offset: '7', timestamp: -1 },
        ],
      },
      { topic: 'payments', partitions: [] },
    ],
  }
  const expected: Shape<OffsetCommitRequest> = {
    groupId: 'cg-orders',
    generationIdOrMemberEpoch: 3,
    memberId: 'member-1',
    retentionTimeMs: 86400000,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, committedOffset: 2 ** 35, commitTimestamp: T0, committedMetadata: 'by orders-app' },
          { partitionIndex: 1, committedOffset: 7, commitTimestamp: -1, committedMetadata: null },
        ],
      },
      { name: 'payments', partitions: [] },
    ],
  }
  const value: Shape<OffsetCommitResponse> = {
    throttleTimeMs: 103,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, errorCode: 0 },
          { partitionIndex: 1, errorCode: 22 },
        ],
      },
    ],
  }
  for (const v of range(0, 5)) {
    await checkRequest<OffsetCommitRequest>(offsetCommitRequestSchema, 'offsetCommit', v, args, expected)
    await checkResponse<OffsetCommitResponse>(offsetCommitResponseSchema, 'offsetCommit', v, value, {
      ...(v >= 3 ? throttle(v, 4, 103) : {}),
      responses: [
        {
          topic: 'orders',
          partitions: [
            { partition: 0, errorCode: 0 },
            { partition: 1, errorCode: 22 },
          ],
        },
      ],
    })
  }
})

void test('OffsetFetch v1-4 requests and responses', async () => {
  const value: Shape<OffsetFetchResponse> = {
    throttleTimeMs: 107,
    errorCode: 0,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, committedOffset: 2 ** 35, metadata: 'by orders-app', errorCode: 0 },
          { partitionIndex: 3, committedOffset: -1, metadata: null, errorCode: 0 },
        ],
      },
    ],
  }
  for (const v of range(1, 4)) {
    await checkRequest<OffsetFetchRequest>(
      offsetFetchRequestSchema,
      'offsetFetch',
      v,
      { groupId: 'cg-orders', topics: [{ topic: 'orders', partitions: [{ partition: 0 }, { partition: 3 }] }] },
      { groupId: 'cg-orders', topics: [{ name: 'orders', partitionIndexes: [0, 3] }] },
    )
    // No topics: an empty array up to v2, null ("all topics") from v3, where KafkaJS uses it.
    await checkRequest<OffsetFetchRequest>(
      offsetFetchRequestSchema,
      'offsetFetch',
      v,
      { groupId: 'cg-orders', topics: [] },
      { groupId: 'cg-orders', topics: v >= 3 ? null : [] },
    )
    await checkResponse<OffsetFetchResponse>(offsetFetchResponseSchema, 'offsetFetch', v, value, {
      ...(v >= 3 ? throttle(v, 4, 107) : {}),
      responses: [
        {
          topic: 'orders',
          partitions: [
            { partition: 0, offset: String(2 ** 35), metadata: 'by orders-app', errorCode: 0 },
            { partition: 3, offset: '-1', metadata: null, errorCode: 0 },
          ],
        },
      ],
      ...(v >= 2 ? { errorCode: 0 } : {}),
    })
  }
})

void test('AlterConfigs v0-1 requests and responses', async () => {
  const value: Shape<AlterConfigsResponse> = {
    throttleTimeMs: 109,
    responses: [
      { errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 'orders' },
      {
        errorCode: 40,
        errorMessage: 'Invalid value abc for configuration log.retention.ms',
        resourceType: 4,
        resourceName: '1',
      },
    ],
  }
  for (const v of range(0, 1)) {
    await checkRequest<AlterConfigsRequest>(
      alterConfigsRequestSchema,
      'alterConfigs',
      v,
      {
        validateOnly: true,
        resources: [
          {
            type: 2,
            name: 'orders',
            configEntries: [
              { name: 'retention.ms', value: '1000' },
              { name: 'cleanup.policy', value: null },
            ],
          },
          { type: 4, name: '1', configEntries: [] },
        ],
      },
      {
        validateOnly: true,
        resources: [
          {
            resourceType: 2,
            resourceName: 'orders',
            configs: [
              { name: 'retention.ms', value: '1000' },
              { name: 'cleanup.policy', value: null },
            ],
          },
          { resourceType: 4, resourceName: '1', configs: [] },
        ],
      },
    )
    await checkResponse<AlterConfigsResponse>(alterConfigsResponseSchema, 'alterConfigs', v, value, {
      ...throttle(v, 1, 109),
      resources: value.responses,
    })
  }
})

void test('DeleteGroups v0-1 requests and responses', async () => {
  const results = [
    { groupId: 'cg-a', errorCode: 0 },
    { groupId: 'cg-b', errorCode: 0 },
  ]
  for (const v of range(0, 1)) {
    await checkRequest<DeleteGroupsRequest>(deleteGroupsRequestSchema, 'deleteGroups', v, ['cg-a', 'cg-b'], {
      groupsNames: ['cg-a', 'cg-b'],
    })
    // KafkaJS v1 looks for `throttleTime` where v0 reports `throttleTimeMs`, so its side value is undefined.
    await checkResponse<DeleteGroupsResponse>(
      deleteGroupsResponseSchema,
      'deleteGroups',
      v,
      { throttleTimeMs: 113, results },
      { throttleTimeMs: 113, results, ...(v >= 1 ? { throttleTime: 0, clientSideThrottleTime: undefined } : {}) },
    )
  }
})

void test('DeleteRecords v0-1 requests and responses', async () => {
  const args = {
    timeout: 2500,
    topics: [
      {
        topic: 'orders',
        partitions: [
          { partition: 0, offset: 2 ** 35 },
          { partition: 1, offset: '-1' },
        ],
      },
    ],
  }
  const value: Shape<DeleteRecordsResponse> = {
    throttleTimeMs: 127,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, lowWatermark: 2 ** 35, errorCode: 0 },
          { partitionIndex: 1, lowWatermark: 12, errorCode: 0 },
        ],
      },
    ],
  }
  for (const v of range(0, 1)) {
    await checkRequest<DeleteRecordsRequest>(deleteRecordsRequestSchema, 'deleteRecords', v, args, {
      timeoutMs: 2500,
      topics: [
        {
          name: 'orders',
          partitions: [
            { partitionIndex: 0, offset: 2 ** 35 },
            { partitionIndex: 1, offset: -1 },
          ],
        },
      ],
    })
    await checkResponse<DeleteRecordsResponse>(
      deleteRecordsResponseSchema,
      'deleteRecords',
      v,
      value,
      {
        ...throttle(v, 1, 127),
        topics: [
          {
            topic: 'orders',
            partitions: [
              { partition: 0, lowWatermark: BigInt(2 ** 35), errorCode: 0 },
              { partition: 1, lowWatermark: 12n, errorCode: 0 },
            ],
          },
        ],
      },
      args,
    )
  }
})

void test('InitProducerId v0-1 requests and responses', async () => {
  for (const v of range(0, 1)) {
    for (const transactionalId of ['tx-orders', null]) {
      await checkRequest<InitProducerIdRequest>(
        initProducerIdRequestSchema,
        'initProducerId',
        v,
        { transactionalId, transactionTimeout: 60000 },
        { transactionalId, transactionTimeoutMs: 60000 },
      )
    }
    await checkResponse<InitProducerIdResponse>(
      initProducerIdResponseSchema,
      'initProducerId',
      v,
      { throttleTimeMs: 131, errorCode: 0, producerId: 2 ** 40 + 1, producerEpoch: 2 },
      { ...throttle(v, 1, 131), errorCode: 0, producerId: String(2 ** 40 + 1), producerEpoch: 2 },
    )
  }
})

void test('SaslHandshake v0-1 requests and responses', async () => {
  for (const v of range(0, 1)) {
    await checkRequest<SaslHandshakeRequest>(
      saslHandshakeRequestSchema,
      'saslHandshake',
      v,
      { mechanism: 'SCRAM-SHA-256' },
      { mechanism: 'SCRAM-SHA-256' },
    )
    await checkResponse<SaslHandshakeResponse>(
      saslHandshakeResponseSchema,
      'saslHandshake',
      v,
      { errorCode: 0, mechanisms: ['PLAIN', 'SCRAM-SHA-256'] },
      { errorCode: 0, enabledMechanisms: ['PLAIN', 'SCRAM-SHA-256'] },
    )
  }
})
