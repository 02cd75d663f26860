// The classic consumer-group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) as a state
// machine: `step(group, event, env) → { state, actions }` applies one event to one group and
// returns the group after it and the actions that follow (responses to send, metadata to persist,
// in order). It is pure: the group it is given is never modified; the step works on a copy of the
// group and its maps, and a member that changes is replaced by a changed copy (members, their
// protocol lists and Buffers are shared between states, never modified). Time and member-id
// generation come from `env` (invariant 7 (docs/invariants.md)), so the same code runs under the
// real coordinator and in tests that drive the clock. Every step ends with assertInvariants and
// assertStepInvariants.
//
// States and transitions follow Kafka's GroupCoordinator (3.8):
//   Empty --join--> PreparingRebalance --all joined / rebalance timeout--> CompletingRebalance
//   CompletingRebalance --leader's SyncGroup--> Stable
//   Stable / CompletingRebalance --join of a new or changed member, leave, session expiry--> PreparingRebalance
//   PreparingRebalance --no members left--> Empty
import { ErrorCode } from '../../protocol/errors.ts'
import { violated } from '../../util/invariant.ts'

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead'

/** Identifies a request waiting for its response. */
export type ReplyId = number

export interface Protocol {
  readonly name: string
  readonly metadata: Buffer
}

export interface Member {
  memberId: string
  groupInstanceId: string | null
  clientId: string
  clientHost: string
  sessionTimeoutMs: number
  rebalanceTimeoutMs: number
  protocols: Protocol[]
  assignment: Buffer
  /** A JoinGroup waiting for the rebalance to complete. */
  joinReply: ReplyId | null
  joinVersion: number
  /** A SyncGroup waiting for the leader's assignment. */
  syncReply: ReplyId | null
  /** When the member expires unless heard from (while not waiting on a join or sync). */
  sessionDeadline: number
}

export interface Group {
  readonly groupId: string
  state: GroupState
  generation: number
  protocolType: string | null
  protocolName: string | null
  leaderId: string | null
  members: Map<string, Member>
  /** group.instance.id → member id, for static members. */
  staticMembers: Map<string, string>
  /** Member ids handed out with MEMBER_ID_REQUIRED, not yet joined: id → deadline. */
  pendingMembers: Map<string, number>
  /** PreparingRebalance ends by this time even if some members have not rejoined. */
  rebalanceDeadline: number | null
  /** group.initial.rebalance.delay.ms: the first rebalance of an empty group waits for more members. */
  joinNotBefore: number | null
  firstJoinAt: number | null
  stateTimestamp: number
}

export interface GroupConfig {
  minSessionTimeoutMs: number
  maxSessionTimeoutMs: number
  initialRebalanceDelayMs: number
  maxSize: number
}

export interface Env {
  readonly now: number
  /** A fresh member id for a client (Kafka: clientId + "-" + UUID). */
  newMemberId(clientId: string): string
  readonly config: GroupConfig
}

export interface JoinResponse {
  errorCode: number
  generationId: number
  protocolType: string | null
  protocolName: string | null
  leader: string
  memberId: string
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[]
}

export interface SyncResponse {
  errorCode: number
  protocolType: string | null
  protocolName: string | null
  assignment: Buffer
}

export interface LeaveResponse {
  errorCode: number
  members: { memberId: string; groupInstanceId: string | null; errorCode: number }[]
}

export type Event =
  | {
      type: 'join'
      reply: ReplyId
      apiVersion: number
      memberId: string
      groupInstanceId: string | null
      clientId: string
      clientHost: string
      sessionTimeoutMs: number
      rebalanceTimeoutMs: number
      protocolType: string
      protocols: Protocol[]
    }
  | {
      type: 'sync'
      reply: ReplyId
      generationId: number
      memberId: string
      groupInstanceId: string | null
      protocolType: string | null
      protocolName: string | null
      assignments: { memberId: string; assignment: Buffer }[]
    }
  | { type: 'heartbeat'; reply: ReplyId; generationId: number; memberId: string; groupInstanceId: string | null }
  | { type: 'leave'; reply: ReplyId; members: { memberId: string; groupInstanceId: string | null }[] }
  /** A member heard from outside the protocol (an offset commit): its session is renewed. */
  | { type: 'touch'; memberId: string }
  | { type: 'tick' }

export type Action =
  | { type: 'join-reply'; reply: ReplyId; response: JoinResponse }
  | { type: 'sync-reply'; reply: ReplyId; response: SyncResponse }
  | { type: 'heartbeat-reply'; reply: ReplyId; errorCode: number }
  | { type: 'leave-reply'; reply: ReplyId; response: LeaveResponse }
  /** Write the group's metadata record; replies after this action wait until it is durable. */
  | { type: 'persist' }

export function newGroup(groupId: string, now: number): Group {
  return {
    groupId,
    state: 'Empty',
    generation: 0,
    protocolType: null,
    protocolName: null,
    leaderId: null,
    members: new Map(),
    staticMembers: new Map(),
    pendingMembers: new Map(),
    rebalanceDeadline: null,
    joinNotBefore: null,
    firstJoinAt: null,
    stateTimestamp: now,
  }
}

const EMPTY: Buffer = Buffer.alloc(0)

function joinError(reply: ReplyId, errorCode: number, memberId = ''): Action {
  return {
    type: 'join-reply',
    reply,
    response: {
      errorCode,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: '',
      memberId,
      members: [],
    },
  }
}

function syncError(reply: ReplyId, errorCode: number): Action {
  return {
    type: 'sync-reply',
    reply,
    response: { errorCode, protocolType: null, protocolName: null, assignment: EMPTY },
  }
}

export interface StepResult {
  state: Group
  actions: Action[]
}

/** Applies one event; returns the group after it and the actions that follow, in order. */
export function step(group: Group, event: Event, env: Env): StepResult {
  const g = draft(group)
  const out: Action[] = []
  switch (event.type) {
    case 'join':
      join(g, event, env, out)
      break
    case 'sync':
      sync(g, event, env, out)
      break
    case 'heartbeat':
      out.push({ type: 'heartbeat-reply', reply: event.reply, errorCode: heartbeat(g, event, env) })
      break
    case 'leave':
      leave(g, event, env, out)
      break
    case 'touch':
      touch(g, event.memberId, env)
      break
    case 'tick':
      tick(g, env, out)
      break
  }
  assertInvariants(g)
  assertStepInvariants(group, g)
  return { state: g, actions: out }
}

/** A copy of the group to work on: its own maps, holding the same (unmodified) members. */
function draft(group: Group): Group {
  return {
    ...group,
    members: new Map(group.members),
    staticMembers: new Map(group.staticMembers),
    pendingMembers: new Map(group.pendingMembers),
  }
}

/** Replaces a member of the draft `g` by a copy with `changes`; returns the copy. */
function update(g: Group, member: Member, changes: Partial<Member>): Member {
  const next = { ...member, ...changes }
  g.members.set(next.memberId, next)
  return next
}

/** Facts of every group: throws (AssertionError) when one does not hold. */
export function assertInvariants(g: Group): void {
  const where = `group ${g.groupId} (${g.state}, generation ${g.generation})`
  if (!Number.isInteger(g.generation) || g.generation < 0)
    violated('group', `${where}: generation is not an integer >= 0`)
  if (g.leaderId !== null && !g.members.has(g.leaderId))
    violated('group', `${where}: leader ${g.leaderId} is not a member`)
  if (g.state === 'Empty' && g.members.size > 0) violated('group', `${where}: ${g.members.size} members`)
  if ((g.state === 'Stable' || g.state === 'CompletingRebalance') && g.leaderId === null)
    violated('group', `${where}: no leader`)
  const preparing = g.state === 'PreparingRebalance'
  if (preparing !== (g.rebalanceDeadline !== null))
    violated('group', `${where}: rebalance deadline ${g.rebalanceDeadline}`)
  if (!preparing && g.joinNotBefore !== null)
    violated('group', `${where}: initial rebalance delay until ${g.joinNotBefore}`)
  const replies = new Set<ReplyId>()
  for (const [id, m] of g.members) {
    if (m.memberId !== id) violated('group', `${where}: member ${m.memberId} filed as ${id}`)
    if (g.pendingMembers.has(id)) violated('group', `${where}: ${id} both member and pending`)
    // A JoinGroup waits only while the group prepares a rebalance, a SyncGroup only while it completes one.
    if (m.joinReply !== null && !preparing) violated('group', `${where}: ${id} has a JoinGroup waiting`)
    if (m.syncReply !== null && g.state !== 'CompletingRebalance')
      violated('group', `${where}: ${id} has a SyncGroup waiting`)
    for (const reply of [m.joinReply, m.syncReply]) {
      if (reply === null) continue
      if (replies.has(reply)) violated('group', `${where}: request ${reply} waits twice`)
      replies.add(reply)
    }
  }
  for (const [instance, id] of g.staticMembers) {
    if (g.members.get(id)?.groupInstanceId !== instance)
      violated('group', `${where}: static member ${instance} maps to ${id}, not a member with that instance id`)
  }
}

/** Facts of every step: the generation never goes back. */
export function assertStepInvariants(prev: Group, next: Group): void {
  if (next.generation < prev.generation)
    violated('group', `group ${next.groupId}: generation went back from ${prev.generation} to ${next.generation}`)
}

/** The earliest time at which a 'tick' would change something, or null. */
export function nextDeadline(group: Group): number | null {
  let next: number | null = null
  const consider = (t: number | null) => {
    if (t !== null && (next === null || t < next)) next = t
  }
  for (const m of group.members.values()) if (m.joinReply === null && m.syncReply === null) consider(m.sessionDeadline)
  for (const deadline of group.pendingMembers.values()) consider(deadline)
  if (group.state === 'PreparingRebalance') {
    consider(group.rebalanceDeadline)
    consider(group.joinNotBefore)
  }
  return next
}

/** Kafka's rule for a new member's protocols: same type, and at least one protocol every member supports. */
function supportsProtocols(group: Group, protocolType: string, protocols: Protocol[]): boolean {
  if (protocolType === '' || protocols.length === 0) return false
  if (group.members.size === 0) return true
  if (group.protocolType !== protocolType) return false
  return protocols.some((p) => [...group.members.values()].every((m) => m.protocols.some((q) => q.name === p.name)))
}

function sameProtocols(a: Protocol[], b: Protocol[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i].name && p.metadata.equals(b[i].metadata))
}

function join(group: Group, e: Extract<Event, { type: 'join' }>, env: Env, out: Action[]): void {
  const cfg = env.config
  if (group.state === 'Dead') return void out.push(joinError(e.reply, ErrorCode.COORDINATOR_NOT_AVAILABLE))
  if (e.sessionTimeoutMs < cfg.minSessionTimeoutMs || e.sessionTimeoutMs > cfg.maxSessionTimeoutMs) {
    return void out.push(joinError(e.reply, ErrorCode.INVALID_SESSION_TIMEOUT))
  }
  const known = e.memberId !== '' && (group.members.has(e.memberId) || group.pendingMembers.has(e.memberId))
  const staticId = e.groupInstanceId === null ? undefined : group.staticMembers.get(e.groupInstanceId)
  if (!known && staticId === undefined && !supportsProtocols(group, e.protocolType, e.protocols)) {
    return void out.push(joinError(e.reply, ErrorCode.INCONSISTENT_GROUP_PROTOCOL, e.memberId))
  }

  if (e.memberId === '') {
    if (e.groupInstanceId !== null && staticId !== undefined) {
      replaceStaticMember(group, e, staticId, env, out)
      return
    }
    if (group.members.size + group.pendingMembers.size >= cfg.maxSize)
      return void out.push(joinError(e.reply, ErrorCode.GROUP_MAX_SIZE_REACHED))
    const memberId = env.newMemberId(e.clientId)
    if (e.apiVersion >= 4 && e.groupInstanceId === null) {
      // KIP-394: hand out the id first, so a client that retries never leaves a ghost member.
      group.pendingMembers.set(memberId, env.now + e.sessionTimeoutMs)
      return void out.push(joinError(e.reply, ErrorCode.MEMBER_ID_REQUIRED, memberId))
    }
    addMemberAndRebalance(group, e, memberId, env, out)
    return
  }

  if (group.pendingMembers.has(e.memberId)) {
    group.pendingMembers.delete(e.memberId)
    addMemberAndRebalance(group, e, e.memberId, env, out)
    return
  }
  const member = group.members.get(e.memberId)
  if (member === undefined)
    return void out.push(joinError(e.reply, unknownMemberError(group, e.groupInstanceId), e.memberId))
  if (e.groupInstanceId !== null && member.groupInstanceId !== e.groupInstanceId)
    return void out.push(joinError(e.reply, ErrorCode.FENCED_INSTANCE_ID, e.memberId))
  if (!supportsProtocols(withoutMember(group, member.memberId), e.protocolType, e.protocols)) {
    return void out.push(joinError(e.reply, ErrorCode.INCONSISTENT_GROUP_PROTOCOL, e.memberId))
  }

  switch (group.state) {
    case 'PreparingRebalance':
      updateMember(group, member, e, env, out)
      tryCompleteJoin(group, env, out)
      return
    case 'CompletingRebalance':
    case 'Stable':
      if (
        sameProtocols(member.protocols, e.protocols) &&
        (group.state === 'CompletingRebalance' || member.memberId !== group.leaderId)
      ) {
        // A repeated join (lost response): answer with the current generation, no rebalance.
        const renewed = update(group, member, { sessionDeadline: env.now + member.sessionTimeoutMs })
        out.push({ type: 'join-reply', reply: e.reply, response: joinResponse(group, renewed) })
        return
      }
      updateMember(group, member, e, env, out)
      prepareRebalance(group, env, out)
      return
    default:
      out.push(joinError(e.reply, ErrorCode.UNKNOWN_MEMBER_ID, e.memberId))
  }
}

/** The group as it would be without one member, for protocol checks of that member's rejoin. */
function withoutMember(group: Group, memberId: string): Group {
  const members = new Map(group.members)
  members.delete(memberId)
  return { ...group, members }
}

function replaceStaticMember(
  group: Group,
  e: Extract<Event, { type: 'join' }>,
  oldId: string,
  env: Env,
  out: Action[],
): void {
  const old = group.members.get(oldId)!
  const newId = env.newMemberId(e.clientId)
  // Whatever the old incarnation was waiting for is answered: it has been fenced.
  if (old.joinReply !== null) out.push(joinError(old.joinReply, ErrorCode.FENCED_INSTANCE_ID, oldId))
  if (old.syncReply !== null) out.push(syncError(old.syncReply, ErrorCode.FENCED_INSTANCE_ID))
  group.members.delete(oldId)
  const member = update(group, old, { memberId: newId, joinReply: null, syncReply: null })
  group.staticMembers.set(e.groupInstanceId!, newId)
  if (group.leaderId === oldId) group.leaderId = newId
  const unchanged = sameProtocols(member.protocols, e.protocols)
  if (group.state === 'Stable' && unchanged) {
    // KIP-345: a static member restarting within its session keeps its assignment, no rebalance.
    const restarted = update(group, member, {
      clientId: e.clientId,
      clientHost: e.clientHost,
      sessionTimeoutMs: e.sessionTimeoutMs,
      rebalanceTimeoutMs: e.rebalanceTimeoutMs,
      sessionDeadline: env.now + e.sessionTimeoutMs,
    })
    out.push({ type: 'persist' })
    out.push({ type: 'join-reply', reply: e.reply, response: joinResponse(group, restarted) })
    return
  }
  updateMember(group, member, e, env, out)
  if (group.state === 'PreparingRebalance') tryCompleteJoin(group, env, out)
  else prepareRebalance(group, env, out)
}

function addMemberAndRebalance(
  group: Group,
  e: Extract<Event, { type: 'join' }>,
  memberId: string,
  env: Env,
  out: Action[],
): void {
  const member: Member = {
    memberId,
    groupInstanceId: e.groupInstanceId,
    clientId: e.clientId,
    clientHost: e.clientHost,
    sessionTimeoutMs: e.sessionTimeoutMs,
    rebalanceTimeoutMs: e.rebalanceTimeoutMs,
    protocols: e.protocols,
    assignment: EMPTY,
    joinReply: e.reply,
    joinVersion: e.apiVersion,
    syncReply: null,
    sessionDeadline: env.now + e.sessionTimeoutMs,
  }
  if (group.members.size === 0) group.protocolType = e.protocolType
  group.members.set(memberId, member)
  if (e.groupInstanceId !== null) group.staticMembers.set(e.groupInstanceId, memberId)
  if (group.leaderId === null) group.leaderId = memberId
  if (group.state === 'PreparingRebalance') {
    extendInitialDelay(group, env)
    group.rebalanceDeadline = Math.max(group.rebalanceDeadline ?? 0, env.now + e.rebalanceTimeoutMs)
    tryCompleteJoin(group, env, out)
  } else {
    prepareRebalance(group, env, out)
  }
}

function updateMember(
  group: Group,
  member: Member,
  e: Extract<Event, { type: 'join' }>,
  env: Env,
  out: Action[],
): void {
  if (member.joinReply !== null && member.joinReply !== e.reply) {
    // A newer JoinGroup supersedes one still waiting; the old one gets an answer so its
    // connection's responses keep flowing.
    out.push(joinError(member.joinReply, ErrorCode.REBALANCE_IN_PROGRESS, member.memberId))
  }
  update(group, member, {
    protocols: e.protocols,
    clientId: e.clientId,
    clientHost: e.clientHost,
    sessionTimeoutMs: e.sessionTimeoutMs,
    rebalanceTimeoutMs: e.rebalanceTimeoutMs,
    joinReply: e.reply,
    joinVersion: e.apiVersion,
    sessionDeadline: env.now + e.sessionTimeoutMs,
  })
}

function prepareRebalance(group: Group, env: Env, out: Action[]): void {
  if (group.state === 'CompletingRebalance') {
    for (const m of [...group.members.values()]) {
      if (m.syncReply === null) continue
      out.push(syncError(m.syncReply, ErrorCode.REBALANCE_IN_PROGRESS))
      update(group, m, { syncReply: null })
    }
  }
  const wasEmpty = group.state === 'Empty'
  setState(group, 'PreparingRebalance', env.now)
  const rebalanceTimeout = Math.max(0, ...[...group.members.values()].map((m) => m.rebalanceTimeoutMs))
  group.rebalanceDeadline = env.now + rebalanceTimeout
  if (wasEmpty && env.config.initialRebalanceDelayMs > 0) {
    group.firstJoinAt = env.now
    group.joinNotBefore = env.now + Math.min(env.config.initialRebalanceDelayMs, rebalanceTimeout)
  } else {
    group.joinNotBefore = null
  }
  tryCompleteJoin(group, env, out)
}

/** Each member joining during the initial delay pushes it out, up to the rebalance timeout. */
function extendInitialDelay(group: Group, env: Env): void {
  if (group.joinNotBefore === null || group.firstJoinAt === null) return
  const limit = group.rebalanceDeadline ?? group.joinNotBefore
  group.joinNotBefore = Math.min(env.now + env.config.initialRebalanceDelayMs, Math.max(limit, group.joinNotBefore))
}

function tryCompleteJoin(group: Group, env: Env, out: Action[]): void {
  if (group.state !== 'PreparingRebalance') return
  if (group.joinNotBefore !== null && env.now < group.joinNotBefore) return
  const allJoined = [...group.members.values()].every((m) => m.joinReply !== null) && group.pendingMembers.size === 0
  if (allJoined || (group.rebalanceDeadline !== null && env.now >= group.rebalanceDeadline))
    completeJoin(group, env, out)
}

function completeJoin(group: Group, env: Env, out: Action[]): void {
  for (const m of [...group.members.values()]) if (m.joinReply === null) removeMember(group, m)
  group.pendingMembers.clear()
  group.rebalanceDeadline = null
  group.joinNotBefore = null
  group.firstJoinAt = null
  group.generation++
  if (group.members.size === 0) {
    // The protocol type stays: an empty consumer group is still a consumer group (ListGroups).
    group.protocolName = null
    group.leaderId = null
    setState(group, 'Empty', env.now)
    out.push({ type: 'persist' })
    return
  }
  group.protocolName = selectProtocol(group)
  if (group.leaderId === null || !group.members.has(group.leaderId)) group.leaderId = group.members.keys().next().value!
  setState(group, 'CompletingRebalance', env.now)
  for (const m of [...group.members.values()]) {
    const joined = update(group, m, {
      assignment: EMPTY,
      sessionDeadline: env.now + m.sessionTimeoutMs,
      joinReply: null,
    })
    out.push({ type: 'join-reply', reply: m.joinReply!, response: joinResponse(group, joined) })
  }
}

function joinResponse(group: Group, member: Member): JoinResponse {
  const isLeader = member.memberId === group.leaderId
  return {
    errorCode: ErrorCode.NONE,
    generationId: group.generation,
    protocolType: group.protocolType,
    protocolName: group.protocolName,
    leader: group.leaderId ?? '',
    memberId: member.memberId,
    members: isLeader
      ? [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY,
        }))
      : [],
  }
}

/** Kafka's vote: among protocols every member supports, each member votes for its first; most votes wins. */
function selectProtocol(group: Group): string {
  const members = [...group.members.values()]
  const candidates = members[0].protocols
    .map((p) => p.name)
    .filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)))
  const votes = new Map<string, number>()
  for (const m of members) {
    const choice = m.protocols.find((p) => candidates.includes(p.name))
    if (choice !== undefined) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1)
  }
  let best = candidates[0]
  for (const name of candidates) if ((votes.get(name) ?? 0) > (votes.get(best) ?? 0)) best = name
  return best
}

function sync(group: Group, e: Extract<Event, { type: 'sync' }>, env: Env, out: Action[]): void {
  const found = group.members.get(e.memberId)
  if (found === undefined) return void out.push(syncError(e.reply, unknownMemberError(group, e.groupInstanceId)))
  if (e.groupInstanceId !== null && found.groupInstanceId !== e.groupInstanceId)
    return void out.push(syncError(e.reply, ErrorCode.FENCED_INSTANCE_ID))
  if (e.generationId !== group.generation) return void out.push(syncError(e.reply, ErrorCode.ILLEGAL_GENERATION))
  if (
    (e.protocolType !== null && e.protocolType !== group.protocolType) ||
    (e.protocolName !== null && e.protocolName !== group.protocolName)
  ) {
    return void out.push(syncError(e.reply, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
  }
  const member = update(group, found, { sessionDeadline: env.now + found.sessionTimeoutMs })
  switch (group.state) {
    case 'PreparingRebalance':
      return void out.push(syncError(e.reply, ErrorCode.REBALANCE_IN_PROGRESS))
    case 'Stable':
      return void out.push(syncReply(group, e.reply, member.assignment))
    case 'CompletingRebalance': {
      if (member.syncReply !== null && member.syncReply !== e.reply)
        out.push(syncError(member.syncReply, ErrorCode.REBALANCE_IN_PROGRESS))
      update(group, member, { syncReply: e.reply })
      if (member.memberId !== group.leaderId) return
      const given = new Map(e.assignments.map((a) => [a.memberId, a.assignment]))
      for (const m of [...group.members.values()]) update(group, m, { assignment: given.get(m.memberId) ?? EMPTY })
      setState(group, 'Stable', env.now)
      out.push({ type: 'persist' })
      for (const m of [...group.members.values()]) {
        if (m.syncReply === null) continue
        out.push(syncReply(group, m.syncReply, m.assignment))
        update(group, m, { syncReply: null, sessionDeadline: env.now + m.sessionTimeoutMs })
      }
      return
    }
    default:
      out.push(syncError(e.reply, ErrorCode.UNKNOWN_MEMBER_ID))
  }
}

function syncReply(group: Group, reply: ReplyId, assignment: Buffer): Action {
  return {
    type: 'sync-reply',
    reply,
    response: {
      errorCode: ErrorCode.NONE,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      assignment,
    },
  }
}

function heartbeat(group: Group, e: Extract<Event, { type: 'heartbeat' }>, env: Env): number {
  const member = group.members.get(e.memberId)
  if (member === undefined) return unknownMemberError(group, e.groupInstanceId)
  if (e.groupInstanceId !== null && member.groupInstanceId !== e.groupInstanceId) return ErrorCode.FENCED_INSTANCE_ID
  if (e.generationId !== group.generation) return ErrorCode.ILLEGAL_GENERATION
  update(group, member, { sessionDeadline: env.now + member.sessionTimeoutMs })
  // A member told REBALANCE_IN_PROGRESS rejoins; during CompletingRebalance it is about to sync.
  return group.state === 'PreparingRebalance' ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE
}

function leave(group: Group, e: Extract<Event, { type: 'leave' }>, env: Env, out: Action[]): void {
  const results: LeaveResponse['members'] = []
  let removed = false
  for (const who of e.members) {
    let memberId = who.memberId
    if (who.groupInstanceId !== null) {
      const mapped = group.staticMembers.get(who.groupInstanceId)
      if (mapped === undefined) {
        results.push({ ...who, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })
        continue
      }
      if (memberId !== '' && memberId !== mapped) {
        results.push({ ...who, errorCode: ErrorCode.FENCED_INSTANCE_ID })
        continue
      }
      memberId = mapped
    }
    if (group.pendingMembers.delete(memberId)) {
      results.push({ ...who, errorCode: ErrorCode.NONE })
      removed = true
      continue
    }
    const member = group.members.get(memberId)
    if (member === undefined) {
      results.push({ ...who, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })
      continue
    }
    if (member.joinReply !== null) out.push(joinError(member.joinReply, ErrorCode.UNKNOWN_MEMBER_ID, memberId))
    if (member.syncReply !== null) out.push(syncError(member.syncReply, ErrorCode.UNKNOWN_MEMBER_ID))
    removeMember(group, member)
    results.push({ ...who, errorCode: ErrorCode.NONE })
    removed = true
  }
  const single = e.members.length === 1 ? results[0].errorCode : ErrorCode.NONE
  out.push({ type: 'leave-reply', reply: e.reply, response: { errorCode: single, members: results } })
  if (removed) membersChanged(group, env, out)
}

function touch(group: Group, memberId: string, env: Env): void {
  const member = group.members.get(memberId)
  if (member !== undefined) update(group, member, { sessionDeadline: env.now + member.sessionTimeoutMs })
}

/** An unknown member id whose instance id belongs to a newer incarnation has been fenced. */
function unknownMemberError(group: Group, groupInstanceId: string | null): number {
  return groupInstanceId !== null && group.staticMembers.has(groupInstanceId)
    ? ErrorCode.FENCED_INSTANCE_ID
    : ErrorCode.UNKNOWN_MEMBER_ID
}

/** Kafka's OffsetCommit rules: who may commit for this group right now (NONE when allowed). */
export function commitError(
  group: Group | undefined,
  generationId: number,
  memberId: string,
  groupInstanceId: string | null,
): number {
  if (group === undefined || group.state === 'Empty' || group.state === 'Dead') {
    // Commits outside group management (assign() consumers, admin tools) carry generation -1.
    return generationId < 0
      ? ErrorCode.NONE
      : group === undefined || group.state === 'Dead'
        ? ErrorCode.ILLEGAL_GENERATION
        : ErrorCode.UNKNOWN_MEMBER_ID
  }
  if (generationId < 0 && memberId === '') return ErrorCode.UNKNOWN_MEMBER_ID
  const member = group.members.get(memberId)
  if (member === undefined) return unknownMemberError(group, groupInstanceId)
  if (groupInstanceId !== null && member.groupInstanceId !== groupInstanceId) return ErrorCode.FENCED_INSTANCE_ID
  if (generationId !== group.generation) return ErrorCode.ILLEGAL_GENERATION
  if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS
  return ErrorCode.NONE
}

function removeMember(group: Group, member: Member): void {
  group.members.delete(member.memberId)
  if (member.groupInstanceId !== null && group.staticMembers.get(member.groupInstanceId) === member.memberId) {
    group.staticMembers.delete(member.groupInstanceId)
  }
  if (group.leaderId === member.memberId) group.leaderId = group.members.keys().next().value ?? null
}

function membersChanged(group: Group, env: Env, out: Action[]): void {
  if (group.state === 'Stable' || group.state === 'CompletingRebalance') prepareRebalance(group, env, out)
  else if (group.state === 'PreparingRebalance') tryCompleteJoin(group, env, out)
}

function tick(group: Group, env: Env, out: Action[]): void {
  let changed = false
  for (const [id, deadline] of [...group.pendingMembers]) {
    if (deadline <= env.now) {
      group.pendingMembers.delete(id)
      changed = true
    }
  }
  for (const m of [...group.members.values()]) {
    if (m.joinReply === null && m.syncReply === null && m.sessionDeadline <= env.now) {
      removeMember(group, m)
      changed = true
    }
  }
  if (changed) membersChanged(group, env, out)
  else tryCompleteJoin(group, env, out)
}

function setState(group: Group, state: GroupState, now: number): void {
  group.state = state
  group.stateTimestamp = now
}
