// A committed transaction as Kafka records in Debezium's change-event envelope (JSON, schemas
// disabled: `value.converter.schemas.enable=false`), so Kafka consumers and sinks built for
// Debezium read a database's change topic unchanged:
//   key    {"<key field>": "<value>", …}                      (the table's key, as the path gives it)
//   value  {"before": null, "after": {…} | null, "op": "u" | "d", "ts_ms",
//           "source": {"version", "connector": "cortado", "name", "ts_ms", "snapshot": "false",
//                      "db", "table", "partition", "generation", "scn", "txId"},
//           "transaction": {"id", "total_order", "data_collection_order"}}
// and after a delete a tombstone (the key, a null value), as Debezium writes one for compaction.
// `before` is always null: the log holds what was written, not what it replaced; and a put is
// "u" (an upsert): the log does not say whether the document existed.
//
// Every record also carries the header `cortado.source` (JSON) saying which operation of which
// transaction it is and where the source partition stands before and after that transaction;
// the publisher reads it back from the end of the topic to resume exactly (cdc-publisher.ts).
import { type DatabaseInfo } from '../metadata/model.ts'
import { type ChangePosition, type CommittedTransaction } from './change-decoder.ts'

export const SOURCE_HEADER = 'cortado.source'
export const cdcTopicOf = (db: string): string => `cortado-cdc-${db}`

/** What `cortado.source` holds. */
export interface SourceMark {
  /** The transaction, `generation:scn` of its partition. */
  txn: string
  /** The operation's index in the transaction, and the transaction's operation count. */
  index: number
  size: number
  /** 1 for a delete's tombstone, 0 for the event itself. */
  tombstone: 0 | 1
  /** Whether this is the transaction's last record. */
  last: boolean
  /** The source partition's position before and after the transaction. */
  from: [number, number, number]
  after: [number, number, number]
}

export interface CdcRecord {
  partition: number
  key: Buffer
  value: Buffer | null
  mark: SourceMark
}

const positionOf = (p: ChangePosition): [number, number, number] => [p.offset, p.generation, p.scn]
export const positionFrom = ([offset, generation, scn]: [number, number, number]): ChangePosition => ({
  offset,
  generation,
  scn,
})

/** The records of one transaction, in order; `from` is the source position before it. */
export function debeziumRecords(
  db: DatabaseInfo,
  tx: CommittedTransaction,
  from: ChangePosition,
  version: string,
  now: number,
): CdcRecord[] {
  const txId = `${tx.partition}:${tx.generation}:${tx.scn}`
  const perTable = new Map<string, number>()
  const out: CdcRecord[] = []
  tx.ops.forEach((op, index) => {
    const keyFields = Object.hasOwn(db.tables, op.table) ? db.tables[op.table].key : op.key.map((_, i) => `k${i}`)
    const key = Buffer.from(JSON.stringify(Object.fromEntries(keyFields.map((f, i) => [f, op.key[i]]))))
    const tableOrder = (perTable.get(op.table) ?? 0) + 1
    perTable.set(op.table, tableOrder)
    const value = {
      before: null,
      after: op.kind === 'put' ? op.doc : null,
      source: {
        version,
        connector: 'cortado',
        name: db.name,
        ts_ms: tx.ts,
        snapshot: 'false',
        db: db.name,
        table: op.table,
        partition: tx.partition,
        generation: tx.generation,
        scn: tx.scn,
        txId,
      },
      op: op.kind === 'put' ? 'u' : 'd',
      ts_ms: now,
      transaction: { id: txId, total_order: index + 1, data_collection_order: tableOrder },
    }
    const mark = (tombstone: 0 | 1, last: boolean): SourceMark => ({
      txn: `${tx.generation}:${tx.scn}`,
      index,
      size: tx.ops.length,
      tombstone,
      last,
      from: positionOf(from),
      after: positionOf(tx.after),
    })
    const lastOp = index === tx.ops.length - 1
    out.push({
      partition: tx.partition,
      key,
      value: Buffer.from(JSON.stringify(value)),
      mark: mark(0, lastOp && op.kind === 'put'),
    })
    if (op.kind === 'delete') out.push({ partition: tx.partition, key, value: null, mark: mark(1, lastOp) })
  })
  return out
}

/** Parses `cortado.source`; undefined if it is not one. */
export function parseSourceMark(bytes: Buffer | undefined): SourceMark | undefined {
  if (bytes === undefined) return undefined
  try {
    const m = JSON.parse(bytes.toString('utf8')) as SourceMark
    const triple = (t: unknown) => Array.isArray(t) && t.length === 3 && t.every((n) => Number.isSafeInteger(n))
    if (typeof m.txn !== 'string' || !Number.isInteger(m.index) || !triple(m.from) || !triple(m.after)) return undefined
    return m
  } catch {
    return undefined
  }
}

/**
 * Where a publisher resumes a partition, given the last record it finds in the topic: after that
 * transaction if it was published whole; else at its start, skipping the records already there.
 */
export function resumePoint(last: SourceMark | undefined): { from: ChangePosition; skip?: SourceMark } {
  if (last === undefined) return { from: { offset: 0, generation: 0, scn: 0 } }
  if (last.last) return { from: positionFrom(last.after) }
  return { from: positionFrom(last.from), skip: last }
}

/** Whether a record of a transaction being resumed is already in the topic (at or before `skip`). */
export function alreadyPublished(mark: SourceMark, skip: SourceMark | undefined): boolean {
  if (skip === undefined || mark.txn !== skip.txn) return false
  return mark.index < skip.index || (mark.index === skip.index && mark.tombstone <= skip.tombstone)
}
