// The reliable producer (src/client/reliable-producer.ts) against the real broker process:
// order and acknowledgement, back-pressure within the buffer bounds, the broker killed and
// restarted while sending, and a non-retriable error (one signal, nothing behind it written,
// the producer usable again). The log is read back with a raw Fetch.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ProducerClosedError, ProducerSendError, RecordAbandonedError } from '../../src/client/errors.ts'
import { type ProducerFailure, type RecordMetadata, ReliableProducer } from '../../src/client/reliable-producer.ts'
import { type CreateTopicsResponse } from '../../src/protocol/messages/create-topics-response.ts'
import { type RecordHeader } from '../../src/protocol/record-batch.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { uniqueTopic } from '../helpers/compat.ts'
import { parseResponse, RawClient, readPartitionRecords, requestFrame } from '../helpers/raw-client.ts'

let broker: BrokerProcess

before(async () => {
  broker = await startBroker()
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

async function createTopic(
  port: number,
  name: string,
  partitions: number,
  configs: Record<string, string> = {},
): Promise<void> {
  const c = await RawClient.connect(port)
  try {
    c.write(
      requestFrame(19, 7, 1, {
        topics: [
          {
            name,
            numPartitions: partitions,
            replicationFactor: 1,
            assignments: [],
            configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
          },
        ],
        timeoutMs: 5000,
        validateOnly: false,
      }),
    )
    const res = parseResponse<CreateTopicsResponse>(19, 7, await c.nextFrame())
    assert.equal(res.body.topics[0].errorCode, 0)
  } finally {
    c.close()
  }
}

interface Stored {
  offset: number
  key: string | null
  value: string | null
  headers: RecordHeader[]
}

/** Every record of a partition. */
async function readPartition(port: number, topic: string, partition: number): Promise<Stored[]> {
  return (await readPartitionRecords(port, topic, partition)).map((r) => ({
    offset: r.offset,
    key: r.key?.toString() ?? null,
    value: r.value?.toString() ?? null,
    headers: r.headers,
  }))
}

test('sends N records in order, each acknowledged with its offset', async () => {
  const topic = uniqueTopic('rp-order')
  await createTopic(broker.port, topic, 1)
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap], clientId: 'rp-order' })
  try {
    const n = 1000
    const acks = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        producer.send({
          topic,
          key: Buffer.from(`k${i % 7}`),
          value: Buffer.from(`v${i}`),
          headers: [
            ['h', Buffer.from('a')],
            ['h', Buffer.from(String(i))],
          ],
          timestamp: 1_700_000_000_000 + i,
        }),
      ),
    )
    assert.deepEqual(
      acks.map((a) => a.offset),
      Array.from({ length: n }, (_, i) => BigInt(i)),
    )
    assert.ok(acks.every((a) => a.topic === topic && a.partition === 0))
    await producer.flush()
    const stored = await readPartition(broker.port, topic, 0)
    assert.deepEqual(
      stored.map((s) => s.value),
      Array.from({ length: n }, (_, i) => `v${i}`),
    )
    assert.deepEqual(
      stored[5].headers.map((h) => [h.key, h.value?.toString()]),
      [
        ['h', 'a'],
        ['h', '5'],
      ],
    )
    assert.equal(stored[3].key, 'k3')
    assert.equal(producer.failures, 0)
  } finally {
    await producer.close()
  }
})

test('keyed records without a partition: same key, same partition, order kept per partition', async () => {
  const topic = uniqueTopic('rp-keyed')
  await createTopic(broker.port, topic, 3)
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap] })
  try {
    const n = 300
    const acks = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        producer.send({ topic, key: Buffer.from(`key-${i % 10}`), value: Buffer.from(String(i)) }),
      ),
    )
    const partitionOfKey = new Map<number, number>()
    for (let i = 0; i < n; i++) {
      const k = i % 10
      const p = partitionOfKey.get(k) ?? acks[i].partition
      partitionOfKey.set(k, p)
      assert.equal(acks[i].partition, p, `key ${k} moved partition`)
    }
    for (let p = 0; p < 3; p++) {
      const stored = (await readPartition(broker.port, topic, p)).map((s) => Number(s.value))
      const sent = acks.flatMap((a, i) => (a.partition === p ? [i] : []))
      assert.deepEqual(stored, sent)
    }
  } finally {
    await producer.close()
  }
})

test('back-pressure: concurrent sends never exceed the buffer bounds and all are acknowledged', async () => {
  const topic = uniqueTopic('rp-bp')
  await createTopic(broker.port, topic, 1)
  const maxBufferedRecords = 8
  const maxBufferedBytes = 2000
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap], maxBufferedRecords, maxBufferedBytes })
  try {
    const n = 400
    let maxWaiting = 0
    const sends: Promise<RecordMetadata>[] = []
    for (let i = 0; i < n; i++) {
      sends.push(producer.send({ topic, key: null, value: Buffer.alloc(100, i % 256) }))
      assert.ok(producer.bufferedRecords <= maxBufferedRecords)
      assert.ok(producer.bufferedBytes <= maxBufferedBytes)
      maxWaiting = Math.max(maxWaiting, producer.waitingRecords)
    }
    const acks = await Promise.all(sends)
    assert.ok(maxWaiting > 0, 'callers had to wait')
    assert.ok(producer.peakBufferedRecords <= maxBufferedRecords, `peak ${producer.peakBufferedRecords} records`)
    assert.ok(producer.peakBufferedBytes <= maxBufferedBytes, `peak ${producer.peakBufferedBytes} bytes`)
    assert.ok(producer.peakBufferedRecords > 1)
    assert.deepEqual(
      acks.map((a) => a.offset),
      Array.from({ length: n }, (_, i) => BigInt(i)),
    )
    assert.equal(producer.bufferedRecords, 0)
    assert.equal(producer.bufferedBytes, 0)
    assert.equal((await readPartition(broker.port, topic, 0)).length, n)
  } finally {
    await producer.close()
  }
})

test('broker killed and restarted on the same port while sending: every record once, in order', async () => {
  const own = await startBroker()
  const port = own.port
  const dataDir = own.dataDir
  let current = own
  const topic = uniqueTopic('rp-crash')
  await createTopic(port, topic, 1)
  const producer = new ReliableProducer({
    bootstrap: [own.bootstrap],
    maxBufferedRecords: 50,
    retryBackoffMs: 20,
    maxRetryBackoffMs: 200,
  })
  try {
    const n = 3000
    let acked = 0
    let restarted: Promise<void> | undefined
    const ackedAtKill: number[] = []
    const sends: Promise<RecordMetadata>[] = []
    for (let i = 0; i < n; i++) {
      sends.push(
        producer.send({ topic, partition: 0, key: null, value: Buffer.from(`m${i}`) }).then((a) => {
          acked++
          if ((acked === 500 || acked === 2000) && restarted === undefined) {
            restarted = (async () => {
              ackedAtKill.push(acked)
              await current.kill()
              await new Promise((r) => setTimeout(r, 300))
              current = await startBroker({ port, dataDir })
              restarted = undefined
            })()
          }
          return a
        }),
      )
    }
    const acks = await Promise.all(sends)
    await restarted
    // Two kills, each with records still unacknowledged (queued or in flight).
    assert.deepEqual(ackedAtKill, [500, 2000])
    assert.deepEqual(
      acks.map((a) => a.offset),
      Array.from({ length: n }, (_, i) => BigInt(i)),
    )
    const stored = await readPartition(port, topic, 0)
    assert.deepEqual(
      stored.map((s) => s.value),
      Array.from({ length: n }, (_, i) => `m${i}`),
    )
    assert.deepEqual(
      stored.map((s) => s.offset),
      Array.from({ length: n }, (_, i) => i),
    )
    assert.equal(producer.failures, 0)
  } finally {
    await producer.close()
    await current.stop()
    removeDir(dataDir)
  }
})

async function expectNonRetriable(
  topicConfigs: Record<string, string>,
  bad: { key: Buffer | null; value: Buffer },
  expectedCode: number,
  expectedName: string,
): Promise<void> {
  const topic = uniqueTopic('rp-fail')
  await createTopic(broker.port, topic, 1, topicConfigs)
  const failures: ProducerFailure[] = []
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap], onFailure: (f) => failures.push(f) })
  try {
    await producer.send({ topic, partition: 0, key: Buffer.from('a'), value: Buffer.from('a') })
    await producer.send({ topic, partition: 0, key: Buffer.from('b'), value: Buffer.from('b') })
    const badRecord = { topic, partition: 0, ...bad }
    const failed = producer.send(badRecord)
    const behind = [
      producer.send({ topic, partition: 0, key: Buffer.from('c'), value: Buffer.from('c') }),
      producer.send({ topic, partition: 0, key: Buffer.from('d'), value: Buffer.from('d') }),
    ]
    const err = await failed.then(
      () => assert.fail('the bad record was acknowledged'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof ProducerSendError)
    assert.equal(err.code, 'PRODUCER_SEND_FAILED')
    assert.equal(err.kafkaCode, expectedCode)
    assert.equal(err.kafkaName, expectedName)
    for (const b of behind) {
      const e = await b.then(
        () => assert.fail('a record behind the failure was sent'),
        (x: unknown) => x,
      )
      assert.ok(e instanceof RecordAbandonedError)
      assert.equal(e.failure, err)
    }
    assert.equal(failures.length, 1)
    assert.equal(failures[0].error, err)
    assert.equal(failures[0].record, badRecord)
    assert.equal(failures[0].abandoned, 2)
    assert.equal(producer.bufferedRecords, 0)
    // The producer works again, on a fresh underlying producer.
    const ack = await producer.send({ topic, partition: 0, key: Buffer.from('e'), value: Buffer.from('e') })
    assert.equal(ack.offset, 2n)
    await producer.flush()
    assert.equal(failures.length, 1)
    assert.equal(producer.failures, 1)
    assert.deepEqual(
      (await readPartition(broker.port, topic, 0)).map((s) => s.value),
      ['a', 'b', 'e'],
    )
  } finally {
    await producer.close()
  }
}

test('non-retriable MESSAGE_TOO_LARGE: one signal, nothing behind it written, the producer works again', async () => {
  await expectNonRetriable(
    { 'max.message.bytes': '1000' },
    { key: Buffer.from('big'), value: Buffer.alloc(4000, 1) },
    10,
    'MESSAGE_TOO_LARGE',
  )
})

test('non-retriable INVALID_RECORD (null key on a compacted topic): one signal, the producer works again', async () => {
  await expectNonRetriable(
    { 'cleanup.policy': 'compact' },
    { key: null, value: Buffer.from('no key') },
    87,
    'INVALID_RECORD',
  )
})

test('send after close rejects with ProducerClosedError; close flushes first', async () => {
  const topic = uniqueTopic('rp-close')
  await createTopic(broker.port, topic, 1)
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap] })
  const pending = producer.send({ topic, key: null, value: Buffer.from('x') })
  await producer.close()
  assert.equal((await pending).offset, 0n)
  await assert.rejects(
    producer.send({ topic, key: null, value: Buffer.from('y') }),
    (e: unknown) => e instanceof ProducerClosedError && e.code === 'PRODUCER_CLOSED',
  )
})

test(
  'close with a timeout while the broker is gone: unacknowledged records reject with ProducerClosedError, close returns',
  { timeout: 30_000 },
  async () => {
    const own = await startBroker()
    const topic = uniqueTopic('rp-close-gone')
    await createTopic(own.port, topic, 1)
    const producer = new ReliableProducer({ bootstrap: [own.bootstrap], retryBackoffMs: 20, maxRetryBackoffMs: 100 })
    try {
      assert.equal((await producer.send({ topic, partition: 0, key: null, value: Buffer.from('before') })).offset, 0n)
      await own.kill()
      const pending = Array.from({ length: 5 }, (_, i) =>
        producer.send({ topic, partition: 0, key: null, value: Buffer.from(`after${i}`) }),
      )
      const outcomes = Promise.allSettled(pending)
      await producer.close(300) // without the timeout, close would wait for the broker forever
      for (const o of await outcomes) {
        assert.equal(o.status, 'rejected')
        assert.ok(o.reason instanceof ProducerClosedError, String(o.reason))
      }
      assert.equal(producer.bufferedRecords, 0)
    } finally {
      removeDir(own.dataDir)
    }
  },
)
