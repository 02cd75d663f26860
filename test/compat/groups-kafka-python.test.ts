// kafka-python 2.0.2 consumer groups against the real broker process, driven through
// test/compat/python/groups_kafka_python.py: a KafkaConsumer subscribed in a group with
// enable_auto_commit=False and a synchronous commit() after each record, a second member joining
// (rebalance), a member SIGKILLed with records read but not committed (the survivor takes its
// partitions over at its last commit), and resumption from committed offsets after the broker is
// SIGKILLed and restarted. KafkaAdminClient lists, describes and deletes the group and reads its
// offsets. kafka-python 2.0.2 has no idempotent producer: records are produced with acks=all only.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type BrokerProcess, removeDir, ROOT, startBroker } from '../helpers/broker-process.ts'
import { type Acked, PYTHON, runPythonJson, uniqueTopic } from '../helpers/compat.ts'
import {
  GROUP_BROKER_CONFIG,
  type GroupClient,
  GroupMember,
  GroupScenario,
  HEARTBEAT_INTERVAL_MS,
  SESSION_TIMEOUT_MS,
} from '../helpers/groups.ts'

const SCRIPT = join(ROOT, 'test', 'compat', 'python', 'groups_kafka_python.py')
const PARTITIONS = 4
const BROKER_CONFIG = { ...GROUP_BROKER_CONFIG, 'num.partitions': String(PARTITIONS) }

let broker: BrokerProcess
let s: GroupScenario

const client: GroupClient = {
  async produce(topic, partitions, count, prefix) {
    return (
      await runPythonJson<{ sent: Acked[] }>(SCRIPT, [
        broker.bootstrap,
        'produce',
        topic,
        String(partitions),
        String(count),
        prefix,
      ])
    ).sent
  },
  member(name, group, topic) {
    return new GroupMember(name, PYTHON, [
      SCRIPT,
      broker.bootstrap,
      'member',
      group,
      topic,
      String(SESSION_TIMEOUT_MS),
      String(HEARTBEAT_INTERVAL_MS),
    ])
  },
}

before(async () => {
  broker = await startBroker({ config: BROKER_CONFIG })
  s = new GroupScenario(client, uniqueTopic('kpg'), uniqueTopic('kpg-group'), PARTITIONS, () => broker.port)
})

after(async () => {
  for (const m of s.members) await m.kill()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

void test('(a, b) acks=all records; member A consumes with a synchronous commit after each record', async () => {
  await s.firstMember()
})

void test('(b) member B joins: a rebalance splits the partitions between A and B', async (t) => {
  t.diagnostic(`assignments: ${JSON.stringify(await s.secondMemberJoins())}`)
})

void test('(b) B is SIGKILLed with records read but not committed: A takes its partitions over at its last commits', async () => {
  await s.memberKilled()
})

void test("(c) every acknowledged record consumed, in order per partition; duplicates only past the killed member's commits", () => {
  s.checkDelivery()
})

interface Described {
  listed: [string, string][]
  described: {
    group: string
    error_code: number
    state: string
    protocol_type: string
    protocol: string
    members: { member_id: string; client_id: string; assignment: Record<string, number[]> }[]
  }[]
  offsets: Record<string, number>
}

void test('KafkaAdminClient: list_consumer_groups, describe_consumer_groups (member and its assignment), list_consumer_group_offsets', async () => {
  assert.equal(s.a.alive, true)
  const r = await runPythonJson<Described>(SCRIPT, [broker.bootstrap, 'admin', s.group, s.topic])
  assert.ok(
    r.listed.some(([g, type]) => g === s.group && type === 'consumer'),
    `${s.group} listed: ${JSON.stringify(r.listed)}`,
  )
  assert.equal(r.described.length, 1)
  const g = r.described[0]
  assert.deepEqual([g.group, g.error_code, g.state, g.protocol_type], [s.group, 0, 'Stable', 'consumer'])
  assert.equal(g.members.length, 1, 'only the survivor is a member')
  assert.equal(g.members[0].client_id, 'compat-group-member')
  assert.deepEqual(g.members[0].assignment, { [s.topic]: [0, 1, 2, 3] })
  assert.deepEqual(r.offsets, Object.fromEntries(s.end.map((o, p) => [String(p), o])))
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

void test('KafkaAdminClient.delete_consumer_groups on the empty group: gone from the listing, offsets deleted', async () => {
  const r = await runPythonJson<{
    deleted: [string, string][]
    delete_again: [string, string][]
    listed_after: boolean
    offsets_after: number
  }>(SCRIPT, [broker.bootstrap, 'delete', s.group])
  assert.deepEqual(r.deleted, [[s.group, 'NoError']])
  assert.deepEqual(r.delete_again, [[s.group, 'GroupIdNotFoundError']])
  assert.equal(r.listed_after, false)
  assert.equal(r.offsets_after, 0)
})
