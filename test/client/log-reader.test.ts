// LogReader: partitions read from given offsets without a consumer group, against the real broker.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { LogReader, lingerDue, type LogRecord } from '../../src/client/log-reader.ts'
import { ReliableProducer } from '../../src/client/reliable-producer.ts'
import { ensureTopic } from '../../src/db/kafka-topics.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'

let broker: BrokerProcess
let producer: ReliableProducer

before(async () => {
  broker = await startBroker()
  producer = new ReliableProducer({ bootstrap: [broker.bootstrap] })
  await ensureTopic([broker.bootstrap], { name: 'lr', partitions: 2, replicationFactor: 1, configs: {} })
  for (let i = 0; i < 50; i++)
    await producer.send({
      topic: 'lr',
      partition: i % 2,
      key: Buffer.from(`k${i}`),
      value: Buffer.from(`v${i}`),
      headers: [['h', Buffer.from(String(i))]],
    })
})

after(async () => {
  await producer.close()
  await broker.stop()
  removeDir(broker.dataDir)
})

async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

void test('reads each assigned partition from its offset, in order, with keys, values and headers; follows new records', async () => {
  const reader = new LogReader({ bootstrap: [broker.bootstrap], maxWaitMs: 100 })
  const seen = new Map<number, LogRecord[]>([
    [0, []],
    [1, []],
  ])
  try {
    reader.assign('lr', 0, 10, (records) => void seen.get(0)!.push(...records))
    reader.assign('lr', 1, 0, (records) => void seen.get(1)!.push(...records))
    await until('25 + 15 records', () => seen.get(0)!.length === 15 && seen.get(1)!.length === 25)
    assert.deepEqual(
      seen.get(0)!.map((r) => r.offset),
      Array.from({ length: 15 }, (_, i) => 10 + i),
    )
    const r = seen.get(0)![0]
    assert.deepEqual(
      [r.topic, r.partition, r.key?.toString(), r.value?.toString(), r.headers.map(([k, v]) => [k, v.toString()])],
      ['lr', 0, 'k20', 'v20', [['h', '20']]],
    )
    assert.equal(await reader.endOffset('lr', 1), 25)
    assert.equal(reader.position('lr', 1), 25)
    // New records arrive without re-assigning (long polling).
    await producer.send({ topic: 'lr', partition: 1, key: null, value: Buffer.from('late') })
    await until('the late record', () => seen.get(1)!.length === 26)
    assert.equal(seen.get(1)![25].value?.toString(), 'late')
    // Unassigned partitions are no longer delivered; a re-assignment starts where it says.
    reader.unassign('lr', 1)
    await producer.send({ topic: 'lr', partition: 1, key: null, value: Buffer.from('unseen') })
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(seen.get(1)!.length, 26)
    seen.set(1, [])
    reader.assign('lr', 1, 24, (records) => void seen.get(1)!.push(...records))
    await until('re-read from 24', () => seen.get(1)!.length === 3)
    assert.deepEqual(
      seen.get(1)!.map((x) => x.offset),
      [24, 25, 26],
    )
  } finally {
    await reader.close()
  }
})

void test('a handler that throws gets the same records again; a partition in error backs off without holding up the others', async () => {
  const errors: string[] = []
  const reader = new LogReader({
    bootstrap: [broker.bootstrap],
    maxWaitMs: 100,
    onError: (e) => errors.push(e.message),
  })
  let calls = 0
  const got: number[] = []
  try {
    reader.assign('lr', 0, 0, (records) => {
      if (++calls === 1) throw new Error('not now')
      got.push(...records.map((r) => r.offset))
    })
    // Partition 1 asked at an offset beyond its end: the broker answers OFFSET_OUT_OF_RANGE.
    reader.assign('lr', 1, 10_000, () => assert.fail('nothing to read there'))
    await until('partition 0 read after the failed attempt', () => got.length >= 25)
    assert.deepEqual(
      got.slice(0, 25),
      Array.from({ length: 25 }, (_, i) => i),
    )
    assert.ok(errors.some((e) => e === 'not now'))
    assert.ok(
      errors.some((e) => /lr\/1 at 10000: Kafka error 1\b/.test(e)),
      errors.join('\n'),
    )
    const outOfRange = errors.filter((e) => /lr\/1/.test(e)).length
    assert.ok(outOfRange < 15, `the failing partition was fetched ${outOfRange} times in that time: no backoff`)
  } finally {
    await reader.close()
  }
})

void test('lingering partitions come due on a shared grid, between half and one and a half lingers away', () => {
  for (const lingerMs of [1, 10, 50, 333]) {
    for (let i = 0; i < 2000; i++) {
      const now = 1_700_000_000_000 + Math.floor(Math.random() * 10_000_000) + Math.random()
      const due = lingerDue(now, lingerMs)
      assert.equal(due % lingerMs, 0, `${due} on the ${lingerMs} ms grid`)
      assert.ok(due - now >= lingerMs / 2 && due - now < (3 * lingerMs) / 2, `${now} + ${lingerMs} -> ${due}`)
    }
  }
  // Deliveries within one step of each other come due together (two partitions, one fetch round).
  assert.equal(lingerDue(1000, 50), lingerDue(1024, 50))
  assert.equal(lingerDue(1000, 50), 1050)
  assert.equal(lingerDue(1026, 50), 1100)
})

void test('a lingering partition gets what arrived meanwhile in one batch; the others are read at once; lingering stops when set to 0', async () => {
  await ensureTopic([broker.bootstrap], { name: 'lr-linger', partitions: 2, replicationFactor: 1, configs: {} })
  const reader = new LogReader({ bootstrap: [broker.bootstrap], maxWaitMs: 500 })
  const batches = new Map<number, LogRecord[][]>([
    [0, []],
    [1, []],
  ])
  const total = (p: number) => batches.get(p)!.reduce((n, b) => n + b.length, 0)
  const send = (partition: number, value: string) =>
    producer.send({ topic: 'lr-linger', partition, key: null, value: Buffer.from(value) })
  try {
    reader.assign('lr-linger', 0, 0, (records) => void batches.get(0)!.push(records), 300)
    reader.assign('lr-linger', 1, 0, (records) => void batches.get(1)!.push(records))
    await send(0, 'first')
    await until('the first record', () => total(0) === 1)
    // Partition 0 now sits out for 300 ms: ten records sent meanwhile arrive together, while
    // partition 1 (no linger) gets each of its records as it comes.
    const sentAt = Date.now()
    for (let i = 0; i < 10; i++) {
      await send(0, `p0-${i}`)
      await send(1, `p1-${i}`)
      await until(`p1 record ${i}`, () => total(1) === i + 1)
    }
    await until('the ten lingering records', () => total(0) === 11)
    assert.ok(Date.now() - sentAt < 2000, 'the lingering partition was fetched again once due')
    assert.equal(batches.get(1)!.length, 10, 'partition 1: one delivery per record')
    assert.ok(batches.get(0)!.length <= 3, `partition 0: batched (${batches.get(0)!.length} deliveries)`)
    assert.deepEqual(
      batches
        .get(0)!
        .flat()
        .map((r) => r.value?.toString()),
      ['first', ...Array.from({ length: 10 }, (_, i) => `p0-${i}`)],
    )
    // A long linger holds the next record back; setting it to 0 releases it at once.
    reader.setLinger('lr-linger', 0, 60_000)
    await send(0, 'x')
    await until('the record that starts the long linger', () => total(0) === 12)
    await send(0, 'held')
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(total(0), 12, 'held back while lingering')
    reader.setLinger('lr-linger', 0, 0)
    await until('the held record, long before the linger ends', () => total(0) === 13)
    assert.equal(batches.get(0)!.at(-1)![0].value?.toString(), 'held')
  } finally {
    await reader.close()
  }
})
