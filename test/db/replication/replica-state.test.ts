// The replica's replication state machine (src/db/replication/replica-state.ts), rule by rule:
// whole transactions applied at END, partial ones discarded, the (generation, scn) fencing rule
// for duplicates and zombies, generation starts, and per-producer integrity gaps.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Envelope, type Payload, RecordType } from '../../../src/db/replication/envelope.ts'
import { type Operation } from '../../../src/db/replication/operation.ts'
import {
  assertInvariants,
  assertStepInvariants,
  compareScn,
  initialReplicaState,
  type ReplicaAction,
  type ReplicaInput,
  type ReplicaState,
  step,
} from '../../../src/db/replication/replica-state.ts'

const G1 = Buffer.alloc(16, 1)
const G2 = Buffer.alloc(16, 2)

const put = (k: string, v = 1): Operation => ({
  kind: 'put',
  table: 't',
  key: ['p', k],
  doc: { v },
  schemaVersion: 1,
  index: [['v', String(v)]],
})
const del = (k: string): Operation => ({ kind: 'delete', table: 't', key: ['p', k] })

/** A stream builder: records get consecutive offsets and per-guid consecutive sequences. */
class Log {
  readonly inputs: ReplicaInput[] = []
  readonly #seq = new Map<string, number>()
  record(generation: number, scn: number, payload: Payload, guid = G1, sequence?: number): this {
    const key = guid.toString('hex')
    const s = sequence ?? this.#seq.get(key) ?? 0
    this.#seq.set(key, s + 1)
    const envelope: Envelope = { generation, scn, producerGuid: guid, sequence: s, payload }
    this.inputs.push({ offset: this.inputs.length, envelope })
    return this
  }
  begin(g: number, scn: number, count: number, guid = G1): this {
    return this.record(g, scn, { type: RecordType.BEGIN, count }, guid)
  }
  data(g: number, scn: number, op: Operation, guid = G1): this {
    return this.record(g, scn, { type: RecordType.DATA, op }, guid)
  }
  end(g: number, scn: number, count: number, guid = G1): this {
    return this.record(g, scn, { type: RecordType.END, count }, guid)
  }
  txn(g: number, scn: number, ops: Operation[], guid = G1): this {
    this.begin(g, scn, ops.length, guid)
    for (const op of ops) this.data(g, scn, op, guid)
    return this.end(g, scn, ops.length, guid)
  }
  genStart(g: number, scn: number, nonce = `nonce-${g}`, guid = G1): this {
    return this.record(g, scn, { type: RecordType.GENERATION_START, node: `node-${g}`, nonce }, guid)
  }
  invalid(error = 'bad'): this {
    this.inputs.push({ offset: this.inputs.length, invalid: error })
    return this
  }
}

/** Runs a stream through `step`, checking each step leaves the state it was given as it was. */
function run(
  log: Log,
  state: ReplicaState = initialReplicaState(0, 0),
): { state: ReplicaState; actions: ReplicaAction[]; perInput: ReplicaAction[][] } {
  const actions: ReplicaAction[] = []
  const perInput: ReplicaAction[][] = []
  for (const input of log.inputs) {
    const before = structuredClone(state)
    const r = step(state, input)
    assert.deepEqual(structuredClone(state), before, 'step modified its input state')
    state = r.state
    actions.push(...r.actions)
    perInput.push(r.actions)
  }
  return { state, actions, perInput }
}

const kinds = (actions: ReplicaAction[]): string[] => actions.map((a) => a.kind)
const applies = (actions: ReplicaAction[]) => actions.filter((a) => a.kind === 'apply')

test('compareScn orders by generation, then scn', () => {
  assert.ok(compareScn(1, 5, 1, 4) > 0)
  assert.ok(compareScn(1, 4, 1, 5) < 0)
  assert.equal(compareScn(2, 3, 2, 3), 0)
  assert.ok(compareScn(2, 0, 1, 1_000_000) > 0)
  assert.ok(compareScn(1, 1_000_000, 2, 0) < 0)
})

test('initialReplicaState holds the checkpoint and nothing open', () => {
  const s = initialReplicaState(4, 9)
  assert.equal(s.generation, 4)
  assert.equal(s.scn, 9)
  assert.equal(s.open, null)
  assert.equal(s.producers.size, 0)
})

test('a whole transaction is applied at its END, with the offset after the END', () => {
  const ops = [put('a', 1), del('b'), put('c', 3)]
  const log = new Log().genStart(1, 0).txn(1, 1, ops)
  const { state, perInput } = run(log)
  assert.deepEqual(kinds(perInput[0]), ['generation-start'])
  // Nothing happens at BEGIN or at any DATA.
  for (let i = 1; i <= 4; i++) assert.deepEqual(perInput[i], [], `input ${i}`)
  assert.deepEqual(perInput[5], [{ kind: 'apply', generation: 1, scn: 1, ops, nextOffset: 6 }])
  assert.equal(state.generation, 1)
  assert.equal(state.scn, 1)
  assert.equal(state.open, null)
})

test("a transaction's principal (of its TXN record, or of its BEGIN) comes with its apply", () => {
  const log = new Log()
    .genStart(1, 0)
    .record(1, 1, { type: RecordType.TXN, ops: [put('a')], principal: 'alice' })
    .record(1, 2, { type: RecordType.BEGIN, count: 1, principal: 'bob' })
    .data(1, 2, put('b'))
    .end(1, 2, 1)
    .record(1, 3, { type: RecordType.TXN, ops: [put('c')] })
  const applied = run(log).actions.filter((a) => a.kind === 'apply')
  assert.deepEqual(
    applied.map((a) => a.principal),
    ['alice', 'bob', undefined],
  )
})

test('an empty transaction (count 0) is applied', () => {
  const { actions, state } = run(new Log().txn(1, 1, []))
  assert.deepEqual(actions, [{ kind: 'apply', generation: 1, scn: 1, ops: [], nextOffset: 2 }])
  assert.equal(state.scn, 1)
})

test('transactions apply in sequence, each with its own nextOffset', () => {
  const log = new Log()
    .genStart(1, 0)
    .txn(1, 1, [put('a')])
    .txn(1, 2, [put('b'), put('c')])
    .txn(1, 5, [del('a')])
  const { actions, state } = run(log)
  assert.deepEqual(
    applies(actions).map((a) => [a.generation, a.scn, a.nextOffset]),
    [
      [1, 1, 4],
      [1, 2, 8],
      [1, 5, 11],
    ],
  )
  assert.deepEqual([state.generation, state.scn], [1, 5])
})

test('a partial transaction is discarded when the next BEGIN arrives, and the next one applies', () => {
  const log = new Log().begin(1, 1, 2).data(1, 1, put('a')).begin(1, 2, 1).data(1, 2, put('b')).end(1, 2, 1)
  const { actions, perInput, state } = run(log)
  assert.equal(perInput[2].length, 1)
  assert.equal(perInput[2][0].kind, 'discarded')
  assert.deepEqual(
    { ...perInput[2][0], reason: undefined },
    { kind: 'discarded', generation: 1, scn: 1, reason: undefined },
  )
  assert.deepEqual(applies(actions), [{ kind: 'apply', generation: 1, scn: 2, ops: [put('b')], nextOffset: 5 }])
  assert.deepEqual([state.generation, state.scn], [1, 2])
})

test('a partial transaction is discarded when a generation start arrives; its late END applies nothing', () => {
  const log = new Log().begin(1, 1, 1).data(1, 1, put('a')).genStart(2, 0, 'n2', G2).end(1, 1, 1)
  const { actions, state } = run(log)
  assert.deepEqual(kinds(actions), ['discarded', 'generation-start'])
  assert.deepEqual(actions[0], {
    kind: 'discarded',
    generation: 1,
    scn: 1,
    reason: 'transaction not ended before the next one began',
  })
  assert.deepEqual([state.generation, state.scn], [2, 0])
})

test('the same scn written again after a partial attempt applies the complete attempt', () => {
  // A producer failed mid-transaction and a new one resent it whole.
  const log = new Log()
    .begin(1, 1, 2)
    .data(1, 1, put('a'))
    .txn(1, 1, [put('a'), put('b')], G2)
  const { actions } = run(log)
  assert.deepEqual(kinds(actions), ['discarded', 'apply'])
  assert.deepEqual(applies(actions)[0].ops, [put('a'), put('b')])
})

test('END whose count does not match is discarded: fewer DATA, more DATA, or a different END count', () => {
  const cases: [string, Log][] = [
    ['fewer', new Log().begin(1, 1, 3).data(1, 1, put('a')).data(1, 1, put('b')).end(1, 1, 3)],
    ['more', new Log().begin(1, 1, 1).data(1, 1, put('a')).data(1, 1, put('b')).end(1, 1, 1)],
    ['END count differs', new Log().begin(1, 1, 1).data(1, 1, put('a')).end(1, 1, 2)],
    ['END count differs, ops match END', new Log().begin(1, 1, 2).data(1, 1, put('a')).end(1, 1, 1)],
  ]
  for (const [name, log] of cases) {
    const { actions, state } = run(log, initialReplicaState(0, 0))
    assert.deepEqual(kinds(actions), ['discarded'], name)
    const a = actions[0]
    assert.ok(a.kind === 'discarded' && a.generation === 1 && a.scn === 1 && /expected/.test(a.reason), name)
    assert.deepEqual([state.generation, state.scn, state.open], [0, 0, null], name)
  }
})

test('a discarded scn can still be applied when written whole afterwards', () => {
  const log = new Log()
    .begin(1, 1, 2)
    .data(1, 1, put('a'))
    .end(1, 1, 2)
    .txn(1, 1, [put('a'), put('b')])
  const { actions } = run(log)
  assert.deepEqual(kinds(actions), ['discarded', 'apply'])
})

test('a malformed operation is reported invalid and its transaction discarded at END', () => {
  const bad = { kind: 'put', table: 't', key: [] } as unknown as Operation
  const log = new Log().begin(1, 1, 2).data(1, 1, put('a')).data(1, 1, bad).end(1, 1, 2)
  const { actions, perInput, state } = run(log)
  assert.deepEqual(perInput[2], [{ kind: 'invalid', offset: 2, error: 'malformed operation' }])
  assert.deepEqual(kinds(actions), ['invalid', 'discarded'])
  const d = actions[1]
  assert.ok(d.kind === 'discarded' && d.reason === 'malformed operation')
  assert.deepEqual([state.generation, state.scn], [0, 0])
  // Every flavour of malformed operation does the same.
  const malformed: unknown[] = [
    null,
    'put',
    { kind: 'upsert', table: 't', key: ['p'] },
    { kind: 'put', table: 't', key: ['p'], doc: [], schemaVersion: 1, index: [] },
    { kind: 'put', table: 't', key: ['p'], doc: {}, schemaVersion: 1.5, index: [] },
    { kind: 'put', table: 't', key: ['p'], doc: {}, schemaVersion: 1, index: [['a']] },
    { kind: 'delete', table: 1, key: ['p'] },
    { kind: 'delete', table: 't', key: ['p', 2] },
  ]
  for (const op of malformed) {
    const r = run(
      new Log()
        .begin(1, 1, 1)
        .data(1, 1, op as Operation)
        .end(1, 1, 1),
    )
    assert.deepEqual(kinds(r.actions), ['invalid', 'discarded'], JSON.stringify(op))
  }
})

test('a malformed operation discards its transaction even when another DATA makes the count match', () => {
  const bad = { kind: 'delete', table: 't', key: 'p' } as unknown as Operation
  const { actions, state } = run(
    new Log().begin(1, 1, 2).data(1, 1, put('a')).data(1, 1, bad).data(1, 1, put('b')).end(1, 1, 2),
  )
  assert.deepEqual(kinds(actions), ['invalid', 'discarded'])
  assert.deepEqual([state.generation, state.scn], [0, 0])
})

test('an undecodable record is reported invalid with its offset and changes nothing else', () => {
  const log = new Log().genStart(1, 0).invalid('checksum mismatch')
  const { state, perInput } = run(log)
  assert.deepEqual(perInput[1], [{ kind: 'invalid', offset: 1, error: 'checksum mismatch' }])
  assert.deepEqual([state.generation, state.scn], [1, 0])
  // An undecodable record inside a transaction: the count no longer matches, so it is discarded.
  const r = run(new Log().begin(1, 1, 2).data(1, 1, put('a')).invalid().end(1, 1, 2))
  assert.deepEqual(kinds(r.actions), ['invalid', 'discarded'])
})

test('a BEGIN at or below the last applied scn of the same generation is a duplicate; its records are ignored', () => {
  for (const scn of [5, 4, 0]) {
    const log = new Log().txn(2, scn, [put('dup')])
    const { actions, state, perInput } = run(log, initialReplicaState(2, 5))
    assert.deepEqual(perInput[0], [{ kind: 'duplicate', generation: 2, scn }], `scn ${scn}`)
    assert.deepEqual(kinds(actions), ['duplicate'], `scn ${scn}`)
    assert.deepEqual([state.generation, state.scn, state.open], [2, 5, null])
  }
})

test('a whole replayed transaction after it was applied is a duplicate, not applied twice', () => {
  const log = new Log()
    .genStart(1, 0)
    .txn(1, 1, [put('a')])
    .txn(1, 2, [put('b')])
    .txn(1, 1, [put('a')], G2)
    .txn(1, 2, [put('b')], G2)
    .txn(1, 3, [put('c')], G2)
  const { actions } = run(log)
  assert.deepEqual(
    actions.map((a) => `${a.kind}:${'scn' in a ? a.scn : ''}`),
    ['generation-start:0', 'apply:1', 'apply:2', 'duplicate:1', 'duplicate:2', 'apply:3'],
  )
})

test('a BEGIN of a lower generation after a higher one is a zombie; its records are ignored', () => {
  const log = new Log().genStart(3, 0, 'n3', G2).txn(2, 17, [put('z')])
  const { actions, state } = run(log)
  assert.deepEqual(actions.slice(1), [{ kind: 'zombie', generation: 2, scn: 17, appliedGeneration: 3 }])
  assert.deepEqual([state.generation, state.scn, state.open], [3, 0, null])
})

test("a zombie BEGIN interleaved in the current master's open transaction does not discard it", () => {
  const log = new Log()
    .genStart(2, 0, 'n2', G2)
    .begin(2, 1, 2, G2)
    .data(2, 1, put('a'), G2)
    .begin(1, 50, 1, G1)
    .data(1, 50, put('zombie'), G1)
    .data(2, 1, put('b'), G2)
    .end(1, 50, 1, G1)
    .end(2, 1, 2, G2)
  const { actions, state } = run(log)
  assert.deepEqual(kinds(actions), ['generation-start', 'zombie', 'apply'])
  assert.deepEqual(applies(actions)[0].ops, [put('a'), put('b')])
  assert.deepEqual([state.generation, state.scn], [2, 1])
})

test('a generation start of a lower generation is a zombie', () => {
  const { actions, state } = run(new Log().genStart(1, 0, 'old'), initialReplicaState(2, 4))
  assert.deepEqual(actions, [{ kind: 'zombie', generation: 1, scn: 0, appliedGeneration: 2 }])
  assert.deepEqual([state.generation, state.scn], [2, 4])
})

test('a duplicate generation start carries its nonce', () => {
  const log = new Log().genStart(2, 3, 'first').genStart(2, 3, 'again').genStart(2, 1, 'lower')
  const { actions, state } = run(log)
  assert.deepEqual(actions, [
    { kind: 'generation-start', generation: 2, scn: 3, node: 'node-2', nonce: 'first', nextOffset: 1 },
    { kind: 'duplicate', generation: 2, scn: 3, nonce: 'again' },
    { kind: 'duplicate', generation: 2, scn: 1, nonce: 'lower' },
  ])
  assert.deepEqual([state.generation, state.scn], [2, 3])
  // A duplicate BEGIN carries no nonce.
  const b = run(new Log().begin(2, 3, 0), state).actions[0]
  assert.ok(b.kind === 'duplicate' && !('nonce' in b))
})

test('a generation start is applied: it fences lower generations and a higher-generation write follows it', () => {
  const log = new Log()
    .genStart(1, 0)
    .txn(1, 1, [put('a')])
    .txn(1, 2, [put('b')])
    .genStart(2, 0, 'n2', G2)
    .txn(1, 3, [put('late')])
    .txn(2, 1, [put('c')], G2)
  const { actions, state } = run(log)
  const starts = actions.filter((a) => a.kind === 'generation-start')
  assert.deepEqual(
    starts.map((a) => [a.generation, a.scn, a.nonce, a.nextOffset]),
    [
      [1, 0, 'nonce-1', 1],
      [2, 0, 'n2', 8],
    ],
  )
  assert.deepEqual(
    applies(actions).map((a) => [a.generation, a.scn]),
    [
      [1, 1],
      [1, 2],
      [2, 1],
    ],
  )
  assert.equal(actions.filter((a) => a.kind === 'zombie').length, 1)
  assert.deepEqual([state.generation, state.scn], [2, 1])
})

test('a generation start may continue the scn of its own generation (a restarted master)', () => {
  const log = new Log()
    .genStart(1, 0)
    .txn(1, 1, [put('a')])
    .genStart(1, 2, 'again')
    .txn(1, 3, [put('b')])
  const { actions } = run(log)
  assert.deepEqual(kinds(actions), ['generation-start', 'apply', 'generation-start', 'apply'])
})

test('stray DATA and END with nothing open are ignored', () => {
  const log = new Log().data(1, 1, put('a')).end(1, 1, 1).data(1, 1, put('b')).end(1, 1, 1)
  const { actions, state } = run(log)
  assert.deepEqual(actions, [])
  assert.deepEqual([state.generation, state.scn, state.open], [0, 0, null])
})

test('DATA and END of another (generation, scn) than the open transaction are ignored', () => {
  const log = new Log()
    .begin(1, 2, 1)
    .data(1, 1, put('x'))
    .data(2, 2, put('y'))
    .end(1, 1, 0)
    .data(1, 2, put('a'))
    .end(1, 3, 1)
    .end(1, 2, 1)
  const { actions } = run(log)
  assert.deepEqual(actions, [{ kind: 'apply', generation: 1, scn: 2, ops: [put('a')], nextOffset: 7 }])
})

test('integrity: contiguous sequences per producer are quiet; a gap is reported with the producer guid', () => {
  const quiet = run(new Log().txn(1, 1, [put('a'), put('b')]).txn(1, 2, [put('c')]))
  assert.deepEqual(kinds(quiet.actions), ['apply', 'apply'])

  const log = new Log()
  log.record(1, 1, { type: RecordType.BEGIN, count: 1 }, G1, 10)
  log.record(1, 1, { type: RecordType.DATA, op: put('a') }, G1, 11)
  log.record(1, 1, { type: RecordType.END, count: 1 }, G1, 14) // 12, 13 lost
  const { actions } = run(log)
  assert.deepEqual(actions, [
    { kind: 'integrity-gap', producer: G1.toString('hex'), expected: 12, got: 14 },
    { kind: 'apply', generation: 1, scn: 1, ops: [put('a')], nextOffset: 3 },
  ])
})

test('integrity: producers are tracked separately, replays are not gaps, and a new producer may start anywhere', () => {
  const log = new Log()
  log.record(1, 0, { type: RecordType.GENERATION_START, node: 'n', nonce: 'x' }, G1, 0)
  log.record(1, 1, { type: RecordType.BEGIN, count: 0 }, G2, 500) // new producer: anywhere
  log.record(1, 1, { type: RecordType.END, count: 0 }, G2, 501)
  log.record(1, 2, { type: RecordType.BEGIN, count: 0 }, G1, 1) // G1 continues: no gap
  log.record(1, 2, { type: RecordType.END, count: 0 }, G1, 2)
  log.record(1, 2, { type: RecordType.BEGIN, count: 0 }, G1, 1) // a replay (lower): no gap...
  log.record(1, 3, { type: RecordType.BEGIN, count: 0 }, G1, 3) // ...and the last seen stays 2
  log.record(1, 3, { type: RecordType.END, count: 0 }, G2, 503) // G2 skipped 502
  const { actions, state } = run(log)
  const gaps = actions.filter((a) => a.kind === 'integrity-gap')
  assert.deepEqual(gaps, [{ kind: 'integrity-gap', producer: G2.toString('hex'), expected: 502, got: 503 }])
  assert.equal(state.producers.get(G1.toString('hex')), 3)
  assert.equal(state.producers.get(G2.toString('hex')), 503)
})

test('integrity: the producer table stays bounded', () => {
  const log = new Log()
  for (let i = 0; i < 200; i++) {
    const guid = Buffer.alloc(16)
    guid.writeUInt32BE(i)
    log.record(1, i + 1, { type: RecordType.BEGIN, count: 0 }, guid, 0)
  }
  const { state } = run(log)
  assert.ok(state.producers.size <= 64, `tracked ${state.producers.size}`)
  // The most recent producer is still tracked.
  const last = Buffer.alloc(16)
  last.writeUInt32BE(199)
  assert.equal(state.producers.get(last.toString('hex')), 0)
})

test('step is pure: the input state is never modified', () => {
  const log = new Log()
    .genStart(1, 0)
    .begin(1, 1, 2)
    .data(1, 1, put('a'))
    .data(1, 1, put('b'))
    .end(1, 1, 2)
    .begin(1, 2, 1)
    .data(1, 2, put('c'))
  let state = initialReplicaState(0, 0)
  for (const input of log.inputs) {
    const before = structuredClone(state)
    const r = step(state, input)
    assert.deepEqual(state, before, `input at offset ${input.offset} modified the state it was given`)
    state = r.state
  }
  // So the same state can be stepped twice (e.g. by a simulator exploring two futures) with the same result.
  const open = state
  const a = step(open, {
    offset: 100,
    envelope: { generation: 1, scn: 2, producerGuid: G1, sequence: 7, payload: { type: RecordType.END, count: 1 } },
  })
  const b = step(open, {
    offset: 100,
    envelope: { generation: 1, scn: 2, producerGuid: G1, sequence: 7, payload: { type: RecordType.END, count: 1 } },
  })
  assert.deepEqual(a, b)
  assert.deepEqual(kinds(a.actions), ['apply'])
})

test('a single TXN record is a whole transaction: applied, fenced and discarded by the same rules', () => {
  const log = new Log()
    .genStart(1, 0)
    .record(1, 1, { type: RecordType.TXN, ops: [put('a'), del('b')] })
    .record(1, 1, { type: RecordType.TXN, ops: [put('a', 2)] }) // a replay: duplicate
    .begin(1, 2, 1)
    .data(1, 2, put('c'))
    .record(1, 3, { type: RecordType.TXN, ops: [put('d')] }) // ends the open BEGIN…: it is discarded
    .record(1, 4, { type: RecordType.TXN, ops: [{ kind: 'put', table: 't', key: [] } as unknown as Operation] })
    .genStart(2, 0, 'n2', G2)
    .record(1, 5, { type: RecordType.TXN, ops: [put('zombie')] })
  const { state, perInput } = run(log)
  assert.deepEqual(perInput[1], [{ kind: 'apply', generation: 1, scn: 1, ops: [put('a'), del('b')], nextOffset: 2 }])
  assert.deepEqual(perInput[2], [{ kind: 'duplicate', generation: 1, scn: 1 }])
  assert.deepEqual(
    perInput[5].map((a) => a.kind),
    ['discarded', 'apply'],
  )
  assert.deepEqual(
    perInput[6].map((a) => a.kind),
    ['invalid', 'discarded'],
  )
  assert.deepEqual(perInput[8], [{ kind: 'zombie', generation: 1, scn: 5, appliedGeneration: 2 }])
  assert.deepEqual([state.generation, state.scn], [2, 0])
})

test('DATA and END from another producer do not join a transaction begun by the first', () => {
  const log = new Log()
    .begin(1, 1, 1, G1)
    .data(1, 1, put('from-g2'), G2)
    .data(1, 1, put('from-g1'), G1)
    .end(1, 1, 1, G2)
    .end(1, 1, 1, G1)
  const { actions } = run(log)
  const applied = actions.filter((a) => a.kind === 'apply')
  assert.equal(applied.length, 1)
  assert.deepEqual(applied[0], { kind: 'apply', generation: 1, scn: 1, ops: [put('from-g1')], nextOffset: 5 })
})

test('assertInvariants rejects a corrupted state; assertStepInvariants an applied (generation, scn) going back', () => {
  const ok = run(new Log().genStart(2, 0).begin(2, 1, 1)).state
  assert.doesNotThrow(() => assertInvariants(ok))
  const open = ok.open!
  assert.throws(
    () => assertInvariants({ ...ok, open: { ...open, generation: 1 } }),
    /open transaction \(1, 1\) is not above the applied \(2, 0\)/,
  )
  assert.throws(() => assertInvariants({ ...ok, scn: -1 }), /not a pair of integers >= 0/)
  const producers = new Map(Array.from({ length: 65 }, (_, i) => [String(i), 0]))
  assert.throws(() => assertInvariants({ ...ok, producers }), /65 producers tracked/)
  assert.doesNotThrow(() => assertStepInvariants(initialReplicaState(1, 5), initialReplicaState(2, 0)))
  assert.throws(
    () => assertStepInvariants(initialReplicaState(2, 0), initialReplicaState(1, 9)),
    /went back from \(2, 0\) to \(1, 9\)/,
  )
})

test('step leaves its input untouched, even when the state it is given is deeply frozen', () => {
  const log = new Log().genStart(1, 0).begin(1, 1, 2).data(1, 1, put('a')).data(1, 1, put('b'))
  const given = run(log).state
  Object.freeze(given.open!.ops)
  Object.freeze(given.open)
  Object.freeze(given)
  const before = structuredClone(given)
  const { state } = step(given, {
    offset: 9,
    envelope: { generation: 1, scn: 1, producerGuid: G1, sequence: 4, payload: { type: RecordType.END, count: 2 } },
  })
  assert.deepEqual([state.generation, state.scn, state.open], [1, 1, null])
  assert.deepEqual(structuredClone(given), before)
})
