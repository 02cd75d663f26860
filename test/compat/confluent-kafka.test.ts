// confluent-kafka-python (Debian python3-confluent-kafka over librdkafka 2.0.2) against the
// real broker process, driven through test/compat/python/confluent_kafka_client.py: Producer
// acks=all with delivery reports and every codec librdkafka has, Consumer with assign() at
// explicit offsets (no group coordination, no commits), and AdminClient.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type BrokerProcess, removeDir, ROOT, startBroker } from '../helpers/broker-process.ts'
import {
  type Acked,
  advertisedApis,
  assertRoundTrip,
  assertStoredCodec,
  runPythonJson,
  storedBatches,
  uniqueTopic,
} from '../helpers/compat.ts'

const SCRIPT = join(ROOT, 'test', 'compat', 'python', 'confluent_kafka_client.py')

let broker: BrokerProcess

before(async () => {
  broker = await startBroker({ config: { 'num.partitions': '2' } })
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

interface Report extends Acked {
  error: string | null
}
interface Produced {
  reports: Report[]
  undelivered: number
}
interface Consumed {
  records: (Acked & { timestamp: number })[]
  errors: string[]
  eof_partitions: number[]
  watermarks: Record<string, [number, number]>
  offsets_for_times_0: Record<string, number>
  requests_sent: string[]
}

async function produce(topic: string, count: number, codec: string, partition: number): Promise<Report[]> {
  const r = await runPythonJson<Produced>(SCRIPT, [
    broker.bootstrap,
    'produce',
    topic,
    String(count),
    codec,
    String(partition),
  ])
  assert.equal(r.undelivered, 0)
  assert.equal(r.reports.length, count, 'one delivery report per message')
  assert.deepEqual(
    r.reports.filter((m) => m.error !== null),
    [],
    'no delivery errors',
  )
  return r.reports
}

async function consume(topic: string, partitions: number, expected: number): Promise<Consumed> {
  const r = await runPythonJson<Consumed>(SCRIPT, [
    broker.bootstrap,
    'consume',
    topic,
    String(partitions),
    String(expected),
  ])
  assert.deepEqual(r.errors, [])
  assert.deepEqual(
    r.eof_partitions,
    Array.from({ length: partitions }, (_, i) => i),
    'reached the end of every partition',
  )
  for (let p = 0; p < partitions; p++) {
    const n = r.records.filter((m) => m.partition === p).length
    assert.deepEqual(r.watermarks[String(p)], [0, n], `partition ${p} watermarks (ListOffsets earliest/latest)`)
    assert.equal(r.offsets_for_times_0[String(p)], n > 0 ? 0 : -1, `partition ${p} offsets_for_times(0)`)
  }
  return r
}

void test('Producer acks=all to an auto-created 2-partition topic; Consumer.assign() at offset 0 reads all back in order', async (t) => {
  const topic = uniqueTopic('ck-keyed')
  const n = 400
  const sent = await produce(topic, n, 'none', -1)
  // Delivery reports arrive per partition in order; compare in send order (keys decide the partition).
  const bySend = [...sent].sort((a, b) => Number(a.value.split('-')[2]) - Number(b.value.split('-')[2]))
  assert.deepEqual(
    bySend.map((m) => m.value),
    Array.from({ length: n }, (_, i) => `none-value-${i}-${'q'.repeat(i % 64)}`),
  )
  const partitionOfKey = new Map<string | null, number>()
  for (const m of bySend) {
    const p = partitionOfKey.get(m.key) ?? m.partition
    assert.equal(m.partition, p, `key ${m.key} stays in one partition`)
    partitionOfKey.set(m.key, p)
  }
  assert.deepEqual([...new Set(sent.map((m) => m.partition))].sort(), [0, 1], 'the keys spread over both partitions')
  const got = await consume(topic, 2, n)
  assertRoundTrip(bySend, got.records)
  assert.ok(
    got.records.every((m) => m.timestamp > 0),
    'CreateTime timestamps are kept',
  )
  t.diagnostic(`consumer sent: ${got.requests_sent.join(', ')}`)
  if (!(await advertisedApis(broker.port)).has(10)) {
    // With no FindCoordinator advertised, librdkafka's group handle stays in query-coord and never
    // sends a group request; assign() with explicit offsets does not need one.
    assert.ok(
      !got.requests_sent.some((r) => /Coordinator|Group|Offset(Fetch|Commit)/.test(r)),
      got.requests_sent.join(', '),
    )
  }
})

for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
  void test(`Producer compression.type=${codec}: delivery reports, identical values back, batches stored as sent`, async (t) => {
    const topic = uniqueTopic(`ck-${codec}`)
    const n = 250
    const sent = await produce(topic, n, codec, 0)
    const got = await consume(topic, 1, n)
    assertRoundTrip(sent, got.records)
    // librdkafka 2.0.2 enables LZ4 only if the broker advertises FindCoordinator (see kcat.test.ts).
    const expected = codec === 'lz4' && !(await advertisedApis(broker.port)).has(10) ? 'none' : codec
    if (expected !== codec) t.diagnostic('broker lacks FindCoordinator: librdkafka sends lz4 batches uncompressed')
    assertStoredCodec(await storedBatches(broker.port, topic, 0), expected, n)
  })
}

void test('AdminClient: create_topics, list_topics, create_partitions, describe_configs, delete_topics', async () => {
  const topic = uniqueTopic('ck-admin')
  const r = await runPythonJson<{
    created: boolean
    create_again: string
    brokers: Record<string, [string, number]>
    controller_id: number
    partitions_after_create: number[]
    partitions_after_create_partitions: number[]
    leaders: number[]
    configs: Record<string, { value: string; is_default: boolean }>
    broker_configs: Record<string, string>
    listed_after_delete: boolean
  }>(SCRIPT, [broker.bootstrap, 'admin', topic])
  assert.equal(r.created, true)
  assert.equal(r.create_again, 'TOPIC_ALREADY_EXISTS')
  assert.deepEqual(r.brokers, { '0': ['127.0.0.1', broker.port] })
  assert.equal(r.controller_id, 0)
  assert.deepEqual(r.partitions_after_create, [0, 1])
  assert.deepEqual(r.partitions_after_create_partitions, [0, 1, 2, 3, 4])
  assert.deepEqual(r.leaders, [0])
  assert.deepEqual(r.configs['retention.ms'], { value: '7200000', is_default: false })
  assert.deepEqual(r.configs['cleanup.policy'], { value: 'delete', is_default: true })
  assert.equal(r.configs['max.message.bytes'].value, '1048588')
  assert.equal(r.broker_configs['num.partitions'], '2', 'the broker config set on the command line')
  assert.equal(r.listed_after_delete, false)
})
