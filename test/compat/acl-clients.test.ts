// Third-party clients against the broker's ACL authorizer: kcat 1.7.1 and confluent-kafka-python
// (librdkafka 2.0.2), kafka-python 2.0.2. One broker with a SASL_PLAINTEXT listener (PLAIN users
// admin, alice, bob; admin a super user) and authorizer.class.name set; the ACLs are added with
// `cortado acl add` as admin:
//   alice: WRITE and DESCRIBE on topics prefixed "orders", READ on topic orders-eu, READ on group g-alice
//   bob:   READ on every topic (literal "*") but DENY READ on orders-secret, READ on group g-bob
// Each client does what it is allowed to (records written and read back, group commits) and is
// refused what it is not, with the error Kafka gives: TOPIC_AUTHORIZATION_FAILED (29) for a topic
// it may not describe, write or read, GROUP_AUTHORIZATION_FAILED (30) for a group it may not use,
// CLUSTER_AUTHORIZATION_FAILED (31) for an idempotent producer that may write nowhere. Every
// refusal is checked against the broker's "authorization denied" log. Last, `cortado acl remove
// --principal User:alice` takes effect on a producer the broker had already let write (the
// authorizer's cached decision is dropped), and `cortado acl list` shows what is left.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { type BrokerProcess, MAIN, removeDir, ROOT, startBroker, tempDir } from '../helpers/broker-process.ts'
import { expectSuccess, PYTHON, run, type RunResult, runPythonJson, waitFor } from '../helpers/compat.ts'
import { GROUP_BROKER_CONFIG } from '../helpers/groups.ts'

const CONFLUENT = join(ROOT, 'test', 'compat', 'python', 'acl_confluent_kafka.py')
const KAFKA_PYTHON = join(ROOT, 'test', 'compat', 'python', 'acl_kafka_python.py')
const JAAS =
  'org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";'
const TOPICS = ['orders-eu', 'orders-secret', 'payments']

/** Each `cortado acl add` (after its --bootstrap and --command-config) and the ACLs it adds, as `acl list` prints them. */
const ACL_ADDS: { args: string[]; acls: string[] }[] = [
  {
    args: [
      ...['--allow-principal', 'User:alice', '--operation', 'write', '--operation', 'describe'],
      ...['--topic', 'orders', '--resource-pattern-type', 'prefixed'],
    ],
    acls: [
      'ALLOW\tUser:alice\t*\tWRITE\tTOPIC\tPREFIXED\torders',
      'ALLOW\tUser:alice\t*\tDESCRIBE\tTOPIC\tPREFIXED\torders',
    ],
  },
  {
    args: ['--allow-principal', 'User:alice', '--operation', 'read', '--topic', 'orders-eu'],
    acls: ['ALLOW\tUser:alice\t*\tREAD\tTOPIC\tLITERAL\torders-eu'],
  },
  {
    args: ['--allow-principal', 'User:alice', '--operation', 'read', '--group', 'g-alice'],
    acls: ['ALLOW\tUser:alice\t*\tREAD\tGROUP\tLITERAL\tg-alice'],
  },
  {
    args: ['--allow-principal', 'User:bob', '--operation', 'read', '--topic', '*'],
    acls: ['ALLOW\tUser:bob\t*\tREAD\tTOPIC\tLITERAL\t*'],
  },
  {
    args: ['--deny-principal', 'User:bob', '--operation', 'read', '--topic', 'orders-secret'],
    acls: ['DENY\tUser:bob\t*\tREAD\tTOPIC\tLITERAL\torders-secret'],
  },
  {
    args: ['--allow-principal', 'User:bob', '--operation', 'read', '--group', 'g-bob'],
    acls: ['ALLOW\tUser:bob\t*\tREAD\tGROUP\tLITERAL\tg-bob'],
  },
]
const ALICE_ACLS = ACL_ADDS.flatMap((a) => a.acls).filter((l) => l.includes('\tUser:alice\t'))
const BOB_ACLS = ACL_ADDS.flatMap((a) => a.acls).filter((l) => l.includes('\tUser:bob\t'))

/** What librdkafka says for TOPIC_AUTHORIZATION_FAILED (rd_kafka_err2str). */
const TOPIC_AUTHORIZATION_FAILED = 'Broker: Topic authorization failed'

let broker: BrokerProcess
let configDir: string
let adminProperties: string

function address(): string {
  const a = broker.listeners.get('SASL_PLAINTEXT')
  assert.ok(a !== undefined, 'the broker has a SASL_PLAINTEXT listener')
  return a
}

/** `cortado acl <args>` as admin; its output lines. */
async function aclCli(...args: string[]): Promise<string[]> {
  const r = expectSuccess(
    `cortado acl ${args.join(' ')}`,
    await run(process.execPath, [MAIN, 'acl', ...args, '--bootstrap', address(), '--command-config', adminProperties], {
      timeoutMs: 20_000,
    }),
  )
  return lines(r.stdout)
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '')
}

before(async () => {
  broker = await startBroker({
    config: {
      ...GROUP_BROKER_CONFIG,
      listeners: 'SASL_PLAINTEXT://:0',
      'authorizer.class.name': 'kafka.security.authorizer.AclAuthorizer',
      'super.users': 'User:admin',
      'sasl.enabled.mechanisms': 'PLAIN',
      'sasl.jaas.config': JAAS,
    },
  })
  configDir = tempDir('acl-clients')
  adminProperties = join(configDir, 'admin.properties')
  writeFileSync(
    adminProperties,
    'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=admin\nsasl.password=admin-secret\n',
  )
  const admin = new kafkajs.Kafka({
    clientId: 'acl-clients-admin',
    brokers: [address()],
    sasl: { mechanism: 'plain', username: 'admin', password: 'admin-secret' },
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin()
  await admin.connect()
  try {
    assert.equal(
      await admin.createTopics({ topics: TOPICS.map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true }),
      true,
    )
  } finally {
    await admin.disconnect()
  }
  for (const add of ACL_ADDS)
    assert.deepEqual(
      await aclCli('add', ...add.args),
      add.acls.map((l) => `added\t${l}`),
    )
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
  removeDir(configDir)
})

/** The broker's "authorization denied" log lines so far, as `principal operation resourceType resourceName`. */
function denials(): string[] {
  const out: string[] = []
  for (const line of broker.stderr().split('\n')) {
    if (!line.startsWith('{')) continue
    const e = JSON.parse(line) as {
      msg?: string
      principal?: string
      operation?: string
      resourceType?: string
      resourceName?: string
    }
    if (e.msg === 'authorization denied') out.push(`${e.principal} ${e.operation} ${e.resourceType} ${e.resourceName}`)
  }
  return out
}

/**
 * Waits for the broker to log the denials in `expected` after the first `since` (its stderr arrives
 * asynchronously), then asserts those are the only (distinct) denials logged since.
 */
async function assertDenied(since: number, expected: string[]): Promise<void> {
  await waitFor(
    `the broker to log ${expected.join(', ')}`,
    () => (expected.every((d) => denials().slice(since).includes(d)) ? true : undefined),
    5_000,
  ).catch(() => undefined)
  assert.deepEqual([...new Set(denials().slice(since))].sort(), [...expected].sort())
}

// ---- kcat ----

/** kcat as `user`; -m bounds its metadata waits, timeoutMs the whole run. */
function kcat(user: string, args: readonly string[], input?: string): Promise<RunResult> {
  return run(
    'kcat',
    [
      '-b',
      address(),
      '-m',
      '10',
      '-X',
      'security.protocol=SASL_PLAINTEXT',
      '-X',
      'sasl.mechanisms=PLAIN',
      '-X',
      `sasl.username=${user}`,
      '-X',
      `sasl.password=${user}-secret`,
      ...args,
    ],
    { input, timeoutMs: 20_000 },
  )
}

/** A failed kcat run whose stderr has the line `line`. */
function assertKcatFailed(r: RunResult, line: string): void {
  assert.notEqual(r.code, 0, `kcat failed\n${r.stderr}`)
  assert.equal(r.signal, null, `kcat ended by itself, not by the timeout\n${r.stderr}`)
  assert.ok(lines(r.stderr).includes(line), `kcat's stderr has the line ${JSON.stringify(line)}:\n${r.stderr}`)
}

/** Keyed records alice produces to orders-eu partition 0 with kcat (acks=all); their values are unique. */
async function kcatProduceAsAlice(n: number): Promise<{ key: string; value: string }[]> {
  const tag = Math.random().toString(36).slice(2, 8)
  const sent = Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `kcat-${tag}-${i}` }))
  expectSuccess(
    'kcat -P as alice to orders-eu',
    await kcat(
      'alice',
      ['-P', '-t', 'orders-eu', '-p', '0', '-K', ':', '-X', 'acks=all'],
      sent.map((m) => `${m.key}:${m.value}\n`).join(''),
    ),
  )
  return sent
}

const KCAT_FORMAT = ['-f', '%p\t%o\t%k\t%s\n']

/** kcat -f KCAT_FORMAT output as [offset, key, value], checking every record is from partition 0 and offsets are dense. */
function kcatRecords(stdout: string): [number, string, string][] {
  const records = lines(stdout).map((l) => l.split('\t'))
  assert.ok(
    records.every((r) => r[0] === '0'),
    'every record is from partition 0',
  )
  const out = records.map((r): [number, string, string] => [Number(r[1]), r[2], r[3]])
  assert.deepEqual(
    out.map((r) => r[0]),
    out.map((_, i) => out[0][0] + i),
    'offsets are dense',
  )
  return out
}

void test('cortado acl list shows the ACLs added, tab-separated', async () => {
  assert.deepEqual(
    await aclCli('list'),
    ACL_ADDS.flatMap((a) => a.acls),
  )
  // Filtered by principal (either permission): bob's allow and deny.
  assert.deepEqual(await aclCli('list', '--principal', 'User:bob'), BOB_ACLS)
})

void test('kcat: alice writes to orders-eu and reads it back in group g-alice; payments is refused; metadata lists only what she may describe', async () => {
  const clean = denials().length
  const sent = await kcatProduceAsAlice(5)
  const group = ['-G', 'g-alice', '-X', 'auto.offset.reset=earliest', '-e', ...KCAT_FORMAT, 'orders-eu']
  const consumed = expectSuccess('kcat -G g-alice as alice', await kcat('alice', group))
  assert.match(consumed.stderr, /Group g-alice rebalanced \(memberid [^)]+\): assigned: orders-eu \[0\]/)
  const records = kcatRecords(consumed.stdout)
  assert.equal(records[0][0], 0, 'g-alice had no commit yet: read from the start')
  assert.deepEqual(
    records.slice(-sent.length).map((r) => [r[1], r[2]]),
    sent.map((m) => [m.key, m.value]),
    'the records alice wrote are the last in orders-eu',
  )
  // kcat committed its position on the way out (OffsetCommit: READ on the group and the topic).
  const again = expectSuccess('kcat -G g-alice as alice, again', await kcat('alice', group))
  assert.equal(again.stdout, '', 'the group resumes from its commit: nothing new to read')
  assert.match(again.stderr, new RegExp(`Reached end of topic orders-eu \\[0\\] at offset ${records.at(-1)![0] + 1}`))
  await assertDenied(clean, [])

  // No ACL lets alice describe payments: Metadata answers TOPIC_AUTHORIZATION_FAILED for it.
  const since = denials().length
  const refused = await kcat('alice', ['-P', '-t', 'payments', '-X', 'acks=all'], 'nope\n')
  assertKcatFailed(refused, `% Delivery failed for message: ${TOPIC_AUTHORIZATION_FAILED}`)
  await assertDenied(since, ['User:alice DESCRIBE TOPIC payments'])

  // Listing all topics leaves out the ones she may not describe (and logs nothing).
  const metadata = JSON.parse(expectSuccess('kcat -L as alice', await kcat('alice', ['-L', '-J'])).stdout) as {
    topics: { topic: string; partitions: unknown[] }[]
  }
  assert.deepEqual(
    metadata.topics.map((t) => [t.topic, t.partitions.length]),
    [
      ['orders-eu', 1],
      ['orders-secret', 1],
    ],
  )
})

void test('kcat: bob reads orders-eu; orders-secret, where a DENY overrides his wildcard READ, fails its Fetch', async () => {
  const clean = denials().length
  const sent = await kcatProduceAsAlice(3)
  const read = expectSuccess(
    'kcat -C orders-eu as bob',
    await kcat('bob', ['-C', '-t', 'orders-eu', '-e', ...KCAT_FORMAT]),
  )
  const records = kcatRecords(read.stdout)
  assert.equal(records[0][0], 0, 'read from the start')
  assert.deepEqual(
    records.slice(-sent.length).map((r) => [r[1], r[2]]),
    sent.map((m) => [m.key, m.value]),
  )
  await assertDenied(clean, [])

  // bob may describe orders-secret (READ on * implies DESCRIBE; the DENY is of READ only), so the
  // refusal comes from Fetch.
  const since = denials().length
  const refused = await kcat('bob', ['-C', '-t', 'orders-secret', '-e', ...KCAT_FORMAT])
  assertKcatFailed(
    refused,
    `% ERROR: Topic orders-secret [0] error: Fetch from broker 0 failed: ${TOPIC_AUTHORIZATION_FAILED}`,
  )
  assert.equal(refused.stdout, '')
  await assertDenied(since, ['User:bob READ TOPIC orders-secret'])
})

void test('kcat: alice in group g-other is refused by FindCoordinator', async () => {
  const since = denials().length
  const r = await kcat('alice', [
    '-G',
    'g-other',
    '-X',
    'auto.offset.reset=earliest',
    '-e',
    ...KCAT_FORMAT,
    'orders-eu',
  ])
  // librdkafka prints the broker's error message for a FindCoordinator error, not the code's name
  // (the code, GROUP_AUTHORIZATION_FAILED, is checked with confluent-kafka below). Apache Kafka
  // sends the error's default message there, "Group authorization failed."; this broker its own.
  assertKcatFailed(
    r,
    '% ERROR: Consumer error: FindCoordinator response error: User:alice may not describe group "g-other"',
  )
  assert.equal(r.stdout, '')
  await assertDenied(since, ['User:alice DESCRIBE GROUP g-other'])
})

// ---- confluent-kafka-python ----

function confluentConfig(user: string): string {
  return JSON.stringify({
    'bootstrap.servers': address(),
    'security.protocol': 'SASL_PLAINTEXT',
    'sasl.mechanisms': 'PLAIN',
    'sasl.username': user,
    'sasl.password': `${user}-secret`,
  })
}

interface ClientError {
  name: string
  code: number
  str: string
  fatal: boolean
}

type DeliveryReport =
  | { error: null; value: string; partition: number; offset: number }
  | { error: string; code: number; str: string; value: string }

interface ConfluentProduced {
  reports: DeliveryReport[]
  undelivered: number
  errors: (ClientError | { raised: ClientError })[]
}

interface ConfluentConsumed {
  committed_before: number | null
  committed_before_error: ClientError | null
  eof: boolean
  records: { partition: number; offset: number; key: string | null; value: string }[]
  consume_errors: ClientError[]
  committed: number | null
  commit_error: ClientError | null
  errors: ClientError[]
}

function confluentProduce(user: string, topic: string, n: number, idempotent: boolean): Promise<ConfluentProduced> {
  return runPythonJson<ConfluentProduced>(CONFLUENT, [
    confluentConfig(user),
    'produce',
    topic,
    String(n),
    String(idempotent),
  ])
}

/** Every record delivered to partition 0 at dense offsets, in send order; returns the first offset. */
function assertDelivered(r: ConfluentProduced, topic: string, n: number): number {
  assert.deepEqual(r.errors, [])
  assert.equal(r.undelivered, 0)
  const first = r.reports[0]?.error === null ? r.reports[0].offset : -1
  assert.deepEqual(
    r.reports,
    Array.from({ length: n }, (_, i) => ({ error: null, value: `${topic}-${i}`, partition: 0, offset: first + i })),
  )
  return first
}

void test('confluent-kafka: alice produces to orders-eu with acks=all (idempotent too); payments fails delivery with TOPIC_AUTHORIZATION_FAILED; bob may not be idempotent', async () => {
  let since = denials().length
  assertDelivered(await confluentProduce('alice', 'orders-eu', 5, false), 'orders-eu', 5)
  // InitProducerId: WRITE on some topic (her prefixed ACL) is enough without IDEMPOTENT_WRITE.
  assertDelivered(await confluentProduce('alice', 'orders-eu', 3, true), 'orders-eu', 3)
  await assertDenied(since, [])

  since = denials().length
  const refused = await confluentProduce('alice', 'payments', 2, false)
  assert.deepEqual(refused.errors, [])
  assert.deepEqual(
    refused.reports,
    [0, 1].map((i) => ({
      error: 'TOPIC_AUTHORIZATION_FAILED',
      code: 29,
      str: TOPIC_AUTHORIZATION_FAILED,
      value: `payments-${i}`,
    })),
  )
  await assertDenied(since, ['User:alice DESCRIBE TOPIC payments'])

  // bob may write nowhere and has no IDEMPOTENT_WRITE: InitProducerId is refused, a fatal error.
  since = denials().length
  const bob = await confluentProduce('bob', 'orders-eu', 2, true)
  assert.deepEqual(
    bob.errors.flatMap((e) => ('raised' in e ? [e.raised] : [])),
    [
      {
        name: 'CLUSTER_AUTHORIZATION_FAILED',
        code: 31,
        str: `Failed to acquire idempotence PID from broker sasl_plaintext://${address()}/0: Broker: Cluster authorization failed`,
        fatal: true,
      },
    ],
  )
  assert.deepEqual(
    bob.reports.map((m) => m.error),
    ['_PURGE_QUEUE', '_PURGE_QUEUE'],
    'nothing was delivered: the records were still queued when the script purged them',
  )
  await assertDenied(since, ['User:bob IDEMPOTENT_WRITE CLUSTER kafka-cluster'])
})

void test('confluent-kafka: alice consumes orders-eu in group g-alice and commits; g-other is GROUP_AUTHORIZATION_FAILED; bob on orders-secret TOPIC_AUTHORIZATION_FAILED', async () => {
  let since = denials().length
  const n = 4
  const first = assertDelivered(await confluentProduce('alice', 'orders-eu', n, false), 'orders-eu', n)
  const end = first + n

  const r = await runPythonJson<ConfluentConsumed>(CONFLUENT, [
    confluentConfig('alice'),
    'consume',
    'orders-eu',
    'g-alice',
    'committed-before',
  ])
  assert.equal(r.committed_before_error, null)
  assert.ok(r.committed_before !== null && r.committed_before >= 0, 'g-alice has committed offsets (kcat above)')
  assert.deepEqual(r.consume_errors, [])
  assert.deepEqual(r.errors, [])
  assert.equal(r.eof, true)
  assert.deepEqual(
    r.records.map((m) => m.offset),
    Array.from({ length: end - r.committed_before }, (_, i) => r.committed_before! + i),
    'read from the group committed offset to the end',
  )
  assert.deepEqual(
    r.records.slice(-n).map((m) => [m.key, m.value]),
    Array.from({ length: n }, (_, i) => [`k${i}`, `orders-eu-${i}`]),
  )
  assert.equal(r.commit_error, null)
  assert.equal(r.committed, end, 'the commit was accepted and reads back')
  await assertDenied(since, [])

  since = denials().length
  const other = await runPythonJson<ConfluentConsumed>(CONFLUENT, [
    confluentConfig('alice'),
    'consume',
    'orders-eu',
    'g-other',
  ])
  assert.deepEqual(other.records, [])
  assert.deepEqual(other.consume_errors, [
    {
      name: 'GROUP_AUTHORIZATION_FAILED',
      code: 30,
      str: 'FindCoordinator response error: User:alice may not describe group "g-other"',
      fatal: false,
    },
  ])
  await assertDenied(since, ['User:alice DESCRIBE GROUP g-other'])

  since = denials().length
  const secret = await runPythonJson<ConfluentConsumed>(CONFLUENT, [
    confluentConfig('bob'),
    'consume',
    'orders-secret',
    'g-bob',
  ])
  assert.deepEqual(secret.records, [])
  assert.deepEqual(secret.consume_errors, [
    {
      name: 'TOPIC_AUTHORIZATION_FAILED',
      code: 29,
      str: `Fetch from broker 0 failed: ${TOPIC_AUTHORIZATION_FAILED}`,
      fatal: false,
    },
  ])
  await assertDenied(since, ['User:bob READ TOPIC orders-secret'])
})

// ---- kafka-python ----

function kafkaPythonConfig(user: string): string {
  return JSON.stringify({
    bootstrap_servers: address(),
    security_protocol: 'SASL_PLAINTEXT',
    sasl_mechanism: 'PLAIN',
    sasl_plain_username: user,
    sasl_plain_password: `${user}-secret`,
  })
}

interface PythonException {
  type: string
  args: string[]
}

interface KafkaPythonProduced {
  results: {
    topic: string
    sent: { key: string; value: string; partition: number; offset: number }[]
    exception: PythonException | null
    seconds: number
  }[]
  metadata_errors: [string, number][]
}

interface KafkaPythonConsumed {
  end: number | null
  records: { partition: number; offset: number; key: string | null; value: string }[]
  committed: number | null
  exception: PythonException | null
}

void test('kafka-python: alice produces to orders-eu, not to payments; bob reads orders-eu in group g-bob, not orders-secret', async () => {
  let since = denials().length
  const produced = await runPythonJson<KafkaPythonProduced>(KAFKA_PYTHON, [
    kafkaPythonConfig('alice'),
    'produce',
    '5000',
    'orders-eu:3',
    'payments:1',
  ])
  const [eu, payments] = produced.results
  assert.equal(eu.exception, null)
  const first = eu.sent[0]?.offset ?? -1
  assert.deepEqual(
    eu.sent,
    Array.from({ length: 3 }, (_, i) => ({ key: `k${i}`, value: `orders-eu-${i}`, partition: 0, offset: first + i })),
  )
  // The producer already knows orders-eu, so it asks for both topics and records payments as unauthorized.
  assert.deepEqual(payments.sent, [])
  assert.deepEqual(payments.exception, { type: 'TopicAuthorizationFailedError', args: ['payments'] })
  assert.deepEqual(produced.metadata_errors, [['payments', 29]])
  await assertDenied(since, ['User:alice DESCRIBE TOPIC payments'])

  // A producer whose first topic is payments asks for it alone; kafka-python 2.0.2 drops the error
  // of a single-topic Metadata response (dpkp/kafka-python#2078) and asks again until max_block_ms.
  // The broker answered 29 every time.
  since = denials().length
  const alone = await runPythonJson<KafkaPythonProduced>(KAFKA_PYTHON, [
    kafkaPythonConfig('alice'),
    'produce',
    '1500',
    'payments:1',
  ])
  assert.deepEqual(alone.results[0].exception, {
    type: 'KafkaTimeoutError',
    args: ['Failed to update metadata after 1.5 secs.'],
  })
  assert.ok(alone.metadata_errors.length > 0)
  assert.deepEqual(
    [...new Set(alone.metadata_errors.map((e) => e.join(' ')))],
    ['payments 29'],
    'every Metadata response refused payments',
  )
  await assertDenied(since, ['User:alice DESCRIBE TOPIC payments'])

  since = denials().length
  const consumed = await runPythonJson<KafkaPythonConsumed>(KAFKA_PYTHON, [
    kafkaPythonConfig('bob'),
    'consume',
    'orders-eu',
    'g-bob',
  ])
  assert.equal(consumed.exception, null)
  assert.equal(consumed.end, first + 3)
  assert.deepEqual(
    consumed.records.map((m) => [m.partition, m.offset]),
    Array.from({ length: first + 3 }, (_, i) => [0, i]),
    'g-bob had no commit: read from the start to the end',
  )
  assert.deepEqual(
    consumed.records.slice(first),
    eu.sent.map((m) => ({ partition: 0, offset: m.offset, key: m.key, value: m.value })),
    'the records alice wrote',
  )
  assert.equal(consumed.committed, first + 3)
  await assertDenied(since, [])

  since = denials().length
  const secret = await runPythonJson<KafkaPythonConsumed>(KAFKA_PYTHON, [
    kafkaPythonConfig('bob'),
    'consume',
    'orders-secret',
    'g-bob',
  ])
  assert.deepEqual(secret.records, [])
  // (Its argument is set('orders-secret'), a set of characters: dpkp/kafka-python#2331.)
  assert.equal(secret.exception?.type, 'TopicAuthorizationFailedError')
  await assertDenied(since, ['User:bob READ TOPIC orders-secret'])
})

// ---- removing ACLs ----

/**
 * confluent-kafka `produce-twice` as alice to orders-eu: `between` runs after the first record is
 * delivered and before the second is sent on the same connection.
 */
async function produceTwice(
  between: () => Promise<void>,
): Promise<{ first: ConfluentProduced; last: ConfluentProduced }> {
  const child = spawn(PYTHON, [CONFLUENT, confluentConfig('alice'), 'produce-twice', 'orders-eu'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000)
  let stdout = ''
  let stderr = ''
  let exited = false
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const closed = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      exited = true
      resolve(code)
    }),
  )
  try {
    const first = await waitFor(
      'the first record',
      () => {
        if (stdout.includes('\n')) return JSON.parse(stdout.split('\n')[0]) as ConfluentProduced
        if (exited) throw new Error(`produce-twice exited early\n${stdout}\n${stderr}`)
        return undefined
      },
      20_000,
    )
    await between()
    child.stdin.end('go\n')
    assert.equal(await closed, 0, `produce-twice exited 0\n${stderr}`)
    return { first, last: JSON.parse(lines(stdout).at(-1)!) as ConfluentProduced }
  } finally {
    clearTimeout(timer)
    child.kill('SIGKILL')
  }
}

void test("acl remove --principal User:alice: her next produce on an open connection is refused, and acl list shows only bob's", async () => {
  let since = 0
  const { first, last } = await produceTwice(async () => {
    assert.deepEqual(
      await aclCli('remove', '--principal', 'User:alice'),
      ALICE_ACLS.map((l) => `removed\t${l}`),
    )
    since = denials().length
  })
  assert.equal(first.reports.length, 1)
  assert.equal(first.reports[0].error, null, 'the first record was delivered')
  assert.deepEqual(last.reports.slice(1), [
    { error: 'TOPIC_AUTHORIZATION_FAILED', code: 29, str: TOPIC_AUTHORIZATION_FAILED, value: 'after' },
  ])
  assert.deepEqual(last.errors, [])
  // The Produce itself was refused: the authorizer had allowed (and cached) WRITE on orders-eu.
  await waitFor('the WRITE denial', () => (denials().length > since ? true : undefined), 5_000)
  assert.equal(denials()[since], 'User:alice WRITE TOPIC orders-eu')

  // A new client of hers cannot even see the topic now.
  since = denials().length
  const fresh = await kcat('alice', ['-P', '-t', 'orders-eu', '-X', 'acks=all'], 'nope\n')
  assertKcatFailed(fresh, `% Delivery failed for message: ${TOPIC_AUTHORIZATION_FAILED}`)
  await assertDenied(since, ['User:alice DESCRIBE TOPIC orders-eu'])

  assert.deepEqual(await aclCli('list'), BOB_ACLS)
  assert.deepEqual(await aclCli('list', '--principal', 'User:alice'), [])
})
