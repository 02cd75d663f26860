// Idempotence across SIGKILL: idempotent producers pipeline acks=all batches to a topic whose
// small segments roll often, the broker is killed, restarted on the same data, and the producers
// resend what was in flight and then their last five acknowledged batches per partition, as a
// client that lost its answers would. The resent acknowledged batches must come back as
// duplicates with their original offsets, nothing may be appended twice, and in the end every
// record is in the log exactly once, in each producer's order, at its acknowledged offset.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type CreateTopicsResponse } from '../../src/protocol/messages/create-topics-response.ts'
import { type FetchResponse } from '../../src/protocol/messages/fetch-response.ts'
import { type InitProducerIdResponse } from '../../src/protocol/messages/init-producer-id-response.ts'
import { type ListOffsetsResponse } from '../../src/protocol/messages/list-offsets-response.ts'
import { type ProduceResponse } from '../../src/protocol/messages/produce-response.ts'
import {
  BATCH_HEADER_SIZE,
  decodeRecords,
  encodeRecordBatch,
  readBatchHeader,
} from '../../src/protocol/record-batch.ts'
import { type BrokerProcess, removeDir, startBroker, tempDir } from '../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../helpers/raw-client.ts'

const TOPIC = 'idem-crash'
const PARTITIONS = 3
const PRODUCERS = 2
const KILLS = 4
const IN_FLIGHT = 5

interface Batch {
  producer: number
  partition: number
  seq: number
  values: string[]
  /** Acknowledged base offset. */
  offset?: number
}

interface Producer {
  index: number
  pid: number
  batches: Batch[]
  nextSeq: number[]
  counter: number
}

function newBatch(p: Producer): Batch {
  const partition = p.counter % PARTITIONS
  const n = 1 + (p.counter % 4)
  p.counter++
  const values = Array.from({ length: n }, (_, i) => `p${p.index}-${partition}-${p.nextSeq[partition] + i}`)
  const b: Batch = { producer: p.index, partition, seq: p.nextSeq[partition], values }
  p.nextSeq[partition] += n
  p.batches.push(b)
  return b
}

function frame(id: number, p: Producer, b: Batch): Buffer {
  const records = encodeRecordBatch({
    producerId: p.pid,
    producerEpoch: 0,
    baseSequence: b.seq,
    records: b.values.map((v) => ({ key: Buffer.from(v), value: Buffer.from(`${v}-${'v'.repeat(60)}`) })),
  })
  return requestFrame(0, 7, id, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30000,
    topicData: [{ name: TOPIC, partitionData: [{ index: b.partition, records }] }],
  })
}

function acknowledge(b: Batch, errorCode: number, baseOffset: number): void {
  assert.equal(errorCode, 0, `batch p${b.producer}/${b.partition}/seq ${b.seq} refused with ${errorCode}`)
  if (b.offset !== undefined) assert.equal(baseOffset, b.offset, 'a batch acknowledged twice keeps its offset')
  b.offset = baseOffset
}

/** One producer's connection: resends its unacknowledged batches, then pipelines new ones until the socket dies or `stop`. */
async function run(port: number, p: Producer, stop: () => boolean): Promise<void> {
  let c: RawClient
  try {
    c = await RawClient.connect(port)
  } catch {
    return
  }
  let dead = false
  void c.closed.then(() => {
    dead = true
  })
  const queue = p.batches.filter((b) => b.offset === undefined)
  const inflight = new Map<number, Batch>()
  let corr = 0
  try {
    for (;;) {
      while (!stop() && !dead && inflight.size < IN_FLIGHT) {
        const b = queue.shift() ?? newBatch(p)
        inflight.set(++corr, b)
        c.write(frame(corr, p, b))
      }
      if (dead || inflight.size === 0) break
      const f = await Promise.race([c.nextFrame(60_000), c.closed.then(() => null)])
      if (f === null) break
      const { correlationId, body } = parseResponse<ProduceResponse>(0, 7, f)
      const r = body.responses[0].partitionResponses[0]
      acknowledge(inflight.get(correlationId)!, r.errorCode, r.baseOffset)
      inflight.delete(correlationId)
    }
  } finally {
    c.close()
  }
}

async function call<T>(c: RawClient, apiKey: number, version: number, body: unknown): Promise<T> {
  c.write(requestFrame(apiKey, version, 1, body))
  return parseResponse<T>(apiKey, version, await c.nextFrame()).body
}

async function logEnd(c: RawClient, partition: number): Promise<number> {
  const res = await call<ListOffsetsResponse>(c, 2, 1, {
    replicaId: -1,
    topics: [{ name: TOPIC, partitions: [{ partitionIndex: partition, timestamp: -1 }] }],
  })
  return res.topics[0].partitions[0].offset
}

async function readPartition(c: RawClient, partition: number): Promise<{ offset: number; key: string }[]> {
  const out: { offset: number; key: string }[] = []
  let offset = 0
  for (;;) {
    const {
      partitions: [p],
    } = (
      await call<FetchResponse>(c, 1, 4, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 4 << 20,
        isolationLevel: 0,
        topics: [{ topic: TOPIC, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 4 << 20 }] }],
      })
    ).responses[0]
    assert.equal(p.errorCode, 0)
    const records = p.records ?? Buffer.alloc(0)
    if (records.length === 0) return out
    for (let pos = 0; pos + BATCH_HEADER_SIZE <= records.length;) {
      const h = readBatchHeader(records, pos)
      const size = h.batchLength + 12
      if (pos + size > records.length) break
      for (const r of decodeRecords(records.subarray(pos, pos + size)))
        if (r.offset >= offset) out.push({ offset: r.offset, key: r.key!.toString() })
      offset = h.baseOffset + h.lastOffsetDelta + 1
      pos += size
    }
    if (offset >= p.highWatermark) return out
  }
}

void test(
  `idempotent producers across ${KILLS} SIGKILLs: retries recognised with their original offsets, every record exactly once`,
  { timeout: 300_000 },
  async (t) => {
    const dataDir = tempDir('idem-crash')
    let broker: BrokerProcess = await startBroker({ dataDir })
    const port = broker.port
    const admin = await RawClient.connect(port)
    const created = await call<CreateTopicsResponse>(admin, 19, 4, {
      topics: [
        {
          name: TOPIC,
          numPartitions: PARTITIONS,
          replicationFactor: 1,
          assignments: [],
          configs: [{ name: 'segment.bytes', value: '8192' }],
        },
      ],
      timeoutMs: 5000,
      validateOnly: false,
    })
    assert.equal(created.topics[0].errorCode, 0)
    const producers: Producer[] = []
    for (let i = 0; i < PRODUCERS; i++) {
      const init = await call<InitProducerIdResponse>(admin, 22, 4, {
        transactionalId: null,
        transactionTimeoutMs: -1,
        producerId: -1,
        producerEpoch: -1,
      })
      producers.push({
        index: i,
        pid: init.producerId,
        batches: [],
        nextSeq: new Array<number>(PARTITIONS).fill(0),
        counter: i,
      })
    }
    admin.close()
    const maxPid = () => Math.max(...producers.map((p) => p.pid))
    const acked = () => producers.reduce((n, p) => n + p.batches.filter((b) => b.offset !== undefined).length, 0)

    let duplicatesChecked = 0
    // Batches in flight at a kill: written before it (so their resend was a duplicate) or not.
    let inflightWritten = 0
    let inflightLost = 0
    for (let k = 0; k <= KILLS; k++) {
      // Produce until some more batches are acknowledged, then (except the last round) kill at a varying moment.
      let paused = false
      const target = acked() + 60
      const loops = producers.map(async (p) => {
        while (!paused) {
          await run(port, p, () => paused)
          if (!paused) await sleep(10)
        }
      })
      while (acked() < target) await sleep(5)
      if (k === KILLS) {
        paused = true
        await Promise.all(loops)
        break
      }
      await sleep(Math.floor(Math.random() * 100))
      paused = true
      await broker.kill()
      await Promise.all(loops)
      broker = await startBroker({ dataDir, port })

      // After the restart: each producer resends what was in flight (its fate unknown), then its
      // last five acknowledged batches per partition, which must be recognised as duplicates.
      const c = await RawClient.connect(port)
      const ends = await Promise.all(Array.from({ length: PARTITIONS }, (_, partition) => logEnd(c, partition)))
      for (const p of producers) {
        for (const b of p.batches.filter((x) => x.offset === undefined)) {
          c.write(frame(1, p, b))
          const r = parseResponse<ProduceResponse>(0, 7, await c.nextFrame()).body.responses[0].partitionResponses[0]
          acknowledge(b, r.errorCode, r.baseOffset)
          if (r.baseOffset < ends[b.partition]) inflightWritten++
          else inflightLost++
        }
      }
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const end = await logEnd(c, partition)
        for (const p of producers) {
          for (const b of p.batches.filter((x) => x.partition === partition).slice(-5)) {
            c.write(frame(1, p, b))
            const r = parseResponse<ProduceResponse>(0, 7, await c.nextFrame()).body.responses[0].partitionResponses[0]
            assert.deepEqual(
              [r.errorCode, r.baseOffset],
              [0, b.offset],
              `after kill ${k + 1}: p${p.index}/${partition}/seq ${b.seq} is a duplicate at its original offset`,
            )
            duplicatesChecked++
          }
        }
        assert.equal(await logEnd(c, partition), end, 'the duplicates appended nothing')
      }
      // Producer ids are never reused after a crash.
      const init = await call<InitProducerIdResponse>(c, 22, 4, {
        transactionalId: null,
        transactionTimeoutMs: -1,
        producerId: -1,
        producerEpoch: -1,
      })
      assert.ok(
        init.producerId > maxPid(),
        `new producer id ${init.producerId} after a crash is above every earlier one`,
      )
      c.close()
    }

    const c = await RawClient.connect(port)
    let total = 0
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const records = await readPartition(c, partition)
      records.forEach((r, i) => assert.equal(r.offset, i))
      const keys = records.map((r) => r.key)
      assert.equal(new Set(keys).size, keys.length, `partition ${partition}: no record appears twice`)
      const at = new Map(records.map((r) => [r.key, r.offset]))
      for (const p of producers) {
        const mine = p.batches.filter((b) => b.partition === partition)
        const expected = mine.flatMap((b) => b.values)
        assert.deepEqual(
          keys.filter((key) => key.startsWith(`p${p.index}-`)),
          expected,
          `partition ${partition}: producer ${p.index}'s records exactly once, in order`,
        )
        for (const b of mine)
          b.values.forEach((v, i) => assert.equal(at.get(v), b.offset! + i, `${v} at its acknowledged offset`))
        total += expected.length
      }
    }
    c.close()
    t.diagnostic(
      `${total} records; ${duplicatesChecked} acknowledged batches resent as duplicates; in flight at the kills: ${inflightWritten} already written (resend answered as a duplicate), ${inflightLost} not (appended on resend)`,
    )
    assert.ok(duplicatesChecked >= KILLS * PARTITIONS * PRODUCERS * 5)
    assert.ok(total > 0)
    assert.equal(await broker.stop(), 0)
    removeDir(dataDir)
  },
)
