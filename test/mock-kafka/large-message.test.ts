// In-line large messages (src/client/large-message/) through librdkafka's three-broker mock
// cluster (test/helpers/mock-kafka.ts), sent by the reliable producer while the partition's
// leader moves across the brokers and a Produce request is answered NOT_LEADER_OR_FOLLOWER. The
// log, read back and reassembled by MessageAssembler, must hold every message whole, once, in
// send order, at the offset it was acknowledged with.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { MessageAssembler } from '../../src/client/large-message/assembler.ts'
import { LargeMessageProducer, type LargeMessageAck } from '../../src/client/large-message/producer.ts'
import { decodeLargeMessageHeader, LARGE_MESSAGE_HEADER } from '../../src/client/large-message/segment.ts'
import { ReliableProducer } from '../../src/client/reliable-producer.ts'
import { startMockKafka, type MockKafka } from '../helpers/mock-kafka.ts'
import { readPartitionRecords } from '../helpers/raw-client.ts'

let mock: MockKafka

before(async () => {
  mock = await startMockKafka(3)
})

after(async () => {
  await mock.stop()
})

const sha = (b: Buffer | null) =>
  createHash('sha256')
    .update(b ?? Buffer.alloc(0))
    .digest('hex')

void test('large messages through the mock while the leader moves: each reassembled whole, once, in order', async () => {
  const topic = 'lm-leader-move'
  await mock.topic(topic, 1, 3)
  const reliable = new ReliableProducer({
    bootstrap: mock.brokers,
    retryBackoffMs: 20,
    maxRetryBackoffMs: 200,
    requestTimeoutMs: 3000,
  })
  const producer = new LargeMessageProducer({
    send: (r) => reliable.send({ ...r, timestamp: r.timestamp === undefined ? undefined : Number(r.timestamp) }),
    segmentSize: 100_000,
    maxInFlight: 5,
  })
  // Under 5 MB in all: the mock keeps only about that much of a partition and drops the oldest.
  const values = Array.from({ length: 12 }, (_, i) => randomBytes(250_000 + i * 15_000))

  // Each message's send races one leader move (the move is issued as the first segment goes
  // out), so the count of moves does not depend on how fast this machine is.
  const acks: LargeMessageAck[] = []
  let moves = 0
  for (const [i, value] of values.entries()) {
    const move = (async () => {
      await mock.leader(topic, 0, (i % 3) + 1)
      if (i === 2) await mock.errors(0, 6, 6)
      moves++
    })()
    acks.push(await producer.send({ topic, partition: 0, key: null, value }))
    await move
  }
  await reliable.close()
  assert.equal(moves, values.length, 'the leader moved once per message')
  assert.ok(
    acks.every((a) => a.segments > 1),
    'every message was split',
  )

  await mock.leader(topic, 0, 1)
  const records = await readPartitionRecords(Number(mock.brokers[0].split(':')[1]), topic, 0)
  const assembler = new MessageAssembler({ onDrop: 'throw' })
  const delivered: { offset: number; digest: string }[] = []
  for (const r of records) {
    const raw = r.headers.find((h) => h.key === LARGE_MESSAGE_HEADER)?.value
    const decoded = raw == null ? null : decodeLargeMessageHeader(raw)
    if (decoded !== null && !decoded.ok) assert.fail(`an _lm header does not decode: ${decoded.error}`)
    const result = assembler.process('0', { offset: r.offset, header: decoded?.header ?? null, value: r.value })
    if (result.kind === 'message') delivered.push({ offset: result.message.offset, digest: sha(result.message.value) })
  }
  assert.deepEqual(
    delivered.map((d) => d.digest),
    values.map(sha),
    'every message whole, once, in send order',
  )
  assert.deepEqual(
    delivered.map((d) => BigInt(d.offset)),
    acks.map((a) => BigInt(a.offset)),
    'each at the offset it was acknowledged with',
  )
  assert.equal(
    records.length,
    acks.reduce((n, a) => n + a.segments, 0),
    'no segment written twice',
  )
})
