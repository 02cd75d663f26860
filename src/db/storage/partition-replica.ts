// One partition replica on a storage node: its SQLite store, the replication state machine fed
// from the partition's log, and — while this node masters the partition — the write path.
//
// Write path (master): check conditions against the applied state plus the writes still in
// flight, assign the next scn of the master's generation, hand BEGIN, DATA…, END to the reliable
// producer in one go (so a transaction's records are contiguous in the log; the producer's one
// request in flight batches concurrent transactions into one produce: group commit), then wait
// until this replica reads the END back and applies it through the same rule as every replica
// (invariant 2, docs/invariants.md). Only then is the client answered. A transaction that the
// replica passes without applying (fenced by a newer generation, left partial by a failed
// producer) is answered NOT_APPLIED, which is known-safe to retry.
//
// Mastership: the node is told (from metadata) that it masters the partition under generation g.
// It writes GENERATION_START(g) with a fresh nonce and takes writes only once it has applied that
// very record (invariant 5, docs/invariants.md). If it then sees a newer generation while it
// still believes itself master, it goes to ERROR and refuses writes (invariant 3, docs/invariants.md).
//
// Lease: on a storage node, a master also needs a valid master lease (master-lease.ts), renewed by
// the node when it reads its own heartbeat back from the metadata log, to serve master reads and
// writes; without one it refuses with MASTER_LEASE_EXPIRED, so a master cut off from the log stops
// before another can be promoted. A master that follows another node also waits until that node's
// lease has surely run out (takeoverAt).
import { randomBytes } from 'node:crypto'
import { type LogRecord } from '../../client/log-reader.ts'
import {
  decodeLargeMessageHeader,
  LARGE_MESSAGE_HEADER,
  MessageAssembler,
  randomMessageId,
  splitRecord,
  type OutgoingRecord,
} from '../../client/large-message/index.ts'
import { type Logger } from '../../util/log.ts'
import { DbError } from '../errors.ts'
import { decodeEnvelope, encodeEnvelope, type Payload, RecordType } from '../replication/envelope.ts'
import { type Operation } from '../replication/operation.ts'
import {
  compareScn,
  initialReplicaState,
  type ReplicaAction,
  type ReplicaState,
  step,
} from '../replication/replica-state.ts'
import { type MasterLease, NO_LEASE, remaining, renew, valid } from './master-lease.ts'
import { etagOf, ReplicaStore, type StoredDocument } from './replica-store.ts'

export type Role = 'slave' | 'promoting' | 'master' | 'error'

export interface WriteOp {
  op: Operation
  /** '*' (must exist) or an ETag the current version must have. */
  ifMatch?: string
  /** '*' (must not exist) or an ETag the current version must not have. */
  ifNoneMatch?: string
}

export interface ReplicaCounters {
  applied: number
  duplicates: number
  zombies: number
  discarded: number
  invalid: number
  integrityGaps: number
}

export interface ReplicaDeps {
  nodeId: string
  send: (record: OutgoingRecord) => Promise<unknown>
  /** Largest DATA record value; larger ones travel as large-message segments. */
  segmentSize: number
  log: Logger
  /** Observes every action (metrics). */
  onAction?: (action: ReplicaAction) => void
  /**
   * The monotonic clock of the master lease (performance.now() on a node). Without it the replica
   * needs no lease: a replica driven alone, with no heartbeats to renew one (the unit tests).
   */
  leaseClock?: () => number
}

interface Pending {
  generation: number
  scn: number
  keys: string[]
  /** Settle the write's answer; the first call wins (the lease watch may answer before the log). */
  resolve: (etag: string) => void
  reject: (error: DbError) => void
}

interface OverlayEntry {
  exists: boolean
  etag: string
}

const docKey = (table: string, key: string[]) => JSON.stringify([table, ...key])

export class PartitionReplica {
  readonly db: string
  readonly partition: number
  readonly topic: string
  readonly store: ReplicaStore
  readonly counters: ReplicaCounters = {
    applied: 0,
    duplicates: 0,
    zombies: 0,
    discarded: 0,
    invalid: 0,
    integrityGaps: 0,
  }
  readonly #deps: ReplicaDeps
  #state: ReplicaState
  readonly #assembler = new MessageAssembler({ bufferCapacity: 256 * 1024 * 1024 })
  #role: Role = 'slave'
  /** The generation this node masters (or is promoting to). */
  #generation = 0
  #promotionNonce: string | null = null
  #nextScn = 0
  #guid = randomBytes(16)
  #sequence = 0
  /** Transactions handed to the producer and not yet applied or passed, in scn order. */
  readonly #pending = new Map<string, Pending>()
  /** Latest in-flight version of each key written by a pending transaction. */
  readonly #overlay = new Map<string, OverlayEntry>()
  #closed = false
  #failure: string | null = null
  /** Offset after the last record read (not only applied). */
  #readOffset: number
  /** The master lease of the current generation (renewed by the node from its heartbeats). */
  #lease: MasterLease = NO_LEASE
  /** Armed while writes wait to be read back: answers them when the lease runs out (#watchLease). */
  #leaseWatch: NodeJS.Timeout | undefined
  /** Monotonic time before which this master must not serve: the previous master's lease may still run. */
  #takeoverAt = -Infinity

  constructor(db: string, partition: number, topic: string, path: string, deps: ReplicaDeps) {
    this.db = db
    this.partition = partition
    this.topic = topic
    this.#deps = deps
    this.store = new ReplicaStore(path)
    const c = this.store.checkpoint()
    this.#state = initialReplicaState(c.generation, c.scn)
    this.#readOffset = c.nextOffset
    this.#assembler.restore(this.#partitionId, c.nextOffset)
  }

  get #partitionId(): string {
    return `${this.topic}/${this.partition}`
  }

  get role(): Role {
    return this.#role
  }

  get masterGeneration(): number {
    return this.#generation
  }

  /** Last applied (generation, scn). */
  get applied(): { generation: number; scn: number } {
    return { generation: this.#state.generation, scn: this.#state.scn }
  }

  get readOffset(): number {
    return this.#readOffset
  }

  get pendingCount(): number {
    return this.#pending.size
  }

  /** Follows metadata: this node masters the partition under `generation`, or not (null). */
  setMastership(generation: number | null): void {
    if (this.#closed || this.#failure !== null) return
    if (generation === null) {
      if (this.#role !== 'slave')
        this.#deps.log.info('mastership released', {
          db: this.db,
          partition: this.partition,
          generation: this.#generation,
          role: this.#role,
        })
      this.#role = 'slave'
      this.#promotionNonce = null
      return
    }
    if ((this.#role === 'master' || this.#role === 'promoting') && this.#generation === generation) return
    if (this.#role === 'error' && this.#generation === generation) return
    this.#generation = generation
    // A lease belongs to one generation: the new one is renewed from the next heartbeat read back.
    this.#lease = NO_LEASE
    if (this.#state.generation > generation) {
      this.#enterError(`the log already holds generation ${this.#state.generation}, newer than assigned ${generation}`)
      return
    }
    this.#role = 'promoting'
    this.#deps.log.info('promoting to master', { db: this.db, partition: this.partition, generation })
    this.#sendGenerationStart()
  }

  /** After the node's producer failed and was replaced: records from here on carry a new guid. */
  producerReset(): void {
    this.#guid = randomBytes(16)
    this.#sequence = 0
    // A generation start lost with the old producer is written again.
    if (this.#role === 'promoting') this.#sendGenerationStart()
  }

  #sendGenerationStart(): void {
    const nonce = randomBytes(8).toString('hex')
    this.#promotionNonce = nonce
    const scn = this.#state.generation === this.#generation ? Math.max(this.#state.scn + 1, this.#nextScn) : 0
    this.#nextScn = scn + 1
    this.#sendEncoded(this.#encode(scn, { type: RecordType.GENERATION_START, node: this.#deps.nodeId, nonce })).catch(
      (error: unknown) => {
        if (this.#closed || this.#promotionNonce !== nonce) return
        this.#deps.log.warn('generation start not written; retrying', {
          db: this.db,
          partition: this.partition,
          error: String(error),
        })
        setTimeout(() => {
          if (this.#promotionNonce === nonce && this.#role === 'promoting') this.#sendGenerationStart()
        }, 200)
      },
    )
  }

  #encode(scn: number, payload: Payload): Buffer {
    // Sequences are int32: a producer guid that has used them all is replaced (a new guid starts at 0).
    if (this.#sequence === 0x7fffffff) {
      this.#guid = randomBytes(16)
      this.#sequence = 0
    }
    return encodeEnvelope({
      generation: this.#generation,
      scn,
      producerGuid: this.#guid,
      sequence: this.#sequence,
      payload,
    })
  }

  /** Sends an envelope made by #encode (the last one: it takes its sequence number). */
  #sendEncoded(value: Buffer): Promise<unknown> {
    this.#sequence++
    const record: OutgoingRecord = { topic: this.topic, partition: this.partition, key: null, value }
    if (value.length <= this.#deps.segmentSize) return this.#deps.send(record)
    // Segments go to the producer back to back, so nothing interleaves with them.
    const segments = splitRecord(record, this.#deps.segmentSize, randomMessageId())
    return Promise.all(segments.map((s) => this.#deps.send(s)))
  }

  /**
   * Runs a transaction as master; resolves with its ETag once applied here from the log. The
   * principal who asked for it is recorded in its TXN or BEGIN record.
   */
  write(ops: WriteOp[], principal?: string): Promise<string> {
    if (this.#failure !== null)
      return Promise.reject(
        new DbError(
          'MASTER_ERROR',
          `partition ${this.partition} of ${this.db}: this replica failed and stopped: ${this.#failure}`,
        ),
      )
    if (this.#role === 'error')
      return Promise.reject(
        new DbError(
          'MASTER_ERROR',
          `partition ${this.partition} of ${this.db}: this master saw a newer generation and stopped taking writes`,
        ),
      )
    if (this.#role === 'promoting')
      return Promise.reject(
        new DbError(
          'NOT_MASTER',
          `partition ${this.partition} of ${this.db}: the master is still taking over (generation ${this.#generation})`,
        ),
      )
    if (this.#role !== 'master')
      return Promise.reject(
        new DbError('NOT_MASTER', `this node is not the master of partition ${this.partition} of ${this.db}`),
      )
    const refused = this.#leaseRefusal()
    if (refused !== null) return Promise.reject(refused)
    for (const w of ops) {
      if (w.ifMatch === undefined && w.ifNoneMatch === undefined) continue
      const current = this.#current(w.op.table, w.op.key)
      const shown = w.op.key.join('/')
      if (w.ifMatch !== undefined && (current === null || (w.ifMatch !== '*' && w.ifMatch !== current))) {
        return Promise.reject(
          new DbError(
            'PRECONDITION_FAILED',
            `If-Match ${w.ifMatch} failed for ${w.op.table}/${shown}: ${current === null ? 'no such document' : `current ETag is ${current}`}`,
          ),
        )
      }
      if (w.ifNoneMatch !== undefined && current !== null && (w.ifNoneMatch === '*' || w.ifNoneMatch === current)) {
        return Promise.reject(
          new DbError(
            'PRECONDITION_FAILED',
            `If-None-Match ${w.ifNoneMatch} failed for ${w.op.table}/${shown}: the document exists with ETag ${current}`,
          ),
        )
      }
    }
    const generation = this.#generation
    const scn = this.#nextScn++
    const etag = etagOf(generation, scn)
    const keys = ops.map((w) => docKey(w.op.table, w.op.key))
    const promise = new Promise<string>((resolve, reject) =>
      this.#pending.set(etag, { generation, scn, keys, resolve, reject }),
    )
    ops.forEach((w, i) => this.#overlay.set(keys[i], { exists: w.op.kind === 'put', etag }))
    // One TXN record when the transaction fits in a segment, else BEGIN, DATA…, END.
    const by = principal === undefined ? {} : { principal }
    const whole = this.#encode(scn, { type: RecordType.TXN, ops: ops.map((w) => w.op), ...by })
    const sends: Promise<unknown>[] = []
    if (whole.length <= this.#deps.segmentSize) sends.push(this.#sendEncoded(whole))
    else {
      sends.push(this.#sendEncoded(this.#encode(scn, { type: RecordType.BEGIN, count: ops.length, ...by })))
      for (const w of ops) sends.push(this.#sendEncoded(this.#encode(scn, { type: RecordType.DATA, op: w.op })))
      sends.push(this.#sendEncoded(this.#encode(scn, { type: RecordType.END, count: ops.length })))
    }
    // A record the producer refused or abandoned means the END is not in the log.
    Promise.all(sends).catch((error: unknown) =>
      this.#settle(
        etag,
        new DbError(
          'NOT_APPLIED',
          `the transaction was not written to the log: ${error instanceof Error ? error.message : String(error)}`,
        ),
      ),
    )
    this.#watchLease()
    return promise
  }

  /**
   * Answers the writes waiting to be read back, at the latest when this master's lease runs out: a
   * master cut off from the log cannot learn their fate, and its clients should not wait as long
   * as the cut lasts. The answer is then TIMEOUT (outcome unknown: a write may be in the log, and a
   * new master would apply it). The transactions stay pending, their keys in the overlay, until
   * the log settles them, so a later conditional write still sees them. One timer per replica,
   * armed while writes wait.
   */
  #watchLease(): void {
    const clock = this.#deps.leaseClock
    if (clock === undefined || this.#leaseWatch !== undefined || this.#closed) return
    const check = () => {
      this.#leaseWatch = undefined
      if (this.#pending.size === 0) return
      const left = remaining(this.#lease, clock())
      if (left > 0) {
        this.#leaseWatch = setTimeout(check, left + 1)
        return
      }
      for (const p of this.#pending.values())
        p.reject(
          new DbError(
            'TIMEOUT',
            `partition ${this.partition} of ${this.db}: this master's lease ran out (it has not heard back from the log) before transaction ${etagOf(p.generation, p.scn)} was read back; its outcome is unknown`,
          ),
        )
    }
    check()
  }

  /** Renews the lease of `generation` from a heartbeat sent at `sendTime` and read back (master-lease.ts). */
  renewLease(generation: number, sendTime: number, sessionMs: number): void {
    if (generation !== this.#generation) return
    this.#lease = renew(this.#lease, sendTime, sessionMs)
  }

  /**
   * The previous master may serve until `at` (monotonic): this one waits until then. `clear`: the
   * previous master has stepped down (it said so in a heartbeat), so nothing is left to wait for.
   */
  setTakeoverAt(at: number, clear = false): void {
    this.#takeoverAt = clear ? at : Math.max(this.#takeoverAt, at)
  }

  /** Milliseconds left on the master lease (null when the replica needs none). */
  get leaseRemainingMs(): number | null {
    const clock = this.#deps.leaseClock
    return clock === undefined ? null : remaining(this.#lease, clock())
  }

  /** Throws unless this replica may serve a master read now: master, lease held, takeover done. */
  checkMasterRead(): void {
    if (this.#role !== 'master')
      throw new DbError('NOT_MASTER', `this node is not the master of partition ${this.partition} of ${this.db}`)
    const refused = this.#leaseRefusal()
    if (refused !== null) throw refused
  }

  #leaseRefusal(): DbError | null {
    const clock = this.#deps.leaseClock
    if (clock === undefined) return null
    const now = clock()
    if (now < this.#takeoverAt)
      return new DbError(
        'NOT_MASTER',
        `partition ${this.partition} of ${this.db}: the master is waiting ${Math.ceil(this.#takeoverAt - now)} ms for the previous master's lease to run out`,
      )
    if (!valid(this.#lease, now))
      return new DbError(
        'MASTER_LEASE_EXPIRED',
        `partition ${this.partition} of ${this.db}: this master has not heard back from the log in time; its lease expired`,
      )
    return null
  }

  /** The ETag a condition sees: in-flight writes first, then the applied state; null if absent. */
  #current(table: string, key: string[]): string | null {
    const o = this.#overlay.get(docKey(table, key))
    if (o !== undefined) return o.exists ? o.etag : null
    return this.store.get(table, key)?.etag ?? null
  }

  get(table: string, key: string[]): StoredDocument | undefined {
    return this.store.get(table, key)
  }

  /** Feeds records read from the partition, in offset order. */
  onRecords(records: LogRecord[]): void {
    if (this.#closed || this.#failure !== null) return
    // Transactions (and generation starts) of the whole run commit in one SQLite transaction;
    // their effects (answering writers, taking mastership) follow the commit.
    const toApply: (ReplicaAction & { kind: 'apply' | 'generation-start' })[] = []
    for (const r of records) {
      this.#readOffset = r.offset + 1
      let header = null
      const lm = r.headers.find(([k]) => k === LARGE_MESSAGE_HEADER)
      if (lm !== undefined) {
        const decoded = decodeLargeMessageHeader(lm[1])
        if (!decoded.ok) {
          this.#act({ kind: 'invalid', offset: r.offset, error: `bad large-message header: ${decoded.error}` })
          continue
        }
        header = decoded.header
      }
      const result = this.#assembler.process(this.#partitionId, { offset: r.offset, header, value: r.value })
      if (result.kind !== 'message') continue
      const decoded = decodeEnvelope(result.message.value)
      const input = decoded.ok
        ? { offset: result.message.offset, envelope: decoded.envelope }
        : { offset: result.message.offset, invalid: decoded.error }
      const { state, actions } = step(this.#state, input)
      this.#state = state
      for (const a of actions) {
        if (a.kind === 'apply' || a.kind === 'generation-start') toApply.push(a)
        else this.#act(a)
      }
    }
    try {
      this.store.applyBatch(
        toApply.map((a) => ({
          ops: a.kind === 'apply' ? a.ops : [],
          checkpoint: { generation: a.generation, scn: a.scn, nextOffset: a.nextOffset },
        })),
      )
    } catch (error) {
      // The state machine has moved past what SQLite refused: this replica cannot go on without
      // skipping transactions. It stops; a restart resumes from the last committed checkpoint.
      this.#fail(error)
      return
    }
    for (const a of toApply) this.#act(a)
    this.#passPending()
  }

  #fail(error: unknown): void {
    this.#failure = error instanceof Error ? error.message : String(error)
    this.#role = 'error'
    this.#promotionNonce = null
    this.#deps.log.error(
      'replica failed to apply from the log and stopped; restart the node to resume from its checkpoint',
      { db: this.db, partition: this.partition, error: this.#failure },
    )
    for (const etag of [...this.#pending.keys()])
      this.#settle(
        etag,
        new DbError(
          'TIMEOUT',
          `the replica failed before the transaction was applied here; its outcome is unknown: ${this.#failure}`,
        ),
      )
  }

  /** Why the replica stopped applying, or null. */
  get failure(): string | null {
    return this.#failure
  }

  #act(a: ReplicaAction): void {
    this.#deps.onAction?.(a)
    switch (a.kind) {
      case 'apply': {
        this.counters.applied++
        this.#settle(etagOf(a.generation, a.scn), null)
        break
      }
      case 'generation-start':
        if (a.nonce === this.#promotionNonce && this.#role === 'promoting') {
          this.#role = 'master'
          this.#promotionNonce = null
          this.#nextScn = Math.max(this.#nextScn, a.scn + 1)
          this.#deps.log.info('master: taking writes', {
            db: this.db,
            partition: this.partition,
            generation: a.generation,
            scn: a.scn,
          })
        } else if ((this.#role === 'master' || this.#role === 'promoting') && a.generation > this.#generation) {
          this.#enterError(
            `generation ${a.generation} started by ${a.node} while this node masters generation ${this.#generation}`,
          )
        }
        break
      case 'duplicate':
        this.counters.duplicates++
        // Our own generation start was read back below what is applied (we were behind): write another.
        if (a.nonce !== undefined && a.nonce === this.#promotionNonce && this.#role === 'promoting')
          this.#sendGenerationStart()
        break
      case 'zombie':
        this.counters.zombies++
        this.#deps.log.warn('zombie write dropped', {
          db: this.db,
          partition: this.partition,
          generation: a.generation,
          scn: a.scn,
          appliedGeneration: a.appliedGeneration,
        })
        break
      case 'discarded':
        this.counters.discarded++
        this.#deps.log.info('partial transaction discarded', {
          db: this.db,
          partition: this.partition,
          generation: a.generation,
          scn: a.scn,
          reason: a.reason,
        })
        this.#settle(
          etagOf(a.generation, a.scn),
          new DbError('NOT_APPLIED', `transaction ${etagOf(a.generation, a.scn)} was discarded: ${a.reason}`),
        )
        break
      case 'invalid':
        this.counters.invalid++
        this.#deps.log.warn('invalid replication record skipped', {
          db: this.db,
          partition: this.partition,
          offset: a.offset,
          error: a.error,
        })
        break
      case 'integrity-gap':
        this.counters.integrityGaps++
        this.#deps.log.error('replication stream integrity gap', {
          db: this.db,
          partition: this.partition,
          producer: a.producer,
          expected: a.expected,
          got: a.got,
        })
        break
    }
  }

  /** Fails pending transactions the replica has moved past without applying them. */
  #passPending(): void {
    for (const p of this.#pending.values()) {
      if (compareScn(p.generation, p.scn, this.#state.generation, this.#state.scn) > 0) break
      this.#settle(
        etagOf(p.generation, p.scn),
        new DbError(
          'NOT_APPLIED',
          `transaction ${etagOf(p.generation, p.scn)} was fenced: the log moved on to ${etagOf(this.#state.generation, this.#state.scn)} without it`,
        ),
      )
    }
  }

  #settle(etag: string, error: DbError | null): void {
    const p = this.#pending.get(etag)
    if (p === undefined) return
    this.#pending.delete(etag)
    for (const k of p.keys) if (this.#overlay.get(k)?.etag === etag) this.#overlay.delete(k)
    if (error === null) p.resolve(etag)
    else p.reject(error)
  }

  #enterError(reason: string): void {
    this.#role = 'error'
    this.#promotionNonce = null
    this.#deps.log.error('master entered ERROR: stops taking writes', {
      db: this.db,
      partition: this.partition,
      generation: this.#generation,
      reason,
    })
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#leaseWatch)
    for (const etag of [...this.#pending.keys()])
      this.#settle(
        etag,
        new DbError('TIMEOUT', 'the replica closed before the transaction was read back; its outcome is unknown'),
      )
    this.store.close()
  }
}
