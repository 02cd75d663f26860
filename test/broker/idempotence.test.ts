// Idempotent producers through the wire, against the broker process: InitProducerId, retried
// batches answered with their original offsets and not appended again, sequence gaps, fenced
// epochs, epoch bumps, expiry, and producer state and producer ids surviving a clean restart.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type CreateTopicsResponse } from '../../src/protocol/messages/create-topics-response.ts'
import { type FetchResponse } from '../../src/protocol/messages/fetch-response.ts'
import { type InitProducerIdResponse } from '../../src/protocol/messages/init-producer-id-response.ts'
import { type ListOffsetsResponse } from '../../src/protocol/messages/list-offsets-response.ts'
import { type ProduceResponse } from '../../src/protocol/messages/produce-response.ts'
import { decodeRecords, encodeRecordBatch, readBatchHeader } from '../../src/protocol/record-batch.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { advertisedApis } from '../helpers/compat.ts'
import { parseResponse, RawClient, requestFrame } from '../helpers/raw-client.ts'

let broker: BrokerProcess
let client: RawClient
let corr = 0

before(async () => {
  broker = await startBroker({ config: { 'auto.create.topics.enable': 'false' } })
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

async function createTopic(
  name: string,
  partitions = 1,
  configs: Record<string, string> = {},
  c = client,
): Promise<void> {
  const res = await call<CreateTopicsResponse>(
    19,
    7,
    {
      topics: [
        {
          name,
          numPartitions: partitions,
          replicationFactor: 1,
          assignments: [],
          configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
        },
      ],
      timeoutMs: 1000,
      validateOnly: false,
    },
    c,
  )
  assert.equal(res.topics[0].errorCode, 0)
}

async function initProducerId(
  version = 4,
  body: Record<string, unknown> = {},
  c = client,
): Promise<InitProducerIdResponse> {
  return call<InitProducerIdResponse>(
    22,
    version,
    { transactionalId: null, transactionTimeoutMs: -1, producerId: -1, producerEpoch: -1, ...body },
    c,
  )
}

interface Idem {
  producerId: number
  epoch: number
}

function idemBatch(p: Idem, baseSequence: number, values: string[]): Buffer {
  return encodeRecordBatch({
    producerId: p.producerId,
    producerEpoch: p.epoch,
    baseSequence,
    records: values.map((v) => ({ key: null, value: Buffer.from(v) })),
  })
}

function produceFrame(id: number, topic: string, partition: number, records: Buffer, acks = -1): Buffer {
  return requestFrame(0, 7, id, {
    transactionalId: null,
    acks,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  })
}

async function produce(topic: string, partition: number, records: Buffer, c = client) {
  const res = await call<ProduceResponse>(
    0,
    7,
    {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
    },
    c,
  )
  return res.responses[0].partitionResponses[0]
}

async function logEnd(topic: string, partition = 0, c = client): Promise<number> {
  const res = await call<ListOffsetsResponse>(
    2,
    1,
    { replicaId: -1, topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp: -1 }] }] },
    c,
  )
  return res.topics[0].partitions[0].offset
}

/** Every record value of a partition, in offset order, with the producer id of its batch. */
async function readAll(
  topic: string,
  partition = 0,
  c = client,
): Promise<{ offset: number; value: string; producerId: number }[]> {
  const res = await call<FetchResponse>(
    1,
    11,
    {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 24,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic,
          partitions: [
            { partition, fetchOffset: 0, partitionMaxBytes: 1 << 24, logStartOffset: -1, currentLeaderEpoch: -1 },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    },
    c,
  )
  const records = res.responses[0].partitions[0].records ?? Buffer.alloc(0)
  const out: { offset: number; value: string; producerId: number }[] = []
  for (let pos = 0; pos < records.length;) {
    const size = records.readInt32BE(pos + 8) + 12
    const b = records.subarray(pos, pos + size)
    const producerId = readBatchHeader(b, 0).producerId
    for (const r of decodeRecords(b)) out.push({ offset: r.offset, value: r.value!.toString(), producerId })
    pos += size
  }
  return out
}

void test('InitProducerId v0-4 hands out increasing ids with epoch 0; transactional ids are refused', async () => {
  assert.deepEqual((await advertisedApis(broker.port)).get(22), [0, 4])
  const ids: number[] = []
  for (let v = 0; v <= 4; v++) {
    const res = await initProducerId(v)
    assert.equal(res.errorCode, 0)
    assert.equal(res.producerEpoch, 0)
    ids.push(res.producerId)
  }
  // v3+ with a producer id and epoch, as @platformatic/kafka sends (0/0) or a bump would: like
  // Kafka for a null transactional id, a new producer id with epoch 0.
  const zero = await initProducerId(4, { producerId: 0, producerEpoch: 0 })
  assert.equal(zero.errorCode, 0)
  assert.equal(zero.producerEpoch, 0)
  ids.push(zero.producerId)
  const again = await initProducerId(3, { producerId: ids[0], producerEpoch: 0 })
  ids.push(again.producerId)
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids increase: ${ids.join(',')}`)
  // ProducerId and ProducerEpoch must be both -1 or both set (KafkaApis: INVALID_REQUEST).
  assert.equal((await initProducerId(3, { producerId: -1, producerEpoch: 5 })).errorCode, 42)
  assert.equal((await initProducerId(4, { producerId: 7, producerEpoch: -1 })).errorCode, 42)
  // Transactions are not supported: TRANSACTIONAL_ID_AUTHORIZATION_FAILED, for every version.
  for (const v of [0, 2, 4]) {
    const tx = await initProducerId(v, { transactionalId: 'my-txn', transactionTimeoutMs: 60000 })
    assert.deepEqual([tx.errorCode, tx.producerId, tx.producerEpoch], [53, -1, -1])
  }
})

void test('a resent batch gets its original offset and is not appended again', async () => {
  await createTopic('idem-resend')
  const p = { producerId: (await initProducerId()).producerId, epoch: 0 }
  const first = idemBatch(p, 0, ['a', 'b', 'c'])
  const r1 = await produce('idem-resend', 0, first)
  assert.deepEqual([r1.errorCode, r1.baseOffset], [0, 0])
  const r2 = await produce('idem-resend', 0, idemBatch(p, 3, ['d']))
  assert.deepEqual([r2.errorCode, r2.baseOffset], [0, 3])
  for (let i = 0; i < 3; i++) {
    const again = await produce('idem-resend', 0, idemBatch(p, 0, ['a', 'b', 'c']))
    assert.deepEqual([again.errorCode, again.baseOffset], [0, 0], 'a retry of the first batch: offset 0 again')
  }
  assert.deepEqual([(await produce('idem-resend', 0, idemBatch(p, 3, ['d']))).baseOffset], [3])
  assert.equal(await logEnd('idem-resend'), 4)
  assert.deepEqual(
    (await readAll('idem-resend')).map((r) => [r.offset, r.value, r.producerId]),
    [
      [0, 'a', p.producerId],
      [1, 'b', p.producerId],
      [2, 'c', p.producerId],
      [3, 'd', p.producerId],
    ],
  )
  // A retry from another connection is recognised too: state is per partition, not per socket.
  const other = await RawClient.connect(broker.port)
  assert.equal((await produce('idem-resend', 0, idemBatch(p, 3, ['d']), other)).baseOffset, 3)
  other.close()
  // Non-idempotent batches are never deduplicated.
  const plain = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('plain') }] })
  assert.equal((await produce('idem-resend', 0, plain)).baseOffset, 4)
  assert.equal((await produce('idem-resend', 0, plain)).baseOffset, 5)
})

void test('five pipelined batches all resent: each answered with its original offset; older, gapped and fenced batches refused', async () => {
  await createTopic('idem-five', 2)
  const p = { producerId: (await initProducerId()).producerId, epoch: 0 }
  const c = await RawClient.connect(broker.port)
  // Seven batches of 1..7 records, the first two acknowledged before the other five go out pipelined.
  const batches: { seq: number; values: string[] }[] = []
  let seq = 0
  for (let i = 0; i < 7; i++) {
    const values = Array.from({ length: i + 1 }, (_, j) => `b${i}-${j}`)
    batches.push({ seq, values })
    seq += values.length
  }
  const offsets: number[] = []
  for (const b of batches.slice(0, 2))
    offsets.push((await produce('idem-five', 1, idemBatch(p, b.seq, b.values), c)).baseOffset)
  for (const [i, b] of batches.slice(2).entries())
    c.write(produceFrame(100 + i, 'idem-five', 1, idemBatch(p, b.seq, b.values)))
  for (let i = 0; i < 5; i++) {
    const { correlationId, body } = parseResponse<ProduceResponse>(0, 7, await c.nextFrame())
    assert.equal(correlationId, 100 + i)
    assert.equal(body.responses[0].partitionResponses[0].errorCode, 0)
    offsets.push(body.responses[0].partitionResponses[0].baseOffset)
  }
  const end = await logEnd('idem-five', 1)
  // The client lost every answer and resends the five in flight, pipelined again.
  for (const [i, b] of batches.slice(2).entries())
    c.write(produceFrame(200 + i, 'idem-five', 1, idemBatch(p, b.seq, b.values)))
  for (let i = 0; i < 5; i++) {
    const { body } = parseResponse<ProduceResponse>(0, 7, await c.nextFrame())
    const r = body.responses[0].partitionResponses[0]
    assert.deepEqual([r.errorCode, r.baseOffset], [0, offsets[2 + i]], `resent batch ${2 + i}`)
  }
  assert.equal(await logEnd('idem-five', 1), end, 'nothing appended by the resends')
  // Batch 1 is older than the five remembered: out of order, as in Kafka.
  assert.equal((await produce('idem-five', 1, idemBatch(p, batches[1].seq, batches[1].values), c)).errorCode, 45)
  // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
  assert.equal((await produce('idem-five', 1, idemBatch(p, seq + 1, ['gap']), c)).errorCode, 45)
  // The same producer on the other partition has its own sequence space (unknown there: any start).
  assert.equal((await produce('idem-five', 0, idemBatch(p, 1000, ['elsewhere']), c)).errorCode, 0)
  // A bumped epoch must restart at 0; after it the old epoch is fenced.
  const bumped = { ...p, epoch: 1 }
  assert.equal((await produce('idem-five', 1, idemBatch(bumped, seq, ['x']), c)).errorCode, 45)
  const afterBump = await produce('idem-five', 1, idemBatch(bumped, 0, ['bumped']), c)
  assert.deepEqual([afterBump.errorCode, afterBump.baseOffset], [0, end])
  const fenced = await produce('idem-five', 1, idemBatch(p, seq, ['zombie']), c)
  assert.equal(fenced.errorCode, 47) // INVALID_PRODUCER_EPOCH
  assert.equal((await produce('idem-five', 1, idemBatch(p, batches[6].seq, batches[6].values), c)).errorCode, 47)
  const values = (await readAll('idem-five', 1, c)).map((r) => r.value)
  assert.deepEqual(values, [...batches.flatMap((b) => b.values), 'bumped'], 'every record exactly once, in order')
  c.close()
})

void test('duplicates keep LogAppendTime and acks=0 semantics', async () => {
  await createTopic('idem-lat', 1, { 'message.timestamp.type': 'LogAppendTime' })
  const p = { producerId: (await initProducerId()).producerId, epoch: 0 }
  const r1 = await produce('idem-lat', 0, idemBatch(p, 0, ['t']))
  assert.ok(r1.logAppendTimeMs > 0)
  await sleep(20)
  const r2 = await produce('idem-lat', 0, idemBatch(p, 0, ['t']))
  assert.deepEqual([r2.baseOffset, r2.logAppendTimeMs], [r1.baseOffset, r1.logAppendTimeMs], 'the original append time')
  // acks=0: a duplicate is not appended and (as any acks=0 produce) not answered.
  const c = await RawClient.connect(broker.port)
  c.write(produceFrame(1, 'idem-lat', 0, idemBatch(p, 0, ['t']), 0))
  c.write(produceFrame(2, 'idem-lat', 0, idemBatch(p, 1, ['u']), 0))
  c.write(requestFrame(18, 0, 3, {}))
  assert.equal((await c.nextFrame()).readInt32BE(0), 3)
  c.close()
  // An acks=0 record becomes visible once its flush round is done (cortado.fsync=ack: the high
  // watermark is the durable end), which nothing here waits for: read until it shows.
  let values: string[] = []
  for (let i = 0; i < 100 && values.length < 2; i++) {
    values = (await readAll('idem-lat')).map((r) => r.value)
    if (values.length < 2) await sleep(20)
  }
  assert.deepEqual(values, ['t', 'u'])
})

void test('idle producers expire after producer.id.expiration.ms', async () => {
  const b = await startBroker({
    config: { 'producer.id.expiration.ms': '300', 'producer.id.expiration.check.interval.ms': '50' },
  })
  try {
    const c = await RawClient.connect(b.port)
    await createTopic('idem-expiry', 1, {}, c)
    const p = { producerId: (await initProducerId(4, {}, c)).producerId, epoch: 0 }
    assert.equal((await produce('idem-expiry', 0, idemBatch(p, 0, ['a']), c)).errorCode, 0)
    assert.equal((await produce('idem-expiry', 0, idemBatch(p, 5, ['gap']), c)).errorCode, 45)
    await sleep(500)
    // Forgotten: accepted at any sequence, like a producer never seen (and a retry is no longer recognised).
    assert.equal((await produce('idem-expiry', 0, idemBatch(p, 5, ['after-expiry']), c)).errorCode, 0)
    assert.equal((await produce('idem-expiry', 0, idemBatch(p, 6, ['next']), c)).errorCode, 0)
    assert.deepEqual(
      (await readAll('idem-expiry', 0, c)).map((r) => r.value),
      ['a', 'after-expiry', 'next'],
    )
    c.close()
  } finally {
    assert.equal(await b.stop(), 0)
    removeDir(b.dataDir)
  }
})

void test('producer state and producer ids survive a clean restart', async () => {
  const first = await startBroker()
  const dataDir = first.dataDir
  try {
    let c = await RawClient.connect(first.port)
    await createTopic('idem-restart', 1, {}, c)
    const p = { producerId: (await initProducerId(4, {}, c)).producerId, epoch: 0 }
    const offsets: number[] = []
    for (let i = 0; i < 5; i++)
      offsets.push((await produce('idem-restart', 0, idemBatch(p, i * 2, [`r${i}a`, `r${i}b`]), c)).baseOffset)
    c.close()
    assert.equal(await first.stop(), 0)
    const second = await startBroker({ dataDir })
    try {
      c = await RawClient.connect(second.port)
      for (let i = 0; i < 5; i++) {
        const r = await produce('idem-restart', 0, idemBatch(p, i * 2, [`r${i}a`, `r${i}b`]), c)
        assert.deepEqual([r.errorCode, r.baseOffset], [0, offsets[i]], `batch ${i} recognised after the restart`)
      }
      assert.equal((await produce('idem-restart', 0, idemBatch(p, 11, ['gap']), c)).errorCode, 45)
      assert.equal((await produce('idem-restart', 0, idemBatch(p, 10, ['next']), c)).baseOffset, 10)
      const fresh = await initProducerId(4, {}, c)
      assert.ok(fresh.producerId > p.producerId, 'producer ids are never reused across restarts')
      c.close()
    } finally {
      assert.equal(await second.stop(), 0)
    }
  } finally {
    removeDir(dataDir)
  }
})
