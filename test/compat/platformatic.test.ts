// @platformatic/kafka 2.12 against the real broker process: Admin (createTopics, listTopics,
// createPartitions, describeConfigs, deleteTopics), Producer with acks=all and every codec it has
// (none, gzip, snappy, lz4, zstd), and reading back with Consumer.fetch(), its low-level Fetch
// (its consume() stream always joins a consumer group, which the broker does not have yet).
import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { after, before, test } from 'node:test'
import {
  Admin,
  type CompressionAlgorithmValue,
  type fetchV17,
  ConfigResourceTypes,
  Consumer,
  ProduceAcks,
  Producer,
  stringSerializers,
} from '@platformatic/kafka'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import {
  type Acked,
  advertisedApis,
  assertRoundTrip,
  assertStoredCodec,
  CODECS,
  storedBatches,
  uniqueTopic,
} from '../helpers/compat.ts'

// Every request the client sends, as api key -> versions, from its diagnostics channel.
const sentVersions = new Map<number, Set<number>>()
const API_START = 'tracing:plt:kafka:connections:api:start'
function onApiStart(message: unknown): void {
  const { apiKey, apiVersion } = message as { apiKey: number; apiVersion: number }
  const versions = sentVersions.get(apiKey) ?? new Set<number>()
  versions.add(apiVersion)
  sentVersions.set(apiKey, versions)
}
subscribe(API_START, onApiStart)

let broker: BrokerProcess
let admin: Admin
let producer: Producer<string, string, string, string>
let consumer: Consumer

type FetchResponse = fetchV17.FetchResponse

before(async () => {
  broker = await startBroker()
  const common = { bootstrapBrokers: [broker.bootstrap], retries: 3, retryDelay: 100 }
  admin = new Admin({ clientId: 'compat-admin', ...common })
  producer = new Producer({
    clientId: 'compat-producer',
    ...common,
    serializers: stringSerializers,
    idempotent: false,
    acks: ProduceAcks.ALL,
  })
  // groupId is required by the constructor; fetch() never uses the group.
  consumer = new Consumer({ clientId: 'compat-consumer', groupId: 'compat-unused', ...common })
})

after(async () => {
  unsubscribe(API_START, onApiStart)
  await consumer.close()
  await producer.close()
  await admin.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

interface Read extends Acked {
  batchCodec: number
}

/** Every record of the given partitions, fetched from offset 0 with Consumer.fetch(). */
async function readAll(topic: string, partitions: number): Promise<Read[]> {
  const md = await consumer.metadata({ topics: [topic], forceUpdate: true })
  const t = md.topics.get(topic)
  assert.ok(t, `metadata for ${topic}`)
  assert.match(t.id, /^[0-9a-f-]{36}$|^[A-Za-z0-9_-]{22}$/, 'Metadata v10+ gives the topic id Fetch v13+ needs')
  const out: Read[] = []
  for (let partition = 0; partition < partitions; partition++) {
    let next = 0n
    let high = -1n
    while (high < 0n || next < high) {
      const r: FetchResponse = await consumer.fetch({
        node: t.partitions[partition].leader,
        maxWaitTime: 100,
        topics: [
          {
            topicId: t.id,
            partitions: [
              {
                partition,
                fetchOffset: next,
                partitionMaxBytes: 1024 * 1024,
                currentLeaderEpoch: -1,
                lastFetchedEpoch: -1,
              },
            ],
          },
        ],
      })
      assert.equal(r.errorCode, 0)
      const p = r.responses[0].partitions[0]
      assert.equal(p.errorCode, 0)
      high = p.highWatermark
      const before = next
      for (const batch of p.records ?? []) {
        for (const rec of batch.records) {
          const offset = batch.firstOffset + BigInt(rec.offsetDelta)
          if (offset < next) continue
          out.push({
            partition,
            offset: Number(offset),
            key: rec.key?.toString() ?? null,
            value: rec.value?.toString() ?? '',
            batchCodec: batch.attributes & 7,
          })
          next = offset + 1n
        }
      }
      assert.ok(next > before || next >= high, `fetch at ${before} below the high watermark ${high} returned nothing`)
    }
  }
  return out
}

void test('Admin: createTopics, listTopics, createPartitions, describeConfigs, deleteTopics', async () => {
  const topic = uniqueTopic('pk-admin')
  const created = await admin.createTopics({
    topics: [topic],
    partitions: 2,
    replicas: 1,
    configs: [{ name: 'retention.ms', value: '1800000' }],
  })
  assert.equal(created.length, 1)
  assert.equal(created[0].name, topic)
  assert.equal(created[0].partitions, 2)
  assert.equal(created[0].replicas, 1)
  assert.match(created[0].id, /^[0-9a-f-]{36}$/, 'CreateTopics v7 returns the topic id')
  await assert.rejects(admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 }), 'creating it again fails')
  assert.ok((await admin.listTopics()).includes(topic))

  await admin.createPartitions({ topics: [{ name: topic, count: 4 }] })
  const md = await admin.metadata({ topics: [topic], forceUpdate: true })
  assert.equal(md.topics.get(topic)?.partitionsCount, 4)
  assert.equal(md.topics.get(topic)?.id, created[0].id, 'Metadata and CreateTopics agree on the topic id')

  const configs = await admin.describeConfigs({
    resources: [
      {
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName: topic,
        configurationKeys: ['retention.ms', 'cleanup.policy'],
      },
    ],
  })
  assert.equal(configs.length, 1)
  assert.equal(configs[0].resourceName, topic)
  assert.deepEqual(Object.fromEntries(configs[0].configs.map((c) => [c.name, c.value])), {
    'retention.ms': '1800000',
    'cleanup.policy': 'delete',
  })

  await admin.deleteTopics({ topics: [topic] })
  assert.ok(!(await admin.listTopics()).includes(topic))
})

const PLATFORMATIC_CODECS: CompressionAlgorithmValue[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

for (const codec of PLATFORMATIC_CODECS) {
  void test(`Producer acks=all compression=${codec}: offsets reported, read back identical and in order`, async () => {
    const topic = uniqueTopic(`pk-${codec}`)
    await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 })
    const sent: Acked[] = []
    const next = [0, 0, 0]
    for (let round = 0; round < 4; round++) {
      const messages = Array.from({ length: 30 }, (_, i) => ({
        topic,
        key: `k-${round}-${i}`,
        value: `${codec}-${round}-${i}-${'pk'.repeat(i % 25)}`,
        partition: (i + round) % 3,
      }))
      const result = await producer.send({ messages, acks: ProduceAcks.ALL, compression: codec })
      // One offset per partition written: the base offset of that partition's batch.
      assert.deepEqual(
        (result.offsets ?? []).map((o) => [o.topic, o.partition, Number(o.offset)]).sort(),
        [0, 1, 2].map((p) => [topic, p, next[p]]),
      )
      for (const m of messages)
        sent.push({ partition: m.partition, offset: next[m.partition]++, key: m.key, value: m.value })
    }
    const read = await readAll(topic, 3)
    assertRoundTrip(sent, read)
    assert.ok(
      read.every((r) => r.batchCodec === CODECS[codec]),
      `platformatic saw ${codec} batches`,
    )
    for (let p = 0; p < 3; p++) assertStoredCodec(await storedBatches(broker.port, topic, p), codec, 40)
  })
}

void test('Producer auto-creates a topic on send (autocreateTopics)', async () => {
  const topic = uniqueTopic('pk-auto')
  const result = await producer.send({
    messages: [
      { topic, key: 'a', value: 'first' },
      { topic, key: 'b', value: 'second' },
    ],
    autocreateTopics: true,
  })
  assert.deepEqual(
    (result.offsets ?? []).map((o) => [o.topic, o.partition, Number(o.offset)]),
    [[topic, 0, 0]],
  )
  assert.deepEqual(
    (await readAll(topic, 1)).map((r) => [r.offset, r.key, r.value]),
    [
      [0, 'a', 'first'],
      [1, 'b', 'second'],
    ],
  )
})

void test('the client used the newest versions the broker advertises (topic-id Fetch, flexible Produce and Metadata)', async (t) => {
  const advertised = await advertisedApis(broker.port)
  t.diagnostic(`sent: ${[...sentVersions].map(([k, v]) => `${k}:v${[...v].join(',v')}`).join(' ')}`)
  // platformatic 2.12 implements Produce 3-11, Fetch 4-17, Metadata 0-12: it picks the broker's max.
  for (const key of [0, 1, 3]) {
    assert.deepEqual(
      [...(sentVersions.get(key) ?? [])],
      [advertised.get(key)![1]],
      `api ${key} at the broker's max version`,
    )
  }
})
