// The whole client layer together while the broker dies: large messages (3 MB through a 1 MB
// broker) sent by a LargeMessageProducer over the ReliableProducer while the broker is killed
// with SIGKILL and restarted twice; then a LargeMessageConsumer in a group reads them. Every
// message arrives whole, once, in order, and the audit report shows equal counts on both sides.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { Consumer } from '@platformatic/kafka'
import { AuditCounter, auditBytes } from '../../src/client/audit/counter.ts'
import { AuditPublisher } from '../../src/client/audit/publisher.ts'
import { runAuditReport } from '../../src/client/audit/report.ts'
import { LargeMessageConsumer } from '../../src/client/large-message/consumer.ts'
import { LargeMessageProducer } from '../../src/client/large-message/producer.ts'
import { ReliableProducer } from '../../src/client/reliable-producer.ts'
import { type BrokerProcess, removeDir, startBroker, tempDir } from '../helpers/broker-process.ts'

const MESSAGES = 24
const SIZE = 3_000_000
const CONFIG = { 'message.max.bytes': '1048576', 'group.initial.rebalance.delay.ms': '0', 'num.partitions': '2' }

function payload(i: number): Buffer {
  // Deterministic content, different per message, so a mix-up of segments would show.
  const out = Buffer.alloc(SIZE)
  let h = createHash('sha256').update(`message-${i}`).digest()
  for (let pos = 0; pos < SIZE; pos += h.length) {
    h.copy(out, pos)
    h = createHash('sha256').update(h).digest()
  }
  return out
}

void test(
  'large messages survive broker SIGKILLs whole, once, in order, with equal audit counts',
  { timeout: 180_000 },
  async () => {
    const dataDir = tempDir('e2e')
    let broker: BrokerProcess = await startBroker({ dataDir, config: CONFIG })
    const bootstrap = broker.bootstrap
    const started = Date.now()
    const producer = new ReliableProducer({ bootstrap: [bootstrap], clientId: 'e2e', autocreateTopics: true })
    const large = new LargeMessageProducer({
      send: (r) => producer.send({ ...r, timestamp: r.timestamp === undefined ? undefined : Number(r.timestamp) }),
    })
    const produced = new AuditCounter({ side: 'produce' })
    const acks: { i: number; partition: number; offset: bigint }[] = []
    const sending = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        const value = payload(i)
        const timestamp = Date.now()
        produced.record('e2e', timestamp, 'attempt', auditBytes(null, value))
        const ack = await large.send({ topic: 'e2e', key: Buffer.from(`key-${i % 4}`), value, timestamp })
        produced.record('e2e', timestamp, 'success', auditBytes(null, value))
        acks.push({ i, partition: ack.partition, offset: BigInt(ack.offset) })
      }
    })()
    for (const after of [4, 12]) {
      while (acks.length < after) await new Promise((r) => setTimeout(r, 20))
      await broker.kill()
      broker = await startBroker({ dataDir, port: broker.port, config: CONFIG })
    }
    await sending
    await producer.close()
    assert.equal(acks.length, MESSAGES)
    const publisher = new AuditPublisher({ bootstrap: [bootstrap], counter: produced, intervalMs: 0 })
    await publisher.close()

    const consumed = new AuditCounter({ side: 'consume', group: 'e2e-group' })
    const seen = new Map<number, { i: number; offset: bigint }[]>()
    const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      clientId: 'e2e-consumer',
      groupId: 'e2e-group',
      bootstrapBrokers: [bootstrap],
      autocommit: false,
      maxWaitTime: 200,
    })
    const reader = new LargeMessageConsumer({ consumer, topics: ['e2e'] })
    let count = 0
    await reader.run((m) => {
      const i = Number(/^key-(\d+)$/.exec(m.key!.toString())![1])
      const index = acks.find((a) => a.partition === m.partition && a.offset === m.offset)?.i
      assert.ok(index !== undefined, `message at ${m.partition}/${m.offset} was acknowledged`)
      assert.equal(index % 4, i)
      assert.ok(m.value!.equals(payload(index)), `message ${index} arrives whole and intact`)
      consumed.record(m.topic, Number(m.timestamp), 'success', auditBytes(null, m.value), 'e2e-group')
      const list = seen.get(m.partition) ?? []
      list.push({ i: index, offset: m.offset })
      seen.set(m.partition, list)
      if (++count === MESSAGES) setImmediate(() => void reader.close())
    })
    const all = [...seen.values()]
      .flat()
      .map((s) => s.i)
      .sort((a, b) => a - b)
    assert.deepEqual(
      all,
      Array.from({ length: MESSAGES }, (_, i) => i),
      'every message exactly once',
    )
    for (const list of seen.values()) {
      for (let k = 1; k < list.length; k++) {
        assert.ok(list[k].offset > list[k - 1].offset && list[k].i > list[k - 1].i, 'in order per partition')
      }
    }
    const consumerPublisher = new AuditPublisher({ bootstrap: [bootstrap], counter: consumed, intervalMs: 0 })
    await consumerPublisher.close()
    const report = await runAuditReport({
      bootstrap: [bootstrap],
      topic: 'e2e',
      group: 'e2e-group',
      from: started - 60_000,
      to: Date.now() + 60_000,
    })
    assert.equal(report.complete, true, report.text)
    assert.equal(report.total.produced.messages, MESSAGES)
    assert.equal(report.total.consumed.messages, MESSAGES)
    assert.equal(report.total.consumed.bytes, report.total.produced.bytes)
    assert.equal(await broker.stop(), 0)
    removeDir(dataDir)
  },
)
