// kcat 1.7.1 (librdkafka 2.0.2) against the real broker process: metadata, keyed produce with
// acks=all (and acks=0), every compression codec, the size limit, consuming from a timestamp,
// headers and nulls, and fetch limits smaller than a batch. kcat -C without -G is librdkafka's
// legacy (group-less) consumer.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import {
  advertisedApis,
  assertStoredCodec,
  expectSuccess,
  run,
  type RunResult,
  storedBatches,
  uniqueTopic,
  waitFor,
} from '../helpers/compat.ts'

let broker: BrokerProcess

before(async () => {
  // num.partitions=3: topics kcat auto-creates get three partitions.
  broker = await startBroker({ config: { 'num.partitions': '3' } })
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

function kcat(b: BrokerProcess, args: readonly string[], input?: string): Promise<RunResult> {
  return run('kcat', ['-b', b.bootstrap, '-m', '10', ...args], { input, timeoutMs: 40_000 })
}

interface Consumed {
  partition: number
  offset: number
  key: string
  value: string
  timestamp: number
}

/** kcat -C -e over the whole topic (all partitions), parsed from a format string. */
async function consumeAll(
  b: BrokerProcess,
  topic: string,
  offset = 'beginning',
  extra: readonly string[] = [],
): Promise<Consumed[]> {
  const r = expectSuccess(
    'kcat -C',
    await kcat(b, ['-C', '-t', topic, '-o', offset, '-e', ...extra, '-f', '%p\t%o\t%T\t%k\t%s\n']),
  )
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [p, o, ts, key, ...rest] = line.split('\t')
      return { partition: Number(p), offset: Number(o), timestamp: Number(ts), key, value: rest.join('\t') }
    })
}

interface TopicMetadata {
  topic: string
  partitions: { partition: number; leader: number; replicas: { id: number }[]; isrs: { id: number }[] }[]
  error?: string
}
interface KcatMetadata {
  originating_broker: { id: number; name: string }
  brokers: { id: number; name: string }[]
  topics: TopicMetadata[]
}

void test('kcat -L lists the broker, and a topic with its partitions and leader', async () => {
  const topic = uniqueTopic('kcat-meta')
  // Auto-create the topic by producing one message to it.
  expectSuccess('kcat -P', await kcat(broker, ['-P', '-t', topic, '-X', 'acks=all'], 'hello\n'))
  const all = JSON.parse(expectSuccess('kcat -L', await kcat(broker, ['-L', '-J'])).stdout) as KcatMetadata
  assert.deepEqual(all.brokers, [{ id: 0, name: `127.0.0.1:${broker.port}` }])
  assert.ok(
    all.topics.some((t) => t.topic === topic),
    'the new topic is listed',
  )
  const one = JSON.parse(
    expectSuccess('kcat -L -t', await kcat(broker, ['-L', '-J', '-t', topic])).stdout,
  ) as KcatMetadata
  assert.equal(one.topics.length, 1)
  assert.equal(one.topics[0].topic, topic)
  assert.equal(one.topics[0].error, undefined)
  assert.deepEqual(
    one.topics[0].partitions.map((p) => [p.partition, p.leader, p.replicas.map((r) => r.id), p.isrs.map((r) => r.id)]),
    [
      [0, 0, [0], [0]],
      [1, 0, [0], [0]],
      [2, 0, [0], [0]],
    ],
  )
})

void test('keyed messages produced with acks=all come back exactly once, in order per partition', async () => {
  const topic = uniqueTopic('kcat-keyed')
  const n = 600
  const sent = Array.from({ length: n }, (_, i) => ({ key: `key-${i % 12}`, value: `value-${i}` }))
  const input = sent.map((m) => `${m.key}:${m.value}\n`).join('')
  expectSuccess(
    'kcat -P',
    await kcat(broker, ['-P', '-t', topic, '-K', ':', '-X', 'acks=all', '-X', 'linger.ms=20'], input),
  )

  const got = await consumeAll(broker, topic)
  assert.equal(got.length, n, 'every message consumed once')
  assert.deepEqual(new Set(got.map((m) => m.value)).size, n, 'no duplicates')

  // Each key lands in a single partition.
  const partitionOfKey = new Map<string, number>()
  for (const m of got) {
    const p = partitionOfKey.get(m.key)
    if (p === undefined) partitionOfKey.set(m.key, m.partition)
    else assert.equal(p, m.partition, `key ${m.key} in one partition`)
  }
  const partitions = [...new Set(got.map((m) => m.partition))].sort()
  assert.deepEqual(partitions, [0, 1, 2], 'the 12 keys spread over all 3 partitions')

  // Per partition: offsets 0..k-1 and the values in the order they were sent.
  for (const p of partitions) {
    const inPartition = got.filter((m) => m.partition === p)
    assert.deepEqual(
      inPartition.map((m) => m.offset),
      inPartition.map((_, i) => i),
      `partition ${p} offsets are dense from 0`,
    )
    const expected = sent.filter((m) => partitionOfKey.get(m.key) === p)
    assert.deepEqual(
      inPartition.map((m) => `${m.key}:${m.value}`),
      expected.map((m) => `${m.key}:${m.value}`),
      `partition ${p} in send order`,
    )
  }
})

for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
  void test(`kcat -z ${codec}: values come back identical and the batches are stored as librdkafka compressed them`, async (t) => {
    const topic = uniqueTopic(`kcat-${codec}`)
    const n = 200
    // Compressible values of varied length; the tab-free payload survives kcat's format string.
    const values = Array.from({ length: n }, (_, i) => `${codec}-${i}-${'abcdefgh'.repeat(1 + (i % 40))}`)
    const input = values.map((v) => v + '\n').join('')
    expectSuccess(
      `kcat -P -z ${codec}`,
      await kcat(broker, ['-P', '-t', topic, '-p', '0', '-z', codec, '-X', 'acks=all', '-X', 'linger.ms=50'], input),
    )
    const got = await consumeAll(broker, topic)
    assert.deepEqual(
      got.map((m) => [m.partition, m.offset, m.value]),
      values.map((v, i) => [0, i, v]),
    )
    // librdkafka 2.0.2 turns its LZ4 feature on only when the broker advertises FindCoordinator
    // v0 (rdkafka_feature.c); without it, it logs "Broker does not support compression type lz4:
    // not compressing batch" and sends lz4 batches uncompressed.
    const expected = codec === 'lz4' && !(await advertisedApis(broker.port)).has(10) ? 'none' : codec
    if (expected !== codec) t.diagnostic('broker lacks FindCoordinator: librdkafka sends lz4 batches uncompressed')
    assertStoredCodec(await storedBatches(broker.port, topic, 0), expected, n)
  })
}

void test('a message over message.max.bytes is refused, kcat reports it, and the broker keeps serving', async () => {
  const small = await startBroker({ config: { 'message.max.bytes': '10000' } })
  try {
    const topic = uniqueTopic('kcat-big')
    const big = 'x'.repeat(20_000)
    const r = await kcat(small, ['-P', '-t', topic, '-p', '0', '-X', 'acks=all'], big + '\n')
    assert.match(r.stderr, /Message size too large|MSG_SIZE_TOO_LARGE/i, `kcat reports the refusal:\n${r.stderr}`)
    assert.notEqual(r.code, 0, 'kcat exits non-zero when a message was not delivered')

    // The same broker still accepts a small message, which gets offset 0: nothing of the big one was stored.
    expectSuccess('kcat -P small', await kcat(small, ['-P', '-t', topic, '-p', '0', '-X', 'acks=all'], 'small\n'))
    const got = await consumeAll(small, topic)
    assert.deepEqual(
      got.map((m) => [m.partition, m.offset, m.value]),
      [[0, 0, 'small']],
    )
  } finally {
    assert.equal(await small.stop(), 0)
    removeDir(small.dataDir)
  }
})

void test('kcat -o s@<timestamp> starts at the first message at or after the timestamp; -Q finds its offset', async () => {
  const topic = uniqueTopic('kcat-ts')
  const first = Array.from({ length: 10 }, (_, i) => `early-${i}`)
  expectSuccess(
    'kcat -P',
    await kcat(broker, ['-P', '-t', topic, '-p', '0', '-X', 'acks=all'], first.map((v) => v + '\n').join('')),
  )
  const early = await consumeAll(broker, topic)
  assert.deepEqual(
    early.map((m) => m.value),
    first,
  )
  const cut = Math.max(...early.map((m) => m.timestamp)) + 1
  // The next messages must carry later timestamps than every early one: wait for the clock to pass the cut.
  await waitFor('the clock to pass the last early timestamp', () => (Date.now() > cut ? true : undefined))
  const second = Array.from({ length: 10 }, (_, i) => `late-${i}`)
  expectSuccess(
    'kcat -P',
    await kcat(broker, ['-P', '-t', topic, '-p', '0', '-X', 'acks=all'], second.map((v) => v + '\n').join('')),
  )

  const late = await consumeAll(broker, topic, `s@${cut}`)
  assert.deepEqual(
    late.map((m) => [m.offset, m.value]),
    second.map((v, i) => [10 + i, v]),
  )
  assert.ok(late.every((m) => m.timestamp >= cut))

  const q = expectSuccess('kcat -Q', await kcat(broker, ['-Q', '-t', `${topic}:0:${cut}`]))
  assert.match(q.stdout, new RegExp(`${topic} \\[0\\] offset 10\\b`), q.stdout)
})

void test('headers, null keys and null values (-Z) round-trip', async () => {
  const topic = uniqueTopic('kcat-nulls')
  const input = 'k1:\nk2:val\n:noval\n'
  expectSuccess(
    'kcat -P -Z',
    await kcat(
      broker,
      ['-P', '-t', topic, '-p', '0', '-K', ':', '-Z', '-H', 'h1=x', '-H', 'h2=', '-X', 'acks=all'],
      input,
    ),
  )
  const r = expectSuccess(
    'kcat -C -Z',
    await kcat(broker, ['-C', '-t', topic, '-e', '-Z', '-f', '%o|%k|%K|%s|%S|%h\n']),
  )
  assert.deepEqual(r.stdout.trim().split('\n'), [
    '0|k1|2|NULL|-1|h1=x,h2=',
    '1|k2|2|val|3|h1=x,h2=',
    '2|NULL|-1|noval|5|h1=x,h2=',
  ])
})

void test('a fetch size limit below the batch size still returns whole batches (KIP-74); -o -N reads the tail', async () => {
  const topic = uniqueTopic('kcat-fetchsize')
  const values = Array.from({ length: 300 }, (_, i) => `v${i}-${'y'.repeat(200)}`)
  expectSuccess(
    'kcat -P',
    await kcat(
      broker,
      ['-P', '-t', topic, '-p', '0', '-X', 'acks=all', '-X', 'linger.ms=50'],
      values.map((v) => v + '\n').join(''),
    ),
  )
  const batches = await storedBatches(broker.port, topic, 0)
  assert.ok(
    batches.some((b) => b.records > 1),
    'some batch holds several records, so it is larger than the fetch limit',
  )
  const got = await consumeAll(broker, topic, 'beginning', ['-X', 'fetch.message.max.bytes=100'])
  assert.deepEqual(
    got.map((m) => [m.offset, m.value]),
    values.map((v, i) => [i, v]),
  )
  const tail = await consumeAll(broker, topic, '-5')
  assert.deepEqual(
    tail.map((m) => [m.offset, m.value]),
    values.slice(-5).map((v, i) => [295 + i, v]),
  )
})

void test('acks=0: no responses, the messages still land in order', async () => {
  const topic = uniqueTopic('kcat-acks0')
  const values = Array.from({ length: 50 }, (_, i) => `fire-and-forget-${i}`)
  // Create the topic first, so no message is sent before the topic exists.
  expectSuccess('kcat -P', await kcat(broker, ['-P', '-t', topic, '-p', '0', '-X', 'acks=all'], 'first\n'))
  expectSuccess(
    'kcat -P acks=0',
    await kcat(broker, ['-P', '-t', topic, '-p', '0', '-X', 'acks=0'], values.map((v) => v + '\n').join('')),
  )
  // Nothing acknowledges them: wait until the broker has appended all of them.
  await waitFor('51 records stored', async () =>
    (await storedBatches(broker.port, topic, 0)).reduce((s, b) => s + b.records, 0) === 51 ? true : undefined,
  )
  const got = await consumeAll(broker, topic)
  assert.deepEqual(
    got.map((m) => [m.offset, m.value]),
    ['first', ...values].map((v, i) => [i, v]),
  )
})
