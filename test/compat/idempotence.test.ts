// Idempotent producers of real clients against the broker process: librdkafka (kcat and
// confluent-kafka-python, enable.idempotence=true), KafkaJS (idempotent: true) and
// @platformatic/kafka (idempotent: true). Each produces through a proxy (test/helpers/
// fault-proxy.ts) that loses the answers to some produce requests after the broker has appended
// them and drops the connection, so every client has to resend batches the broker already holds.
// The log must hold every message exactly once, in send order, written with a producer id, and
// the broker must have answered the resends as duplicates.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Producer, ProduceAcks, stringSerializers } from '@platformatic/kafka'
import { Kafka, logLevel, type LogEntry } from 'kafkajs'
import { type CreateTopicsResponse } from '../../src/protocol/messages/create-topics-response.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { expectSuccess, run, runPythonJson, uniqueTopic } from '../helpers/compat.ts'
import { FaultProxy } from '../helpers/fault-proxy.ts'
import { parseResponse, RawClient, readPartitionRecords, requestFrame } from '../helpers/raw-client.ts'

let broker: BrokerProcess

before(async () => {
  broker = await startBroker({ metrics: true })
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

async function createTopic(name: string, partitions: number): Promise<void> {
  const c = await RawClient.connect(broker.port)
  try {
    c.write(
      requestFrame(19, 7, 1, {
        topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
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
  value: string
  producerId: number
}

/** Every record of a partition, with the producer id of its batch. */
async function readPartition(topic: string, partition: number): Promise<Stored[]> {
  return (await readPartitionRecords(broker.port, topic, partition)).map((r) => ({
    offset: r.offset,
    value: r.value?.toString() ?? '',
    producerId: r.producerId,
  }))
}

/** cortado_broker_produce_duplicates_total from the broker's /metrics. */
async function duplicatesAnswered(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
  const m = /^cortado_broker_produce_duplicates_total (\d+)/m.exec(text)
  return m === null ? 0 : Number(m[1])
}

/**
 * The partition holds exactly `expected` (in order), each written by an idempotent producer
 * (producer id >= 0), at offsets 0, 1, 2...
 */
async function assertExactlyOnce(topic: string, partition: number, expected: string[]): Promise<void> {
  const stored = await readPartition(topic, partition)
  assert.deepEqual(
    stored.map((s) => s.value),
    expected,
    `${topic}-${partition}: every message exactly once, in send order`,
  )
  assert.deepEqual(
    stored.map((s) => s.offset),
    expected.map((_, i) => i),
  )
  assert.ok(
    stored.every((s) => s.producerId >= 0),
    'written with a producer id',
  )
}

/** The InitProducerId versions a client sent through the proxy. */
function initProducerIdVersions(proxy: FaultProxy): number[] {
  return [...(proxy.versions.get(22) ?? [])].sort()
}

/** Loses the answer to every `every`-th produce request, at most `max` times. */
async function lossyProxy(every: number, max: number): Promise<FaultProxy> {
  return FaultProxy.start(broker.port, { dropProduce: (n) => n % every === 0 && n / every <= max })
}

void test('kcat (librdkafka 2.0.2) -X enable.idempotence=true: resent batches are not duplicated', async () => {
  const topic = uniqueTopic('idem-kcat')
  await createTopic(topic, 1)
  const proxy = await lossyProxy(4, 6)
  const before = await duplicatesAnswered()
  const values = Array.from({ length: 300 }, (_, i) => `kcat-${i}`)
  try {
    const r = await run(
      'kcat',
      [
        // Two bootstrap names for the one proxy: kcat gives up when every broker connection is down
        // at once, which a dropped connection to the only broker would otherwise be.
        '-P',
        '-b',
        `${proxy.bootstrap},localhost:${proxy.port}`,
        '-t',
        topic,
        '-p',
        '0',
        '-X',
        'enable.idempotence=true',
        '-X',
        'linger.ms=2',
        '-X',
        'batch.num.messages=10',
        '-X',
        'retry.backoff.ms=20',
        '-X',
        'reconnect.backoff.ms=20',
        '-X',
        'message.timeout.ms=40000',
      ],
      { input: values.join('\n') + '\n', timeoutMs: 60_000 },
    )
    expectSuccess('kcat -P idempotent', r)
    assert.doesNotMatch(r.stderr, /Delivery failed|fatal/i)
  } finally {
    await proxy.close()
  }
  assert.ok(proxy.droppedResponses > 0, 'the proxy lost some answers')
  assert.deepEqual(initProducerIdVersions(proxy), [4])
  await assertExactlyOnce(topic, 0, values)
  assert.ok(
    (await duplicatesAnswered()) - before >= proxy.droppedResponses,
    'each lost answer was followed by a resend the broker recognised',
  )
})

interface Report {
  error: string | null
  value: string
  partition: number
  offset: number
}

void test('confluent-kafka-python enable.idempotence=True over three partitions: delivery reports and log agree, exactly once', async (t) => {
  const topic = uniqueTopic('idem-cfk')
  const partitions = 3
  await createTopic(topic, partitions)
  const proxy = await lossyProxy(5, 8)
  const before = await duplicatesAnswered()
  const count = 600
  let result: { reports: Report[]; undelivered: number; eos_log: string[] }
  try {
    result = await runPythonJson(
      'test/compat/python/idempotent_producer.py',
      [proxy.bootstrap, topic, String(count), String(partitions)],
      90_000,
    )
  } finally {
    await proxy.close()
  }
  t.diagnostic(
    `answers lost: ${proxy.droppedResponses}; librdkafka producer id / epoch log: ${JSON.stringify(result.eos_log)}`,
  )
  // One producer id for the whole run: no reset, no epoch bump was needed to recover.
  assert.equal(
    result.eos_log.filter((l) => /changed PID\{Invalid\}/.test(l) === false && /changed PID/.test(l)).length,
    0,
  )
  assert.equal(result.undelivered, 0)
  assert.deepEqual(
    result.reports.filter((r) => r.error !== null),
    [],
  )
  assert.equal(result.reports.length, count)
  assert.ok(proxy.droppedResponses > 0)
  assert.deepEqual(initProducerIdVersions(proxy), [4])
  for (let p = 0; p < partitions; p++) {
    const expected = Array.from({ length: count }, (_, i) => `cfk-${i}`).filter((_, i) => i % partitions === p)
    await assertExactlyOnce(topic, p, expected)
    // The offsets librdkafka reported are where the messages are.
    const reported = new Map(result.reports.filter((r) => r.partition === p).map((r) => [r.value, r.offset]))
    assert.deepEqual(
      expected.map((v) => reported.get(v)),
      expected.map((_, i) => i),
    )
  }
  assert.ok((await duplicatesAnswered()) - before >= proxy.droppedResponses)
})

void test('KafkaJS idempotent: true (InitProducerId via the controller): sends survive lost answers, exactly once', async () => {
  const topic = uniqueTopic('idem-kjs')
  await createTopic(topic, 2)
  const proxy = await lossyProxy(3, 5)
  const before = await duplicatesAnswered()
  const logs: string[] = []
  const kafka = new Kafka({
    clientId: 'cortado-idem',
    brokers: [proxy.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: () => (e: LogEntry) => {
      logs.push(`${e.level} ${e.log.message}`)
    },
    retry: { initialRetryTime: 50, retries: 10 },
  })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  const sent: string[][] = [[], []]
  try {
    await producer.connect()
    for (let round = 0; round < 20; round++) {
      const messages = Array.from({ length: 10 }, (_, i) => ({ value: `kjs-${round}-${i}`, partition: i % 2 }))
      const results = await producer.send({ topic, acks: -1, messages })
      assert.ok(results.every((r) => r.errorCode === 0))
      for (const m of messages) sent[m.partition].push(m.value)
    }
  } finally {
    await producer.disconnect()
    await proxy.close()
  }
  assert.ok(proxy.droppedResponses > 0)
  assert.deepEqual(initProducerIdVersions(proxy), [1])
  for (let p = 0; p < 2; p++) await assertExactlyOnce(topic, p, sent[p])
  assert.ok((await duplicatesAnswered()) - before >= proxy.droppedResponses, `KafkaJS logs: ${logs.join(' | ')}`)
})

void test('@platformatic/kafka idempotent: true: sends survive lost answers, exactly once', async () => {
  const topic = uniqueTopic('idem-pk')
  await createTopic(topic, 3)
  const proxy = await lossyProxy(3, 6)
  const before = await duplicatesAnswered()
  const producer = new Producer({
    clientId: 'cortado-idem-pk',
    bootstrapBrokers: [proxy.bootstrap],
    serializers: stringSerializers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    retries: 10,
    retryDelay: 50,
  })
  const sent: string[][] = [[], [], []]
  try {
    for (let round = 0; round < 20; round++) {
      const messages = Array.from({ length: 12 }, (_, i) => ({
        topic,
        value: `pk-${round}-${i}`,
        partition: (i + round) % 3,
      }))
      await producer.send({ messages })
      for (const m of messages) sent[m.partition].push(m.value)
    }
    assert.ok(producer.producerId !== undefined && producer.producerId >= 0n, 'InitProducerId answered')
  } finally {
    await producer.close()
    await proxy.close()
  }
  assert.ok(proxy.droppedResponses > 0)
  assert.deepEqual(initProducerIdVersions(proxy), [4])
  for (let p = 0; p < 3; p++) await assertExactlyOnce(topic, p, sent[p])
  assert.ok((await duplicatesAnswered()) - before >= proxy.droppedResponses)
})
