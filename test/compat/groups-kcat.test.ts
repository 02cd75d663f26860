// kcat 1.7.1 (librdkafka 2.0.2) in a consumer group against the real broker process: `kcat -G`,
// librdkafka's balanced KafkaConsumer. kcat has no commit command: it auto-commits the offsets of
// what it has printed (enable.auto.commit, every 5 s: kcat applies `-X auto.commit.interval.ms`
// to librdkafka's legacy topic-level property of that name, so the global one cannot be changed),
// commits when its partitions are revoked in a rebalance, and commits once more when it exits. So the test reads the group's committed offsets from the broker (raw OffsetFetch), and
// the manual-commit side of librdkafka is covered by groups-confluent-kafka.test.ts. Members:
// A alone, B joins (rebalance), B SIGKILLed right after reading new records (the survivor resumes
// at B's last auto-commit), A stopped with SIGTERM (commit on exit), broker SIGKILLed and
// restarted, then `kcat -G -e` resumes from the committed offsets and exits at the end.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { type Acked, advertisedApis, expectSuccess, run, uniqueTopic } from '../helpers/compat.ts'
import {
  assertDelivery,
  assertDenseAcks,
  assertDisjointCover,
  committedOffsets,
  GROUP_BROKER_CONFIG,
  type GroupClient,
  GroupMember,
  type LineParser,
  GroupScenario,
  HEARTBEAT_INTERVAL_MS,
  SESSION_TIMEOUT_MS,
} from '../helpers/groups.ts'

const PARTITIONS = 4
const BROKER_CONFIG = { ...GROUP_BROKER_CONFIG, 'num.partitions': String(PARTITIONS) }

let broker: BrokerProcess
let idempotent = false
let s: GroupScenario
/** Next offset of each partition: kcat -P does not report offsets, and only this test writes. */
const next = Array.from({ length: PARTITIONS }, () => 0)

/** kcat's output: records on stdout (-f), rebalances and errors on stderr. */
const kcatLines: LineParser = (stream, line) => {
  if (stream === 'stdout') {
    const [p, o, key, ...value] = line.split('\t')
    return { ev: 'record', partition: Number(p), offset: Number(o), key, value: value.join('\t') }
  }
  // % Group g rebalanced (memberid rdkafka-…): assigned: topic [0], topic [2]
  const m = /rebalanced \(memberid [^)]*\): (assigned|revoked): (.*)$/.exec(line)
  if (m !== null) {
    const partitions = [...m[2].matchAll(/\[(\d+)\]/g)].map((x) => Number(x[1]))
    return m[1] === 'assigned' ? { ev: 'assigned', partitions } : { ev: 'revoked', partitions }
  }
  if (/^% ERROR/.test(line)) return { ev: 'error', error: line }
  return undefined
}

function groupArgs(group: string): string[] {
  return [
    '-b',
    broker.bootstrap,
    '-G',
    group,
    '-u',
    '-f',
    '%p\\t%o\\t%k\\t%s\\n',
    '-X',
    'auto.offset.reset=earliest',
    '-X',
    `session.timeout.ms=${SESSION_TIMEOUT_MS}`,
    '-X',
    `heartbeat.interval.ms=${HEARTBEAT_INTERVAL_MS}`,
    '-X',
    'fetch.wait.max.ms=100',
  ]
}

const client: GroupClient = {
  async produce(topic, partitions, count, prefix) {
    const acked: Acked[] = []
    const extra = idempotent ? ['-X', 'enable.idempotence=true'] : []
    // One kcat -P per partition (-p); it exits 0 only when every message was delivered.
    for (let p = 0; p < partitions; p++) {
      const mine = Array.from({ length: count }, (_, i) => i).filter((i) => i % partitions === p)
      if (mine.length === 0) continue
      const input = mine.map((i) => `k${i}:${prefix}-${i}\n`).join('')
      expectSuccess(
        'kcat -P',
        await run(
          'kcat',
          ['-b', broker.bootstrap, '-P', '-t', topic, '-p', String(p), '-K', ':', '-X', 'acks=all', ...extra],
          { input },
        ),
      )
      for (const i of mine) acked.push({ partition: p, offset: next[p]++, key: `k${i}`, value: `${prefix}-${i}` })
    }
    return acked.sort((x, y) => Number(x.value.split('-')[1]) - Number(y.value.split('-')[1]))
  },
  member(name, group, topic) {
    return new GroupMember(name, 'kcat', [...groupArgs(group), topic], kcatLines)
  },
}

before(async () => {
  broker = await startBroker({ config: BROKER_CONFIG })
  idempotent = (await advertisedApis(broker.port)).has(22)
  s = new GroupScenario(client, uniqueTopic('kcatg'), uniqueTopic('kcatg-group'), PARTITIONS, () => broker.port)
})

after(async () => {
  for (const m of s.members) await m.kill()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

let a: GroupMember
let b: GroupMember
/** B's commits as the broker had them right after B was killed. */
let bCommitted: number[] = []

void test('(a) acks=all records; kcat -G (A) gets every partition and reads it', async (t) => {
  t.diagnostic(`idempotent producer: ${idempotent}`)
  await s.produce('one', 60)
  a = s.start('A')
  assert.deepEqual(
    await a.waitFor('A assigned', () => (a.assignment.length > 0 ? a.assignment : undefined)),
    [0, 1, 2, 3],
  )
  await s.readToEnd(a, [0, 1, 2, 3])
})

void test('(b) a second kcat -G (B) joins: A commits on revoke, and a rebalance splits the partitions between A and B', async (t) => {
  b = s.start('B')
  const assignments = await s.settled([a, b])
  assertDisjointCover(assignments, PARTITIONS)
  t.diagnostic(`assignments: ${JSON.stringify(assignments)}`)
  // librdkafka commits what A read when its partitions were revoked for the rebalance.
  assert.deepEqual(await committedOffsets(broker.port, s.group, s.topic, PARTITIONS), s.end, 'committed on revoke')
  await s.produce('two', 80)
  await s.readToEnd(a, a.assignment)
  await s.readToEnd(b, b.assignment)
})

void test('(b) B is SIGKILLed right after reading new records: A takes its partitions over at its last auto-commit', async () => {
  await s.produce('three', 80)
  await s.readToEnd(a, a.assignment)
  await s.readToEnd(b, b.assignment)
  await b.kill()
  bCommitted = await committedOffsets(broker.port, s.group, s.topic, PARTITIONS)
  for (const p of b.assignment) b.committed.set(p, bCommitted[p])
  await a.waitFor(
    'A assigned every partition',
    () => (a.assignment.length === PARTITIONS ? true : undefined),
    SESSION_TIMEOUT_MS + 30_000,
  )
  await s.readToEnd(a, [0, 1, 2, 3])
  const resumed = s.resumedAt(a)
  for (const p of b.assignment) {
    const at = resumed.get(p) ?? s.end[p]
    assert.ok(at >= bCommitted[p], `A resumed partition ${p} at ${at}, not before B's commit ${bCommitted[p]}`)
    const bLast = Math.max(...b.records.filter((r) => r.partition === p).map((r) => r.offset))
    assert.ok(at <= bLast + 1, `A resumed partition ${p} at ${at}, not past what B read (${bLast})`)
  }
  await s.produce('four', 40)
  await s.readToEnd(a, [0, 1, 2, 3])
})

void test("(c) every acknowledged record consumed, in order per partition; duplicates only past the killed member's commits", (t) => {
  assertDenseAcks(s.acked, PARTITIONS)
  const { duplicates } = assertDelivery(s.acked, [a, b], b)
  // Exactly what B read at or past the offset A resumed from was read twice.
  const resumed = s.resumedAt(a)
  const expected = b.records
    .filter((r) => b.assignment.includes(r.partition) && r.offset >= (resumed.get(r.partition) ?? Infinity))
    .map((r) => `${r.partition}/${r.offset}`)
  assert.deepEqual(duplicates.map((d) => `${d.partition}/${d.offset}`).sort(), expected.sort())
  t.diagnostic(
    `read twice: ${duplicates.length} (B's auto-commits on the broker when it was killed: ${JSON.stringify(bCommitted)})`,
  )
  assert.deepEqual([...a.errors, ...b.errors], [])
})

void test('(d) kcat exits on SIGTERM and commits; broker SIGKILLed and restarted; kcat -G -e resumes from the committed offsets', async () => {
  assert.equal(await a.stop('SIGTERM'), 0)
  const committed = await committedOffsets(broker.port, s.group, s.topic, PARTITIONS)
  assert.deepEqual(committed, s.end, 'committed on exit')
  await s.produce('five', 40)
  const { dataDir, port } = broker
  await broker.kill()
  broker = await startBroker({ dataDir, port, config: BROKER_CONFIG })
  assert.deepEqual(
    await committedOffsets(broker.port, s.group, s.topic, PARTITIONS),
    committed,
    'committed offsets after the restart',
  )
  await s.produce('six', 40)

  // -e: exit once every assigned partition is at its end; the offsets are committed on exit.
  const r = expectSuccess(
    'kcat -G -e',
    await run('kcat', [...groupArgs(s.group), '-e', s.topic], { timeoutMs: 30_000 }),
  )
  const read = r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [p, o, key, ...value] = l.split('\t')
      return { partition: Number(p), offset: Number(o), key, value: value.join('\t') }
    })
  const after = s.acked.filter((m) => m.offset >= committed[m.partition])
  assert.deepEqual([...new Set(after.map((m) => m.value.split('-')[0]))], ['five', 'six'])
  assert.deepEqual(
    read.map((m) => [m.partition, m.offset, m.key, m.value]).sort(),
    after.map((m) => [m.partition, m.offset, m.key, m.value]).sort(),
    'kcat read exactly the records after the committed offsets',
  )
  for (let p = 0; p < PARTITIONS; p++) {
    const offsets = read.filter((m) => m.partition === p).map((m) => m.offset)
    assert.deepEqual(
      offsets,
      [...offsets].sort((x, y) => x - y),
      `partition ${p} in order`,
    )
  }
  assert.deepEqual(await committedOffsets(broker.port, s.group, s.topic, PARTITIONS), s.end, 'committed on exit')
  const again = expectSuccess(
    'kcat -G -e',
    await run('kcat', [...groupArgs(s.group), '-e', s.topic], { timeoutMs: 30_000 }),
  )
  assert.equal(again.stdout, '', 'a second run has nothing left to read')
})
