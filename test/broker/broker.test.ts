// The broker's request handlers through the wire, with exact error codes: topic admin, produce
// validation, fetch long polling, list offsets, retention, delete while in use.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type CreatePartitionsResponse } from '../../src/protocol/messages/create-partitions-response.ts'
import { type CreateTopicsResponse } from '../../src/protocol/messages/create-topics-response.ts'
import { type DeleteTopicsResponse } from '../../src/protocol/messages/delete-topics-response.ts'
import { type DescribeConfigsResponse } from '../../src/protocol/messages/describe-configs-response.ts'
import { type FetchResponse } from '../../src/protocol/messages/fetch-response.ts'
import { type ListOffsetsResponse } from '../../src/protocol/messages/list-offsets-response.ts'
import { type MetadataResponse } from '../../src/protocol/messages/metadata-response.ts'
import { type ProduceResponse } from '../../src/protocol/messages/produce-response.ts'
import { decodeRecords, encodeRecordBatch } from '../../src/protocol/record-batch.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../helpers/raw-client.ts'

let broker: BrokerProcess
let client: RawClient
let corr = 0

before(async () => {
  broker = await startBroker({
    config: {
      'message.max.bytes': '20000',
      'log.retention.check.interval.ms': '200',
      'auto.create.topics.enable': 'false',
    },
  })
  client = await RawClient.connect(broker.port)
})

after(async () => {
  client.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

async function call<T>(apiKey: number, version: number, body: unknown, c = client): Promise<T> {
  const id = ++corr
  c.write(requestFrame(apiKey, version, id, body))
  const res = parseResponse<T>(apiKey, version, await c.nextFrame())
  assert.equal(res.correlationId, id)
  return res.body
}

async function createTopic(name: string, partitions = 1, configs: Record<string, string> = {}, replicationFactor = 1) {
  const res = await call<CreateTopicsResponse>(19, 7, {
    topics: [
      {
        name,
        numPartitions: partitions,
        replicationFactor,
        assignments: [],
        configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
      },
    ],
    timeoutMs: 1000,
    validateOnly: false,
  })
  return res.topics[0]
}

function batch(values: string[], timestamp?: number): Buffer {
  return encodeRecordBatch({ records: values.map((v) => ({ key: null, value: Buffer.from(v), timestamp })) })
}

async function produce(topic: string, partition: number, records: Buffer, acks = -1, version = 7) {
  const res = await call<ProduceResponse>(0, version, {
    transactionalId: null,
    acks,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  })
  return res.responses[0].partitionResponses[0]
}

function fetchBody(topic: string, partition: number, offset: number, maxWaitMs = 0, minBytes = 0) {
  return {
    replicaId: -1,
    maxWaitMs,
    minBytes,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        partitions: [
          { partition, fetchOffset: offset, partitionMaxBytes: 1 << 20, logStartOffset: -1, currentLeaderEpoch: -1 },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  }
}

/**
 * Every value from `offset` to the end (a fetch returns batches from one segment at a time).
 * `waitMs`: the first fetch long-polls that long for a record, as one acks=0 sent is visible only
 * once its flush round is done, which nothing the client gets back waits for.
 */
async function fetchValues(topic: string, partition: number, offset: number, waitMs = 0): Promise<string[]> {
  const values: string[] = []
  let wait: number = waitMs
  for (;;) {
    const res = await call<FetchResponse>(1, 11, fetchBody(topic, partition, offset, wait, wait > 0 ? 1 : 0))
    wait = 0
    const p = res.responses[0].partitions[0]
    assert.equal(p.errorCode, 0)
    if (p.records === null || p.records.length === 0) return values
    let next = offset
    for (let pos = 0; pos < p.records.length;) {
      const size = p.records.readInt32BE(pos + 8) + 12
      for (const r of decodeRecords(p.records.subarray(pos, pos + size))) {
        if (r.offset >= offset) values.push(r.value!.toString())
        next = r.offset + 1
      }
      pos += size
    }
    offset = next
    if (offset >= p.highWatermark) return values
  }
}

void test('CreateTopics refuses duplicates, bad names, bad configs and replication beyond one broker', async () => {
  assert.equal((await createTopic('admin-a', 2)).errorCode, 0)
  const again = await createTopic('admin-a', 2)
  assert.equal(again.errorCode, 36) // TOPIC_ALREADY_EXISTS
  assert.equal((await createTopic('bad/name')).errorCode, 17) // INVALID_TOPIC_EXCEPTION
  assert.equal((await createTopic('x'.repeat(250))).errorCode, 17)
  assert.equal((await createTopic('admin-b', 1, { 'retention.ms': 'soon' })).errorCode, 40) // INVALID_CONFIG
  assert.equal((await createTopic('admin-b', 1, { 'no.such.config': '1' })).errorCode, 40)
  assert.equal((await createTopic('admin-b', 0)).errorCode, 37) // INVALID_PARTITIONS
  assert.equal((await createTopic('admin-b', 1, {}, 3)).errorCode, 38) // INVALID_REPLICATION_FACTOR
  const meta = await call<MetadataResponse>(3, 1, { topics: [{ name: 'admin-a' }, { name: 'admin-b' }] })
  assert.equal(meta.topics[0].partitions.length, 2)
  assert.equal(meta.topics[1].errorCode, 3) // not created by any refused request, no auto-create
})

void test('CreatePartitions grows a topic and refuses shrinking', async () => {
  await createTopic('grow', 1)
  const grown = await call<CreatePartitionsResponse>(37, 1, {
    topics: [{ name: 'grow', count: 3, assignments: null }],
    timeoutMs: 1000,
    validateOnly: false,
  })
  assert.equal(grown.results[0].errorCode, 0)
  const shrink = await call<CreatePartitionsResponse>(37, 1, {
    topics: [{ name: 'grow', count: 2, assignments: null }],
    timeoutMs: 1000,
    validateOnly: false,
  })
  assert.equal(shrink.results[0].errorCode, 37)
  assert.equal((await produce('grow', 2, batch(['in-new-partition']))).errorCode, 0)
  assert.deepEqual(await fetchValues('grow', 2, 0), ['in-new-partition'])
})

void test('DescribeConfigs shows topic overrides and broker settings under Kafka names', async () => {
  await createTopic('described', 1, { 'retention.ms': '12345' })
  const res = await call<DescribeConfigsResponse>(32, 1, {
    resources: [
      { resourceType: 2, resourceName: 'described', configurationKeys: null },
      { resourceType: 4, resourceName: '0', configurationKeys: ['message.max.bytes'] },
      { resourceType: 2, resourceName: 'nope', configurationKeys: null },
    ],
    includeSynonyms: false,
  })
  const retention = res.results[0].configs.find((c) => c.name === 'retention.ms')!
  assert.equal(retention.value, '12345')
  assert.equal(retention.configSource, 1)
  assert.equal(res.results[0].configs.find((c) => c.name === 'max.message.bytes')!.value, '20000')
  assert.deepEqual(
    res.results[1].configs.map((c) => [c.name, c.value]),
    [['message.max.bytes', '20000']],
  )
  assert.equal(res.results[2].errorCode, 3)
})

void test('Produce refuses oversized, corrupt, v0-format and unknown-partition writes with Kafka error codes', async () => {
  await createTopic('strict', 1)
  const big = await produce('strict', 0, batch(['x'.repeat(30_000)]))
  assert.equal(big.errorCode, 10) // MESSAGE_TOO_LARGE (Java's RecordTooLargeException)
  const corrupt = batch(['hello'])
  corrupt[corrupt.length - 1] ^= 0xff
  assert.equal((await produce('strict', 0, corrupt)).errorCode, 2) // CORRUPT_MESSAGE
  const magic1 = batch(['hello'])
  magic1[16] = 1
  assert.equal((await produce('strict', 0, magic1)).errorCode, 87) // INVALID_RECORD
  assert.equal((await produce('strict', 5, batch(['a']))).errorCode, 3)
  assert.equal((await produce('no-such-topic', 0, batch(['a']))).errorCode, 3)
  assert.equal((await produce('strict', 0, Buffer.concat([batch(['a']), batch(['b'])]))).errorCode, 87) // one batch per partition in v3+
  assert.equal((await produce('strict', 0, batch(['a']), 2)).errorCode, 21) // INVALID_REQUIRED_ACKS
  // Nothing refused reached the log; the next good write gets offset 0.
  const ok = await produce('strict', 0, batch(['good']))
  assert.equal(ok.errorCode, 0)
  assert.equal(ok.baseOffset, 0)
  assert.deepEqual(await fetchValues('strict', 0, 0), ['good'])
})

void test('a failed acks=0 produce closes that connection; a good one gets no response', async () => {
  await createTopic('fire-and-forget', 1)
  const c = await RawClient.connect(broker.port)
  c.write(
    requestFrame(0, 7, 1, {
      transactionalId: null,
      acks: 0,
      timeoutMs: 1000,
      topicData: [{ name: 'fire-and-forget', partitionData: [{ index: 0, records: batch(['one']) }] }],
    }),
  )
  c.write(requestFrame(18, 0, 2, {}))
  assert.equal((await c.nextFrame()).readInt32BE(0), 2) // the produce was not answered
  c.write(
    requestFrame(0, 7, 3, {
      transactionalId: null,
      acks: 0,
      timeoutMs: 1000,
      topicData: [{ name: 'fire-and-forget', partitionData: [{ index: 9, records: batch(['two']) }] }],
    }),
  )
  await c.closed
  assert.deepEqual(await fetchValues('fire-and-forget', 0, 0, 10_000), ['one'])
})

void test('Fetch long-polls until data arrives, and honours max wait when none does', async () => {
  await createTopic('poll', 1)
  const waiter = await RawClient.connect(broker.port)
  waiter.write(requestFrame(1, 11, 1, fetchBody('poll', 0, 0, 10_000, 1)))
  await sleep(100)
  assert.equal((await produce('poll', 0, batch(['wake']))).errorCode, 0)
  const woke = parseResponse<FetchResponse>(1, 11, await waiter.nextFrame(5000))
  assert.equal(decodeRecords(woke.body.responses[0].partitions[0].records!)[0].value!.toString(), 'wake')
  waiter.write(requestFrame(1, 11, 2, fetchBody('poll', 0, 1, 300, 1)))
  const empty = parseResponse<FetchResponse>(1, 11, await waiter.nextFrame(5000))
  assert.equal(empty.body.responses[0].partitions[0].records!.length, 0)
  assert.equal(empty.body.responses[0].partitions[0].highWatermark, 1)
  waiter.close()
})

void test('Fetch past the end, or with an unknown session, gets the matching error', async () => {
  await createTopic('ranges', 1)
  await produce('ranges', 0, batch(['a', 'b']))
  const past = await call<FetchResponse>(1, 11, fetchBody('ranges', 0, 5))
  assert.equal(past.responses[0].partitions[0].errorCode, 1) // OFFSET_OUT_OF_RANGE
  const session = await call<FetchResponse>(1, 11, { ...fetchBody('ranges', 0, 0), sessionId: 1234, sessionEpoch: 3 })
  assert.equal(session.errorCode, 70) // FETCH_SESSION_ID_NOT_FOUND
})

void test('Fetch v13+ addresses topics by id', async () => {
  const created = await createTopic('by-id', 1)
  await produce('by-id', 0, batch(['id-addressed']))
  const body = {
    ...fetchBody('by-id', 0, 0),
    topics: [
      {
        topic: '',
        topicId: created.topicId,
        partitions: [
          {
            partition: 0,
            fetchOffset: 0,
            partitionMaxBytes: 1 << 20,
            logStartOffset: -1,
            currentLeaderEpoch: -1,
            lastFetchedEpoch: -1,
          },
        ],
      },
    ],
  }
  const res = await call<FetchResponse>(1, 13, body)
  assert.equal(decodeRecords(res.responses[0].partitions[0].records!)[0].value!.toString(), 'id-addressed')
  const unknown = await call<FetchResponse>(1, 13, {
    ...body,
    topics: [{ ...body.topics[0], topicId: Buffer.alloc(16, 1) }],
  })
  assert.equal(unknown.responses[0].partitions[0].errorCode, 100) // UNKNOWN_TOPIC_ID
})

void test('ListOffsets: earliest, latest, by timestamp, and v0 for Burrow', async () => {
  await createTopic('times', 1)
  await produce('times', 0, batch(['t1000'], 1000))
  await produce('times', 0, batch(['t2000a', 't2000b'], 2000))
  await produce('times', 0, batch(['t3000'], 3000))
  const ask = (timestamp: number) =>
    call<ListOffsetsResponse>(2, 1, {
      replicaId: -1,
      topics: [{ name: 'times', partitions: [{ partitionIndex: 0, timestamp }] }],
    })
  assert.equal((await ask(-2)).topics[0].partitions[0].offset, 0)
  assert.equal((await ask(-1)).topics[0].partitions[0].offset, 4)
  const at = (await ask(1500)).topics[0].partitions[0]
  assert.deepEqual([at.offset, at.timestamp], [1, 2000])
  assert.equal((await ask(9999)).topics[0].partitions[0].offset, -1)
  const v0 = await call<ListOffsetsResponse>(2, 0, {
    replicaId: -1,
    topics: [{ name: 'times', partitions: [{ partitionIndex: 0, timestamp: -1, maxNumOffsets: 1 }] }],
  })
  assert.deepEqual(v0.topics[0].partitions[0].oldStyleOffsets, [4])
})

void test('retention by size deletes old segments and advances the log start offset', async () => {
  await createTopic('retained', 1, { 'segment.bytes': '1024', 'retention.bytes': '2048' })
  for (let i = 0; i < 40; i++)
    assert.equal((await produce('retained', 0, batch([`${i}`.padEnd(200, '.')]))).errorCode, 0)
  const earliest = async () =>
    (
      await call<ListOffsetsResponse>(2, 1, {
        replicaId: -1,
        topics: [{ name: 'retained', partitions: [{ partitionIndex: 0, timestamp: -2 }] }],
      })
    ).topics[0].partitions[0].offset
  for (let i = 0; i < 100 && (await earliest()) === 0; i++) await sleep(50)
  const start = await earliest()
  assert.ok(start > 0, 'log start offset advanced')
  const values = await fetchValues('retained', 0, start)
  assert.equal(values[values.length - 1].startsWith('39'), true)
  const before = await call<FetchResponse>(1, 11, fetchBody('retained', 0, 0))
  assert.equal(before.responses[0].partitions[0].errorCode, 1)
})

void test('deleting a topic while clients produce to it and long-poll it is safe', async () => {
  await createTopic('doomed', 2)
  const producer = await RawClient.connect(broker.port)
  const poller = await RawClient.connect(broker.port)
  poller.write(requestFrame(1, 11, 1, fetchBody('doomed', 1, 0, 10_000, 1)))
  let stop = false
  let produced = 0
  const errors = new Set<number>()
  const loop = (async () => {
    for (let id = 1; !stop; id++) {
      producer.write(
        requestFrame(0, 7, id, {
          transactionalId: null,
          acks: -1,
          timeoutMs: 1000,
          topicData: [{ name: 'doomed', partitionData: [{ index: 0, records: batch(['x']) }] }],
        }),
      )
      const res = parseResponse<ProduceResponse>(0, 7, await producer.nextFrame())
      const code = res.body.responses[0].partitionResponses[0].errorCode
      if (code === 0) produced++
      else errors.add(code)
    }
  })()
  while (produced < 20) await sleep(5)
  const del = await call<DeleteTopicsResponse>(20, 4, { topicNames: ['doomed'], timeoutMs: 1000 })
  assert.equal(del.responses[0].errorCode, 0)
  const polled = parseResponse<FetchResponse>(1, 11, await poller.nextFrame(5000))
  assert.equal(polled.body.responses[0].partitions[0].errorCode, 3)
  while (errors.size === 0) await sleep(5)
  stop = true
  await loop
  assert.ok(
    [...errors].every((e) => e === 3 || e === 6),
    `errors after delete: ${[...errors].join(',')}`,
  )
  producer.close()
  poller.close()
  // The name can be reused at once, with fresh, empty partitions.
  assert.equal((await createTopic('doomed', 1)).errorCode, 0)
  assert.deepEqual(await fetchValues('doomed', 0, 0), [])
  const again = await call<DeleteTopicsResponse>(20, 4, { topicNames: ['never-existed'], timeoutMs: 1000 })
  assert.equal(again.responses[0].errorCode, 3)
})

void test('topics and data survive a clean restart', async () => {
  await createTopic('durable', 1)
  await produce('durable', 0, batch(['kept']))
  client.close()
  assert.equal(await broker.stop(), 0)
  broker = await startBroker({ dataDir: broker.dataDir, config: { 'auto.create.topics.enable': 'false' } })
  client = await RawClient.connect(broker.port)
  assert.deepEqual(await fetchValues('durable', 0, 0), ['kept'])
  assert.doesNotMatch(broker.stderr(), /"level":"(error|warn)"/)
})
