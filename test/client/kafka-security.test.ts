// The client layer and the database's metadata log over SASL and TLS (KafkaSecurity), against the
// real broker with ACL authorization: a SCRAM-SHA-512 user who is not a super user, with ACLs for
// just what each client does, produces and reads back over SASL_PLAINTEXT and over SASL_SSL; a
// wrong password fails as an authentication failure instead of hanging; a MetadataLog creates its
// topic and writes to it; and `cortado produce` and `cortado consume` do the same with
// --command-config. The PLAINTEXT listener (ANONYMOUS, the super user here) only sets up users,
// topics and ACLs.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import {
  type Acl,
  AclOperations,
  AclPermissionTypes,
  Admin,
  ResourcePatternTypes,
  ResourceTypes,
} from '@platformatic/kafka'
import { ProducerSendError } from '../../src/client/errors.ts'
import { type KafkaSecurity } from '../../src/client/kafka-security.ts'
import { LogReader, type LogRecord } from '../../src/client/log-reader.ts'
import { ReliableProducer } from '../../src/client/reliable-producer.ts'
import { METADATA_TOPIC, MetadataLog } from '../../src/db/metadata/metadata-log.ts'
import { type BrokerProcess, MAIN, removeDir, startBroker, tempDir } from '../helpers/broker-process.ts'
import { makeCertificates, type TestCertificates } from '../helpers/tls-certs.ts'

const execFileAsync = promisify(execFile)

const USER = 'carol'
const PASSWORD = 'carol-secret'
const LOG_TOPIC = 'sec-log'
const TLS_TOPIC = 'sec-tls'
const CLI_TOPIC = 'sec-cli'
const CLI_GROUP = 'sec-cli-group'
const AUDIT_TOPIC = '__cortado_audit'

let certs: TestCertificates
let broker: BrokerProcess
let work: string

const address = (listener: string) => broker.listeners.get(listener)!

const scram = (password = PASSWORD): KafkaSecurity['sasl'] => ({
  mechanism: 'SCRAM-SHA-512',
  username: USER,
  password,
})

function allow(resourceType: number, resourceName: string, operation: number): Acl {
  return {
    resourceType: resourceType as Acl['resourceType'],
    resourceName,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    principal: `User:${USER}`,
    host: '*',
    operation: operation as Acl['operation'],
    permissionType: AclPermissionTypes.ALLOW,
  }
}

/** Topics the super user (ANONYMOUS on PLAINTEXT) sees. */
async function topicsSeenBySuperUser(): Promise<string[]> {
  const admin = new Admin({ clientId: 'sec-setup', bootstrapBrokers: [address('PLAINTEXT')] })
  try {
    return await admin.listTopics()
  } finally {
    await admin.close()
  }
}

async function until(what: string, done: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function run(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('exit', (code) => resolve({ code, stdout, stderr }))
    p.stdin.end(stdin)
  })
}

/** Sends `values` to partition 0 of `topic` and reads them back from offset 0, both with `security`. */
async function roundTrip(bootstrap: string, security: KafkaSecurity, topic: string, values: string[]): Promise<void> {
  const producer = new ReliableProducer({ bootstrap: [bootstrap], security, clientId: 'sec-producer' })
  const reader = new LogReader({ bootstrap: [bootstrap], security, clientId: 'sec-reader', maxWaitMs: 100 })
  const seen: LogRecord[] = []
  try {
    const acks = await Promise.all(
      values.map((v) => producer.send({ topic, partition: 0, key: Buffer.from('k'), value: Buffer.from(v) })),
    )
    assert.deepEqual(
      acks.map((a) => a.offset),
      values.map((_, i) => BigInt(i)),
    )
    reader.assign(topic, 0, 0, (records) => void seen.push(...records))
    await until(`${values.length} records read back`, () => seen.length >= values.length)
    assert.deepEqual(
      seen.map((r) => [r.offset, r.key?.toString(), r.value?.toString()]),
      values.map((v, i) => [i, 'k', v]),
    )
    assert.equal(await reader.endOffset(topic, 0), values.length)
  } finally {
    await reader.close()
    await producer.close(5000)
  }
}

before(async () => {
  certs = makeCertificates(tempDir('sec-certs'))
  work = tempDir('sec-work')
  broker = await startBroker({
    config: {
      listeners: 'PLAINTEXT://:0,SASL_PLAINTEXT://:0,SASL_SSL://:0',
      'ssl.keystore.location': certs.brokerPemFile,
      'ssl.truststore.location': certs.caFile,
      'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
      'authorizer.class.name': 'kafka.security.authorizer.AclAuthorizer',
      'super.users': 'User:ANONYMOUS',
      'group.initial.rebalance.delay.ms': '0',
    },
  })
  const added = await execFileAsync(process.execPath, [
    MAIN,
    'user',
    'add',
    USER,
    '--password',
    PASSWORD,
    '--mechanism',
    'SCRAM-SHA-512',
    '--bootstrap',
    address('PLAINTEXT'),
  ])
  assert.match(added.stdout, /added carol \(SCRAM-SHA-512\)/)
  const admin = new Admin({ clientId: 'sec-setup', bootstrapBrokers: [address('PLAINTEXT')] })
  try {
    await admin.createTopics({ topics: [LOG_TOPIC, TLS_TOPIC, CLI_TOPIC], partitions: 1, replicas: 1 })
    const { TOPIC, GROUP, CLUSTER } = ResourceTypes
    const { READ, WRITE, DESCRIBE, CREATE } = AclOperations
    await admin.createAcls({
      creations: [
        ...[LOG_TOPIC, TLS_TOPIC, CLI_TOPIC, METADATA_TOPIC].flatMap((t) => [
          allow(TOPIC, t, WRITE),
          allow(TOPIC, t, READ),
          allow(TOPIC, t, DESCRIBE),
        ]),
        // The CLI's audit counts go to the audit topic, which it creates.
        allow(TOPIC, AUDIT_TOPIC, WRITE),
        allow(TOPIC, AUDIT_TOPIC, DESCRIBE),
        allow(GROUP, CLI_GROUP, READ),
        allow(CLUSTER, 'kafka-cluster', CREATE),
      ],
    })
  } finally {
    await admin.close()
  }
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
  removeDir(certs.dir)
  removeDir(work)
})

void test('ReliableProducer and LogReader with SCRAM-SHA-512 over SASL_PLAINTEXT produce and read back', async () => {
  await roundTrip(address('SASL_PLAINTEXT'), { sasl: scram() }, LOG_TOPIC, ['one', 'two', 'three'])
})

void test('ReliableProducer with a wrong password fails with a SASL authentication error, without hanging', async () => {
  const producer = new ReliableProducer({
    bootstrap: [address('SASL_PLAINTEXT')],
    security: { sasl: scram('not-the-password') },
    clientId: 'sec-wrong-password',
    requestTimeoutMs: 2000,
    retryBackoffMs: 50,
    maxRetryBackoffMs: 200,
  })
  const started = Date.now()
  try {
    await assert.rejects(
      producer.send({ topic: LOG_TOPIC, partition: 0, key: null, value: Buffer.from('never') }),
      (error: unknown) => {
        assert.ok(error instanceof ProducerSendError, String(error))
        assert.equal(error.kafkaName, 'SASL_AUTHENTICATION_FAILED')
        assert.equal(error.kafkaCode, 58)
        assert.match(error.message, /SASL_AUTHENTICATION_FAILED \(58\): Authentication failed/)
        return true
      },
    )
  } finally {
    await producer.close(1000)
  }
  assert.ok(Date.now() - started < 20_000, `failed after ${Date.now() - started} ms`)
})

void test('a MetadataLog with security creates its topic (CREATE on the cluster) and sees its own put', async () => {
  assert.ok(!(await topicsSeenBySuperUser()).includes(METADATA_TOPIC))
  const errors: Error[] = []
  const metadata = new MetadataLog({
    bootstrap: [address('SASL_PLAINTEXT')],
    security: { sasl: scram() },
    clientId: 'sec-metadata',
    maxWaitMs: 100,
    onError: (e) => errors.push(e),
  })
  try {
    await metadata.start()
    assert.ok((await topicsSeenBySuperUser()).includes(METADATA_TOPIC))
    await metadata.put('db/secure', { name: 'secure', partitions: 2, replicas: 1, topic: 'cortado-secure', tables: {} })
    assert.equal(metadata.view.databases.get('secure')?.topic, 'cortado-secure')
    // Deleted again, so that `cortado start` below finds no database to serve.
    await metadata.put('db/secure', null)
    assert.equal(metadata.view.databases.has('secure'), false)
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    )
  } finally {
    await metadata.close()
  }
})

void test(
  'cortado produce and consume with --command-config (SASL_PLAINTEXT, SCRAM-SHA-512) round-trip messages',
  { timeout: 120_000 },
  async () => {
    const config = join(work, 'client.properties')
    writeFileSync(
      config,
      [
        'security.protocol=SASL_PLAINTEXT',
        'sasl.mechanism=SCRAM-SHA-512',
        `sasl.username=${USER}`,
        `sasl.password=${PASSWORD}`,
        '',
      ].join('\n'),
    )
    const bootstrap = address('SASL_PLAINTEXT')
    const produced = await run(
      ['produce', '--bootstrap', bootstrap, '--topic', CLI_TOPIC, '--command-config', config],
      'hello\nsecure world\n',
    )
    assert.equal(produced.code, 0, produced.stderr)
    assert.deepEqual(
      produced.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { offset: string }).offset),
      ['0', '1'],
    )
    const consumed = await run([
      'consume',
      '--bootstrap',
      bootstrap,
      '--topic',
      CLI_TOPIC,
      '--group',
      CLI_GROUP,
      '--count',
      '2',
      '--command-config',
      config,
    ])
    assert.equal(consumed.code, 0, consumed.stderr)
    assert.deepEqual(consumed.stdout.trim().split('\n'), ['hello', 'secure world'])

    // Without the file the same consumer is refused: the SASL listener lets no one in unauthenticated.
    const refused = await run([
      'consume',
      '--bootstrap',
      bootstrap,
      '--topic',
      CLI_TOPIC,
      '--group',
      CLI_GROUP,
      '--count',
      '1',
      '--connect-timeout',
      '1',
    ])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /cannot reach Kafka at 127\.0\.0\.1:\d+ after 1 s \(Connection closed\)/)

    // With a wrong password in the file, the broker refuses the credentials the file gives.
    const wrong = join(work, 'wrong.properties')
    writeFileSync(
      wrong,
      `security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=${USER}\nsasl.password=nope\n`,
    )
    const denied = await run(
      ['produce', '--bootstrap', bootstrap, '--topic', CLI_TOPIC, '--command-config', wrong],
      'x\n',
    )
    assert.equal(denied.code, 1)
    assert.match(denied.stderr, /refused our credentials/)
  },
)

void test(
  'cortado start --bootstrap with --command-config: the router, the controller and the spawned storage node authenticate',
  { timeout: 120_000 },
  async () => {
    const config = join(work, 'start.properties')
    writeFileSync(
      config,
      `security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=${USER}\nsasl.password=${PASSWORD}\n`,
    )
    const args = [
      'start',
      '--bootstrap',
      address('SASL_PLAINTEXT'),
      '--command-config',
      config,
      '--data-dir',
      join(work, 'start'),
      '--nodes',
      '1',
      '--http-port',
      '0',
      '--metrics-port',
      '0',
      '--connect-timeout',
      '5',
    ]
    const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
    let code: number | null | undefined
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve((code = c))))
    try {
      // The ready line comes once the storage node process (given --command-config) has registered.
      const deadline = Date.now() + 90_000
      while (!/Ctrl-C/.test(out)) {
        if (code !== undefined) assert.fail(`cortado start exited with ${code}:\n${err.slice(-3000)}`)
        if (Date.now() > deadline) assert.fail(`cortado start not ready:\n${err.slice(-3000)}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      assert.match(out, /^cortado ready http=\S+ broker=127\.0\.0\.1:\d+ nodes=1 /m)
    } finally {
      proc.kill('SIGTERM')
      await exited
    }
  },
)

void test('ReliableProducer and LogReader with SCRAM-SHA-512 over SASL_SSL (security.tls.ca) produce and read back', async () => {
  await roundTrip(address('SASL_SSL'), { tls: { ca: certs.caPem }, sasl: scram() }, TLS_TOPIC, ['tls-a', 'tls-b'])
})
