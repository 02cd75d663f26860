// Third-party clients over the broker's secured listeners: kcat 1.7.1 and confluent-kafka-python
// (librdkafka 2.0.2), kafka-python 2.0.2. One broker with PLAINTEXT, SSL, SASL_PLAINTEXT and
// SASL_SSL listeners (ssl.client.auth=requested, PLAIN user alice from sasl.jaas.config, SCRAM user
// bob added over the wire with `cortado user add`). Each client produces and reads back records
// over SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), over TLS with a client certificate, and over
// PLAINTEXT; a wrong password is refused as an authentication failure, a client certificate the
// CA did not sign is refused (the broker closes the connection once the handshake is over), and
// a client that skips SASL on a SASL listener is disconnected before it can read anything.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type BrokerProcess, MAIN, removeDir, ROOT, startBroker, tempDir } from '../helpers/broker-process.ts'
import {
  type Acked,
  assertRoundTrip,
  expectSuccess,
  run,
  type RunResult,
  runPythonJson,
  uniqueTopic,
} from '../helpers/compat.ts'
import { GROUP_BROKER_CONFIG } from '../helpers/groups.ts'
import { makeCertificates, type TestCertificates } from '../helpers/tls-certs.ts'

const CONFLUENT = join(ROOT, 'test', 'compat', 'python', 'security_confluent_kafka.py')
const KAFKA_PYTHON = join(ROOT, 'test', 'compat', 'python', 'security_kafka_python.py')
const PARTITIONS = 2
/** What the broker answers (SaslAuthenticate error 58) and logs for a wrong password or unknown user. */
const INVALID_CREDENTIALS = 'Authentication failed: Invalid username or password'

let certs: TestCertificates
let broker: BrokerProcess

before(async () => {
  certs = makeCertificates(tempDir('certs'))
  broker = await startBroker({
    config: {
      ...GROUP_BROKER_CONFIG,
      'num.partitions': String(PARTITIONS),
      listeners: 'PLAINTEXT://:0,SSL://:0,SASL_PLAINTEXT://:0,SASL_SSL://:0',
      'ssl.keystore.location': certs.brokerPemFile,
      'ssl.truststore.location': certs.caFile,
      'ssl.client.auth': 'requested',
      'sasl.jaas.config': 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";',
    },
  })
  const added = expectSuccess(
    'cortado user add',
    await run(
      process.execPath,
      [MAIN, 'user', 'add', 'bob', '--password', 'bob-secret', '--bootstrap', address('PLAINTEXT')],
      { timeoutMs: 20_000 },
    ),
  )
  assert.match(added.stdout, /added bob \(SCRAM-SHA-256, SCRAM-SHA-512\)/)
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
  removeDir(certs.dir)
})

/** host:port of a listener, by name. */
function address(listener: string): string {
  const a = broker.listeners.get(listener)
  assert.ok(a !== undefined, `the broker has a ${listener} listener`)
  return a
}

/** The broker's structured log lines (JSON) for one listener whose message includes `text`. */
function brokerLog(listener: string, text: string): number {
  let n = 0
  for (const line of broker.stderr().split('\n')) {
    if (!line.startsWith('{')) continue
    const entry = JSON.parse(line) as { msg?: string; listener?: string }
    if (entry.listener === listener && entry.msg?.includes(text) === true) n++
  }
  return n
}

// ---- kcat ----

type Scram = 'SCRAM-SHA-256' | 'SCRAM-SHA-512'
const scram = (mechanism: Scram, password: string) => [
  '-X',
  'security.protocol=SASL_SSL',
  '-X',
  `sasl.mechanisms=${mechanism}`,
  '-X',
  'sasl.username=bob',
  '-X',
  `sasl.password=${password}`,
  '-X',
  `ssl.ca.location=${certs.caFile}`,
]
const plain = (password: string) => [
  '-X',
  'security.protocol=SASL_PLAINTEXT',
  '-X',
  'sasl.mechanisms=PLAIN',
  '-X',
  'sasl.username=alice',
  '-X',
  `sasl.password=${password}`,
]
const tlsClient = (client: { certFile: string; keyFile: string } | undefined) => [
  '-X',
  'security.protocol=SSL',
  '-X',
  `ssl.ca.location=${certs.caFile}`,
  ...(client === undefined
    ? []
    : ['-X', `ssl.certificate.location=${client.certFile}`, '-X', `ssl.key.location=${client.keyFile}`]),
]

/** kcat against one listener; -m bounds its metadata waits, timeoutMs the whole run. */
function kcat(listener: string, security: readonly string[], args: readonly string[], input?: string) {
  return run('kcat', ['-b', address(listener), '-m', '10', ...security, ...args], { input, timeoutMs: 30_000 })
}

/**
 * Keyed records produced with acks=all to partition 0 of a new topic come back exactly (offsets
 * 0.., keys, values) with kcat -C -e, and metadata through the listener names that listener.
 */
async function kcatRoundTrip(listener: string, security: readonly string[]): Promise<void> {
  const topic = uniqueTopic(`sec-kcat-${listener.toLowerCase()}`)
  const sent = Array.from({ length: 25 }, (_, i) => ({ key: `k${i}`, value: `${topic}-${i}` }))
  expectSuccess(
    `kcat -P over ${listener}`,
    await kcat(
      listener,
      security,
      ['-P', '-t', topic, '-p', '0', '-K', ':', '-X', 'acks=all'],
      sent.map((m) => `${m.key}:${m.value}\n`).join(''),
    ),
  )
  const consumed = expectSuccess(
    `kcat -C over ${listener}`,
    await kcat(listener, security, ['-C', '-t', topic, '-e', '-f', '%p\t%o\t%k\t%s\n']),
  )
  assert.deepEqual(
    consumed.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t')),
    sent.map((m, i) => ['0', String(i), m.key, m.value]),
  )
  const metadata = JSON.parse(
    expectSuccess(`kcat -L over ${listener}`, await kcat(listener, security, ['-L', '-J', '-t', topic])).stdout,
  ) as { brokers: { id: number; name: string }[]; topics: { topic: string; partitions: unknown[] }[] }
  assert.deepEqual(metadata.brokers, [{ id: 0, name: address(listener) }], 'the broker advertises this listener')
  assert.deepEqual(
    metadata.topics.map((t) => [t.topic, t.partitions.length]),
    [[topic, PARTITIONS]],
  )
}

/** A failed kcat run whose stderr matches `pattern`. */
function assertKcatFailed(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `kcat failed\n${r.stderr}`)
  assert.equal(r.signal, null, `kcat ended by itself, not by the timeout\n${r.stderr}`)
  assert.match(r.stderr, pattern)
}

for (const mechanism of ['SCRAM-SHA-512', 'SCRAM-SHA-256'] as const) {
  void test(`kcat over SASL_SSL with ${mechanism}: records round-trip; a wrong password fails authentication`, async () => {
    await kcatRoundTrip('SASL_SSL', scram(mechanism, 'bob-secret'))

    const before = brokerLog('SASL_SSL', INVALID_CREDENTIALS)
    const r = await kcat(
      'SASL_SSL',
      scram(mechanism, 'not-bobs'),
      ['-P', '-t', uniqueTopic('sec-kcat-badscram')],
      'x\n',
    )
    assertKcatFailed(r, new RegExp(`SASL authentication error: ${INVALID_CREDENTIALS}`))
    assert.ok(brokerLog('SASL_SSL', INVALID_CREDENTIALS) > before, 'the broker logged the failed authentication')
  })
}

void test('kcat over SASL_PLAINTEXT with PLAIN: records round-trip; a wrong password and a client without SASL are refused', async () => {
  await kcatRoundTrip('SASL_PLAINTEXT', plain('alice-secret'))

  const before = brokerLog('SASL_PLAINTEXT', INVALID_CREDENTIALS)
  const r = await kcat('SASL_PLAINTEXT', plain('not-alices'), ['-P', '-t', uniqueTopic('sec-kcat-badplain')], 'x\n')
  assertKcatFailed(r, new RegExp(`SASL authentication error: ${INVALID_CREDENTIALS}`))
  assert.ok(brokerLog('SASL_PLAINTEXT', INVALID_CREDENTIALS) > before, 'the broker logged the failed authentication')

  // security.protocol=plaintext on a SASL listener: ApiVersions is answered, Metadata is not.
  const bare = await run('kcat', ['-b', address('SASL_PLAINTEXT'), '-m', '2', '-L'], { timeoutMs: 20_000 })
  assertKcatFailed(bare, /broker might require SASL authentication/)
  assert.doesNotMatch(bare.stdout, /topic "/, 'no metadata reached the unauthenticated client')
})

void test('kcat over SSL: with a CA-signed client certificate (and with none) records round-trip; a self-signed one fails the handshake', async () => {
  await kcatRoundTrip('SSL', tlsClient(certs.client('alice')))
  // ssl.client.auth=requested: a client without a certificate is let in too.
  const anonymous = JSON.parse(
    expectSuccess('kcat -L over SSL without a certificate', await kcat('SSL', tlsClient(undefined), ['-L', '-J']))
      .stdout,
  ) as { brokers: { name: string }[] }
  assert.deepEqual(
    anonymous.brokers.map((b) => b.name),
    [address('SSL')],
  )

  const r = await kcat('SSL', tlsClient(certs.rogue), ['-P', '-t', uniqueTopic('sec-kcat-rogue')], 'x\n')
  // With TLS 1.3 the client finishes its side of the handshake before the broker checks the
  // certificate, so librdkafka may see the refusal on its first read rather than in the handshake.
  assertKcatFailed(r, /SSL handshake failed|SSL routines/)
  assert.doesNotMatch(r.stderr, /No such file|Failed to create producer/, 'the client loaded its certificate')
})

void test('kcat over PLAINTEXT works as before', async () => {
  await kcatRoundTrip('PLAINTEXT', [])
})

// ---- confluent-kafka-python ----

interface ClientError {
  name: string
  code: number
  str: string
}

/** librdkafka settings for a SASL listener: PLAIN as alice, SCRAM as bob (SASL_SSL also checks the CA). */
function confluentConfig(
  listener: 'SASL_PLAINTEXT' | 'SASL_SSL',
  mechanism: 'PLAIN' | Scram,
  password: string,
): string {
  return JSON.stringify({
    'bootstrap.servers': address(listener),
    'security.protocol': listener,
    'sasl.mechanisms': mechanism,
    'sasl.username': mechanism === 'PLAIN' ? 'alice' : 'bob',
    'sasl.password': password,
    ...(listener === 'SASL_SSL' ? { 'ssl.ca.location': certs.caFile } : {}),
  })
}

/** librdkafka settings for the SSL listener with a client certificate. */
function confluentTlsConfig(client: { certFile: string; keyFile: string }): string {
  return JSON.stringify({
    'bootstrap.servers': address('SSL'),
    'security.protocol': 'SSL',
    'ssl.ca.location': certs.caFile,
    'ssl.certificate.location': client.certFile,
    'ssl.key.location': client.keyFile,
  })
}

/**
 * An acks=all producer sends records to both partitions of a new topic, a group consumer reads
 * them all back and commits the end of both partitions, with no client error on the way.
 */
async function confluentRoundTrip(config: string, prefix: string): Promise<void> {
  const topic = uniqueTopic(prefix)
  const n = 40
  const r = await runPythonJson<{
    reports: (Acked & { error: string | null })[]
    undelivered: number
    assigned: number[]
    records: Acked[]
    committed: number[]
    consume_errors: string[]
    errors: ClientError[]
  }>(CONFLUENT, [config, 'round-trip', topic, String(PARTITIONS), String(n), `${topic}-group`])
  assert.deepEqual(r.errors, [], 'no client errors (error_cb)')
  assert.equal(r.undelivered, 0)
  assert.deepEqual(
    r.reports.filter((m) => m.error !== null),
    [],
    'no delivery errors',
  )
  // Back in send order: record i went to partition i % PARTITIONS.
  const sent = [...r.reports].sort((a, b) => Number(a.key?.slice(1)) - Number(b.key?.slice(1)))
  assert.deepEqual(
    sent.map((m) => [m.key, m.value, m.partition]),
    Array.from({ length: n }, (_, i) => [`k${i}`, `${topic}-${i}`, i % PARTITIONS]),
  )
  assert.deepEqual(r.assigned, [0, 1], 'the only member of the group is assigned both partitions')
  assert.deepEqual(r.consume_errors, [])
  assertRoundTrip(sent, r.records)
  assert.deepEqual(r.committed, [n / 2, n / 2], 'the group committed the end of both partitions')
}

/** A producer with a wrong password: error_cb reports _AUTHENTICATION and nothing is delivered. */
async function assertConfluentBadLogin(config: string, listener: string): Promise<void> {
  const before = brokerLog(listener, INVALID_CREDENTIALS)
  const r = await runPythonJson<{
    errors: ClientError[]
    queued_after_error: number
    delivery_reports: (string | null)[]
  }>(CONFLUENT, [config, 'bad-login', uniqueTopic('sec-ck-bad')])
  const auth = r.errors.filter((e) => e.name === '_AUTHENTICATION')
  assert.ok(auth.length > 0, `an _AUTHENTICATION error: ${JSON.stringify(r.errors)}`)
  assert.match(auth[0].str, new RegExp(`SASL authentication error: ${INVALID_CREDENTIALS}`))
  assert.equal(r.queued_after_error, 1, 'the record was still queued when authentication failed')
  assert.deepEqual(r.delivery_reports, ['_PURGE_QUEUE'], 'the record was never delivered')
  assert.ok(brokerLog(listener, INVALID_CREDENTIALS) > before, 'the broker logged the failed authentication')
}

void test('confluent-kafka over SASL_SSL with SCRAM-SHA-256: acks=all producer, group consumer, commits', async () => {
  await confluentRoundTrip(confluentConfig('SASL_SSL', 'SCRAM-SHA-256', 'bob-secret'), 'sec-ck')
})

void test('confluent-kafka over SASL_SSL with a wrong SCRAM password: error_cb reports _AUTHENTICATION, nothing is delivered', async () => {
  await assertConfluentBadLogin(confluentConfig('SASL_SSL', 'SCRAM-SHA-256', 'not-bobs'), 'SASL_SSL')
})

void test('confluent-kafka over SASL_SSL with SCRAM-SHA-512: acks=all producer, group consumer, commits', async () => {
  await confluentRoundTrip(confluentConfig('SASL_SSL', 'SCRAM-SHA-512', 'bob-secret'), 'sec-ck-512')
})

void test('confluent-kafka over SASL_PLAINTEXT with PLAIN: records round-trip; a wrong password reports _AUTHENTICATION', async () => {
  await confluentRoundTrip(confluentConfig('SASL_PLAINTEXT', 'PLAIN', 'alice-secret'), 'sec-ck-plain')
  await assertConfluentBadLogin(confluentConfig('SASL_PLAINTEXT', 'PLAIN', 'not-alices'), 'SASL_PLAINTEXT')
})

void test('confluent-kafka over SSL: with a CA-signed client certificate records round-trip; a self-signed one is refused', async () => {
  await confluentRoundTrip(confluentTlsConfig(certs.client('carol')), 'sec-ck-tls')

  const before = brokerLog('SSL', 'TLS handshake failed')
  const r = await runPythonJson<{
    errors: ClientError[]
    queued_after_error: number
    delivery_reports: (string | null)[]
  }>(CONFLUENT, [confluentTlsConfig(certs.rogue), 'refused', uniqueTopic('sec-ck-rogue')])
  // TLS 1.3: librdkafka's side of the handshake is over before the broker checks the certificate
  // and closes the connection, so it sees the refusal as an EOF on its first read (ApiVersions),
  // a transport error, not as a failed handshake; then it retries the connection.
  const transport = r.errors.filter((e) => e.name === '_TRANSPORT')
  assert.ok(transport.length > 0, `a _TRANSPORT error: ${JSON.stringify(r.errors)}`)
  for (const e of transport) assert.match(e.str, /SSL routines::unexpected eof while reading|SSL handshake failed/)
  assert.ok(
    r.errors.some((e) => e.name === '_ALL_BROKERS_DOWN'),
    `_ALL_BROKERS_DOWN: ${JSON.stringify(r.errors)}`,
  )
  assert.deepEqual(
    r.errors.filter((e) => e.name !== '_TRANSPORT' && e.name !== '_ALL_BROKERS_DOWN'),
    [],
    'no other client error',
  )
  assert.equal(r.queued_after_error, 1, 'the record was still queued when every broker was down')
  assert.deepEqual(r.delivery_reports, ['_PURGE_QUEUE'], 'the record was never delivered')
  assert.ok(brokerLog('SSL', 'TLS handshake failed') > before, 'the broker refused the certificate')
})

// ---- kafka-python ----

function kafkaPythonConfig(
  listener: 'SASL_PLAINTEXT' | 'SASL_SSL',
  mechanism: 'PLAIN' | Scram,
  password: string,
): string {
  return JSON.stringify({
    bootstrap_servers: address(listener),
    security_protocol: listener,
    sasl_mechanism: mechanism,
    sasl_plain_username: mechanism === 'PLAIN' ? 'alice' : 'bob',
    sasl_plain_password: password,
    ...(listener === 'SASL_SSL' ? { ssl_cafile: certs.caFile, ssl_check_hostname: true } : {}),
  })
}

function kafkaPythonTlsConfig(client: { certFile: string; keyFile: string }): string {
  return JSON.stringify({
    bootstrap_servers: address('SSL'),
    security_protocol: 'SSL',
    ssl_cafile: certs.caFile,
    ssl_check_hostname: true,
    ssl_certfile: client.certFile,
    ssl_keyfile: client.keyFile,
  })
}

/** kafka-python's producer sends records to partition 0 of a new topic; a group-less consumer reads them back. */
async function kafkaPythonRoundTrip(config: string, prefix: string): Promise<void> {
  const topic = uniqueTopic(prefix)
  const n = 30
  const r = await runPythonJson<{ sent: Acked[]; records: Acked[] }>(KAFKA_PYTHON, [
    config,
    'round-trip',
    topic,
    String(n),
  ])
  assert.deepEqual(
    r.sent.map((m) => [m.key, m.value, m.partition, m.offset]),
    Array.from({ length: n }, (_, i) => [`k${i}`, `${topic}-${i}`, 0, i]),
  )
  assertRoundTrip(r.sent, r.records)
}

interface KafkaPythonRefusal {
  exception: string | null
  message?: string
  seconds: number
  log: string[]
}

for (const [listener, mechanism, password] of [
  ['SASL_PLAINTEXT', 'PLAIN', 'alice-secret'],
  ['SASL_SSL', 'SCRAM-SHA-512', 'bob-secret'],
  ['SASL_SSL', 'SCRAM-SHA-256', 'bob-secret'],
] as const) {
  void test(`kafka-python over ${listener} with ${mechanism}: records round-trip; a wrong password raises NoBrokersAvailable`, async () => {
    await kafkaPythonRoundTrip(kafkaPythonConfig(listener, mechanism, password), `sec-kp-${mechanism.toLowerCase()}`)

    // kafka-python 2.0.2 authenticates with SaslHandshake v0 and bare SASL tokens: a refused login
    // can only be a closed connection, which it reports as a connection error while
    // authenticating, so KafkaProducer() gives up on the bootstrap server.
    const before = brokerLog(listener, INVALID_CREDENTIALS)
    const bad = await runPythonJson<KafkaPythonRefusal>(KAFKA_PYTHON, [
      kafkaPythonConfig(listener, mechanism, 'wrong-password'),
      'bad-login',
    ])
    assert.equal(bad.exception, 'NoBrokersAvailable')
    assert.ok(
      bad.log.some((l) => l.includes('<authenticating>') && l.includes('Error receiving reply from server')),
      `the connection failed while authenticating: ${JSON.stringify(bad.log)}`,
    )
    assert.ok(brokerLog(listener, INVALID_CREDENTIALS) > before, 'the broker refused the password')
  })
}

void test('kafka-python over SSL: with a CA-signed client certificate records round-trip; a self-signed one is refused', async () => {
  await kafkaPythonRoundTrip(kafkaPythonTlsConfig(certs.client('dave')), 'sec-kp-tls')

  const before = brokerLog('SSL', 'TLS handshake failed')
  const bad = await runPythonJson<KafkaPythonRefusal>(KAFKA_PYTHON, [kafkaPythonTlsConfig(certs.rogue), 'bad-login'])
  // TLS 1.3: the handshake succeeds on kafka-python's side and the broker closes the connection
  // after checking the certificate. kafka-python 2.0.2 probes the broker version by sending
  // ApiVersions and, 0.1 s later, Metadata; writing the second to the closed TLS connection raises
  // ssl.SSLEOFError, which escapes KafkaProducer() as it is (not as a KafkaError).
  assert.equal(bad.exception, 'SSLEOFError', JSON.stringify(bad))
  assert.match(bad.message ?? '', /EOF occurred in violation of protocol/)
  assert.ok(brokerLog('SSL', 'TLS handshake failed') > before, 'the broker refused the certificate')
})
