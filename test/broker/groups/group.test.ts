// The group state machine driven directly, with an injected clock: the classic protocol's
// rules, and a seeded random schedule checked against invariants.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ErrorCode } from '../../../src/protocol/errors.ts'
import {
  type Action,
  assertInvariants,
  assertStepInvariants,
  commitError,
  type Env,
  type Event,
  type Group,
  type GroupConfig,
  type Member,
  newGroup,
  nextDeadline,
  step,
} from '../../../src/broker/groups/group.ts'
import { mulberry32 } from '../../../src/util/random.ts'

const CONFIG: GroupConfig = {
  minSessionTimeoutMs: 1000,
  maxSessionTimeoutMs: 60_000,
  initialRebalanceDelayMs: 0,
  maxSize: 100,
}

/** A group plus a clock, collecting the actions the machine emits. */
class Harness {
  group: Group = newGroup('g', 0)
  now = 0
  ids = 0
  replies = new Map<number, Action>()
  persisted = 0
  nextReply = 1
  config: GroupConfig

  constructor(config: Partial<GroupConfig> = {}) {
    this.config = { ...CONFIG, ...config }
  }

  env(): Env {
    return { now: this.now, newMemberId: (c) => `${c}-${++this.ids}`, config: this.config }
  }

  /** One step, which must leave the group it was given as it was. */
  send(event: Event): Action[] {
    const before = structuredClone(this.group)
    const { state, actions } = step(this.group, event, this.env())
    assert.deepEqual(structuredClone(this.group), before, 'step modified its input group')
    this.group = state
    for (const a of actions) {
      if (a.type === 'persist') this.persisted++
      else {
        assert.ok(!this.replies.has(a.reply), `reply ${a.reply} answered twice`)
        this.replies.set(a.reply, a)
      }
    }
    return actions
  }

  join(
    memberId: string,
    opts: {
      version?: number
      instance?: string | null
      protocols?: string[]
      session?: number
      rebalance?: number
    } = {},
  ): number {
    const reply = this.nextReply++
    this.send({
      type: 'join',
      reply,
      apiVersion: opts.version ?? 5,
      memberId,
      groupInstanceId: opts.instance ?? null,
      clientId: 'c',
      clientHost: '/127.0.0.1',
      sessionTimeoutMs: opts.session ?? 10_000,
      rebalanceTimeoutMs: opts.rebalance ?? 20_000,
      protocolType: 'consumer',
      protocols: (opts.protocols ?? ['range']).map((name) => ({ name, metadata: Buffer.from(name) })),
    })
    return reply
  }

  joinReply(reply: number) {
    const a = this.replies.get(reply)
    assert.ok(a?.type === 'join-reply', `join ${reply} answered`)
    return a.response
  }

  sync(memberId: string, generationId: number, assignments: { memberId: string; assignment: Buffer }[] = []): number {
    const reply = this.nextReply++
    this.send({
      type: 'sync',
      reply,
      generationId,
      memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments,
    })
    return reply
  }

  syncReply(reply: number) {
    const a = this.replies.get(reply)
    assert.ok(a?.type === 'sync-reply', `sync ${reply} answered`)
    return a.response
  }

  heartbeat(memberId: string, generationId: number, instance: string | null = null): number {
    const reply = this.nextReply++
    this.send({ type: 'heartbeat', reply, generationId, memberId, groupInstanceId: instance })
    const a = this.replies.get(reply)
    assert.ok(a?.type === 'heartbeat-reply')
    return a.errorCode
  }

  advance(ms: number): void {
    this.now += ms
    this.send({ type: 'tick' })
  }

  /** A new member through the v4+ MEMBER_ID_REQUIRED handshake; returns its id. */
  newMember(opts: Parameters<Harness['join']>[1] = {}): { id: string; reply: number } {
    const first = this.joinReply(this.join('', { ...opts, version: 5 }))
    assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED)
    return { id: first.memberId, reply: this.join(first.memberId, opts) }
  }
}

void test('one member: join, sync as leader, stable, heartbeats', () => {
  const h = new Harness()
  const { id, reply } = h.newMember()
  const joined = h.joinReply(reply)
  assert.equal(joined.errorCode, 0)
  assert.equal(joined.generationId, 1)
  assert.equal(joined.leader, id)
  assert.equal(joined.protocolName, 'range')
  assert.deepEqual(
    joined.members.map((m) => m.memberId),
    [id],
  )
  assert.equal(h.group.state, 'CompletingRebalance')
  const synced = h.syncReply(h.sync(id, 1, [{ memberId: id, assignment: Buffer.from('all') }]))
  assert.equal(synced.assignment.toString(), 'all')
  assert.equal(h.group.state, 'Stable')
  assert.equal(h.persisted, 1)
  assert.equal(h.heartbeat(id, 1), 0)
  assert.equal(h.heartbeat(id, 0), ErrorCode.ILLEGAL_GENERATION)
  assert.equal(h.heartbeat('stranger', 1), ErrorCode.UNKNOWN_MEMBER_ID)
})

void test('a second member joining rebalances; the leader assigns both; followers wait for the leader', () => {
  const h = new Harness()
  const a = h.newMember()
  h.syncReply(h.sync(a.id, 1, [{ memberId: a.id, assignment: Buffer.from('a:0,1') }]))
  const b = h.newMember()
  assert.equal(h.group.state, 'PreparingRebalance')
  assert.equal(h.replies.has(b.reply), false, 'b waits until a rejoins')
  assert.equal(h.heartbeat(a.id, 1), ErrorCode.REBALANCE_IN_PROGRESS)
  const aj = h.joinReply(h.join(a.id))
  const bj = h.joinReply(b.reply)
  assert.equal(aj.generationId, 2)
  assert.equal(bj.generationId, 2)
  assert.equal(aj.members.length, 2, 'the leader sees every member')
  assert.equal(bj.members.length, 0, 'followers see none')
  const bs = h.sync(b.id, 2)
  assert.equal(h.replies.has(bs), false, 'follower waits for the leader')
  h.sync(a.id, 2, [
    { memberId: a.id, assignment: Buffer.from('a:0') },
    { memberId: b.id, assignment: Buffer.from('b:1') },
  ])
  assert.equal(h.syncReply(bs).assignment.toString(), 'b:1')
  assert.equal(h.group.state, 'Stable')
})

void test('a member that stops heartbeating is removed after its session timeout, and the rest rebalance', () => {
  const h = new Harness()
  const a = h.newMember({ session: 3000 })
  h.sync(a.id, 1, [])
  const b = h.newMember({ session: 3000 })
  h.join(a.id, { session: 3000 })
  h.sync(a.id, 2, [])
  h.sync(b.id, 2)
  assert.equal(h.group.state, 'Stable')
  for (let t = 0; t < 5; t++) {
    h.advance(1000)
    assert.equal(h.heartbeat(a.id, 2), t < 2 ? 0 : ErrorCode.REBALANCE_IN_PROGRESS)
  }
  assert.equal(h.group.members.has(b.id), false, 'b expired')
  assert.equal(h.group.state, 'PreparingRebalance')
  const rejoin = h.joinReply(h.join(a.id, { session: 3000 }))
  assert.equal(rejoin.generationId, 3)
  assert.deepEqual(
    rejoin.members.map((m) => m.memberId),
    [a.id],
  )
})

void test('members that do not rejoin within the rebalance timeout are dropped from the new generation', () => {
  const h = new Harness()
  const a = h.newMember({ rebalance: 5000 })
  h.sync(a.id, 1, [])
  const b = h.newMember({ rebalance: 5000 })
  h.join(a.id, { rebalance: 5000 })
  h.sync(a.id, 2, [])
  h.sync(b.id, 2)
  const c = h.newMember({ rebalance: 5000 })
  const aj = h.join(a.id, { rebalance: 5000 })
  assert.equal(h.replies.has(aj), false)
  h.advance(5001) // b never rejoins
  assert.equal(h.joinReply(aj).generationId, 3)
  assert.equal(h.joinReply(c.reply).generationId, 3)
  assert.equal(h.group.members.has(b.id), false)
})

void test('LeaveGroup removes a member at once and rebalances; the last one leaving empties the group', () => {
  const h = new Harness()
  const a = h.newMember()
  h.sync(a.id, 1, [])
  const reply = h.nextReply++
  h.send({ type: 'leave', reply, members: [{ memberId: a.id, groupInstanceId: null }] })
  const left = h.replies.get(reply)
  assert.ok(left?.type === 'leave-reply')
  assert.equal(left.response.errorCode, 0)
  assert.equal(h.group.state, 'Empty')
  assert.equal(h.group.protocolType, 'consumer')
  assert.equal(h.group.generation, 2)
})

void test('joins with old protocol (v3) get an id directly; unknown member ids and bad timeouts are refused', () => {
  const h = new Harness()
  const v3 = h.joinReply(h.join('', { version: 3 }))
  assert.equal(v3.errorCode, 0)
  assert.notEqual(v3.memberId, '')
  assert.equal(h.joinReply(h.join('nobody')).errorCode, ErrorCode.UNKNOWN_MEMBER_ID)
  assert.equal(h.joinReply(h.join('', { session: 10 })).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT)
  assert.equal(h.joinReply(h.join('', { protocols: ['roundrobin'] })).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
})

void test('a static member restarting with the same instance id keeps its assignment without a rebalance', () => {
  const h = new Harness()
  const first = h.joinReply(h.join('', { instance: 'worker-1' }))
  assert.equal(first.errorCode, 0, 'static members skip MEMBER_ID_REQUIRED')
  h.sync(first.memberId, 1, [{ memberId: first.memberId, assignment: Buffer.from('p0') }])
  const again = h.joinReply(h.join('', { instance: 'worker-1' }))
  assert.equal(again.errorCode, 0)
  assert.notEqual(again.memberId, first.memberId)
  assert.equal(again.generationId, 1, 'no new generation')
  assert.equal(h.group.state, 'Stable')
  assert.equal(h.syncReply(h.sync(again.memberId, 1)).assignment.toString(), 'p0')
  assert.equal(
    h.heartbeat(first.memberId, 1, 'worker-1'),
    ErrorCode.FENCED_INSTANCE_ID,
    'the old incarnation is fenced',
  )
})

void test('offset commits: simple consumers on empty groups, members of the current generation only', () => {
  const h = new Harness()
  assert.equal(commitError(undefined, -1, '', null), 0)
  assert.equal(commitError(undefined, 3, 'x', null), ErrorCode.ILLEGAL_GENERATION)
  const a = h.newMember()
  assert.equal(commitError(h.group, 1, a.id, null), ErrorCode.REBALANCE_IN_PROGRESS)
  h.sync(a.id, 1, [])
  assert.equal(commitError(h.group, 1, a.id, null), 0)
  assert.equal(commitError(h.group, 0, a.id, null), ErrorCode.ILLEGAL_GENERATION)
  assert.equal(commitError(h.group, 1, 'other', null), ErrorCode.UNKNOWN_MEMBER_ID)
  assert.equal(commitError(h.group, -1, '', null), ErrorCode.UNKNOWN_MEMBER_ID)
})

void test('the initial rebalance delay gathers members joining an empty group into one generation', () => {
  const h = new Harness({ initialRebalanceDelayMs: 3000 })
  const a = h.newMember()
  h.advance(1000)
  const b = h.newMember()
  assert.equal(h.replies.has(a.reply), false)
  h.advance(2500)
  assert.equal(h.replies.has(a.reply), false, 'b joining extended the delay')
  h.advance(1000)
  assert.equal(h.joinReply(a.reply).generationId, 1)
  assert.equal(h.joinReply(b.reply).generationId, 1)
})

// A seeded random schedule of joins, syncs, heartbeats, leaves and clock ticks. Invariants:
// every request is answered exactly once (the harness asserts that), a reply never names a
// generation newer than the group's, Stable groups have a leader who is a member, and a
// member told its generation in a join reply can sync in it unless a rebalance intervened.
// Besides, `step` asserts the group's invariants (assertInvariants, assertStepInvariants) after
// every event, and the harness checks that no step modifies the group it is given.
void test('random schedules keep the protocol invariants (seeded)', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rand = mulberry32(seed)
    const h = new Harness({ initialRebalanceDelayMs: seed % 2 === 0 ? 0 : 500 })
    const known: { id: string; generation: number }[] = []
    const asked: number[] = []
    for (let i = 0; i < 400; i++) {
      const r = rand()
      const m = known.length > 0 ? known[Math.floor(rand() * known.length)] : undefined
      if (r < 0.15 || m === undefined) {
        const first = h.joinReply(h.join('', { session: 2000, rebalance: 3000 }))
        if (first.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
          known.push({ id: first.memberId, generation: -1 })
          asked.push(h.join(first.memberId, { session: 2000, rebalance: 3000 }))
        }
      } else if (r < 0.35) {
        asked.push(h.join(m.id, { session: 2000, rebalance: 3000 }))
      } else if (r < 0.6) {
        asked.push(
          h.sync(
            m.id,
            m.generation,
            m.id === h.group.leaderId ? known.map((k) => ({ memberId: k.id, assignment: Buffer.from(k.id) })) : [],
          ),
        )
      } else if (r < 0.8) {
        h.heartbeat(m.id, m.generation)
      } else if (r < 0.85) {
        const reply = h.nextReply++
        h.send({ type: 'leave', reply, members: [{ memberId: m.id, groupInstanceId: null }] })
      } else {
        h.advance(Math.floor(rand() * 1500))
      }
      for (const reply of asked) {
        const a = h.replies.get(reply)
        if (a?.type === 'join-reply' && a.response.errorCode === 0) {
          assert.ok(a.response.generationId <= h.group.generation)
          const k = known.find((x) => x.id === a.response.memberId)
          if (k !== undefined) k.generation = a.response.generationId
        }
      }
      if (h.group.state === 'Stable') {
        assert.ok(
          h.group.leaderId !== null && h.group.members.has(h.group.leaderId),
          `seed ${seed} step ${i}: leader is a member`,
        )
      }
      const deadline = nextDeadline(h.group)
      if (deadline !== null) assert.ok(deadline >= h.now - 1500, `seed ${seed}: deadlines are processed`)
    }
    // Let everything time out: every pending join or sync gets its answer.
    for (let i = 0; i < 20; i++) h.advance(5000)
    for (const reply of asked) assert.ok(h.replies.has(reply), `seed ${seed}: request ${reply} was answered`)
  }
})

void test('assertInvariants rejects a corrupted group; assertStepInvariants a generation going back', () => {
  const h = new Harness()
  const a = h.newMember()
  h.sync(a.id, 1, [])
  const b = h.newMember()
  h.join(a.id)
  h.sync(a.id, 2, [])
  h.sync(b.id, 2)
  const g = h.group
  assert.equal(g.state, 'Stable')
  assert.doesNotThrow(() => assertInvariants(g))
  const members = (f: (m: Map<string, Member>) => void) => {
    const copy = new Map([...g.members].map(([id, m]) => [id, { ...m }]))
    f(copy)
    return copy
  }
  assert.throws(() => assertInvariants({ ...g, leaderId: 'nobody' }), /leader nobody is not a member/)
  assert.throws(() => assertInvariants({ ...g, state: 'Empty' }), /Empty, generation \d+\): 2 members/)
  assert.throws(() => assertInvariants({ ...g, leaderId: null }), /no leader/)
  assert.throws(() => assertInvariants({ ...g, generation: -1 }), /generation is not an integer >= 0/)
  assert.throws(() => assertInvariants({ ...g, rebalanceDeadline: 5 }), /rebalance deadline 5/)
  assert.throws(
    () => assertInvariants({ ...g, members: members((m) => (m.get(a.id)!.joinReply = 99)) }),
    /has a JoinGroup waiting/,
  )
  assert.throws(
    () =>
      assertInvariants({
        ...g,
        state: 'CompletingRebalance',
        members: members((m) => {
          m.get(a.id)!.syncReply = 7
          m.get(b.id)!.syncReply = 7
        }),
      }),
    /request 7 waits twice/,
  )
  assert.throws(() => assertInvariants({ ...g, pendingMembers: new Map([[b.id, 0]]) }), /both member and pending/)
  assert.throws(() => assertInvariants({ ...g, staticMembers: new Map([['i', a.id]]) }), /static member i maps to/)
  assert.doesNotThrow(() => assertStepInvariants(g, { ...g, generation: g.generation + 1 }))
  assert.throws(() => assertStepInvariants(g, { ...g, generation: g.generation - 1 }), /generation went back/)
})

void test('step leaves a deeply frozen group untouched; a heartbeat shares the unchanged members and their Buffers', () => {
  const h = new Harness()
  const a = h.newMember()
  const b = h.newMember()
  h.join(a.id)
  h.sync(a.id, 2, [
    { memberId: a.id, assignment: Buffer.alloc(1 << 20, 1) },
    { memberId: b.id, assignment: Buffer.from('b') },
  ])
  h.sync(b.id, 2)
  const given = h.group
  for (const m of given.members.values()) Object.freeze(m)
  Object.freeze(given)
  const { state } = step(
    given,
    { type: 'heartbeat', reply: 1000, generationId: 2, memberId: b.id, groupInstanceId: null },
    { ...h.env(), now: 500 },
  )
  assert.equal(state.members.get(a.id), given.members.get(a.id), 'the unchanged member is shared')
  assert.equal(state.members.get(b.id)!.sessionDeadline, 500 + 10_000)
  assert.equal(given.members.get(b.id)!.sessionDeadline, 10_000)
  // Frozen members and group: a step modifying them in place would throw (strict mode). Maps cannot
  // be frozen: the harness compares a copy of the group taken before each step with it after.
  for (const e of [
    { type: 'touch', memberId: a.id },
    {
      type: 'join',
      reply: 1001,
      apiVersion: 5,
      memberId: b.id,
      groupInstanceId: null,
      clientId: 'c',
      clientHost: 'h',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 20_000,
      protocolType: 'consumer',
      protocols: [{ name: 'x', metadata: Buffer.from('x') }],
    },
    { type: 'tick' },
  ] as Event[]) {
    assert.doesNotThrow(() => step(given, e, { ...h.env(), now: 600 }))
  }
  assert.equal(given.state, 'Stable')
})
