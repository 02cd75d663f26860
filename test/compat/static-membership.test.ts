// Static membership (KIP-345) with librdkafka (confluent-kafka-python): a member restarted with
// the same group.instance.id within its session timeout gets its partitions back without a
// rebalance (the other member sees no revocation); a static member that stays away past its
// session timeout is removed and the survivor takes over its partitions.
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { type DescribeGroupsResponse } from '../../src/protocol/messages/describe-groups-response.ts'
import { type MetadataResponse } from '../../src/protocol/messages/metadata-response.ts'
import { type BrokerProcess, ROOT, removeDir, startBroker } from '../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../helpers/raw-client.ts'

const SCRIPT = join(ROOT, 'test', 'compat', 'python', 'static_member.py')
const SESSION_MS = 4000
let broker: BrokerProcess
const spawned: ChildProcessWithoutNullStreams[] = []

before(async () => {
  broker = await startBroker({
    config: { 'group.initial.rebalance.delay.ms': '0', 'group.min.session.timeout.ms': '1000', 'num.partitions': '4' },
  })
})

after(async () => {
  for (const p of spawned) p.kill('SIGKILL')
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

interface Member {
  proc: ChildProcessWithoutNullStreams
  events: { ev: string; partitions?: number[] }[]
  /** Resolves when an event matching `pred` has been seen (counting from `from`). */
  until(pred: (e: { ev: string; partitions?: number[] }) => boolean, from?: number): Promise<void>
}

function member(group: string, topic: string, instance: string): Member {
  const proc = spawn('/usr/bin/python3', [SCRIPT, broker.bootstrap, group, topic, instance, String(SESSION_MS)])
  spawned.push(proc)
  const events: Member['events'] = []
  const waiters: (() => void)[] = []
  createInterface({ input: proc.stdout }).on('line', (line) => {
    events.push(JSON.parse(line) as Member['events'][number])
    for (const w of waiters.splice(0)) w()
  })
  proc.stderr.resume()
  return {
    proc,
    events,
    until(pred, from = 0) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${instance}: no matching event; saw ${JSON.stringify(events)}`)),
          30_000,
        )
        const check = () => {
          if (events.slice(from).some(pred)) {
            clearTimeout(timer)
            resolve()
          } else waiters.push(check)
        }
        check()
      })
    },
  }
}

const lastAssignment = (m: Member) => [...m.events].reverse().find((e) => e.ev === 'assigned')?.partitions ?? []

async function describe(group: string): Promise<DescribeGroupsResponse['groups'][number]> {
  const c = await RawClient.connect(broker.port)
  c.write(requestFrame(15, 4, 1, { groups: [group], includeAuthorizedOperations: false }))
  const { body } = parseResponse<DescribeGroupsResponse>(15, 4, await c.nextFrame())
  c.close()
  return body.groups[0]
}

void test(
  'a static member restarting within its session keeps its partitions without a rebalance',
  { timeout: 90_000 },
  async () => {
    const group = 'static-group'
    const topic = 'static-topic'
    const c = await RawClient.connect(broker.port)
    c.write(requestFrame(3, 4, 1, { topics: [{ name: topic }], allowAutoTopicCreation: true }))
    assert.equal(parseResponse<MetadataResponse>(3, 4, await c.nextFrame()).body.topics[0].partitions.length, 4)
    c.close()
    const a = member(group, topic, 'instance-a')
    await a.until((e) => e.ev === 'assigned' && e.partitions!.length === 4)
    const b = member(group, topic, 'instance-b')
    await b.until((e) => e.ev === 'assigned' && e.partitions!.length > 0)
    await a.until((e) => e.ev === 'assigned' && e.partitions!.length < 4)
    const aParts = lastAssignment(a)
    const bParts = lastAssignment(b)
    assert.deepEqual([...aParts, ...bParts].sort(), [0, 1, 2, 3])
    const before = await describe(group)
    assert.deepEqual(before.members.map((m) => m.groupInstanceId).sort(), ['instance-a', 'instance-b'])

    // Restart a: close (static members do not leave) and start again with the same instance id.
    const bEvents = b.events.length
    a.proc.stdin.write('stop\n')
    await a.until((e) => e.ev === 'closed')
    const a2 = member(group, topic, 'instance-a')
    await a2.until((e) => e.ev === 'assigned')
    assert.deepEqual(lastAssignment(a2), aParts, 'the restarted member gets the same partitions')
    const during = await describe(group)
    assert.equal(during.groupState, 'Stable')
    assert.equal(during.members.length, 2)
    assert.notEqual(
      during.members.find((m) => m.groupInstanceId === 'instance-a')?.memberId,
      before.members.find((m) => m.groupInstanceId === 'instance-a')?.memberId,
    )
    assert.equal(b.events.length, bEvents, 'the other member saw no rebalance')

    // Now a stays away: SIGKILL, and after its session timeout b takes everything.
    a2.proc.kill('SIGKILL')
    await b.until((e) => e.ev === 'assigned' && e.partitions!.length === 4, bEvents)
    const afterKill = await describe(group)
    assert.deepEqual(
      afterKill.members.map((m) => m.groupInstanceId),
      ['instance-b'],
    )
    b.proc.stdin.write('stop\n')
    await b.until((e) => e.ev === 'closed')
  },
)
