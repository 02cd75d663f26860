// Log compaction through the running broker (`cortado broker`): a cleanup.policy=compact topic
// with small segments and a short cleaner backoff, written by kcat and the raw client, read back
// by kcat and a raw Fetch: old values disappear, offsets keep their gaps, tombstones go after
// delete.retention.ms, null keys are refused, and all of it survives a restart.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type CreateTopicsResponse } from '../../src/protocol/messages/create-topics-response.ts'
import { type FetchResponse } from '../../src/protocol/messages/fetch-response.ts'
import { type ListOffsetsResponse } from '../../src/protocol/messages/list-offsets-response.ts'
import { type ProduceResponse } from '../../src/protocol/messages/produce-response.ts'
import { batchRecords } from '../../src/protocol/batch-records.ts'
import { compress, CODEC_SNAPPY } from '../../src/protocol/compression.ts'
import {
  assembleBatch,
  BATCH_HEADER_SIZE,
  encodeRecordBatch,
  readBatchHeader,
} from '../../src/protocol/record-batch.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { expectSuccess, PYTHON, run, uniqueTopic, waitFor } from '../helpers/compat.ts'
import { parseResponse, RawClient, requestFrame } from '../helpers/raw-client.ts'
import { recordTailValue } from '../helpers/record-tail.ts'

const CONFIG = {
  'log.cleaner.backoff.ms': '100',
  'log.retention.check.interval.ms': '200',
  'cortado.fsync': 'none',
  'auto.create.topics.enable': 'false',
}
let broker: BrokerProcess
let client: RawClient
let corr = 0

before(async () => {
  broker = await startBroker({ config: CONFIG, metrics: true })
  client = await RawClient.connect(broker.port)
})

after(async () => {
  client.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

async function call<T>(apiKey: number, version: number, body: unknown): Promise<T> {
  const id = ++corr
  client.write(requestFrame(apiKey, version, id, body))
  const res = parseResponse<T>(apiKey, version, await client.nextFrame())
  assert.equal(res.correlationId, id)
  return res.body
}

async function createTopic(name: string, configs: Record<string, string>): Promise<void> {
  const res = await call<CreateTopicsResponse>(19, 7, {
    topics: [
      {
        name,
        numPartitions: 1,
        replicationFactor: 1,
        assignments: [],
        configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
      },
    ],
    timeoutMs: 1000,
    validateOnly: false,
  })
  assert.equal(res.topics[0].errorCode, 0)
}

async function produce(topic: string, records: Buffer) {
  const res = await call<ProduceResponse>(0, 8, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  })
  return res.responses[0].partitionResponses[0]
}

interface Stored {
  offset: number
  key: string | null
  value: string | null
}

type View = { records: Stored[]; emptyBatches: number; logStartOffset: number; highWatermark: number }

/**
 * The partition as stored, through raw Fetch v11 (one segment per response), with batch facts.
 * Starts over when retention moves the log start offset past the reader (OFFSET_OUT_OF_RANGE).
 */
async function fetchAll(topic: string): Promise<View> {
  for (;;) {
    const view = await fetchOnce(topic)
    if (view !== null) return view
  }
}

async function fetchOnce(topic: string): Promise<View | null> {
  const records: Stored[] = []
  let emptyBatches = 0
  // From the log start offset (ListOffsets earliest), which retention may have moved.
  const earliest = await call<ListOffsetsResponse>(2, 1, {
    replicaId: -1,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: -2 }] }],
  })
  let offset = Number(earliest.topics[0].partitions[0].offset)
  let logStartOffset = -1
  let highWatermark = -1
  for (;;) {
    const res = await call<FetchResponse>(1, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic,
          partitions: [
            {
              partition: 0,
              fetchOffset: offset,
              partitionMaxBytes: 1 << 20,
              logStartOffset: -1,
              currentLeaderEpoch: -1,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    })
    const p = res.responses[0].partitions[0]
    if (p.errorCode === 1) return null
    assert.equal(p.errorCode, 0)
    logStartOffset = Number(p.logStartOffset)
    highWatermark = Number(p.highWatermark)
    if (p.records === null || p.records.length === 0) break
    for (let pos = 0; pos < p.records.length;) {
      const h = readBatchHeader(p.records, pos)
      if (h.recordsCount === 0) emptyBatches++
      for (const r of batchRecords(p.records, pos, h)) {
        const o = h.baseOffset + r.offsetDelta
        if (o >= offset) records.push({ offset: o, key: r.key?.toString() ?? null, value: valueOf(r.tail) })
      }
      offset = h.baseOffset + h.lastOffsetDelta + 1
      pos += h.batchLength + 12
    }
  }
  return { records, emptyBatches, logStartOffset, highWatermark }
}

const valueOf = recordTailValue

function kcat(args: readonly string[], input?: string) {
  return run('kcat', ['-b', broker.bootstrap, '-m', '10', ...args], { input, timeoutMs: 40_000 })
}

/** kcat -C -e -Z over the topic: [offset, key, value] with NULL for null. */
async function kcatRead(topic: string): Promise<[number, string, string][]> {
  const r = expectSuccess(
    'kcat -C',
    await kcat(['-C', '-t', topic, '-o', 'beginning', '-e', '-Z', '-f', '%o\t%k\t%s\n']),
  )
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [o, k, v] = l.split('\t')
      return [Number(o), k, v]
    })
}

/**
 * fetchAll once the partition stops changing (no cleaning round between two reads 500 ms apart),
 * so a comparison with what a client reads next is not racing the cleaner.
 */
async function settled(topic: string): Promise<Awaited<ReturnType<typeof fetchAll>>> {
  let prev = await fetchAll(topic)
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 500))
    const next = await fetchAll(topic)
    if (JSON.stringify(next) === JSON.stringify(prev)) return next
    prev = next
  }
  throw new Error(`${topic} keeps changing`)
}

/** kafka-python 2.0.2 (group-less consumer from the beginning to the end offset): [offset, key, value]. */
async function kafkaPythonRead(topic: string): Promise<[number, string, string][]> {
  const program = [
    'import json, time',
    'from kafka import KafkaConsumer, TopicPartition',
    `c = KafkaConsumer(bootstrap_servers="${broker.bootstrap}", group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100)`,
    `tp = TopicPartition("${topic}", 0)`,
    'c.assign([tp]); c.seek_to_beginning(tp)',
    'end = c.end_offsets([tp])[tp]',
    'out = []',
    'deadline = time.monotonic() + 20',
    'while c.position(tp) < end and time.monotonic() < deadline:',
    '    for records in c.poll(timeout_ms=200).values():',
    '        out += [[r.offset, r.key.decode(), "NULL" if r.value is None else r.value.decode()] for r in records]',
    'print(json.dumps({"records": out, "position": c.position(tp), "end": end}))',
  ].join('\n')
  const r = expectSuccess('kafka-python consumer', await run(PYTHON, ['-c', program], { timeoutMs: 40_000 }))
  const parsed = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    records: [number, string, string][]
    position: number
    end: number
  }
  assert.equal(parsed.position, parsed.end, 'kafka-python reached the end of the compacted log')
  return parsed.records
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

void test('a compacted topic keeps the latest value per key with its offset; kcat reads the gaps', async () => {
  const topic = uniqueTopic('compacted')
  await createTopic(topic, {
    'cleanup.policy': 'compact',
    'segment.bytes': '1024',
    'min.cleanable.dirty.ratio': '0.01',
    'delete.retention.ms': '0',
  })
  // 300 messages over 10 keys from an idempotent producer, one batch each (linger 0, one message
  // per batch): many segments.
  const written: [number, string, string][] = []
  const lines: string[] = []
  for (let i = 0; i < 300; i++) {
    const key = `k${i % 10}`
    lines.push(`${key}:value-${i}`)
    written.push([i, key, `value-${i}`])
  }
  const oneByOne = ['-X', 'acks=all', '-X', 'linger.ms=0', '-X', 'batch.num.messages=1']
  expectSuccess(
    'kcat -P',
    await kcat(['-P', '-t', topic, '-K', ':', ...oneByOne, '-X', 'enable.idempotence=true'], lines.join('\n') + '\n'),
  )
  // A tombstone for k3 (kcat -Z sends an empty value as NULL), a new k9 (so the idempotent
  // producer's last batch, k9 at 299, loses its record), then more data to roll segments.
  expectSuccess('kcat -P tombstone', await kcat(['-P', '-t', topic, '-K', ':', '-Z', ...oneByOne], 'k3:\nk9:final\n'))
  written.push([300, 'k3', 'NULL'], [301, 'k9', 'final'])
  const more = Array.from({ length: 40 }, (_, i) => `m${i % 4}:more-${i}`)
  expectSuccess('kcat -P', await kcat(['-P', '-t', topic, '-K', ':', ...oneByOne], more.join('\n') + '\n'))
  more.forEach((l, i) => written.push([302 + i, l.split(':')[0], l.split(':')[1]]))
  const byOffset = new Map(written.map(([o, k, v]) => [o, [k, v]]))

  // The cleaner runs every 100 ms: wait until the old values are gone. Below 300 only each key's
  // last value survives (k0..k8 at 290..298), except k3's, superseded by the tombstone at 300,
  // and k9's, superseded at 301.
  const latest = [290, 291, 292, 294, 295, 296, 297, 298]
  await waitFor('compaction', async () => {
    const s = await fetchAll(topic)
    return JSON.stringify(s.records.filter((r) => r.offset < 300).map((r) => r.offset)) === JSON.stringify(latest)
      ? s
      : undefined
  })
  const stored = await settled(topic)
  assert.equal(stored.logStartOffset, 0)
  assert.equal(stored.highWatermark, 342)
  // Every record read is the one written at that offset.
  for (const r of stored.records)
    assert.deepEqual([r.key, r.value ?? 'NULL'], byOffset.get(r.offset), `offset ${r.offset}`)
  assert.deepEqual(
    stored.records.filter((r) => r.offset < 300).map((r) => r.offset),
    latest,
  )
  assert.ok(
    stored.records.some((r, i) => i > 0 && r.offset > stored.records[i - 1].offset + 1),
    'offsets have gaps',
  )
  // The idempotent producer's last batch stays as a header (its sequence survives), and the log
  // still reads through it.
  assert.ok(stored.emptyBatches > 0, 'a header-only batch for the idempotent producer')

  // kcat (librdkafka) reads the compacted log, empty batches and gaps included, in offset order.
  const read = await kcatRead(topic)
  assert.deepEqual(
    read,
    stored.records.map((r) => [r.offset, r.key, r.value ?? 'NULL']),
  )
  assert.ok(read.length < 60)
  // So does kafka-python.
  assert.deepEqual(await kafkaPythonRead(topic), read)

  // The tombstone (delete.retention.ms=0) goes at a later round: more data makes the log dirty again.
  const evenMore = Array.from({ length: 40 }, (_, i) => `m${i % 4}:again-${i}`)
  expectSuccess(
    'kcat -P',
    await kcat(
      ['-P', '-t', topic, '-K', ':', '-X', 'acks=all', '-X', 'linger.ms=0', '-X', 'batch.num.messages=1'],
      evenMore.join('\n') + '\n',
    ),
  )
  const later = await waitFor('tombstone removal', async () => {
    const s = await fetchAll(topic)
    return s.records.some((r) => r.key === 'k3') ? undefined : s
  })
  assert.ok(later.records.every((r) => r.offset >= 290))
  assert.ok((await metric('cortado_broker_log_cleaner_records_removed_total')) >= 290)
  assert.ok((await metric('cortado_broker_log_cleaner_bytes_cleaned_total')) > 0)
})

void test('produce to a compacted topic refuses null keys (INVALID_RECORD), compressed batches included', async () => {
  const topic = uniqueTopic('compacted-nokey')
  await createTopic(topic, { 'cleanup.policy': 'compact' })
  const plain = encodeRecordBatch({
    records: [
      { key: Buffer.from('a'), value: Buffer.from('1') },
      { key: null, value: Buffer.from('2') },
    ],
  })
  let res = await produce(topic, plain)
  assert.equal(res.errorCode, 87)
  assert.match(res.errorMessage ?? '', /null key/)
  const h = readBatchHeader(plain, 0)
  const snappy = assembleBatch(
    { ...h, attributes: CODEC_SNAPPY },
    compress(CODEC_SNAPPY, plain.subarray(BATCH_HEADER_SIZE)),
  )
  res = await produce(topic, snappy)
  assert.equal(res.errorCode, 87)
  res = await produce(topic, encodeRecordBatch({ records: [{ key: Buffer.from('a'), value: Buffer.from('1') }] }))
  assert.equal(res.errorCode, 0)
  // kcat without a key: the delivery fails with the broker's error.
  const r = await kcat(['-P', '-t', topic, '-X', 'acks=all', '-X', 'message.send.max.retries=0'], 'no key\n')
  assert.match(r.stderr, /Broker failed to validate record/) // librdkafka's text for INVALID_RECORD (87)
  // A delete-policy topic takes null keys as before.
  const plainTopic = uniqueTopic('delete-nokey')
  await createTopic(plainTopic, {})
  assert.equal((await produce(plainTopic, plain)).errorCode, 0)
})

void test('compact,delete applies both; compact alone is exempt from retention', async () => {
  const both = uniqueTopic('compact-delete')
  const compactOnly = uniqueTopic('compact-only')
  // retention.ms=1 and 1970 timestamps: retention deletes every closed segment it may.
  const cfg = { 'segment.bytes': '1024', 'retention.ms': '1', 'min.cleanable.dirty.ratio': '0.01' }
  await createTopic(both, { ...cfg, 'cleanup.policy': 'compact,delete' })
  await createTopic(compactOnly, { ...cfg, 'cleanup.policy': 'compact' })
  for (const topic of [both, compactOnly]) {
    for (let i = 0; i < 60; i++) {
      assert.equal(
        (
          await produce(
            topic,
            encodeRecordBatch({
              records: [
                {
                  key: Buffer.from(`k${i % 3}`),
                  value: Buffer.from(`v${i}-${'x'.repeat(40)}`),
                  timestamp: 1_000_000 + i,
                },
              ],
            }),
          )
        ).errorCode,
        0,
      )
    }
  }
  // compact,delete: retention (every 200 ms) moves the log start offset up.
  await waitFor('retention of the compact,delete topic', async () =>
    (await fetchAll(both)).logStartOffset > 0 ? true : undefined,
  )
  // compact: compacted down to the last value per key below the active segment, never deleted by retention.
  const s = await waitFor('compaction of the compact topic', async () => {
    const f = await fetchAll(compactOnly)
    return f.records.filter((r) => r.offset < 57).length <= 3 ? f : undefined
  })
  await new Promise((r) => setTimeout(r, 600)) // three retention checks
  assert.equal(s.logStartOffset, 0)
  assert.equal((await fetchAll(compactOnly)).logStartOffset, 0)
  assert.deepEqual([...new Set(s.records.map((r) => r.key))].sort(), ['k0', 'k1', 'k2'])
})

void test('a compacted topic survives a restart: same records, same gaps, appends continue', async () => {
  const topic = uniqueTopic('compacted-restart')
  await createTopic(topic, {
    'cleanup.policy': 'compact',
    'segment.bytes': '1024',
    'min.cleanable.dirty.ratio': '0.01',
  })
  for (let i = 0; i < 100; i++) {
    assert.equal(
      (
        await produce(
          topic,
          encodeRecordBatch({
            records: [{ key: Buffer.from(`k${i % 5}`), value: Buffer.from(`v${i}-${'y'.repeat(30)}`) }],
          }),
        )
      ).errorCode,
      0,
    )
  }
  const compacted = await waitFor('compaction', async () => {
    const s = await fetchAll(topic)
    return s.records.length < 40 ? s : undefined
  })
  client.close()
  assert.equal(await broker.stop(), 0)
  broker = await startBroker({ dataDir: broker.dataDir, config: CONFIG, metrics: true })
  client = await RawClient.connect(broker.port)
  const again = await fetchAll(topic)
  // Compaction only ever removes: what survives the restart is what was there, each key's latest included.
  const before = new Map(compacted.records.map((r) => [r.offset, r]))
  for (const r of again.records) assert.deepEqual(r, before.get(r.offset))
  for (const o of [95, 96, 97, 98, 99])
    assert.ok(
      again.records.some((r) => r.offset === o),
      `latest of its key at ${o}`,
    )
  assert.equal(again.highWatermark, 100)
  assert.equal(
    (await produce(topic, encodeRecordBatch({ records: [{ key: Buffer.from('k1'), value: Buffer.from('after') }] })))
      .baseOffset,
    100,
  )
  assert.deepEqual((await kcatRead(topic)).at(-1), [100, 'k1', 'after'])
})
