// Durability across SIGKILL: producers send with acks=all while the broker is killed and
// restarted several times. Afterwards every acknowledged record is in the log exactly once, at
// the offset it was acknowledged with, in order; records whose fate was unknown (in flight at
// the kill) appear at most once; nothing else appears. Then a machine crash: the broker killed and
// every segment write since its last sync thrown away, as a power cut takes the page cache; the
// journal brings back what it acknowledged.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type CreateTopicsResponse } from '../../src/protocol/messages/create-topics-response.ts'
import { type ProduceResponse } from '../../src/protocol/messages/produce-response.ts'
import { encodeRecordBatch } from '../../src/protocol/record-batch.ts'
import { type BrokerProcess, removeDir, startBroker, tempDir } from '../helpers/broker-process.ts'
import { parseResponse, RawClient, readPartitionRecords, requestFrame } from '../helpers/raw-client.ts'

const TOPIC = 'crash'
const PARTITIONS = 3
const KILLS = 8
const CONNECTIONS = 3
const IN_FLIGHT = 5

interface Sent {
  partition: number
  ids: string[]
}

interface Acked extends Sent {
  baseOffset: number
}

/** One producer connection: pipelines produce requests until its socket dies. */
async function produceUntilClosed(
  port: number,
  next: () => Sent,
  acked: Acked[],
  unknown: Set<string>,
  stop: () => boolean,
): Promise<void> {
  let client: RawClient
  try {
    client = await RawClient.connect(port)
  } catch {
    return
  }
  const inflight = new Map<number, Sent>()
  let correlation = 0
  let dead = false
  void client.closed.then(() => {
    dead = true
  })
  const send = () => {
    const sent = next()
    const id = ++correlation
    inflight.set(id, sent)
    const batch = encodeRecordBatch({
      records: sent.ids.map((i) => ({ key: Buffer.from(i), value: Buffer.from(`value-of-${i}`) })),
    })
    client.write(
      requestFrame(0, 7, id, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 30000,
        topicData: [{ name: TOPIC, partitionData: [{ index: sent.partition, records: batch }] }],
      }),
    )
  }
  try {
    while (!stop() && !dead) {
      while (inflight.size < IN_FLIGHT) send()
      const frame = await Promise.race([client.nextFrame(60_000), client.closed.then(() => null)])
      if (frame === null) break
      const { correlationId, body } = parseResponse<ProduceResponse>(0, 7, frame)
      const sent = inflight.get(correlationId)
      assert.ok(sent, `response for unknown correlation id ${correlationId}`)
      inflight.delete(correlationId)
      const p = body.responses[0].partitionResponses[0]
      if (p.errorCode === 0) acked.push({ ...sent, baseOffset: p.baseOffset })
      else for (const i of sent.ids) unknown.add(i)
    }
    // Drain what is still in flight when asked to stop.
    while (!dead && inflight.size > 0) {
      const frame = await Promise.race([client.nextFrame(60_000), client.closed.then(() => null)])
      if (frame === null) break
      const { correlationId, body } = parseResponse<ProduceResponse>(0, 7, frame)
      const sent = inflight.get(correlationId)!
      inflight.delete(correlationId)
      const p = body.responses[0].partitionResponses[0]
      if (p.errorCode === 0) acked.push({ ...sent, baseOffset: p.baseOffset })
      else for (const i of sent.ids) unknown.add(i)
    }
  } finally {
    for (const sent of inflight.values()) for (const i of sent.ids) unknown.add(i)
    client.close()
  }
}

/** Produce requests of 1..`most` records with ids `<prefix>1`, `<prefix>2`…, spread over the partitions. */
function recordIds(prefix: string, most: number): () => Sent {
  let counter = 0
  return () => {
    const n = 1 + (counter % most)
    const ids = Array.from({ length: n }, () => `${prefix}${++counter}`)
    return { partition: counter % PARTITIONS, ids }
  }
}

async function createTopic(port: number, configs: { name: string; value: string }[]): Promise<void> {
  const admin = await RawClient.connect(port)
  admin.write(
    requestFrame(19, 4, 1, {
      topics: [{ name: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1, assignments: [], configs }],
      timeoutMs: 5000,
      validateOnly: false,
    }),
  )
  const created = parseResponse<CreateTopicsResponse>(19, 4, await admin.nextFrame())
  assert.equal(created.body.topics[0].errorCode, 0)
  admin.close()
}

/** The .log files of every partition of every topic under a broker's data directory. */
function segmentFiles(dataDir: string): string[] {
  const logs = path.join(dataDir, 'logs')
  const files: string[] = []
  for (const topic of fs.readdirSync(logs))
    for (const partition of fs.readdirSync(path.join(logs, topic))) {
      const dir = path.join(logs, topic, partition)
      if (!fs.statSync(dir).isDirectory()) continue
      for (const name of fs.readdirSync(dir)) if (name.endsWith('.log')) files.push(path.join(dir, name))
    }
  return files
}

async function readPartition(
  port: number,
  partition: number,
): Promise<{ offset: number; key: string; value: string }[]> {
  return (await readPartitionRecords(port, TOPIC, partition)).map((r) => ({
    offset: r.offset,
    key: r.key!.toString(),
    value: r.value!.toString(),
  }))
}

void test(
  `acks=all records survive ${KILLS} SIGKILLs of the broker, once each and in order`,
  { timeout: 300_000 },
  async () => {
    const dataDir = tempDir('crash')
    let broker: BrokerProcess = await startBroker({ dataDir })
    const port = broker.port
    await createTopic(port, [{ name: 'segment.bytes', value: '65536' }])

    const acked: Acked[] = []
    const unknown = new Set<string>()
    const next = recordIds('r', 4)
    let stopping = false
    const producers = (async () => {
      while (!stopping) {
        await Promise.all(
          Array.from({ length: CONNECTIONS }, () => produceUntilClosed(port, next, acked, unknown, () => stopping)),
        )
        if (!stopping) await sleep(20)
      }
    })()

    for (let k = 0; k < KILLS; k++) {
      const before = acked.length
      // Let some writes be acknowledged, then kill at a moment that varies.
      while (acked.length < before + 50) await sleep(5)
      await sleep(Math.floor(Math.random() * 150))
      await broker.kill()
      broker = await startBroker({ dataDir, port })
    }
    const beforeStop = acked.length
    while (acked.length < beforeStop + 50) await sleep(5)
    stopping = true
    await producers

    const seen = new Map<string, number>()
    const logs = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => readPartition(port, p)))
    for (const [p, records] of logs.entries()) {
      records.forEach((r, i) => {
        assert.equal(r.offset, i, `partition ${p}: offsets are contiguous from 0`)
        assert.equal(r.value, `value-of-${r.key}`)
        seen.set(r.key, (seen.get(r.key) ?? 0) + 1)
      })
    }
    for (const a of acked) {
      const records = logs[a.partition]
      a.ids.forEach((id, i) => {
        const r = records[a.baseOffset + i]
        assert.ok(r !== undefined, `acknowledged ${id} at ${a.partition}/${a.baseOffset + i} is missing`)
        assert.equal(r.key, id, `acknowledged ${id} is at its acknowledged offset`)
        assert.equal(seen.get(id), 1, `acknowledged ${id} appears exactly once`)
      })
    }
    const ackedIds = new Set(acked.flatMap((a) => a.ids))
    for (const [id, count] of seen) {
      assert.ok(ackedIds.has(id) || unknown.has(id), `${id} was never sent, or was refused, yet is in the log`)
      assert.equal(count, 1, `${id} appears once`)
    }
    assert.ok(acked.length >= (KILLS + 1) * 50)
    assert.equal(await broker.stop(), 0)
    removeDir(dataDir)
  },
)

void test(
  'a machine crash that takes every segment write since the last sync loses no acks=all record (the journal)',
  { timeout: 120_000 },
  async () => {
    const dataDir = tempDir('crash-journal')
    // Every append journaled (no segment synced in a round by itself), so that each segment was
    // last synced when the broker started (empty then) until a checkpoint, 10 s of journal later:
    // everything written before that is in the journal alone.
    let broker: BrokerProcess = await startBroker({
      dataDir,
      metrics: true,
      config: { 'cortado.journal.direct.bytes': '-1' },
    })
    const port = broker.port
    await createTopic(port, [])
    const acked: Acked[] = []
    const unknown = new Set<string>()
    const next = recordIds('j', 3)
    let stopping = false
    const producers = Promise.all(
      Array.from({ length: CONNECTIONS }, () => produceUntilClosed(port, next, acked, unknown, () => stopping)),
    )
    while (acked.length < 300) await sleep(5)
    const metrics = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
    assert.match(metrics, /^cortado_broker_journal_checkpoints_total 0$/m, 'no checkpoint has synced the segments yet')
    await broker.kill()
    stopping = true
    await producers

    // The power cut: what the segments received since the broker's start was in the page cache only.
    const files = segmentFiles(dataDir)
    assert.ok(files.length >= PARTITIONS, `segments found: ${files.join(', ')}`)
    let lost = 0
    for (const file of files) {
      lost += fs.statSync(file).size
      fs.truncateSync(file, 0)
    }
    assert.ok(lost > 0, 'the crash took segment bytes')

    broker = await startBroker({ dataDir, port })
    const logs = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => readPartition(port, p)))
    for (const a of acked) {
      a.ids.forEach((id, i) => {
        const r = logs[a.partition][a.baseOffset + i]
        assert.ok(r !== undefined, `acknowledged ${id} at ${a.partition}/${a.baseOffset + i} is missing`)
        assert.equal(r.key, id, `acknowledged ${id} is at its acknowledged offset`)
      })
    }
    const ackedIds = new Set(acked.flatMap((a) => a.ids))
    for (const records of logs)
      records.forEach((r, i) => {
        assert.equal(r.offset, i)
        assert.ok(ackedIds.has(r.key) || unknown.has(r.key), `${r.key} was never sent, yet is in the log`)
      })
    assert.match(broker.stderr(), /journal recovered/)
    assert.equal(await broker.stop(), 0)
    removeDir(dataDir)
  },
)
