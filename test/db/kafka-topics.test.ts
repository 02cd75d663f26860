// ensureTopic against the real broker: a topic that exists (found up front, or created by
// someone else between the check and the create) is 'exists', decided by Kafka's error code.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { hasKafkaError } from '../../src/client/errors.ts'
import { createTopicsRequest, ensureTopic } from '../../src/db/kafka-topics.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'

let broker: BrokerProcess

before(async () => {
  broker = await startBroker()
})

after(async () => {
  await broker.stop()
  removeDir(broker.dataDir)
})

const spec = (name: string) => ({ name, partitions: 2, replicationFactor: 1, configs: {} })

test('creates a missing topic, then finds it', async () => {
  assert.equal(await ensureTopic([broker.bootstrap], spec('kt-once')), 'created')
  assert.equal(await ensureTopic([broker.bootstrap], spec('kt-once')), 'exists')
})

test('a create refused with TOPIC_ALREADY_EXISTS is recognised by its code, other refusals are not', async () => {
  await ensureTopic([broker.bootstrap], spec('kt-taken'))
  const admin = new Admin({ clientId: 'kt-test', bootstrapBrokers: [broker.bootstrap], retries: 0 })
  try {
    const taken = await admin.createTopics({ topics: ['kt-taken'], partitions: 2, replicas: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(taken !== undefined, 'creating an existing topic must fail')
    assert.equal(hasKafkaError(taken, 'TOPIC_ALREADY_EXISTS'), true)
    const invalid = await admin.createTopics({ topics: ['kt-bad'], partitions: 2, replicas: 3 }).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(invalid !== undefined, 'replication factor 3 on one broker must fail')
    assert.equal(hasKafkaError(invalid, 'TOPIC_ALREADY_EXISTS'), false)
  } finally {
    await admin.close()
  }
})

test('concurrent ensureTopic calls: one creates, the others find it, none fails', async () => {
  const results = await Promise.all(Array.from({ length: 5 }, () => ensureTopic([broker.bootstrap], spec('kt-race'))))
  assert.equal(results.filter((r) => r === 'created').length, 1, results.join(','))
  assert.equal(results.filter((r) => r === 'exists').length, 4, results.join(','))
})

test('the CreateTopics request: counts without racks, a rack-aware assignment with them, accepted by the broker', async () => {
  const s = spec('kt-racks')
  assert.deepEqual(createTopicsRequest(s, [{ id: 1, rack: null }]), {
    topics: ['kt-racks'],
    partitions: 2,
    replicas: 1,
    configs: [],
  })
  const admin = new Admin({ clientId: 'kt-test', bootstrapBrokers: [broker.bootstrap], retries: 0 })
  try {
    const brokers = [...(await admin.metadata({ topics: [] })).brokers.keys()].map((id) => ({ id, rack: 'r1' }))
    const request = createTopicsRequest(s, brokers)
    assert.deepEqual(request.assignments, [
      { partition: 0, brokers: [brokers[0].id] },
      { partition: 1, brokers: [brokers[0].id] },
    ])
    await admin.createTopics(request)
    const created = (await admin.metadata({ topics: ['kt-racks'] })).topics.get('kt-racks')
    assert.equal(created?.partitionsCount ?? created?.partitions.length, 2)
  } finally {
    await admin.close()
  }
})
