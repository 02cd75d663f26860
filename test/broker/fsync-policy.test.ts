// cortado.fsync: with `ack` (the default) every acknowledged produce waits for an fdatasync
// round; with `none` acknowledgements come from the page cache, as with Kafka's defaults.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type ProduceResponse } from '../../src/protocol/messages/produce-response.ts'
import { encodeRecordBatch } from '../../src/protocol/record-batch.ts'
import { removeDir, startBroker } from '../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../helpers/raw-client.ts'

async function fsyncRoundsFor50SequentialProduces(policy: string): Promise<number> {
  const broker = await startBroker({ config: { 'cortado.fsync': policy }, metrics: true })
  const c = await RawClient.connect(broker.port)
  const rounds = async () => {
    const text = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
    return Number(/^cortado_broker_fsync_round_seconds_count (\d+)/m.exec(text)![1])
  }
  const records = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('x') }] })
  const produce = async (id: number) => {
    c.write(
      requestFrame(0, 7, id, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: 'fsync', partitionData: [{ index: 0, records }] }],
      }),
    )
    return parseResponse<ProduceResponse>(0, 7, await c.nextFrame()).body.responses[0].partitionResponses[0]
  }
  c.write(requestFrame(3, 4, 0, { topics: [{ name: 'fsync' }], allowAutoTopicCreation: true }))
  await c.nextFrame()
  await produce(1)
  const before = await rounds()
  for (let i = 0; i < 50; i++) assert.equal((await produce(i + 2)).errorCode, 0)
  const after = await rounds()
  c.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
  return after - before
}

void test('cortado.fsync=ack fdatasyncs before each acknowledgement; =none does not', async () => {
  assert.ok((await fsyncRoundsFor50SequentialProduces('ack')) >= 50)
  assert.equal(await fsyncRoundsFor50SequentialProduces('none'), 0)
})
