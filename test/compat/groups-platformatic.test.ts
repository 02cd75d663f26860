// @platformatic/kafka 2.x consumer groups against the real broker process. Members run as their
// own processes (test/compat/fixtures/platformatic-member.ts) so one can be SIGKILLed: consume()
// with autocommit off and message.commit() after each message, a second member joining
// (rebalance), a member SIGKILLed with messages read but not committed (the survivor takes its
// partitions over at its last commit), and resumption from committed offsets after the broker is
// SIGKILLed and restarted. The producer (acks=all, idempotent when the broker has InitProducerId)
// and Admin (listGroups, describeGroups, listConsumerGroupOffsets, deleteGroups) run in the test
// process.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Admin, ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka'
import { type BrokerProcess, removeDir, ROOT, startBroker } from '../helpers/broker-process.ts'
import { type Acked, advertisedApis, uniqueTopic } from '../helpers/compat.ts'
import {
  GROUP_BROKER_CONFIG,
  type GroupClient,
  GroupMember,
  GroupScenario,
  HEARTBEAT_INTERVAL_MS,
  SESSION_TIMEOUT_MS,
} from '../helpers/groups.ts'

const FIXTURE = join(ROOT, 'test', 'compat', 'fixtures', 'platformatic-member.ts')
const PARTITIONS = 4
const BROKER_CONFIG = { ...GROUP_BROKER_CONFIG, 'num.partitions': String(PARTITIONS) }

let broker: BrokerProcess
let admin: Admin
let producer: Producer<string, string, string, string>
let idempotent = false
let s: GroupScenario

const client: GroupClient = {
  async produce(topic, partitions, count, prefix) {
    const messages = Array.from({ length: count }, (_, i) => ({
      topic,
      key: `k${i}`,
      value: `${prefix}-${i}`,
      partition: i % partitions,
    }))
    const result = await producer.send({ messages, acks: ProduceAcks.ALL })
    // One offset per partition written: the base offset of that partition's batch.
    const next = new Map((result.offsets ?? []).map((o) => [o.partition, Number(o.offset)]))
    assert.equal(next.size, Math.min(count, partitions))
    return messages.map((m): Acked => {
      const offset = next.get(m.partition)!
      next.set(m.partition, offset + 1)
      return { partition: m.partition, offset, key: m.key, value: m.value }
    })
  },
  member(name, group, topic) {
    return new GroupMember(name, process.execPath, [
      FIXTURE,
      broker.bootstrap,
      group,
      topic,
      String(SESSION_TIMEOUT_MS),
      String(HEARTBEAT_INTERVAL_MS),
    ])
  },
}

before(async () => {
  broker = await startBroker({ config: BROKER_CONFIG })
  idempotent = (await advertisedApis(broker.port)).has(22)
  const common = { bootstrapBrokers: [broker.bootstrap], retries: 20, retryDelay: 200 }
  admin = new Admin({ clientId: 'compat-admin', ...common })
  producer = new Producer({
    clientId: 'compat-producer',
    ...common,
    serializers: stringSerializers,
    idempotent,
    acks: ProduceAcks.ALL,
  })
  s = new GroupScenario(client, uniqueTopic('pkg'), uniqueTopic('pkg-group'), PARTITIONS, () => broker.port)
  await admin.createTopics({ topics: [s.topic], partitions: PARTITIONS, replicas: 1 })
})

after(async () => {
  for (const m of s.members) await m.kill()
  await producer.close()
  await admin.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

void test('(a, b) acks=all messages; member A consumes with message.commit() after each message', async (t) => {
  t.diagnostic(`idempotent producer: ${idempotent}`)
  await s.firstMember()
})

void test('(b) member B joins: a rebalance splits the partitions between A and B', async (t) => {
  t.diagnostic(`assignments: ${JSON.stringify(await s.secondMemberJoins())}`)
})

void test('(b) B is SIGKILLed with messages read but not committed: A takes its partitions over at its last commits', async () => {
  await s.memberKilled()
})

void test("(c) every acknowledged message consumed, in order per partition; duplicates only past the killed member's commits", (t) => {
  s.checkDelivery()
  const skipped = s.members.flatMap((m) => m.logs.filter((l) => l.startsWith('skipped')).map((l) => `${m.name} ${l}`))
  t.diagnostic(
    `messages of partitions no longer assigned, skipped by the members: ${skipped.length} ${JSON.stringify(skipped.slice(0, 5))}`,
  )
})

void test('Admin: listGroups, describeGroups (member and its assignment), listConsumerGroupOffsets', async () => {
  assert.equal(s.a.alive, true)
  const listed = await admin.listGroups()
  assert.deepEqual(
    [listed.get(s.group)?.id, listed.get(s.group)?.protocolType, listed.get(s.group)?.state],
    [s.group, 'consumer', 'Stable'],
  )
  const described = await admin.describeGroups({ groups: [s.group] })
  const g = described.get(s.group)
  assert.ok(g)
  assert.deepEqual([g.id, g.state, g.protocolType], [s.group, 'Stable', 'consumer'])
  assert.equal(g.members.size, 1, 'only the survivor is a member')
  const [member] = g.members.values()
  assert.equal(member.clientId, 'compat-group-member')
  assert.deepEqual(member.assignments?.get(s.topic)?.partitions, [0, 1, 2, 3])
  const offsets = await admin.listConsumerGroupOffsets({ groups: [s.group] })
  assert.deepEqual(
    offsets.map((o) => [
      o.groupId,
      o.topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionIndex, Number(p.committedOffset)]).sort()]),
    ]),
    [[s.group, [[s.topic, s.end.map((o, p) => [p, o])]]]],
  )
})

async function restartBroker(): Promise<void> {
  const { dataDir, port } = broker
  await broker.kill()
  broker = await startBroker({ dataDir, port, config: BROKER_CONFIG })
}

let c: GroupMember

void test('(d) broker SIGKILLed and restarted: committed offsets survive; a new member resumes from them', async () => {
  c = await s.brokerRestart(restartBroker)
})

void test('(d) broker SIGKILLed and restarted under a live member: it carries on, nothing read twice or skipped', async (t) => {
  await s.brokerRestartUnderMember(c, restartBroker)
  assert.equal(await c.stop(), 0)
  t.diagnostic(`members sent: ${s.requestVersions()}`)
})

void test('Admin.deleteGroups on the empty group: gone from listGroups, offsets gone', async () => {
  await admin.deleteGroups({ groups: [s.group] })
  assert.equal((await admin.listGroups()).has(s.group), false)
  const offsets = await admin.listConsumerGroupOffsets({ groups: [s.group] })
  assert.deepEqual(
    offsets.map((o) => [o.groupId, o.topics.length]),
    [[s.group, 0]],
  )
  await assert.rejects(admin.deleteGroups({ groups: [s.group] }), /GROUP_ID_NOT_FOUND|does not exist|not found/i)
})
