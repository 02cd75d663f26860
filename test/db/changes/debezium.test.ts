// A transaction as change-topic records (src/db/changes/debezium.ts): Debezium's envelope, a
// tombstone after a delete, and the source marks a publisher resumes by, whether the topic ends
// after a whole transaction or in the middle of one.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type CommittedTransaction } from '../../../src/db/changes/change-decoder.ts'
import {
  alreadyPublished,
  debeziumRecords,
  parseSourceMark,
  resumePoint,
  type SourceMark,
} from '../../../src/db/changes/debezium.ts'
import { type DatabaseInfo } from '../../../src/db/metadata/model.ts'

const DB: DatabaseInfo = {
  name: 'shop',
  partitions: 4,
  replicas: 3,
  topic: 'cortado-db-shop',
  tables: {
    items: { key: ['owner', 'item'], schemas: [], indexes: [] },
    users: { key: ['id'], schemas: [], indexes: [] },
  },
}

const TX: CommittedTransaction = {
  partition: 2,
  generation: 3,
  scn: 17,
  ops: [
    {
      kind: 'put',
      table: 'items',
      key: ['ada', 'pen'],
      doc: { owner: 'ada', item: 'pen' },
      schemaVersion: 1,
      index: [],
    },
    { kind: 'delete', table: 'items', key: ['ada', 'ink'] },
    { kind: 'put', table: 'users', key: ['ada'], doc: { id: 'ada' }, schemaVersion: 2, index: [] },
  ],
  principal: 'alice',
  ts: 1000,
  after: { offset: 50, generation: 3, scn: 17 },
}
const FROM = { offset: 49, generation: 3, scn: 16 }

test("a transaction's records: Debezium's envelope, a tombstone after the delete, marks for resuming", () => {
  const records = debeziumRecords(DB, TX, FROM, '0.1.0', 2000)
  assert.deepEqual(
    records.map((r) => [
      r.partition,
      r.key.toString(),
      r.value === null ? null : (JSON.parse(r.value.toString()) as { op: string }).op,
    ]),
    [
      [2, '{"owner":"ada","item":"pen"}', 'u'],
      [2, '{"owner":"ada","item":"ink"}', 'd'],
      [2, '{"owner":"ada","item":"ink"}', null],
      [2, '{"id":"ada"}', 'u'],
    ],
  )
  assert.deepEqual(JSON.parse(records[0].value!.toString()), {
    before: null,
    after: { owner: 'ada', item: 'pen' },
    source: {
      version: '0.1.0',
      connector: 'cortado',
      name: 'shop',
      ts_ms: 1000,
      snapshot: 'false',
      db: 'shop',
      table: 'items',
      partition: 2,
      generation: 3,
      scn: 17,
      txId: '2:3:17',
    },
    op: 'u',
    ts_ms: 2000,
    transaction: { id: '2:3:17', total_order: 1, data_collection_order: 1 },
  })
  assert.deepEqual(
    records
      .map((r) => JSON.parse(r.value?.toString() ?? 'null') as { transaction: unknown } | null)
      .map((v) => v?.transaction),
    [
      { id: '2:3:17', total_order: 1, data_collection_order: 1 },
      { id: '2:3:17', total_order: 2, data_collection_order: 2 },
      undefined,
      { id: '2:3:17', total_order: 3, data_collection_order: 1 },
    ],
  )
  assert.deepEqual(
    records.map((r) => [r.mark.index, r.mark.tombstone, r.mark.last]),
    [
      [0, 0, false],
      [1, 0, false],
      [1, 1, false],
      [2, 0, true],
    ],
  )
  for (const r of records) {
    assert.deepEqual(r.mark.from, [49, 3, 16])
    assert.deepEqual(r.mark.after, [50, 3, 17])
    assert.deepEqual(parseSourceMark(Buffer.from(JSON.stringify(r.mark))), r.mark)
  }
  assert.equal(parseSourceMark(Buffer.from('garbage')), undefined)
  assert.equal(parseSourceMark(undefined), undefined)
})

test('resuming: after a whole transaction, after it; in the middle of one, at its start skipping what is there', () => {
  const records = debeziumRecords(DB, TX, FROM, '0.1.0', 2000)
  assert.deepEqual(resumePoint(undefined), { from: { offset: 0, generation: 0, scn: 0 } })
  assert.deepEqual(resumePoint(records[3].mark), { from: { offset: 50, generation: 3, scn: 17 } })
  // The topic ends with each record of the transaction but the last: re-publishing the
  // transaction from its start writes exactly the records after that one.
  for (let cut = 0; cut < records.length - 1; cut++) {
    const point = resumePoint(records[cut].mark)
    assert.deepEqual(point.from, FROM)
    const again = debeziumRecords(DB, TX, point.from, '0.1.0', 3000).filter(
      (r) => !alreadyPublished(r.mark, point.skip),
    )
    assert.deepEqual(
      again.map((r) => [r.mark.index, r.mark.tombstone]),
      records.slice(cut + 1).map((r) => [r.mark.index, r.mark.tombstone]),
      `topic ends at record ${cut}`,
    )
  }
  // Another transaction's records are never taken for published ones.
  const other: SourceMark = { ...records[0].mark, txn: '3:18' }
  assert.equal(alreadyPublished(other, records[2].mark), false)
})
