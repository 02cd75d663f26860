// Burrow 1.2.1 (Debian `burrow`) reporting a consumer group's lag from the real broker process.
// Burrow needs a ZooKeeper for itself, so the test runs a private one (Debian `zookeeper`, its jar
// run with `java`). Burrow's cluster module reads the topics (Metadata v1) and their high
// watermarks (ListOffsets v0) every offset-refresh; its consumer module reads the group's commits
// and group metadata by consuming __consumer_offsets (Fetch v2 with kafka-version 0.10.0) and
// decoding Kafka's record formats there (docs/reference/kafka-protocol.md §2). The group is
// kafka-python's, driven through test/compat/python/burrow_group.py. The tests below run in order
// on one Burrow.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { type BrokerProcess, removeDir, ROOT, startBroker, tempDir } from '../helpers/broker-process.ts'
import { PYTHON, runPythonJson, uniqueTopic } from '../helpers/compat.ts'

const SCRIPT = join(ROOT, 'test', 'compat', 'python', 'burrow_group.py')
const BURROW = '/usr/bin/Burrow'
/** Debian's ZooKeeper jar; its manifest's Class-Path names its dependencies in /usr/share/java. */
const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar'
const CLUSTER = 'local'
const PARTITIONS = 3
const MEMBER_CLIENT_ID = 'burrow-compat-member'

/** A child process whose output is kept, stopped with SIGTERM (SIGKILL after 5 s). */
interface Child {
  readonly proc: ChildProcess
  readonly output: () => string
  readonly exited: () => boolean
  stop(): Promise<void>
}

function startChild(cmd: string, args: readonly string[], cwd: string): Child {
  const proc = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer) => {
    out += d.toString()
    if (out.length > 200_000) out = out.slice(-100_000)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  let done = false
  const exit = new Promise<void>((resolve) => {
    proc.once('error', (err) => {
      out += `\nspawn ${cmd}: ${err.message}`
      done = true
      resolve()
    })
    proc.once('exit', () => {
      done = true
      resolve()
    })
  })
  return {
    proc,
    output: () => out,
    exited: () => done,
    async stop() {
      if (done) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000)
      await exit
      clearTimeout(timer)
    },
  }
}

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', resolve)
  })
  const { port } = srv.address() as AddressInfo
  await new Promise((resolve) => srv.close(resolve))
  return port
}

/** ZooKeeper's `ruok` four-letter command: true once it answers `imok`. */
function zkOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    socket.setTimeout(1_000, () => socket.destroy())
    socket.on('connect', () => socket.write('ruok'))
    socket.on('data', (d: Buffer) => (reply += d.toString()))
    socket.on('error', () => undefined)
    socket.on('close', () => resolve(reply === 'imok'))
  })
}

/** Polls until `check` returns a value; on timeout the error shows `describe()` (the last answer, logs). */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  describe: () => string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (burrow.exited()) throw new Error(`Burrow exited while waiting for ${what}\n${burrowLog()}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${describe()}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

let zkDir: string
let zkPort: number
let zookeeper: Child
let broker: BrokerProcess
let burrowDir: string
let burrowPort: number
let burrow: Child
let member: GroupMember | undefined
const topic = uniqueTopic('burrow')
const group = uniqueTopic('burrow-lag')

function burrowLog(): string {
  const file = join(burrowDir, 'burrow.log')
  const log = existsSync(file) ? readFileSync(file, 'utf8') : ''
  // Debug lines for broker offsets are most of the log; leave them out of error messages.
  const lines = log.split('\n').filter((l) => !l.includes('"StorageSetBrokerOffset"') && !l.includes('"StorageFetch'))
  return `--- Burrow output\n${burrow.output()}\n--- burrow.log (last lines, broker offsets left out)\n${lines.slice(-60).join('\n')}`
}

async function burrowGet<T>(path: string): Promise<T | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${burrowPort}/v3/kafka${path}`, { signal: AbortSignal.timeout(3_000) })
    if (!res.ok) return undefined
    return (await res.json()) as T
  } catch {
    return undefined // not listening yet
  }
}

function burrowConfig(): string {
  return `# Written by test/compat/burrow.test.ts
[general]
pidfile="${join(burrowDir, 'burrow.pid')}"

[logging]
filename="${join(burrowDir, 'burrow.log')}"
level="debug"

[zookeeper]
servers=["127.0.0.1:${zkPort}"]
timeout=6
root-path="/burrow"

[client-profile.compat]
client-id="burrow-compat"
kafka-version="0.10.0"

[cluster.${CLUSTER}]
class-name="kafka"
servers=["${broker.bootstrap}"]
client-profile="compat"
topic-refresh=1
offset-refresh=1

[consumer.${CLUSTER}]
class-name="kafka"
cluster="${CLUSTER}"
servers=["${broker.bootstrap}"]
client-profile="compat"
offsets-topic="__consumer_offsets"
start-latest=false

[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1

[evaluator.default]
class-name="caching"
expire-cache=1

[httpserver.default]
address="127.0.0.1:${burrowPort}"
`
}

/** A kafka-python group member (burrow_group.py member) that commits when told to. */
class GroupMember {
  private readonly child: ChildProcess
  private readonly lines: AsyncIterator<string>
  private stderr = ''

  constructor(groupId: string, topicName: string) {
    this.child = spawn(PYTHON, [SCRIPT, broker.bootstrap, 'member', groupId, topicName, MEMBER_CLIENT_ID], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.child.stdin?.on('error', () => undefined)
    this.lines = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]()
  }

  /** The next JSON line the script prints. */
  async next<T>(): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`kafka-python member did not answer\n${this.stderr}`)), 30_000)
    })
    try {
      const r = await Promise.race([this.lines.next(), timeout])
      if (r.done === true) throw new Error(`kafka-python member exited\n${this.stderr}`)
      return JSON.parse(r.value) as T
    } finally {
      clearTimeout(timer)
    }
  }

  async command<T>(line: string): Promise<T> {
    this.child.stdin?.write(line + '\n')
    return this.next<T>()
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

interface PartitionStatus {
  topic: string
  partition: number
  owner: string
  client_id: string
  status: string
  current_lag: number
  end: { offset: number; lag: number } | null
}
interface GroupStatus {
  cluster: string
  group: string
  status: string
  partitions: PartitionStatus[]
  partition_count: number
  totallag: number
}

async function lagStatus(): Promise<GroupStatus | undefined> {
  const body = await burrowGet<{ error: boolean; status: GroupStatus }>(`/${CLUSTER}/consumer/${group}/lag`)
  return body?.error === false ? body.status : undefined
}

/** Waits until Burrow's /lag for the group satisfies `ok`, and returns it. */
async function waitForLag(what: string, ok: (s: GroupStatus) => boolean, timeoutMs?: number): Promise<GroupStatus> {
  let last: GroupStatus | undefined
  return until(
    what,
    async () => {
      last = await lagStatus()
      return last !== undefined && ok(last) ? last : undefined
    },
    () => `last /lag status: ${JSON.stringify(last)}\n${burrowLog()}`,
    timeoutMs,
  )
}

/** [partition, committed offset, current lag] per partition of the topic, in partition order. */
function lagRows(s: GroupStatus): [number, number | undefined, number][] {
  return s.partitions
    .filter((p) => p.topic === topic)
    .sort((a, b) => a.partition - b.partition)
    .map((p) => [p.partition, p.end?.offset, p.current_lag])
}

const lagIs = (lag: number) => (s: GroupStatus) =>
  s.partition_count === PARTITIONS && s.partitions.every((p) => p.current_lag === lag)

before(async () => {
  zkDir = tempDir('zookeeper')
  burrowDir = tempDir('burrow')
  ;[zkPort, burrowPort] = [await freePort(), await freePort()]

  writeFileSync(
    join(zkDir, 'zoo.cfg'),
    [
      'tickTime=2000',
      `dataDir=${join(zkDir, 'data')}`,
      `clientPort=${zkPort}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok',
      '',
    ].join('\n'),
  )
  zookeeper = startChild(
    'java',
    ['-Xmx256m', '-cp', ZOOKEEPER_JAR, 'org.apache.zookeeper.server.ZooKeeperServerMain', join(zkDir, 'zoo.cfg')],
    zkDir,
  )

  // offsets.topic.num.partitions: sarama 1.22.1 (in Burrow) starts its partition consumers one at a
  // time, and each start's ListOffsets queues behind the in-flight Fetch (max wait 250 ms) on the
  // same connection, as with Kafka; 50 partitions would take ~13 s before the last one is read.
  broker = await startBroker({
    config: { 'group.initial.rebalance.delay.ms': '0', 'offsets.topic.num.partitions': '4' },
  })
  await runPythonJson(SCRIPT, [broker.bootstrap, 'produce', topic, String(PARTITIONS), '30'])

  const deadline = Date.now() + 20_000
  while (!(await zkOk(zkPort))) {
    if (zookeeper.exited() || Date.now() > deadline) throw new Error(`ZooKeeper did not start\n${zookeeper.output()}`)
    await new Promise((r) => setTimeout(r, 200))
  }

  writeFileSync(join(burrowDir, 'burrow.toml'), burrowConfig())
  burrow = startChild(BURROW, ['-config-dir', burrowDir], burrowDir)
})

after(async () => {
  member?.kill()
  await burrow?.stop()
  await zookeeper?.stop()
  if (broker !== undefined) {
    assert.equal(await broker.stop(), 0)
    removeDir(broker.dataDir)
  }
  removeDir(zkDir)
  removeDir(burrowDir)
})

void test("Burrow lists the cluster and reads the topic's high watermarks (Metadata v1, ListOffsets v0)", async () => {
  const clusters = await until('Burrow to answer /v3/kafka', () => burrowGet<{ clusters: string[] }>(''), burrowLog)
  assert.deepEqual(clusters.clusters, [CLUSTER])
  // Burrow stores no consumer offset for a topic before it has its broker offsets, so the group
  // below starts only after this.
  let last: number[] | undefined
  const offsets = await until(
    'Burrow to read the high watermarks',
    async () => {
      last = (await burrowGet<{ offsets: number[] }>(`/${CLUSTER}/topic/${topic}`))?.offsets
      return last?.length === PARTITIONS && last.every((o) => o === 30) ? last : undefined
    },
    () => `last offsets: ${JSON.stringify(last)}\n${burrowLog()}`,
  )
  assert.deepEqual(offsets, [30, 30, 30])
  const topics = await burrowGet<{ topics: string[] }>(`/${CLUSTER}/topic`)
  assert.ok(topics?.topics.includes(topic), `topic list: ${JSON.stringify(topics)}`)
  assert.ok(topics?.topics.includes('__consumer_offsets'), `topic list: ${JSON.stringify(topics)}`)
})

void test('a group member commits offset 10 of 30: Burrow reports lag 20 per partition and the member as owner', async () => {
  member = new GroupMember(group, topic)
  assert.deepEqual((await member.next<{ assigned: number[] }>()).assigned, [0, 1, 2])
  assert.deepEqual((await member.command<{ committed: Record<string, number> }>('commit 10')).committed, {
    0: 10,
    1: 10,
    2: 10,
  })

  // The owners come from the group's metadata record, which Burrow's consumer module sometimes
  // takes more than 20 s to pick up on a loaded machine (clean-clone CI runs saw it twice).
  const s = await waitForLag(
    'lag 20 on every partition',
    (st) => lagIs(20)(st) && st.partitions.every((p) => p.owner !== ''),
    60_000,
  )
  assert.equal(s.cluster, CLUSTER)
  assert.equal(s.group, group)
  assert.equal(s.partition_count, 3)
  assert.equal(s.totallag, 60)
  assert.deepEqual(lagRows(s), [
    [0, 10, 20],
    [1, 10, 20],
    [2, 10, 20],
  ])
  // Owners come from the group's GroupMetadataValue (v1): the member's host and client id. (The
  // /lag answer of Burrow 1.2.1 never fills client_id; its consumer detail does.)
  const detail = await burrowGet<{
    topics: Record<string, { owner: string; client_id: string; 'current-lag': number }[]>
  }>(`/${CLUSTER}/consumer/${group}`)
  assert.deepEqual(
    detail?.topics[topic].map((p) => [p.owner.replace(/^\//, ''), p.client_id, p['current-lag']]),
    [0, 1, 2].map(() => ['127.0.0.1', MEMBER_CLIENT_ID, 20]),
    JSON.stringify(detail),
  )
})

void test('committing offset 25 brings the lag down to 5 per partition', async () => {
  assert.ok(member !== undefined)
  assert.deepEqual((await member.command<{ committed: Record<string, number> }>('commit 25')).committed, {
    0: 25,
    1: 25,
    2: 25,
  })
  const s = await waitForLag('lag 5 on every partition', lagIs(5))
  assert.equal(s.partition_count, 3)
  assert.equal(s.totallag, 15)
  assert.deepEqual(lagRows(s), [
    [0, 25, 5],
    [1, 25, 5],
    [2, 25, 5],
  ])
})

void test('records produced after the commit raise the lag at the next offset refresh', async () => {
  await runPythonJson(SCRIPT, [broker.bootstrap, 'produce', topic, String(PARTITIONS), '10'])
  const s = await waitForLag('lag 15 on every partition', lagIs(15))
  assert.equal(s.totallag, 45)
  assert.deepEqual(lagRows(s), [
    [0, 25, 15],
    [1, 25, 15],
    [2, 25, 15],
  ])
})

void test('when the member leaves, Burrow clears the owners; a standalone commit at the end gives zero lag', async () => {
  assert.ok(member !== undefined)
  assert.deepEqual(await member.command('close'), { closed: true })
  // The empty group's metadata (no members) tells Burrow to clear the owners.
  await waitForLag(
    'owners cleared',
    (st) => st.partitions.length === PARTITIONS && st.partitions.every((p) => p.owner === '' && p.client_id === ''),
  )

  const committed = await runPythonJson<{ committed: Record<string, number> }>(SCRIPT, [
    broker.bootstrap,
    'commit',
    group,
    topic,
    String(PARTITIONS),
    '40',
  ])
  assert.deepEqual(committed.committed, { 0: 40, 1: 40, 2: 40 })
  const s = await waitForLag('lag 0 on every partition', lagIs(0))
  assert.equal(s.totallag, 0)
  assert.equal(s.status, 'OK')
  assert.deepEqual(lagRows(s), [
    [0, 40, 0],
    [1, 40, 0],
    [2, 40, 0],
  ])
})

void test('Burrow decoded every record the broker wrote to __consumer_offsets', () => {
  const log = readFileSync(join(burrowDir, 'burrow.log'), 'utf8')
  const problems = log
    .split('\n')
    .filter((l) => /failed to decode|consume error|"level":"(error|warn)"/.test(l) && !l.includes('unknown consumer'))
  assert.deepEqual(problems, [], 'no decode failures, consume errors or warnings in burrow.log')
  // Every commit above reached Burrow's storage as a consumer offset (3 partitions x 3 commits).
  const stored = log
    .split('\n')
    .filter(
      (l) =>
        l.includes('"StorageSetConsumerOffset"') && l.includes(`"consumer":"${group}"`) && l.includes('"msg":"ok"'),
    )
  assert.equal(stored.length, 9, `consumer offsets stored:\n${stored.join('\n')}`)
  // The group's metadata was decoded both with its member and, after it left, empty.
  const ofGroup = (msg: string) =>
    log.split('\n').filter((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"group":"${group}"`))
  assert.ok(ofGroup('group metadata').length > 0, 'a GroupMetadataValue with a member was decoded')
  assert.ok(ofGroup('clear owners').length > 0, 'the empty GroupMetadataValue was decoded')
})
