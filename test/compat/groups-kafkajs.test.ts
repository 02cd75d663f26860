// KafkaJS 2.2.4 consumer groups against the real broker process. Members run as their own
// processes (test/compat/fixtures/kafkajs-member.ts) so one can be SIGKILLed: consumer.run with
// autoCommit off and commitOffsets after each message, a second member joining (rebalance), a
// member SIGKILLed with messages read but not committed (the survivor takes its partitions over
// at its last commit), and resumption from committed offsets after the broker is SIGKILLed and
// restarted. The producer (acks=-1, idempotent when the broker has InitProducerId) and the admin
// client (listGroups, describeGroups, fetchOffsets, deleteGroups) run in the test process.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { AssignerProtocol, Kafka, logLevel, Partitioners, type Admin, type LogEntry, type Producer } from 'kafkajs'
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

const FIXTURE = join(ROOT, 'test', 'compat', 'fixtures', 'kafkajs-member.ts')
const PARTITIONS = 4
const BROKER_CONFIG = { ...GROUP_BROKER_CONFIG, 'num.partitions': String(PARTITIONS) }

let broker: BrokerProcess
let kafka: Kafka
let admin: Admin
let producer: Producer
let idempotent = false
let s: GroupScenario
const logs: { level: logLevel; text: string }[] = []

const client: GroupClient = {
  async produce(topic, partitions, count, prefix) {
    const messages = Array.from({ length: count }, (_, i) => ({
      key: `k${i}`,
      value: `${prefix}-${i}`,
      partition: i % partitions,
    }))
    const results = await producer.send({ topic, acks: -1, messages })
    assert.deepEqual(
      results.map((r) => r.errorCode),
      results.map(() => 0),
    )
    // One batch per partition, in send order from its base offset.
    const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]))
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
  kafka = new Kafka({
    clientId: 'compat-groups',
    brokers: [broker.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      logs.push({ level: entry.level, text: JSON.stringify(entry.log) })
    },
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
  })
  admin = kafka.admin()
  await admin.connect()
  producer = kafka.producer({
    idempotent,
    maxInFlightRequests: idempotent ? 1 : undefined,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  s = new GroupScenario(client, uniqueTopic('kjsg'), uniqueTopic('kjsg-group'), PARTITIONS, () => broker.port)
  await admin.createTopics({ topics: [{ topic: s.topic, numPartitions: PARTITIONS }], waitForLeaders: true })
})

after(async () => {
  for (const m of s.members) await m.kill()
  await producer.disconnect()
  await admin.disconnect()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

void test('(a, b) acks=-1 messages; member A consumes with commitOffsets after each message', async (t) => {
  t.diagnostic(`idempotent producer: ${idempotent}`)
  await s.firstMember()
})

void test('(b) member B joins: a rebalance splits the partitions between A and B', async (t) => {
  t.diagnostic(`assignments: ${JSON.stringify(await s.secondMemberJoins())}`)
})

void test('(b) B is SIGKILLed with messages read but not committed: A takes its partitions over at its last commits', async () => {
  await s.memberKilled()
})

void test("(c) every acknowledged message consumed, in order per partition; duplicates only past the killed member's commits", () => {
  s.checkDelivery()
})

void test('admin: listGroups, describeGroups (member and its assignment), fetchOffsets', async () => {
  assert.equal(s.a.alive, true)
  const { groups } = await admin.listGroups()
  assert.deepEqual(
    groups.filter((g) => g.groupId === s.group),
    [{ groupId: s.group, protocolType: 'consumer' }],
  )
  const described = await admin.describeGroups([s.group])
  assert.equal(described.groups.length, 1)
  const g = described.groups[0]
  assert.deepEqual(
    [g.groupId, g.state, g.protocolType, g.protocol],
    [s.group, 'Stable', 'consumer', 'RoundRobinAssigner'],
  )
  assert.equal(g.members.length, 1, 'only the survivor is a member')
  assert.equal(g.members[0].clientId, 'compat-group-member')
  const assignment = AssignerProtocol.MemberAssignment.decode(g.members[0].memberAssignment)
  assert.deepEqual(assignment?.assignment, { [s.topic]: [0, 1, 2, 3] })
  const offsets = await admin.fetchOffsets({ groupId: s.group, topics: [s.topic] })
  assert.deepEqual(
    offsets.map((t) => [t.topic, t.partitions.map((p) => [p.partition, Number(p.offset)]).sort()]),
    [[s.topic, s.end.map((o, p) => [p, o])]],
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

void test('admin.deleteGroups on the empty group: gone from listGroups, offsets gone', async () => {
  assert.deepEqual(
    (await admin.deleteGroups([s.group])).map((r) => [r.groupId, r.errorCode ?? 0]),
    [[s.group, 0]],
  )
  assert.ok(!(await admin.listGroups()).groups.some((g) => g.groupId === s.group))
  const offsets = await admin.fetchOffsets({ groupId: s.group, topics: [s.topic] })
  assert.deepEqual(
    offsets[0].partitions.map((p) => Number(p.offset)),
    [-1, -1, -1, -1],
  )
  // Again: KafkaJSDeleteGroupsError carrying each group's error.
  await assert.rejects(
    admin.deleteGroups([s.group]),
    (err: { groups?: { groupId: string; error?: { type: string } }[] }) => {
      assert.deepEqual(
        err.groups?.map((g) => [g.groupId, g.error?.type]),
        [[s.group, 'GROUP_ID_NOT_FOUND']],
      )
      return true
    },
  )
})

void test('KafkaJS logged no errors in the test process', (t) => {
  t.diagnostic(`kafkajs warnings: ${JSON.stringify(logs.filter((l) => l.level === logLevel.WARN).map((l) => l.text))}`)
  assert.deepEqual(
    logs.filter((l) => l.level === logLevel.ERROR && !/deleteGroups|does not exist/i.test(l.text)),
    [],
  )
})
