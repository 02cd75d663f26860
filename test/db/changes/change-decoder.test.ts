// A partition's committed changes from crafted replication records (src/db/changes/): only the
// transactions a replica applies come out, in its order; a reader resumed at any transaction's
// position continues exactly after it; tokens round-trip and bad ones are refused.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { randomMessageId } from '../../../src/client/large-message/producer.ts'
import { splitRecord } from '../../../src/client/large-message/segment.ts'
import { type LogRecord } from '../../../src/client/log-reader.ts'
import { PartitionChangeDecoder, START_POSITION } from '../../../src/db/changes/change-decoder.ts'
import { decodeToken, encodeToken, eventsOf } from '../../../src/db/changes/change-feed.ts'
import { DbError } from '../../../src/db/errors.ts'
import { type DatabaseInfo } from '../../../src/db/metadata/model.ts'
import { encodeEnvelope, type Payload, RecordType } from '../../../src/db/replication/envelope.ts'
import { type Operation } from '../../../src/db/replication/operation.ts'

const GUID = Buffer.alloc(16, 7)
const ZOMBIE = Buffer.alloc(16, 9)

const put = (k: string, v: number): Operation => ({
  kind: 'put',
  table: 'users',
  key: [k],
  doc: { id: k, v },
  schemaVersion: 1,
  index: [],
})

/** A partition's log: records at consecutive offsets, timestamps 1000 + offset. */
class Log {
  readonly records: LogRecord[] = []
  #seq = new Map<string, number>()
  add(generation: number, scn: number, payload: Payload, guid = GUID): this {
    const sequence = this.#seq.get(guid.toString('hex')) ?? 0
    this.#seq.set(guid.toString('hex'), sequence + 1)
    return this.raw(encodeEnvelope({ generation, scn, producerGuid: guid, sequence, payload }))
  }
  raw(value: Buffer, headers: [string, Buffer][] = []): this {
    const offset = this.records.length
    this.records.push({ topic: 't', partition: 0, offset, key: null, value, headers, timestamp: 1000 + offset })
    return this
  }
}

test('only applied transactions come out, in order, with principal, commit time and the position after each', () => {
  const log = new Log()
    .add(1, 0, { type: RecordType.GENERATION_START, node: 'n1', nonce: 'a' })
    .add(1, 1, { type: RecordType.TXN, ops: [put('a', 1)], principal: 'alice' })
    // A partial transaction (no END) is discarded when the next begins.
    .add(1, 2, { type: RecordType.BEGIN, count: 2 })
    .add(1, 2, { type: RecordType.DATA, op: put('lost', 1) })
    .add(1, 3, { type: RecordType.BEGIN, count: 2, principal: 'bob' })
    .add(1, 3, { type: RecordType.DATA, op: put('b', 1) })
    .add(1, 3, { type: RecordType.DATA, op: { kind: 'delete', table: 'users', key: ['a'] } })
    .add(1, 3, { type: RecordType.END, count: 2 })
    // A duplicate of an applied transaction.
    .add(1, 1, { type: RecordType.TXN, ops: [put('a', 1)] })
    .add(2, 0, { type: RecordType.GENERATION_START, node: 'n2', nonce: 'b' })
    // The deposed master's write, after the new generation started: a zombie.
    .add(1, 4, { type: RecordType.TXN, ops: [put('zombie', 1)] }, ZOMBIE)
    .raw(Buffer.from('not an envelope'))
    .add(2, 1, { type: RecordType.TXN, ops: [put('c', 1)] })
  const decoder = new PartitionChangeDecoder(0, START_POSITION)
  const all = decoder.decode(log.records)
  assert.deepEqual(
    all.map((t) => [t.generation, t.scn, t.ops.map((o) => o.key[0]), t.principal, t.ts]),
    [
      [1, 1, ['a'], 'alice', 1001],
      [1, 3, ['b', 'a'], 'bob', 1007],
      [2, 1, ['c'], null, 1012],
    ],
  )
  assert.deepEqual(
    all.map((t) => t.after),
    [
      { offset: 2, generation: 1, scn: 1 },
      { offset: 8, generation: 1, scn: 3 },
      { offset: 13, generation: 2, scn: 1 },
    ],
  )
  assert.deepEqual(decoder.position, { offset: 13, generation: 2, scn: 1 })

  // Resumed after each transaction, in batches of any size: exactly the rest.
  for (const [i, t] of all.entries()) {
    for (const batch of [1, 3, 100]) {
      const resumed = new PartitionChangeDecoder(0, t.after)
      const rest = []
      for (let o = t.after.offset; o < log.records.length; o += batch)
        rest.push(...resumed.decode(log.records.slice(o, o + batch)))
      assert.deepEqual(
        rest.map((x) => `${x.generation}:${x.scn}`),
        all.slice(i + 1).map((x) => `${x.generation}:${x.scn}`),
        `after ${t.generation}:${t.scn}, batches of ${batch}`,
      )
    }
  }
  // Records before the position (a fetch that starts earlier) are skipped.
  assert.deepEqual(new PartitionChangeDecoder(0, all[1].after).decode(log.records).length, 1)
})

test('a transaction carried as large-message segments comes out whole', () => {
  const big = put('big', 1)
  ;(big as { doc: Record<string, unknown> }).doc = { id: 'big', blob: 'x'.repeat(5000) }
  const value = encodeEnvelope({
    generation: 1,
    scn: 1,
    producerGuid: GUID,
    sequence: 0,
    payload: { type: RecordType.TXN, ops: [big] },
  })
  const log = new Log()
  for (const s of splitRecord({ topic: 't', key: null, value }, 1000, randomMessageId()))
    log.raw(
      s.value!,
      (s.headers ?? []).map(([k, v]) => [k, Buffer.from(v)]),
    )
  assert.ok(log.records.length > 5)
  const [t] = new PartitionChangeDecoder(0, START_POSITION).decode(log.records)
  assert.equal((t.ops[0] as unknown as { doc: { blob: string } }).doc.blob.length, 5000)
  assert.deepEqual(t.after, { offset: log.records.length, generation: 1, scn: 1 })
})

test('events carry the token after their transaction; tokens round-trip and bad ones are refused', () => {
  const db: DatabaseInfo = { name: 'shop', partitions: 4, replicas: 3, topic: 'cortado-db-shop', tables: {} }
  const positions = new Map([[3, { offset: 10, generation: 2, scn: 5 }]])
  const events = eventsOf(
    {
      partition: 1,
      generation: 1,
      scn: 7,
      ops: [put('a', 1), { kind: 'delete', table: 'other', key: ['b'] }],
      principal: 'alice',
      ts: 5,
      after: { offset: 20, generation: 1, scn: 7 },
    },
    positions,
    'users',
  )
  assert.equal(events.length, 1, 'the table filter keeps the users operation only')
  assert.deepEqual(
    { ...events[0], token: undefined },
    {
      op: 'put',
      table: 'users',
      key: ['a'],
      after: { id: 'a', v: 1 },
      schemaVersion: 1,
      partition: 1,
      txn: { id: '1:7', index: 0, size: 2 },
      principal: 'alice',
      ts: 5,
      position: '1:7',
      token: undefined,
    },
  )
  assert.deepEqual(
    decodeToken(events[0].token, db),
    new Map([
      [1, { offset: 20, generation: 1, scn: 7 }],
      [3, { offset: 10, generation: 2, scn: 5 }],
    ]),
  )
  assert.equal(encodeToken(decodeToken(events[0].token, db)), events[0].token)
  for (const bad of ['!!', Buffer.from('{"a":1}').toString('base64url'), encodeToken(new Map([[9, START_POSITION]]))])
    assert.throws(
      () => decodeToken(bad, db),
      (e: unknown) => e instanceof DbError && e.code === 'BAD_REQUEST' && /invalid resume token/.test(e.message),
    )
})
