// confluent-kafka-python (librdkafka 2.0.2) consumer groups against the real broker process,
// driven through test/compat/python/groups_confluent_kafka.py: a Consumer subscribed in a group
// with enable.auto.commit=false and a synchronous commit after each record, a second member
// joining (rebalance), a member SIGKILLed with records read but not committed (the survivor takes
// its partitions over at its last commit), and resumption from committed offsets after the broker
// is SIGKILLed and restarted. AdminClient.list_groups shows the group; Consumer.committed its offsets.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type BrokerProcess, removeDir, ROOT, startBroker } from '../helpers/broker-process.ts'
import { type Acked, advertisedApis, PYTHON, runPythonJson, uniqueTopic } from '../helpers/compat.ts'
import {
  GROUP_BROKER_CONFIG,
  type GroupClient,
  GroupMember,
  GroupScenario,
  HEARTBEAT_INTERVAL_MS,
  SESSION_TIMEOUT_MS,
} from '../helpers/groups.ts'

const SCRIPT = join(ROOT, 'test', 'compat', 'python', 'groups_confluent_kafka.py')
const PARTITIONS = 4
const BROKER_CONFIG = { ...GROUP_BROKER_CONFIG, 'num.partitions': String(PARTITIONS) }

let broker: BrokerProcess
let idempotent = false
let s: GroupScenario

interface Report extends Acked {
  error: string | null
}

const client: GroupClient = {
  async produce(topic, partitions, count, prefix) {
    const r = await runPythonJson<{ reports: Report[]; undelivered: number }>(SCRIPT, [
      broker.bootstrap,
      'produce',
      topic,
      String(partitions),
      String(count),
      prefix,
      String(idempotent),
    ])
    assert.equal(r.undelivered, 0)
    assert.deepEqual(
      r.reports.filter((m) => m.error !== null),
      [],
      'no delivery errors',
    )
    // Delivery reports come per partition; put them back in send order.
    return r.reports.sort((a, b) => Number(a.value.split('-').at(-1)) - Number(b.value.split('-').at(-1)))
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
  // Idempotence once the broker has InitProducerId (api key 22).
  idempotent = (await advertisedApis(broker.port)).has(22)
  s = new GroupScenario(client, uniqueTopic('ckg'), uniqueTopic('ckg-group'), PARTITIONS, () => broker.port)
})

after(async () => {
  for (const m of s.members) await m.kill()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

void test('(a, b) acks=all records; member A consumes with a synchronous commit after each record', async (t) => {
  t.diagnostic(`idempotent producer: ${idempotent}`)
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

void test('AdminClient.list_groups shows the group with its member; Consumer.committed its offsets', async () => {
  assert.equal(s.a.alive, true)
  const r = await runPythonJson<{
    listed: string[]
    groups: {
      id: string
      error: string | null
      state: string
      protocol_type: string
      protocol: string
      members: { id: string; client_id: string }[]
    }[]
    committed: number[]
  }>(SCRIPT, [broker.bootstrap, 'admin', s.group, s.topic, String(PARTITIONS)])
  assert.ok(r.listed.includes(s.group), `${s.group} listed`)
  assert.equal(r.groups.length, 1)
  const g = r.groups[0]
  assert.deepEqual([g.id, g.error, g.state, g.protocol_type], [s.group, null, 'Stable', 'consumer'])
  assert.equal(g.members.length, 1, 'only the survivor is a member')
  assert.equal(g.members[0].client_id, 'compat-group-member')
  assert.deepEqual(r.committed, s.end)
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
