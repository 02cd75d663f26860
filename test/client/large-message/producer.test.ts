// LargeMessageProducer over a fake send function: segments handed over in order, at most
// maxInFlight outstanding; one settlement after every ack, with the last segment's offset; a
// failure rejects once with LargeMessageSendError naming how many segments were sent.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  LargeMessageProducer,
  LargeMessageSendError,
  type RecordAck,
} from '../../../src/client/large-message/producer.ts'
import {
  decodeLargeMessageHeader,
  LARGE_MESSAGE_HEADER,
  type OutgoingRecord,
} from '../../../src/client/large-message/segment.ts'

function fakeLog(failAt = -1) {
  const sent: OutgoingRecord[] = []
  let inFlight = 0
  let maxSeen = 0
  const send = async (r: OutgoingRecord): Promise<RecordAck> => {
    const i = sent.length
    sent.push(r)
    inFlight++
    maxSeen = Math.max(maxSeen, inFlight)
    await new Promise((res) => setTimeout(res, Math.random() * 3))
    inFlight--
    if (i === failAt) throw new Error('NOT_ENOUGH_REPLICAS')
    return { topic: r.topic, partition: r.partition ?? 0, offset: BigInt(100 + i) }
  }
  return { sent, send, maxInFlight: () => maxSeen }
}

void test('a large value is sent as segments; resolves once with the last segment offset', async () => {
  const f = fakeLog()
  const p = new LargeMessageProducer({ send: f.send, segmentSize: 10, maxInFlight: 3 })
  const value = Buffer.from('x'.repeat(95))
  const ack = await p.send({ topic: 't', key: null, value, headers: [['a', Buffer.from('1')]] })
  assert.equal(f.sent.length, 10)
  assert.deepEqual(
    { ...ack, messageId: undefined },
    { topic: 't', partition: 0, offset: 109n, messageId: undefined, segments: 10 },
  )
  assert.ok(ack.messageId !== null && ack.messageId.length === 16)
  assert.ok(f.maxInFlight() <= 3 && f.maxInFlight() > 1)
  assert.deepEqual(Buffer.concat(f.sent.map((s) => s.value!)), value)
  for (const [i, s] of f.sent.entries()) {
    assert.deepEqual(s.key, ack.messageId)
    const h = decodeLargeMessageHeader(s.headers!.find(([k]) => k === LARGE_MESSAGE_HEADER)![1])
    assert.ok(h.ok)
    assert.equal(h.header.segmentNumber, i)
  }
})

void test('a small value is sent as is', async () => {
  const f = fakeLog()
  const p = new LargeMessageProducer({ send: f.send, segmentSize: 10 })
  const r = { topic: 't', partition: 3, key: Buffer.from('k'), value: Buffer.from('small') }
  assert.deepEqual(await p.send(r), { topic: 't', partition: 3, offset: 100n, messageId: null, segments: 1 })
  assert.deepEqual(f.sent, [r])
})

void test('a failed segment rejects once with LargeMessageSendError; nothing after it is handed over', async () => {
  const f = fakeLog(4)
  const p = new LargeMessageProducer({ send: f.send, segmentSize: 10, maxInFlight: 2 })
  const err = await p.send({ topic: 't', key: null, value: Buffer.alloc(100) }).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(err instanceof LargeMessageSendError)
  assert.equal(err.total, 10)
  // Segments 0-3 succeed and 4 fails; with 2 in flight, up to 2 later segments may have been
  // handed over (and acknowledged) before the failure came back, never more.
  assert.ok(err.sent >= 4 && err.sent <= 6, `sent ${err.sent}`)
  assert.match(err.message, /^Sent \d of 10 segments: NOT_ENOUGH_REPLICAS/)
  assert.ok(f.sent.length <= 7, `handed over ${f.sent.length}`)
})
