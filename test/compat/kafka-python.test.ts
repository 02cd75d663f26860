// kafka-python 2.0.2 (Debian python3-kafka) against the real broker process, driven through
// test/compat/python/kafka_python_client.py: KafkaProducer acks=all, a group-less KafkaConsumer
// (assign + seek_to_beginning), KafkaAdminClient, and the compression codecs kafka-python can use
// here (gzip is built in; snappy, lz4 and zstd need Python modules that may not be installed).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type BrokerProcess, removeDir, ROOT, startBroker } from '../helpers/broker-process.ts'
import { type Acked, assertRoundTrip, runPythonJson, storedBatches, CODECS, uniqueTopic } from '../helpers/compat.ts'

const SCRIPT = join(ROOT, 'test', 'compat', 'python', 'kafka_python_client.py')

let broker: BrokerProcess
let codecs: Record<string, boolean | string>

before(async () => {
  broker = await startBroker()
  codecs = await runPythonJson(SCRIPT, ['-', 'codecs'])
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

interface Produced {
  sent: Acked[]
  api_version: number[]
}
interface ConsumedRecord extends Acked {
  timestamp: number
}
interface Consumed {
  records: ConsumedRecord[]
  end_offsets: Record<string, number>
}

async function roundTrip(codec: string, partitions: number, count: number): Promise<void> {
  const topic = uniqueTopic(`kp-${codec}`)
  const produced = await runPythonJson<Produced>(SCRIPT, [
    broker.bootstrap,
    'produce',
    topic,
    String(count),
    codec,
    String(partitions),
  ])
  assert.equal(produced.sent.length, count, 'every future resolved')
  assert.deepEqual(
    produced.sent.map((m) => m.value),
    Array.from({ length: count }, (_, i) => `${codec}-value-${i}-${'z'.repeat(i % 50)}`),
  )
  const used = partitions === 0 ? 1 : partitions
  const consumed = await runPythonJson<Consumed>(SCRIPT, [
    broker.bootstrap,
    'consume',
    topic,
    String(used),
    String(count),
  ])
  assertRoundTrip(produced.sent, consumed.records)
  // end_offsets (ListOffsets latest) agree with what was acknowledged.
  for (let p = 0; p < used; p++) {
    assert.equal(
      consumed.end_offsets[String(p)],
      produced.sent.filter((m) => m.partition === p).length,
      `end offset of partition ${p}`,
    )
  }
  for (let p = 0; p < used; p++) {
    for (const b of await storedBatches(broker.port, topic, p))
      assert.equal(b.codec, CODECS[codec], `partition ${p} batch ${b.baseOffset} stored ${codec}`)
  }
}

void test('KafkaAdminClient: create_topics, create_partitions, describe_configs, delete_topics', async () => {
  const topic = uniqueTopic('kp-admin')
  const r = await runPythonJson<{
    api_versions: Record<string, number>
    create: [string, number][]
    create_again: number | string
    listed_after_create: boolean
    describe_topics: { topic: string; error_code: number; partitions: number[] }[]
    create_partitions: [string, number][]
    partitions_after: number[]
    describe_configs: { error_code: number; resource_name: string; configs: Record<string, string> }[]
    describe_broker_configs: { error_code: number; configs: Record<string, string> }[]
    delete: [string, number][]
    listed_after_delete: boolean
  }>(SCRIPT, [broker.bootstrap, 'admin', topic])
  assert.deepEqual(r.create, [[topic, 0]])
  assert.equal(r.create_again, 36, 'creating it again: TOPIC_ALREADY_EXISTS')
  assert.equal(r.listed_after_create, true)
  assert.deepEqual(r.describe_topics, [{ topic, error_code: 0, partitions: [0, 1] }])
  assert.deepEqual(r.create_partitions, [[topic, 0]])
  assert.deepEqual(r.partitions_after, [0, 1, 2, 3])
  assert.equal(r.describe_configs.length, 1)
  assert.equal(r.describe_configs[0].error_code, 0)
  assert.equal(r.describe_configs[0].resource_name, topic)
  assert.equal(r.describe_configs[0].configs['retention.ms'], '3600000', 'the topic config given at creation')
  assert.equal(r.describe_configs[0].configs['cleanup.policy'], 'delete')
  assert.deepEqual(r.describe_broker_configs, [{ error_code: 0, configs: { 'message.max.bytes': '1048588' } }])
  assert.deepEqual(r.delete, [[topic, 0]])
  assert.equal(r.listed_after_delete, false)
  // The versions kafka-python picked: the highest it implements, all within the broker's ranges.
  assert.deepEqual(r.api_versions, { create_topics: 3, create_partitions: 1, describe_configs: 2, delete_topics: 3 })
})

void test('KafkaProducer acks=all to 3 partitions; a group-less KafkaConsumer reads every message back in order', async () => {
  await roundTrip('none', 3, 300)
})

void test('KafkaProducer infers a broker version from ApiVersions and uses it', async () => {
  const topic = uniqueTopic('kp-version')
  const produced = await runPythonJson<Produced>(SCRIPT, [broker.bootstrap, 'produce', topic, '3', 'none', '0'])
  // DescribeAcls v2 advertised => kafka-python 2.0.2 infers 2.5.0, its highest guess (conn.py
  // _infer_broker_version_from_api_versions; before the broker had ACLs, Produce v8 made it 2.4.0).
  assert.deepEqual(produced.api_version, [2, 5, 0])
  assert.deepEqual(
    produced.sent.map((m) => [m.partition, m.offset]),
    [
      [0, 0],
      [0, 1],
      [0, 2],
    ],
    'auto-created topic, one partition',
  )
})

for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
  void test(`KafkaProducer compression_type=${codec}: consumed back identical, stored ${codec}`, async () => {
    // .ci/run installs python3-snappy, python3-lz4 and python3-zstandard for these.
    assert.equal(codecs[codec], true, `kafka-python here lacks the Python module for ${codec}`)
    await roundTrip(codec, 2, 200)
  })
}
