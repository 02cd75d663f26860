// The broker's wire handling, with exact bytes: version negotiation, pipelining, and hostile
// input that must close only the offending connection.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type ApiVersionsResponse } from '../../src/protocol/messages/api-versions-response.ts'
import { type MetadataResponse } from '../../src/protocol/messages/metadata-response.ts'
import { type BrokerProcess, removeDir, startBroker } from '../helpers/broker-process.ts'
import { parseResponse, RawClient, rawFrame, requestFrame } from '../helpers/raw-client.ts'

let broker: BrokerProcess

before(async () => {
  broker = await startBroker({ config: { 'socket.request.max.bytes': '1048576' } })
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

async function metadataStillWorks(): Promise<void> {
  const c = await RawClient.connect(broker.port)
  c.write(requestFrame(3, 1, 99, { topics: null }))
  const { correlationId, body } = parseResponse<MetadataResponse>(3, 1, await c.nextFrame())
  assert.equal(correlationId, 99)
  assert.equal(body.brokers[0].port, broker.port)
  c.close()
}

void test('ApiVersions v0..v3 advertise Produce, Fetch and Metadata from version 0', async () => {
  const c = await RawClient.connect(broker.port)
  for (const v of [0, 1, 2, 3]) {
    c.write(requestFrame(18, v, v, { clientSoftwareName: 'test', clientSoftwareVersion: '1.0' }))
    const { correlationId, body } = parseResponse<ApiVersionsResponse>(18, v, await c.nextFrame())
    assert.equal(correlationId, v)
    assert.equal(body.errorCode, 0)
    for (const key of [0, 1, 3]) {
      const api = body.apiKeys.find((a) => a.apiKey === key)
      assert.ok(api, `api ${key} advertised`)
      assert.equal(api.minVersion, 0)
    }
  }
  c.close()
})

void test('an ApiVersions version from the future gets error 35 in v0 format (KIP-511)', async () => {
  const c = await RawClient.connect(broker.port)
  c.write(rawFrame(18, 9, 5, Buffer.from([0x00])))
  const { correlationId, body } = parseResponse<ApiVersionsResponse>(18, 0, await c.nextFrame())
  assert.equal(correlationId, 5)
  assert.equal(body.errorCode, 35)
  assert.deepEqual(body.apiKeys, [{ apiKey: 18, minVersion: 0, maxVersion: 3 }])
  c.close()
})

void test('ApiVersions v3 with an invalid client software name gets INVALID_REQUEST', async () => {
  const c = await RawClient.connect(broker.port)
  c.write(requestFrame(18, 3, 1, { clientSoftwareName: '-bad name-', clientSoftwareVersion: '1' }))
  const { body } = parseResponse<ApiVersionsResponse>(18, 3, await c.nextFrame())
  assert.equal(body.errorCode, 42)
  c.close()
})

void test('pipelined requests are answered in order (kafka-python probe)', async () => {
  const c = await RawClient.connect(broker.port)
  const frames = [requestFrame(18, 0, 1, {}), requestFrame(3, 0, 2, { topics: [] })]
  for (let i = 3; i < 40; i++) frames.push(requestFrame(i % 2 === 0 ? 18 : 3, 0, i, i % 2 === 0 ? {} : { topics: [] }))
  c.write(Buffer.concat(frames))
  for (let i = 1; i < 40; i++) {
    const frame = await c.nextFrame()
    assert.equal(frame.readInt32BE(0), i)
  }
  c.close()
})

const hostile: [string, Buffer][] = [
  ['a negative frame size', Buffer.from([0xff, 0xff, 0xff, 0xf0])],
  ['a frame larger than socket.request.max.bytes', Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0])],
  ['a frame too short for a header', Buffer.from([0, 0, 0, 3, 0, 0, 0])],
  ['an unknown API key', rawFrame(999, 0, 1, Buffer.alloc(0))],
  ['an unsupported Metadata version', rawFrame(3, 99, 1, Buffer.alloc(0))],
  ['a Metadata body with a hostile array length', rawFrame(3, 1, 1, Buffer.from([0x7f, 0xff, 0xff, 0xff]))],
  ['a truncated Produce body', rawFrame(0, 7, 1, Buffer.from([0xff, 0xff, 0, 1]))],
  ['a client id longer than the frame', Buffer.from([0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff])],
]

for (const [what, bytes] of hostile) {
  void test(`${what} closes that connection only`, async () => {
    const bystander = await RawClient.connect(broker.port)
    const c = await RawClient.connect(broker.port)
    c.write(bytes)
    await c.closed
    bystander.write(requestFrame(18, 0, 7, {}))
    assert.equal((await bystander.nextFrame()).readInt32BE(0), 7)
    bystander.close()
    await metadataStillWorks()
  })
}

void test('a client that sends half a frame and stalls does not hold up others', async () => {
  const slow = await RawClient.connect(broker.port)
  const frame = requestFrame(3, 1, 1, { topics: null })
  slow.write(frame.subarray(0, frame.length - 3))
  await metadataStillWorks()
  slow.write(frame.subarray(frame.length - 3))
  assert.equal((await slow.nextFrame()).readInt32BE(0), 1)
  slow.close()
})

void test('many connections opened and dropped mid-request leave the broker serving', async () => {
  const clients = await Promise.all(Array.from({ length: 50 }, () => RawClient.connect(broker.port)))
  for (const c of clients) {
    c.write(requestFrame(3, 1, 1, { topics: null }).subarray(0, 9))
    c.close()
  }
  await metadataStillWorks()
  assert.doesNotMatch(broker.stderr(), /"level":"error"/)
})
