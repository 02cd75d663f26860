// The database's topic handling (src/db/kafka-topics.ts) against a Kafka that offers neither
// CreateTopics nor DescribeConfigs, like a locked-down production cluster: librdkafka's mock
// cluster (test/helpers/mock-kafka.ts). Topics an operator created beforehand are accepted and
// checked as far as Metadata allows; a missing topic fails at once with a message naming the API
// and saying what to create. The same for the audit topic of the client layer.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ensureAuditTopic } from '../../src/client/audit/publisher.ts'
import { Admin } from '@platformatic/kafka'
import {
  brokerRacks,
  checkReplicationTopics,
  createTopicsRequest,
  ensureTopic,
  KafkaTopicError,
} from '../../src/db/kafka-topics.ts'
import { startMockKafka, type MockKafka } from '../helpers/mock-kafka.ts'

let mock: MockKafka

before(async () => {
  mock = await startMockKafka(3)
})

after(async () => {
  await mock.stop()
})

const spec = (name: string) => ({
  name,
  partitions: 4,
  replicationFactor: 3,
  configs: { 'min.insync.replicas': '2', 'unclean.leader.election.enable': 'false' },
})

void test('a topic created beforehand is used as it is', async () => {
  await mock.topic('pre-made', 4, 3)
  assert.equal(await ensureTopic(mock.brokers, spec('pre-made')), 'exists')
})

void test('a missing topic: a clear error naming CreateTopics and what to create, at once', async () => {
  const started = Date.now()
  await assert.rejects(ensureTopic(mock.brokers, spec('never-made')), (e: unknown) => {
    assert.ok(e instanceof KafkaTopicError, String(e))
    assert.match(e.message, /^topic never-made does not exist and cannot be created: CreateTopics failed/)
    assert.match(e.message, /Create it beforehand with 4 partitions, replication factor 3 and min\.insync\.replicas=2/)
    return true
  })
  assert.ok(Date.now() - started < 5000, `failed within 5 s (${Date.now() - started} ms), not after retries`)
})

void test('the replication check: replication factor from Metadata, the configs reported unchecked (no DescribeConfigs)', async () => {
  // The mock places every partition on every broker whatever replication factor it is given, so
  // a topic with two replicas needs a two-broker mock.
  const small = await startMockKafka(2)
  try {
    await mock.topic('rf3', 2, 3)
    await small.topic('rf2', 2, 2)
    const unchecked =
      'min.insync.replicas and unclean.leader.election.enable could not be checked: DescribeConfigs failed, this Kafka does not offer the API'
    assert.deepEqual(await checkReplicationTopics(mock.brokers, ['rf3']), [
      { topic: 'rf3', ok: false, problems: [unchecked] },
    ])
    assert.deepEqual(await checkReplicationTopics(small.brokers, ['rf2']), [
      { topic: 'rf2', ok: false, problems: ['replication factor is 2, needs at least 3', unchecked] },
    ])
  } finally {
    await small.stop()
  }
})

void test('the audit topic: used when made beforehand; when missing, a KafkaTopicError naming CreateTopics', async () => {
  await mock.topic('audit-made', 1, 3)
  await ensureAuditTopic(mock.brokers, 'audit-made')
  await assert.rejects(ensureAuditTopic(mock.brokers, 'audit-missing', 2), (e: unknown) => {
    assert.ok(e instanceof KafkaTopicError, String(e))
    assert.equal(e.code, 'KAFKA_TOPIC')
    assert.equal(
      e.message,
      'audit topic audit-missing does not exist and cannot be created: CreateTopics failed, this Kafka does not offer the API. Create it beforehand with 2 partitions.',
    )
    return true
  })
})

void test("the brokers' racks read from a multi-broker Kafka's Metadata give a rack-aware assignment", async () => {
  await mock.rack(1, 'east')
  await mock.rack(2, 'west')
  await mock.rack(3, 'east')
  const admin = new Admin({ clientId: 'racks', bootstrapBrokers: mock.brokers })
  try {
    const brokers = await brokerRacks(admin)
    assert.deepEqual(
      brokers.sort((a, b) => a.id - b.id),
      [
        { id: 1, rack: 'east' },
        { id: 2, rack: 'west' },
        { id: 3, rack: 'east' },
      ],
    )
    const request = createTopicsRequest(spec('racked'), brokers)
    assert.ok('assignments' in request && request.assignments !== undefined, JSON.stringify(request))
    for (const { brokers: ids } of request.assignments) {
      assert.equal(new Set(ids).size, 3)
      assert.ok(ids.includes(2), `every partition has a replica in the west rack: ${ids.join(',')}`)
    }
  } finally {
    await admin.close()
  }
})
