// The replication core end to end without HTTP: PartitionReplicas (the masters' write path and
// every replica's apply path) over the real broker, through the real client layer. Mastership is
// driven by hand here, as metadata would drive it, to put a master behind a newer generation.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { LogReader } from '../../../src/client/log-reader.ts'
import { ReliableProducer } from '../../../src/client/reliable-producer.ts'
import { type DbError } from '../../../src/db/errors.ts'
import { ensureTopic } from '../../../src/db/kafka-topics.ts'
import { PartitionReplica } from '../../../src/db/storage/partition-replica.ts'
import { Logger } from '../../../src/util/log.ts'
import { type BrokerProcess, removeDir, startBroker, tempDir } from '../../helpers/broker-process.ts'

let broker: BrokerProcess
let dir: string
const TOPIC = 'cortado-db-core'
const quiet = new Logger({}, 100)

before(async () => {
  dir = tempDir('replica')
  broker = await startBroker({ dataDir: join(dir, 'broker'), metrics: true })
  await ensureTopic([broker.bootstrap], { name: TOPIC, partitions: 2, replicationFactor: 1, configs: {} })
})

after(async () => {
  await broker.stop()
  removeDir(dir)
})

interface Member {
  replica: PartitionReplica
  reader: LogReader
  producer: ReliableProducer
  follow(): void
  pause(): void
  close(): Promise<void>
}

function member(name: string, partition: number, segmentSize = 800_000): Member {
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap], clientId: `test-${name}` })
  const replica = new PartitionReplica('core', partition, TOPIC, join(dir, `${name}-${partition}.sqlite`), {
    nodeId: name,
    send: (r) =>
      producer.send({ topic: r.topic, partition: r.partition, key: r.key, value: r.value, headers: r.headers }),
    segmentSize,
    log: quiet,
  })
  const reader = new LogReader({ bootstrap: [broker.bootstrap], clientId: `test-${name}-reader`, maxWaitMs: 100 })
  return {
    replica,
    reader,
    producer,
    follow: () => reader.assign(TOPIC, partition, replica.readOffset, (records) => replica.onRecords(records)),
    pause: () => reader.unassign(TOPIC, partition),
    async close() {
      await reader.close()
      await producer.close()
      replica.close()
    },
  }
}

async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const put = (key: string, doc: Record<string, unknown>) => ({
  op: { kind: 'put' as const, table: 't', key: [key], doc, schemaVersion: 1, index: [] as [string, string][] },
})

void test('a master takes writes only after reading its generation start back; a fenced old master goes to ERROR and nothing it writes after is applied', async () => {
  const a = member('a', 0)
  const b = member('b', 0)
  a.follow()
  b.follow()
  try {
    assert.equal(a.replica.role, 'slave')
    await assert.rejects(a.replica.write([put('k1', { v: 0 })]), (e: DbError) => e.code === 'NOT_MASTER')
    a.replica.setMastership(1)
    assert.equal(a.replica.role, 'promoting')
    await assert.rejects(a.replica.write([put('k1', { v: 0 })]), (e: DbError) => e.code === 'NOT_MASTER')
    await until('a to become master', () => a.replica.role === 'master')
    const etags = await Promise.all(Array.from({ length: 50 }, (_, i) => a.replica.write([put(`k${i}`, { v: i })])))
    assert.equal(new Set(etags).size, 50, 'each transaction has its own (generation, scn)')
    assert.ok(etags.every((e) => e.startsWith('1.')))
    await until('b to apply them', () => b.replica.applied.scn === a.replica.applied.scn)
    assert.deepEqual(b.replica.get('t', ['k7'])?.doc, { v: 7 })

    // a stops reading (as if paused); b is made master of generation 2 and takes over.
    a.pause()
    b.replica.setMastership(2)
    await until('b to become master', () => b.replica.role === 'master')
    assert.equal(await b.replica.write([put('k1', { v: 'from b' })]), '2.1')
    // a still believes it is master of generation 1: its write lands after b's generation start.
    assert.equal(a.replica.role, 'master')
    const zombie = a.replica.write([put('k2', { v: 'zombie' })])
    await a.producer.flush()
    a.follow()
    await assert.rejects(zombie, (e: DbError) => e.code === 'NOT_APPLIED')
    assert.equal(a.replica.role, 'error', 'a master that sees a newer generation goes to ERROR')
    await assert.rejects(a.replica.write([put('k3', { v: 'late' })]), (e: DbError) => e.code === 'MASTER_ERROR')
    await until('b to read the zombie write', () => b.replica.counters.zombies >= 1)
    assert.equal(a.replica.counters.zombies, 1)
    for (const m of [a, b]) {
      assert.deepEqual(m.replica.get('t', ['k1'])?.doc, { v: 'from b' })
      assert.deepEqual(m.replica.get('t', ['k2'])?.doc, { v: 2 }, 'the zombie write is applied nowhere')
    }
    assert.equal(a.replica.store.digest(), b.replica.store.digest())
    // Metadata then tells a it is a slave: it follows again, and is told it may master again later.
    a.replica.setMastership(null)
    assert.equal(a.replica.role, 'slave')
  } finally {
    await a.close()
    await b.close()
  }
})

void test('a restarted replica resumes from its checkpoint; a large transaction travels as segments; a restarted master re-promotes in its generation', async () => {
  const segmentSize = 64 * 1024
  let a = member('ra', 1, segmentSize)
  const b = member('rb', 1, segmentSize)
  a.follow()
  b.follow()
  try {
    a.replica.setMastership(1)
    await until('a master', () => a.replica.role === 'master')
    const big = 'x'.repeat(1_000_000)
    await a.replica.write([put('big', { big }), put('small', { n: 1 })])
    for (let i = 0; i < 20; i++) await a.replica.write([put(`k${i}`, { i })])
    await until('b caught up', () => b.replica.applied.scn === a.replica.applied.scn)
    assert.equal((b.replica.get('t', ['big'])?.doc as { big: string }).big, big)
    const before = a.replica.store.checkpoint()

    // "Restart" a: close and reopen its file; it resumes after its checkpoint and is made master again.
    await a.close()
    a = member('ra', 1, segmentSize)
    assert.deepEqual(a.replica.store.checkpoint(), before)
    a.follow()
    a.replica.setMastership(1)
    await until('a master again', () => a.replica.role === 'master')
    const etag = await a.replica.write([put('after', { ok: true })])
    assert.ok(etag.startsWith('1.'), etag)
    await until('b caught up again', () => b.replica.applied.scn === a.replica.applied.scn)
    assert.equal(
      a.replica.counters.applied,
      1,
      'after the restart a re-applied nothing before its checkpoint: only the one new write',
    )
    assert.equal(a.replica.store.digest(), b.replica.store.digest())
    assert.equal(b.replica.counters.discarded + b.replica.counters.invalid + b.replica.counters.integrityGaps, 0)
  } finally {
    await a.close()
    await b.close()
  }
})

async function produceRequests(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
  return Number(/cortado_broker_requests_total\{api="Produce"\} (\d+)/.exec(text)?.[1] ?? 0)
}

void test('concurrent writes to one partition share produce requests (group commit), each still answered only once applied', async () => {
  const a = member('gc', 0)
  a.follow()
  try {
    a.replica.setMastership(7)
    await until('master', () => a.replica.role === 'master')
    const before = await produceRequests()
    const n = 200
    const etags = await Promise.all(Array.from({ length: n }, (_, i) => a.replica.write([put(`gc${i}`, { i })])))
    const requests = (await produceRequests()) - before
    assert.equal(new Set(etags).size, n)
    for (let i = 0; i < n; i++)
      assert.deepEqual(a.replica.get('t', [`gc${i}`])?.doc, { i }, 'answered only after it was applied here')
    assert.ok(requests <= n / 4, `${n} concurrent writes took ${requests} produce requests`)
  } finally {
    await a.close()
  }
})

void test('with a lease clock, a master serves only while its lease holds and once the previous master is past its lease', async () => {
  let now = 0
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap], clientId: 'test-lease' })
  const replica = new PartitionReplica('core', 0, TOPIC, join(dir, 'lease-0.sqlite'), {
    nodeId: 'lease',
    send: (r) => producer.send({ topic: r.topic, partition: r.partition, key: r.key, value: r.value }),
    segmentSize: 800_000,
    log: quiet,
    leaseClock: () => now,
  })
  const reader = new LogReader({ bootstrap: [broker.bootstrap], clientId: 'test-lease-reader', maxWaitMs: 100 })
  reader.assign(TOPIC, 0, replica.readOffset, (records) => replica.onRecords(records))
  try {
    replica.setTakeoverAt(500)
    replica.setMastership(10)
    await until('the replica to become master', () => replica.role === 'master')
    const expired = (e: DbError) => e.code === 'MASTER_LEASE_EXPIRED'
    const waiting = (e: DbError) => e.code === 'NOT_MASTER' && /previous master's lease/.test(e.message)
    // Taking over: the previous master may still serve until 500.
    replica.renewLease(10, 0, 1500)
    await assert.rejects(replica.write([put('lease', { v: 0 })]), waiting)
    assert.throws(() => replica.checkMasterRead(), waiting)
    now = 500
    assert.equal(await replica.write([put('lease', { v: 1 })]), '10.1')
    replica.checkMasterRead()
    assert.equal(replica.leaseRemainingMs, 700)
    // No heartbeat read back since the one sent at 0: the lease ends at 1200.
    now = 1200
    await assert.rejects(replica.write([put('lease', { v: 2 })]), expired)
    assert.throws(() => replica.checkMasterRead(), expired)
    // A heartbeat of another generation does not renew this one.
    replica.renewLease(9, 1100, 1500)
    assert.throws(() => replica.checkMasterRead(), expired)
    // Heard back again: serves again.
    replica.renewLease(10, 1100, 1500)
    replica.checkMasterRead()
    assert.equal(await replica.write([put('lease', { v: 3 })]), '10.2')
    // A new generation starts without a lease.
    replica.setMastership(11)
    await until('the replica to become master of 11', () => replica.role === 'master')
    await assert.rejects(replica.write([put('lease', { v: 4 })]), expired)
  } finally {
    await reader.close()
    await producer.close()
    replica.close()
  }
})

void test('a master whose lease runs out while a write waits answers it TIMEOUT (outcome unknown) at once; the write stays pending and visible to conditional writes until the log settles it', async () => {
  let now = 0
  const producer = new ReliableProducer({ bootstrap: [broker.bootstrap], clientId: 'test-lease-answer' })
  const replica = new PartitionReplica('core', 1, TOPIC, join(dir, 'lease-answer-1.sqlite'), {
    nodeId: 'lease-answer',
    send: (r) => producer.send({ topic: r.topic, partition: r.partition, key: r.key, value: r.value }),
    segmentSize: 800_000,
    log: quiet,
    leaseClock: () => now,
  })
  const reader = new LogReader({ bootstrap: [broker.bootstrap], clientId: 'test-lease-answer-reader', maxWaitMs: 100 })
  const follow = () => reader.assign(TOPIC, 1, replica.readOffset, (records) => replica.onRecords(records))
  follow()
  try {
    replica.setMastership(20)
    await until('the replica to become master', () => replica.role === 'master')
    replica.renewLease(20, 0, 1500) // held until 1200
    const first = await replica.write([put('fate', { v: 1 })])
    // Cut off from the log: nothing more is read back.
    reader.unassign(TOPIC, 1)
    const started = performance.now()
    const waiting = replica.write([put('fate', { v: 2 })])
    now = 1200 // the lease ends; the write is answered when its timer looks (about 1.2 s from now, real time)
    await assert.rejects(waiting, (e: DbError) => {
      assert.equal(e.code, 'TIMEOUT')
      assert.match(e.message, /lease ran out .* before transaction 20\.\d+ was read back; its outcome is unknown/)
      return true
    })
    assert.ok(performance.now() - started < 10_000, 'answered without waiting for the log')
    assert.equal(replica.pendingCount, 1, 'the transaction is still pending')
    // Heard back again: a conditional write against the version before the unknown one is refused,
    // since that one may yet be applied (no lost update).
    replica.renewLease(20, 1100, 1500)
    await assert.rejects(replica.write([{ ...put('fate', { v: 3 }), ifMatch: first }]), (e: DbError) => {
      assert.equal(e.code, 'PRECONDITION_FAILED')
      return true
    })
    // The log settles it: it was written, and is applied.
    follow()
    await until('the pending transaction to be applied', () => replica.pendingCount === 0)
    assert.deepEqual(replica.store.get('t', ['fate'])?.doc, { v: 2 })
  } finally {
    await reader.close()
    await producer.close()
    replica.close()
  }
})
