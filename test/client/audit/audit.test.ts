// Auditing against the real broker process: counts published by a producer side and a consumer
// side (AuditPublisher, idempotent @platformatic/kafka producer) to the audit topic, read back by
// runAuditReport (plain fetch from earliest, no group): equal counts give "complete"; fewer
// consumed give "missing N"; buckets outside the window are left out; a record republished with
// the same (reporter id, seq) is counted once; a real produce + consume of N messages with the
// counters called around it audits complete.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  Admin,
  Consumer,
  MessagesStreamModes,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka'
import { AuditCounter, auditBytes } from '../../../src/client/audit/counter.ts'
import { AuditPublisher, DEFAULT_AUDIT_TOPIC, encodeAuditRecord } from '../../../src/client/audit/publisher.ts'
import { readAuditRecords, runAuditReport } from '../../../src/client/audit/report.ts'
import { type BrokerProcess, removeDir, startBroker } from '../../helpers/broker-process.ts'
import { uniqueTopic } from '../../helpers/compat.ts'

const MIN = 60_000
const T0 = Date.UTC(2024, 0, 1, 13, 0, 0)
const T1 = T0 + 60 * MIN

let broker: BrokerProcess
let admin: Admin

before(async () => {
  broker = await startBroker()
  admin = new Admin({ clientId: 'audit-test-admin', bootstrapBrokers: [broker.bootstrap], retries: 5, retryDelay: 100 })
})

after(async () => {
  await admin.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

/** Feeds `count` messages of 100 bytes at `at` into the counter with the given outcome. */
function feed(
  c: AuditCounter,
  topic: string,
  at: number,
  count: number,
  outcome: 'attempt' | 'success' = 'success',
): void {
  for (let i = 0; i < count; i++) c.record(topic, at + (i % 1000), outcome, 100)
}

void test('counters fed directly: produce and consume sides published; the report is complete; outside buckets excluded', async () => {
  const topic = uniqueTopic('audited')
  const produced = new AuditCounter({ side: 'produce' })
  const consumed = new AuditCounter({ side: 'consume', group: 'g' })
  for (const [at, n] of [
    [T0 - MIN, 7],
    [T0, 50],
    [T0 + 30 * MIN + 5, 20],
    [T1, 9],
  ] as const) {
    feed(produced, topic, at, n, 'attempt')
    feed(produced, topic, at, n)
    feed(consumed, topic, at, at === T1 ? 3 : n) // the bucket at `to` is outside the window anyway
  }
  const pp = new AuditPublisher({
    bootstrap: broker.bootstrap,
    counter: produced,
    clientId: 'app-producer',
    intervalMs: 0,
  })
  const cp = new AuditPublisher({
    bootstrap: broker.bootstrap,
    counter: consumed,
    clientId: 'app-consumer',
    intervalMs: 0,
  })
  await pp.close()
  await cp.close()
  assert.notEqual(pp.reporter.id, cp.reporter.id)
  assert.ok((await admin.listTopics()).includes(DEFAULT_AUDIT_TOPIC), 'the audit topic was created')

  const r = await runAuditReport({ bootstrap: broker.bootstrap, topic, group: 'g', from: T0, to: new Date(T1) })
  assert.deepEqual(
    r.buckets.map((b) => [b.bucketStart - T0, b.produced.messages, b.consumed.messages]),
    [
      [0, 50, 50],
      [30 * MIN, 20, 20],
    ],
  )
  assert.deepEqual(
    [r.total.produced, r.total.consumed],
    [
      { messages: 70, bytes: 7000 },
      { messages: 70, bytes: 7000 },
    ],
  )
  assert.equal(r.total.produceAttempts.messages, 70)
  assert.deepEqual([r.complete, r.verdict, r.missing, r.extra], [true, 'complete', 0, 0])
  assert.match(r.text, /verdict: complete/)
  assert.match(r.text, /total\s+70\s+70\s+7000\s+7000\s+0/)

  const other = await runAuditReport({ bootstrap: broker.bootstrap, topic, group: 'nobody', from: T0, to: T1 })
  assert.deepEqual([other.complete, other.missing, other.total.consumed.messages], [false, 70, 0])
})

void test('a consumer that counted fewer: the report gives the difference per bucket and "missing N"', async () => {
  const topic = uniqueTopic('audited-missing')
  const auditTopic = uniqueTopic('audit')
  const produced = new AuditCounter({ side: 'produce' })
  const consumed = new AuditCounter({ side: 'consume', group: 'g' })
  feed(produced, topic, T0, 40)
  feed(produced, topic, T0 + MIN, 40)
  feed(consumed, topic, T0, 40)
  feed(consumed, topic, T0 + MIN, 33)
  for (const counter of [produced, consumed])
    await new AuditPublisher({ bootstrap: broker.bootstrap, counter, auditTopic, intervalMs: 0 }).close()
  const r = await runAuditReport({ bootstrap: broker.bootstrap, auditTopic, topic, group: 'g', from: T0, to: T1 })
  assert.deepEqual(
    r.buckets.map((b) => b.difference),
    [0, 7],
  )
  assert.deepEqual(
    [r.complete, r.verdict, r.missing, r.total.produced.messages, r.total.consumed.messages, r.total.consumed.bytes],
    [false, 'missing', 7, 80, 73, 7300],
  )
  assert.match(r.text, /verdict: missing 7\n/)
})

void test('republished counts (same reporter id and seq) are counted once; undecodable records skipped', async () => {
  const topic = uniqueTopic('audited-dup')
  const auditTopic = uniqueTopic('audit')
  await admin.createTopics({ topics: [auditTopic], partitions: 2, replicas: 1 })
  const count = (side: 'produce' | 'consume', messages: number) => ({
    side,
    topic,
    group: side === 'consume' ? 'g' : null,
    bucketStart: T0,
    bucketMs: MIN,
    outcome: 'success' as const,
    messages,
    bytes: messages * 5,
  })
  const record = (id: string, seq: number, side: 'produce' | 'consume', messages: number) =>
    encodeAuditRecord({
      v: 1,
      reporter: { id, clientId: 'x', host: 'h', pid: 1 },
      seq,
      publishedAt: Date.now(),
      counts: [count(side, messages)],
    })
  // A plain (non-idempotent) producer sends the same record again, as a resend by a new producer would.
  const producer = new Producer({
    clientId: 'audit-dup',
    bootstrapBrokers: [broker.bootstrap],
    acks: ProduceAcks.ALL,
    idempotent: false,
  })
  try {
    await producer.send({
      messages: [{ topic: auditTopic, key: Buffer.from('P'), value: record('P', 0, 'produce', 10), partition: 0 }],
    })
    await producer.send({
      messages: [{ topic: auditTopic, key: Buffer.from('P'), value: record('P', 0, 'produce', 10), partition: 0 }],
    })
    await producer.send({
      messages: [{ topic: auditTopic, key: Buffer.from('P'), value: record('P', 1, 'produce', 2), partition: 0 }],
    })
    await producer.send({
      messages: [{ topic: auditTopic, key: Buffer.from('C'), value: record('C', 0, 'consume', 12), partition: 1 }],
    })
    await producer.send({
      messages: [{ topic: auditTopic, key: Buffer.from('C'), value: record('C', 0, 'consume', 12), partition: 1 }],
    })
    await producer.send({
      messages: [{ topic: auditTopic, key: Buffer.from('junk'), value: Buffer.from('not json'), partition: 1 }],
    })
  } finally {
    await producer.close()
  }
  const read = await readAuditRecords({ bootstrap: broker.bootstrap, auditTopic })
  assert.deepEqual([read.records.length, read.invalid], [5, 1])
  const r = await runAuditReport({ bootstrap: broker.bootstrap, auditTopic, topic, group: 'g', from: T0, to: T1 })
  assert.deepEqual(
    [r.total.produced.messages, r.total.consumed.messages, r.duplicateRecords, r.invalidRecords, r.complete],
    [12, 12, 2, 1, true],
  )
})

void test('a missing audit topic reads as no counts', async () => {
  const r = await runAuditReport({
    bootstrap: broker.bootstrap,
    auditTopic: uniqueTopic('no-audit'),
    topic: 't',
    group: 'g',
    from: T0,
    to: T1,
  })
  assert.deepEqual([r.recordsRead, r.buckets.length, r.complete], [0, 0, true])
  assert.match(r.text, /no audit counts in this window/)
})

void test('real produce + consume of N messages with the counters around them: the audit is complete', async () => {
  const N = 300
  const topic = uniqueTopic('audited-real')
  const group = uniqueTopic('audited-group')
  const auditTopic = uniqueTopic('audit')
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 })
  const errors: Error[] = []
  const produced = new AuditCounter({ side: 'produce' })
  const consumed = new AuditCounter({ side: 'consume', group })
  // Timer-driven publishing while the clients run, and the remainder on close.
  const pp = new AuditPublisher({
    bootstrap: broker.bootstrap,
    counter: produced,
    auditTopic,
    intervalMs: 100,
    clientId: 'real-producer',
    onError: (e) => errors.push(e),
  })
  const cp = new AuditPublisher({
    bootstrap: broker.bootstrap,
    counter: consumed,
    auditTopic,
    intervalMs: 100,
    clientId: 'real-consumer',
    onError: (e) => errors.push(e),
  })
  const start = Date.now()
  const from = Math.floor((start - 120_000) / MIN) * MIN
  const producer = new Producer({
    clientId: 'real-producer',
    bootstrapBrokers: [broker.bootstrap],
    serializers: stringSerializers,
    acks: ProduceAcks.ALL,
    idempotent: true,
  })
  const consumer = new Consumer({
    clientId: 'real-consumer',
    groupId: group,
    bootstrapBrokers: [broker.bootstrap],
    deserializers: stringDeserializers,
    maxWaitTime: 100,
  })
  try {
    for (let batch = 0; batch < N / 50; batch++) {
      const messages = Array.from({ length: 50 }, (_, i) => {
        const n = batch * 50 + i
        // Timestamps spread over two minutes before now, so several buckets are involved.
        return {
          topic,
          key: `k${n}`,
          value: `v${n}-${'x'.repeat(n % 40)}`,
          timestamp: BigInt(start - (n % 120) * 1000),
        }
      })
      for (const m of messages) produced.record(topic, m.timestamp, 'attempt', auditBytes(m.key, m.value))
      try {
        await producer.send({ messages })
        for (const m of messages) produced.record(topic, m.timestamp, 'success', auditBytes(m.key, m.value))
      } catch (err) {
        for (const m of messages) produced.record(topic, m.timestamp, 'failure', auditBytes(m.key, m.value))
        throw err
      }
    }
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: true })
    let seen = 0
    for await (const m of stream) {
      consumed.record(m.topic, m.timestamp, 'success', auditBytes(m.key, m.value))
      if (++seen === N) break
    }
    await stream.close()
  } finally {
    await consumer.close(true)
    await producer.close()
  }
  await pp.close()
  await cp.close()
  assert.deepEqual(errors, [])
  const r = await runAuditReport({ bootstrap: broker.bootstrap, auditTopic, topic, group, from, to: from + 4 * MIN })
  assert.equal(r.total.produced.messages, N)
  assert.equal(r.total.produceAttempts.messages, N)
  assert.deepEqual(r.total.consumed, r.total.produced)
  assert.ok(r.buckets.length >= 2, `several buckets: ${r.text}`)
  assert.equal(r.complete, true, r.text)
})
