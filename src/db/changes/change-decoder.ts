// A partition's committed changes, read from its replication log as a replica reads it: records
// reassembled (large-message segments), decoded (envelope.ts) and put through the replica's own
// state machine (replica-state.ts), so exactly the transactions every replica applies come out,
// in the order they apply them. A zombie's records, a partial transaction, a duplicate and a
// malformed record never do.
//
// A position is where a reader stands after a transaction: the next offset to read and the
// (generation, scn) last applied. It is all the state machine needs at a transaction's end (no
// transaction open), so a reader started at a position continues exactly after it: no gap, no
// duplicate. The state machine's per-producer sequence tracking starts afresh there; it only
// raises integrity alarms, which a change reader leaves to the replicas.
import { type LogRecord } from '../../client/log-reader.ts'
import { MessageAssembler } from '../../client/large-message/assembler.ts'
import { decodeLargeMessageHeader, LARGE_MESSAGE_HEADER } from '../../client/large-message/segment.ts'
import { decodeEnvelope } from '../replication/envelope.ts'
import { type Operation } from '../replication/operation.ts'
import { initialReplicaState, type ReplicaState, step } from '../replication/replica-state.ts'

export interface ChangePosition {
  /** The next offset to read. */
  offset: number
  /** The (generation, scn) last applied before it. */
  generation: number
  scn: number
}

export const START_POSITION: ChangePosition = { offset: 0, generation: 0, scn: 0 }

/** One committed transaction of a partition. */
export interface CommittedTransaction {
  partition: number
  generation: number
  scn: number
  ops: Operation[]
  /** The user whose request made it, when recorded. */
  principal: string | null
  /** When it committed: the timestamp (ms) of the record that completed it. */
  ts: number
  /** Where a reader stands after it. */
  after: ChangePosition
}

export class PartitionChangeDecoder {
  readonly partition: number
  #state: ReplicaState
  /** The next record to read. */
  #offset: number
  /** Where a reader may resume: after the last transaction or generation start (no transaction open there). */
  #resumeAt: ChangePosition
  readonly #assembler = new MessageAssembler({ bufferCapacity: 256 * 1024 * 1024 })

  constructor(partition: number, from: ChangePosition) {
    this.partition = partition
    this.#state = initialReplicaState(from.generation, from.scn)
    this.#offset = from.offset
    this.#resumeAt = from
    this.#assembler.restore(String(partition), from.offset)
  }

  /** Where a reader resumes to see what comes after everything decoded so far. */
  get position(): ChangePosition {
    return this.#resumeAt
  }

  /** The transactions these records (the partition's next ones, in offset order) complete, in commit order. */
  decode(records: readonly LogRecord[]): CommittedTransaction[] {
    const out: CommittedTransaction[] = []
    for (const r of records) {
      if (r.offset < this.#offset) continue
      const input = this.#input(r)
      this.#offset = r.offset + 1
      if (input === undefined) continue
      const { state, actions } = step(this.#state, input)
      this.#state = state
      for (const a of actions) {
        if (a.kind === 'generation-start')
          this.#resumeAt = { offset: a.nextOffset, generation: a.generation, scn: a.scn }
        if (a.kind !== 'apply') continue
        this.#resumeAt = { offset: a.nextOffset, generation: a.generation, scn: a.scn }
        out.push({
          partition: this.partition,
          generation: a.generation,
          scn: a.scn,
          ops: a.ops,
          principal: a.principal ?? null,
          ts: r.timestamp,
          after: this.#resumeAt,
        })
      }
    }
    return out
  }

  /** The state machine's input of a record, or undefined while a large message is incomplete. */
  #input(r: LogRecord) {
    let header = null
    const lm = r.headers.find(([k]) => k === LARGE_MESSAGE_HEADER)
    if (lm !== undefined) {
      const decoded = decodeLargeMessageHeader(lm[1])
      if (!decoded.ok) return { offset: r.offset, invalid: `bad large-message header: ${decoded.error}` }
      header = decoded.header
    }
    const result = this.#assembler.process(String(this.partition), { offset: r.offset, header, value: r.value })
    if (result.kind !== 'message') return undefined
    const decoded = decodeEnvelope(result.message.value)
    return decoded.ok
      ? { offset: result.message.offset, envelope: decoded.envelope }
      : { offset: result.message.offset, invalid: decoded.error }
  }
}
