// The replica's replication state machine (invariants 2, 3, 4 and 7, docs/invariants.md):
// `step(state, input) → { state, actions }`, pure: the input state is never modified (a step
// returns a new state, sharing what did not change), and there is no I/O: the caller applies the
// actions (SQLite writes, answering waiting clients, counting, alarming), so the same function
// runs in the storage node (partition-replica.ts) and under a simulator. Every step ends with
// assertInvariants and assertStepInvariants, which throw when a rule below is broken.
//
// Rules:
// - A transaction is BEGIN, its DATA records, END, all with one (generation, scn) and from one
//   producer, or a single TXN record holding all of it. It is applied
//   whole at its END, or not at all: a BEGIN (or generation start) arriving while another
//   transaction is open discards the open one (a partial transaction left by a failed producer);
//   a zombie's BEGIN does not (it is dropped before it can touch the current master's transaction).
// - One fencing rule: (generation, scn) must be greater than the last applied. Equal or lower in
//   the same generation is a duplicate (skipped); a lower generation after a higher one is a
//   zombie write (dropped, alarmed).
// - GENERATION_START(g) is applied like a transaction with no data: after it, writes of earlier
//   generations are zombies. A new master takes writes only once it has applied its own.
// - Integrity (Venice-style): per producer guid, record sequences must be contiguous; a gap means
//   records were lost between producer and log, which is reported (nothing else can be done).
import { type Envelope, RecordType } from './envelope.ts'
import { violated } from '../../util/invariant.ts'
import { type Operation, validOperation } from './operation.ts'

export interface OpenTransaction {
  generation: number
  scn: number
  /** The producer guid (hex) that began it: DATA and END from another producer are not its own. */
  producer: string
  count: number
  ops: Operation[]
  broken: boolean
  /** Who made it (the BEGIN record's principal), when recorded. */
  principal?: string
}

export interface ReplicaState {
  /** Last applied (generation, scn). */
  generation: number
  scn: number
  open: OpenTransaction | null
  /** Last sequence seen per producer guid (hex); bounded to the most recent producers. */
  producers: Map<string, number>
}

export type ReplicaInput = { offset: number; envelope: Envelope } | { offset: number; invalid: string }

export type ReplicaAction =
  | { kind: 'apply'; generation: number; scn: number; ops: Operation[]; nextOffset: number; principal?: string }
  | { kind: 'generation-start'; generation: number; scn: number; node: string; nonce: string; nextOffset: number }
  /** A record whose (generation, scn) is not above the last applied; `nonce` set for a generation start. */
  | { kind: 'duplicate'; generation: number; scn: number; nonce?: string }
  | { kind: 'zombie'; generation: number; scn: number; appliedGeneration: number }
  | { kind: 'discarded'; generation: number; scn: number; reason: string }
  | { kind: 'invalid'; offset: number; error: string }
  | { kind: 'integrity-gap'; producer: string; expected: number; got: number }

export interface StepResult {
  state: ReplicaState
  actions: ReplicaAction[]
}

const MAX_TRACKED_PRODUCERS = 64

export function initialReplicaState(generation: number, scn: number): ReplicaState {
  return { generation, scn, open: null, producers: new Map() }
}

/** Compares (g1, s1) with (g2, s2). */
export function compareScn(g1: number, s1: number, g2: number, s2: number): number {
  return g1 !== g2 ? g1 - g2 : s1 - s2
}

/** Applies one record (or an undecodable one); the input state is left as it was. */
export function step(state: ReplicaState, input: ReplicaInput): StepResult {
  const result = apply(state, input)
  assertInvariants(result.state)
  assertStepInvariants(state, result.state)
  return result
}

/** Facts of every state: throws (AssertionError) when one does not hold. */
export function assertInvariants(s: ReplicaState): void {
  if (!Number.isInteger(s.generation) || s.generation < 0 || !Number.isInteger(s.scn) || s.scn < 0)
    violated('replica', `applied (generation, scn) (${s.generation}, ${s.scn}) is not a pair of integers >= 0`)
  if (s.producers.size > MAX_TRACKED_PRODUCERS)
    violated('replica', `${s.producers.size} producers tracked, more than ${MAX_TRACKED_PRODUCERS}`)
  const open = s.open
  if (open !== null && compareScn(open.generation, open.scn, s.generation, s.scn) <= 0) {
    violated(
      'replica',
      `open transaction (${open.generation}, ${open.scn}) is not above the applied (${s.generation}, ${s.scn})`,
    )
  }
}

/** Facts of every step: the applied (generation, scn) never goes back (invariant 3 (docs/invariants.md)). */
export function assertStepInvariants(prev: ReplicaState, next: ReplicaState): void {
  if (compareScn(next.generation, next.scn, prev.generation, prev.scn) < 0) {
    violated(
      'replica',
      `applied (generation, scn) went back from (${prev.generation}, ${prev.scn}) to (${next.generation}, ${next.scn})`,
    )
  }
}

function apply(state: ReplicaState, input: ReplicaInput): StepResult {
  const actions: ReplicaAction[] = []
  if ('invalid' in input) {
    actions.push({ kind: 'invalid', offset: input.offset, error: input.invalid })
    return { state, actions }
  }
  const e = input.envelope
  const producers = trackProducer(state.producers, e, actions)
  let next: ReplicaState = { ...state, producers }
  const p = e.payload

  if (p.type === RecordType.BEGIN || p.type === RecordType.GENERATION_START || p.type === RecordType.TXN) {
    // A zombie's records interleave with the current master's at any point: they must not touch
    // the transaction it has open.
    if (e.generation < next.generation) {
      actions.push({ kind: 'zombie', generation: e.generation, scn: e.scn, appliedGeneration: next.generation })
      return { state: next, actions }
    }
    if (next.open !== null) {
      actions.push({
        kind: 'discarded',
        generation: next.open.generation,
        scn: next.open.scn,
        reason: 'transaction not ended before the next one began',
      })
      next = { ...next, open: null }
    }
    if (compareScn(e.generation, e.scn, next.generation, next.scn) <= 0) {
      actions.push(
        p.type === RecordType.GENERATION_START
          ? { kind: 'duplicate', generation: e.generation, scn: e.scn, nonce: p.nonce }
          : { kind: 'duplicate', generation: e.generation, scn: e.scn },
      )
      return { state: next, actions }
    }
    if (p.type === RecordType.BEGIN) {
      return {
        state: {
          ...next,
          open: {
            generation: e.generation,
            scn: e.scn,
            producer: e.producerGuid.toString('hex'),
            count: p.count,
            ops: [],
            broken: false,
            ...(p.principal === undefined ? {} : { principal: p.principal }),
          },
        },
        actions,
      }
    }
    if (p.type === RecordType.TXN) {
      // A whole transaction in one record: applied now, or discarded whole.
      if (!p.ops.every(validOperation)) {
        actions.push({ kind: 'invalid', offset: input.offset, error: 'malformed operation' })
        actions.push({ kind: 'discarded', generation: e.generation, scn: e.scn, reason: 'malformed operation' })
        return { state: next, actions }
      }
      actions.push({
        kind: 'apply',
        generation: e.generation,
        scn: e.scn,
        ops: p.ops,
        nextOffset: input.offset + 1,
        ...(p.principal === undefined ? {} : { principal: p.principal }),
      })
      return { state: { ...next, generation: e.generation, scn: e.scn }, actions }
    }
    actions.push({
      kind: 'generation-start',
      generation: e.generation,
      scn: e.scn,
      node: p.node,
      nonce: p.nonce,
      nextOffset: input.offset + 1,
    })
    return { state: { ...next, generation: e.generation, scn: e.scn }, actions }
  }

  // DATA and END belong to the open transaction, or to nothing (a fenced or partial one).
  const open = next.open
  if (
    open === null ||
    open.generation !== e.generation ||
    open.scn !== e.scn ||
    open.producer !== e.producerGuid.toString('hex')
  )
    return { state: next, actions }
  if (p.type === RecordType.DATA) {
    if (!validOperation(p.op)) {
      actions.push({ kind: 'invalid', offset: input.offset, error: 'malformed operation' })
      return { state: { ...next, open: { ...open, broken: true } }, actions }
    }
    // A copy, not a push: step never modifies the state it is given.
    return { state: { ...next, open: { ...open, ops: [...open.ops, p.op] } }, actions }
  }
  // END
  if (open.broken || open.ops.length !== open.count || p.count !== open.count) {
    actions.push({
      kind: 'discarded',
      generation: open.generation,
      scn: open.scn,
      reason: open.broken ? 'malformed operation' : `expected ${open.count} operations, got ${open.ops.length}`,
    })
    return { state: { ...next, open: null }, actions }
  }
  actions.push({
    kind: 'apply',
    generation: open.generation,
    scn: open.scn,
    ops: open.ops,
    nextOffset: input.offset + 1,
    ...(open.principal === undefined ? {} : { principal: open.principal }),
  })
  return { state: { ...next, open: null, generation: open.generation, scn: open.scn }, actions }
}

function trackProducer(producers: Map<string, number>, e: Envelope, actions: ReplicaAction[]): Map<string, number> {
  const guid = e.producerGuid.toString('hex')
  const last = producers.get(guid)
  if (last !== undefined && e.sequence !== last + 1 && e.sequence > last)
    actions.push({ kind: 'integrity-gap', producer: guid, expected: last + 1, got: e.sequence })
  if (last !== undefined && e.sequence <= last) return producers
  const updated = new Map(producers)
  updated.delete(guid)
  updated.set(guid, e.sequence)
  if (updated.size > MAX_TRACKED_PRODUCERS) updated.delete(updated.keys().next().value!)
  return updated
}
