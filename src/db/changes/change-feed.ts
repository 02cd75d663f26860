// A database's change stream: its committed transactions, per partition in commit order, read
// from the replication topic through PartitionChangeDecoder, turned into one event per
// operation. Where a stream stands is a resume token: every partition's position, encoded; a
// stream started from a token continues exactly after the event that carried it.
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { LogReader } from '../../client/log-reader.ts'
import { DbError } from '../errors.ts'
import { type DatabaseInfo } from '../metadata/model.ts'
import {
  type ChangePosition,
  type CommittedTransaction,
  PartitionChangeDecoder,
  START_POSITION,
} from './change-decoder.ts'

/** One operation of a committed transaction, as a change stream shows it. */
export interface ChangeEvent {
  op: 'put' | 'delete'
  table: string
  key: string[]
  /** The document after the change (null for a delete). */
  after: Record<string, unknown> | null
  schemaVersion: number | null
  partition: number
  /** The transaction (`generation:scn` of its partition), this operation's index in it, and its size. */
  txn: { id: string; index: number; size: number }
  principal: string | null
  /** Commit time, milliseconds since the epoch. */
  ts: number
  /** Its partition's position, `generation:scn`. */
  position: string
  /** Resume token: a stream started from it continues after this event. */
  token: string
}

/** Every partition's position; partitions left out start at the beginning. */
export type Positions = Map<number, ChangePosition>

/** A resume token: base64url of JSON [[partition, offset, generation, scn], …]. */
export function encodeToken(positions: Positions): string {
  const entries = [...positions].sort(([a], [b]) => a - b).map(([p, x]) => [p, x.offset, x.generation, x.scn])
  return Buffer.from(JSON.stringify(entries)).toString('base64url')
}

export function decodeToken(token: string, db: DatabaseInfo): Positions {
  const bad = (why: string): never => {
    throw new DbError('BAD_REQUEST', `invalid resume token: ${why}`)
  }
  let entries: unknown
  try {
    entries = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
  } catch {
    return bad('not a token this API gave')
  }
  if (!Array.isArray(entries)) return bad('not a token this API gave')
  const out: Positions = new Map()
  for (const e of entries) {
    if (!Array.isArray(e) || e.length !== 4 || !e.every((n) => Number.isSafeInteger(n) && (n as number) >= 0))
      return bad('not a token this API gave')
    const [p, offset, generation, scn] = e as number[]
    if (p >= db.partitions) return bad(`partition ${p} is not in database ${db.name}`)
    out.set(p, { offset, generation, scn })
  }
  return out
}

/** The events of one transaction, with the token after each (positions updated in place). */
export function eventsOf(tx: CommittedTransaction, positions: Positions, table?: string): ChangeEvent[] {
  positions.set(tx.partition, tx.after)
  const token = encodeToken(positions)
  const id = `${tx.generation}:${tx.scn}`
  const events: ChangeEvent[] = []
  tx.ops.forEach((op, index) => {
    if (table !== undefined && op.table !== table) return
    events.push({
      op: op.kind,
      table: op.table,
      key: op.key,
      after: op.kind === 'put' ? op.doc : null,
      schemaVersion: op.kind === 'put' ? op.schemaVersion : null,
      partition: tx.partition,
      txn: { id, index, size: tx.ops.length },
      principal: tx.principal,
      ts: tx.ts,
      position: id,
      token,
    })
  })
  return events
}

export interface ChangeFeedOptions {
  bootstrap: string[]
  security?: KafkaSecurity
  db: DatabaseInfo
  /** The partitions to follow (default all). */
  partitions?: number[]
  from: Positions
  /**
   * Called with each partition's newly committed transactions, in commit order; the partition is
   * read on once a promise it returns settles. If it rejects, the feed does not deliver those
   * transactions again: its user must start a new feed (from a position it trusts).
   */
  onTransactions: (transactions: CommittedTransaction[]) => void | Promise<void>
  onError?: (error: Error) => void
}

/** Follows a database's partitions from their positions until closed. */
export class ChangeFeed {
  readonly #reader: LogReader
  readonly #decoders = new Map<number, PartitionChangeDecoder>()
  readonly #options: ChangeFeedOptions

  constructor(options: ChangeFeedOptions) {
    this.#options = options
    this.#reader = new LogReader({
      bootstrap: options.bootstrap,
      security: options.security,
      clientId: 'cortado-changes',
      maxWaitMs: 500,
      onError: options.onError,
    })
    const partitions = options.partitions ?? Array.from({ length: options.db.partitions }, (_, p) => p)
    for (const p of partitions) {
      const from = options.from.get(p) ?? START_POSITION
      const decoder = new PartitionChangeDecoder(p, from)
      this.#decoders.set(p, decoder)
      this.#reader.assign(options.db.topic, p, from.offset, (records) => {
        const transactions = decoder.decode(records)
        if (transactions.length > 0) return options.onTransactions(transactions)
      })
    }
  }

  /** Whether every followed partition has been read up to the end offsets `ends` (by partition). */
  readUpTo(ends: Map<number, number>): boolean {
    for (const [p] of this.#decoders) {
      const read = this.#reader.position(this.#options.db.topic, p) ?? 0
      if (read < (ends.get(p) ?? 0)) return false
    }
    return true
  }

  /** The next offset to read of a followed partition. */
  readOffset(partition: number): number {
    return this.#reader.position(this.#options.db.topic, partition) ?? 0
  }

  /** Each followed partition's end offset now. */
  async endOffsets(): Promise<Map<number, number>> {
    const out = new Map<number, number>()
    for (const p of this.#decoders.keys()) out.set(p, await this.#reader.endOffset(this.#options.db.topic, p))
    return out
  }

  close(): Promise<void> {
    return this.#reader.close()
  }
}
