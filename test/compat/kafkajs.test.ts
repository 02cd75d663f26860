// KafkaJS 2.2.4 against the real broker process: the admin client (topics, partitions, offsets,
// configs), the producer with acks=-1 (send and sendBatch, plain and gzip; KafkaJS has no other
// codec built in), and reading back. KafkaJS's only consumer is group-based, so messages are read
// with KafkaJS's own cluster/broker Fetch (the code path its consumer uses under the group logic).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import kafkajs, {
  CompressionTypes,
  Kafka,
  logLevel,
  Partitioners,
  type Admin,
  type LogEntry,
  type Producer,
} from 'kafkajs'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { type Acked, assertRoundTrip, assertStoredCodec, storedBatches, uniqueTopic } from '../helpers/compat.ts'

let broker: BrokerProcess
let kafka: Kafka
let admin: Admin
let producer: Producer
const logs: { level: logLevel; text: string }[] = []

before(async () => {
  broker = await startBroker()
  kafka = new Kafka({
    clientId: 'cortado-compat',
    brokers: [broker.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      logs.push({ level: entry.level, text: JSON.stringify(entry.log) })
    },
    retry: { retries: 3 },
  })
  admin = kafka.admin()
  await admin.connect()
  producer = kafka.producer({
    idempotent: false,
    allowAutoTopicCreation: true,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
})

after(async () => {
  await producer.disconnect()
  await admin.disconnect()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

// --- Reading back with KafkaJS's own Fetch ---------------------------------------------------

interface KjsMessage {
  offset: string
  key: Buffer | null
  value: Buffer | null
  timestamp: string
}
interface KjsFetchResponse {
  responses: {
    topicName: string
    partitions: { partition: number; errorCode: number; highWatermark: string; messages: KjsMessage[] }[]
  }[]
}
interface KjsBroker {
  fetch(request: {
    replicaId?: number
    isolationLevel?: number
    maxWaitTime?: number
    minBytes?: number
    maxBytes?: number
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[]
  }): Promise<KjsFetchResponse>
  versions: Record<number, { minVersion: number; maxVersion: number }>
}
interface KjsCluster {
  connect(): Promise<void>
  disconnect(): Promise<void>
  addTargetTopic(topic: string): Promise<void>
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>
  findBroker(options: { nodeId: string }): Promise<KjsBroker>
}

/** KafkaJS's internal cluster, as its consumer gets it (Kafka's private createCluster). */
function kafkajsCluster(): KjsCluster {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster')
  assert.ok(sym, 'KafkaJS 2.2.4 keeps createCluster under a private symbol')
  const create = (kafka as unknown as Record<symbol, (o: object) => KjsCluster>)[sym]
  return create({})
}

/** Every message of the given partitions, fetched from offset 0 up to the high watermark. */
async function readAll(topic: string, partitions: number[]): Promise<Acked[]> {
  const cluster = kafkajsCluster()
  await cluster.connect()
  try {
    await cluster.addTargetTopic(topic)
    const out: Acked[] = []
    for (const [nodeId, parts] of Object.entries(cluster.findLeaderForPartitions(topic, partitions))) {
      const b = await cluster.findBroker({ nodeId })
      for (const partition of parts) {
        let next = 0
        let high = -1
        while (high < 0 || next < high) {
          const r = await b.fetch({
            maxWaitTime: 100,
            topics: [{ topic, partitions: [{ partition, fetchOffset: String(next), maxBytes: 64 * 1024 }] }],
          })
          const p = r.responses[0].partitions[0]
          assert.equal(p.errorCode, 0)
          high = Number(p.highWatermark)
          const before = next
          for (const m of p.messages) {
            if (Number(m.offset) < next) continue // a batch can start before the fetch offset
            out.push({
              partition,
              offset: Number(m.offset),
              key: m.key?.toString() ?? null,
              value: m.value?.toString() ?? '',
            })
            next = Number(m.offset) + 1
          }
          assert.ok(
            next > before || next >= high,
            `fetch at ${before} below the high watermark ${high} returned nothing`,
          )
        }
      }
    }
    return out
  } finally {
    await cluster.disconnect()
  }
}

// --- Tests ---------------------------------------------------------------------------------

void test('admin: createTopics, listTopics, fetchTopicMetadata, createPartitions, describeConfigs, deleteTopics', async () => {
  const topic = uniqueTopic('kjs-admin')
  assert.equal(
    await admin.createTopics({
      topics: [
        { topic, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '5400000' }] },
      ],
      waitForLeaders: true,
    }),
    true,
  )
  assert.equal(
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] }),
    false,
    'already exists: createTopics resolves false',
  )
  assert.ok((await admin.listTopics()).includes(topic))
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.deepEqual(
    md.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => [p.partitionId, p.leader, p.replicas, p.isr]).sort(),
    })),
    [
      {
        name: topic,
        partitions: [
          [0, 0, [0], [0]],
          [1, 0, [0], [0]],
        ],
      },
    ],
  )

  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
  const after3 = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.deepEqual(after3.topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2])

  const TOPIC = (kafkajs as unknown as { ConfigResourceTypes: { TOPIC: number } }).ConfigResourceTypes.TOPIC
  const configs = await admin.describeConfigs({
    resources: [{ type: TOPIC, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }],
    includeSynonyms: false,
  })
  assert.equal(configs.resources.length, 1)
  assert.equal(configs.resources[0].errorCode, 0)
  assert.equal(configs.resources[0].resourceName, topic)
  assert.deepEqual(Object.fromEntries(configs.resources[0].configEntries.map((e) => [e.configName, e.configValue])), {
    'retention.ms': '5400000',
    'cleanup.policy': 'delete',
  })

  // Some data, then delete: the topic disappears, and a new topic of the same name starts empty.
  await producer.send({ topic, acks: -1, messages: [{ value: 'old', partition: 0 }] })
  await admin.deleteTopics({ topics: [topic] })
  assert.ok(!(await admin.listTopics()).includes(topic))
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }), true)
  assert.deepEqual(
    (await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.low), Number(o.high)]),
    [[0, 0, 0]],
  )
  await admin.deleteTopics({ topics: [topic] })
})

void test('producer acks=-1 send(): offsets reported, fetchTopicOffsets agrees, messages read back in order', async () => {
  const topic = uniqueTopic('kjs-send')
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
  const sent: Acked[] = []
  for (let round = 0; round < 10; round++) {
    // 20 messages per send, spread over the three partitions explicitly.
    const messages = Array.from({ length: 20 }, (_, i) => ({
      key: `k${i}`,
      value: `send-${round}-${i}`,
      partition: (i * 7 + round) % 3,
    }))
    const results = await producer.send({ topic, acks: -1, messages })
    assert.deepEqual(
      results.map((r) => [r.topicName, r.errorCode]),
      results.map(() => [topic, 0]),
    )
    const base = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]))
    assert.deepEqual([...base.keys()].sort(), [0, 1, 2])
    // Within a partition, the messages of one send are one batch in send order from its base offset.
    const next = new Map(base)
    for (const m of messages) {
      const offset = next.get(m.partition)!
      next.set(m.partition, offset + 1)
      sent.push({ partition: m.partition, offset, key: m.key, value: m.value })
    }
  }
  const offsets = await admin.fetchTopicOffsets(topic)
  assert.deepEqual(
    offsets.map((o) => [o.partition, Number(o.low), Number(o.high)]).sort(),
    [0, 1, 2].map((p) => [p, 0, sent.filter((m) => m.partition === p).length]),
  )
  assertRoundTrip(sent, await readAll(topic, [0, 1, 2]))
})

void test('producer acks=-1 sendBatch() with gzip to two topics: read back identical, stored gzip', async () => {
  const topics = [uniqueTopic('kjs-gzip-a'), uniqueTopic('kjs-gzip-b')]
  // Auto-created by the producer's metadata request (one partition each).
  const n = 150
  const topicMessages = topics.map((topic) => ({
    topic,
    messages: Array.from({ length: n }, (_, i) => ({
      key: `key-${i}`,
      value: `${topic}:${i}:${'gz'.repeat(i % 30)}`,
      partition: 0,
    })),
  }))
  const results = await producer.sendBatch({ topicMessages, acks: -1, compression: CompressionTypes.GZIP })
  assert.deepEqual(
    results.map((r) => [r.topicName, r.partition, r.errorCode, Number(r.baseOffset)]).sort(),
    topics.map((t) => [t, 0, 0, 0]).sort(),
  )
  for (const { topic, messages } of topicMessages) {
    const sent = messages.map((m, i) => ({ partition: 0, offset: i, key: m.key, value: m.value }))
    assertRoundTrip(sent, await readAll(topic, [0]))
    assertStoredCodec(await storedBatches(broker.port, topic, 0), 'gzip', n)
  }
})

void test('admin fetchTopicOffsetsByTimestamp finds the first offset at or after a timestamp', async () => {
  const topic = uniqueTopic('kjs-ts')
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  const t0 = Date.now() - 60_000
  // Explicit CreateTime timestamps: 10 messages one second apart.
  const messages = Array.from({ length: 10 }, (_, i) => ({ value: `ts-${i}`, timestamp: String(t0 + i * 1000) }))
  await producer.send({ topic, acks: -1, messages })
  const at = async (ts: number | undefined) =>
    (await admin.fetchTopicOffsetsByTimestamp(topic, ts)).map((o) => [o.partition, Number(o.offset)])
  assert.deepEqual(await at(t0), [[0, 0]])
  assert.deepEqual(await at(t0 + 4500), [[0, 5]])
  assert.deepEqual(await at(t0 + 9000), [[0, 9]])
  assert.deepEqual(await at(t0 + 9001), [[0, 10]], 'after the last message: the end offset')
  assert.deepEqual(await at(undefined), [[0, 10]], 'no timestamp: latest')
  const read = await readAll(topic, [0])
  assert.deepEqual(
    read.map((m) => m.value),
    messages.map((m) => m.value),
  )
})

void test('KafkaJS logged no errors', (t) => {
  t.diagnostic(`kafkajs warnings: ${JSON.stringify(logs.filter((l) => l.level === logLevel.WARN).map((l) => l.text))}`)
  // The one expected error: the second createTopics of the admin test (TOPIC_ALREADY_EXISTS).
  assert.deepEqual(
    logs.filter((l) => l.level === logLevel.ERROR && !/Topic creation errors|already exists/.test(l.text)),
    [],
  )
})
