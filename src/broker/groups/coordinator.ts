// The group coordinator's runtime: drives the group state machine (group.ts) with the real clock,
// keeps the group each step returns, turns its actions into responses, and keeps committed offsets and group metadata in the
// compacted __consumer_offsets topic, which it reads back at start-up.
import { randomUUID } from 'node:crypto'
import { ErrorCode } from '../../protocol/errors.ts'
import { type GroupMetadataValue } from '../../protocol/messages/group-metadata-value.ts'
import {
  decodeRecords,
  encodeRecordBatch,
  readBatchHeader,
  validateProducedBatches,
} from '../../protocol/record-batch.ts'
import { type Logger } from '../../util/log.ts'
import { type BrokerConfig } from '../config.ts'
import { LogError } from '../log/errors.ts'
import { type PartitionLog } from '../log/partition-log.ts'
import { type TopicManager } from '../topics.ts'
import {
  type Action,
  commitError,
  type Env,
  type Event,
  type Group,
  type GroupConfig,
  type JoinResponse,
  type LeaveResponse,
  newGroup,
  nextDeadline,
  type ReplyId,
  step,
  type SyncResponse,
} from './group.ts'
import {
  decodeOffsetsRecord,
  groupMetadataKey,
  groupMetadataValue,
  OFFSETS_TOPIC,
  offsetCommitKey,
  offsetCommitValue,
  partitionForGroup,
} from './offsets-topic.ts'

export interface CommittedOffset {
  offset: number
  leaderEpoch: number
  metadata: string
  commitTimestamp: number
}

export interface OffsetToCommit {
  topic: string
  partition: number
  offset: number
  leaderEpoch: number
  metadata: string | null
}

type Replies = JoinResponse | SyncResponse | LeaveResponse | number

const OFFSET_METADATA_MAX_BYTES = 4096

/** A group's committed offsets, keyed by "topic\0partition". */
type GroupOffsets = Map<string, CommittedOffset & { topic: string; partition: number }>

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>()
  private readonly offsets = new Map<string, GroupOffsets>()
  private readonly waiting = new Map<ReplyId, (response: Replies) => void>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private nextReply = 1
  private partitions: PartitionLog[] = []
  private readonly topics: TopicManager
  private readonly config: BrokerConfig
  private readonly groupConfig: GroupConfig
  private readonly log: Logger
  private readonly durable: boolean
  private expiryTimer: NodeJS.Timeout | undefined

  constructor(topics: TopicManager, config: BrokerConfig, log: Logger, durable: boolean) {
    this.topics = topics
    this.config = config
    this.log = log.child({ component: 'group-coordinator' })
    this.durable = durable
    this.groupConfig = {
      minSessionTimeoutMs: config.number('group.min.session.timeout.ms'),
      maxSessionTimeoutMs: config.number('group.max.session.timeout.ms'),
      initialRebalanceDelayMs: config.number('group.initial.rebalance.delay.ms'),
      maxSize: config.number('group.max.size'),
    }
  }

  /** Creates __consumer_offsets if needed and loads every group's offsets and metadata from it. */
  start(now = Date.now()): void {
    const topic =
      this.topics.get(OFFSETS_TOPIC) ??
      this.topics.create(OFFSETS_TOPIC, this.config.number('offsets.topic.num.partitions'), {
        'cleanup.policy': 'compact',
        'segment.bytes': this.config.get('offsets.topic.segment.bytes'),
      })
    this.partitions = topic.partitions
    let records = 0
    for (const log of this.partitions) records += this.load(log, now)
    for (const group of this.groups.values()) this.schedule(group)
    const interval = this.config.number('offsets.retention.check.interval.ms')
    this.expiryTimer = setInterval(() => this.expireOffsets(Date.now()), interval)
    this.expiryTimer.unref()
    this.log.info('groups loaded', { groups: this.groups.size, offsetGroups: this.offsets.size, records })
  }

  close(): void {
    clearInterval(this.expiryTimer)
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  // ------------------------------------------------------------ group membership

  join(groupId: string, e: Omit<Extract<Event, { type: 'join' }>, 'type' | 'reply'>): Promise<JoinResponse> {
    return this.submit(groupId, (reply) => ({ ...e, type: 'join', reply })) as Promise<JoinResponse>
  }

  sync(groupId: string, e: Omit<Extract<Event, { type: 'sync' }>, 'type' | 'reply'>): Promise<SyncResponse> {
    return this.submit(groupId, (reply) => ({ ...e, type: 'sync', reply }), false) as Promise<SyncResponse>
  }

  heartbeat(groupId: string, e: Omit<Extract<Event, { type: 'heartbeat' }>, 'type' | 'reply'>): Promise<number> {
    return this.submit(groupId, (reply) => ({ ...e, type: 'heartbeat', reply }), false) as Promise<number>
  }

  leave(groupId: string, members: { memberId: string; groupInstanceId: string | null }[]): Promise<LeaveResponse> {
    return this.submit(groupId, (reply) => ({ type: 'leave', reply, members }), false) as Promise<LeaveResponse>
  }

  /** Feeds an event to a group's state machine; resolves with that request's response. */
  private submit(groupId: string, make: (reply: ReplyId) => Event, create = true): Promise<Replies> {
    const reply = this.nextReply++
    const event = make(reply)
    if (!this.groups.has(groupId)) {
      if (!create) return Promise.resolve(unknownMemberResponse(event))
      this.groups.set(groupId, newGroup(groupId, Date.now()))
    }
    const answered = new Promise<Replies>((resolve) => this.waiting.set(reply, resolve))
    this.apply(groupId, event)
    return answered
  }

  private env(now = Date.now()): Env {
    return { now, newMemberId: (clientId) => `${clientId}-${randomUUID()}`, config: this.groupConfig }
  }

  /** One step of a group's state machine: the group it returns replaces the one it was given. */
  private apply(groupId: string, event: Event, now = Date.now()): void {
    const group = this.groups.get(groupId)
    if (group === undefined) return
    const { state, actions } = step(group, event, this.env(now))
    this.groups.set(groupId, state)
    this.perform(state, actions)
    this.schedule(state)
  }

  /** Runs actions in order: a persist is appended now, and the replies after it wait for its fsync. */
  private perform(group: Group, actions: Action[]): void {
    let gate: Promise<boolean> = Promise.resolve(true)
    for (const a of actions) {
      if (a.type === 'persist') {
        gate = this.writeGroup(group)
        continue
      }
      const resolve = this.waiting.get(a.reply)
      if (resolve === undefined) continue
      this.waiting.delete(a.reply)
      const response: Replies = a.type === 'heartbeat-reply' ? a.errorCode : a.response
      void gate.then((ok) => {
        if (!ok && a.type === 'sync-reply') resolve({ ...a.response, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE })
        else resolve(response)
      })
    }
  }

  private schedule(group: Group): void {
    clearTimeout(this.timers.get(group.groupId))
    this.timers.delete(group.groupId)
    const at = nextDeadline(group)
    if (at === null) return
    const timer = setTimeout(
      () => {
        this.timers.delete(group.groupId)
        this.apply(group.groupId, { type: 'tick' })
      },
      Math.max(0, at - Date.now()) + 1,
    )
    timer.unref()
    this.timers.set(group.groupId, timer)
  }

  // ------------------------------------------------------------ offsets

  async commit(
    groupId: string,
    generationId: number,
    memberId: string,
    groupInstanceId: string | null,
    offsets: OffsetToCommit[],
    now = Date.now(),
  ): Promise<number[]> {
    const group = this.groups.get(groupId)
    const refused = commitError(group, generationId, memberId, groupInstanceId)
    if (refused !== ErrorCode.NONE) return offsets.map(() => refused)
    if (group?.members.has(memberId) === true) this.apply(groupId, { type: 'touch', memberId }, now)
    const errors = offsets.map((o) => {
      const topic = this.topics.get(o.topic)
      if (topic === undefined || o.partition < 0 || o.partition >= topic.partitions.length)
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
      if (o.metadata !== null && Buffer.byteLength(o.metadata) > OFFSET_METADATA_MAX_BYTES)
        return ErrorCode.OFFSET_METADATA_TOO_LARGE
      return ErrorCode.NONE
    })
    const accepted = offsets.filter((_, i) => errors[i] === ErrorCode.NONE)
    if (accepted.length === 0) return errors
    const records = accepted.map((o) => ({
      key: offsetCommitKey(groupId, o.topic, o.partition),
      value: offsetCommitValue({
        offset: o.offset,
        leaderEpoch: o.leaderEpoch,
        metadata: o.metadata ?? '',
        commitTimestamp: now,
      }),
    }))
    const ok = await this.write(groupId, records)
    if (!ok) return errors.map((e) => (e === ErrorCode.NONE ? ErrorCode.COORDINATOR_NOT_AVAILABLE : e))
    let committed = this.offsets.get(groupId)
    if (committed === undefined) this.offsets.set(groupId, (committed = new Map() as GroupOffsets))
    for (const o of accepted) {
      committed.set(`${o.topic}\0${o.partition}`, {
        topic: o.topic,
        partition: o.partition,
        offset: o.offset,
        leaderEpoch: o.leaderEpoch,
        metadata: o.metadata ?? '',
        commitTimestamp: now,
      })
    }
    return errors
  }

  /** Committed offsets of a group; `wanted` null means every partition it has committed. */
  fetchOffsets(
    groupId: string,
    wanted: { topic: string; partitions: number[] }[] | null,
  ): { topic: string; partitions: ({ partition: number } & CommittedOffset)[] }[] {
    const committed: GroupOffsets = this.offsets.get(groupId) ?? (new Map() as GroupOffsets)
    if (wanted === null) {
      const byTopic = new Map<string, ({ partition: number } & CommittedOffset)[]>()
      for (const c of committed.values()) {
        let list = byTopic.get(c.topic)
        if (list === undefined) byTopic.set(c.topic, (list = []))
        list.push(c)
      }
      return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }))
    }
    return wanted.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map(
        (p) =>
          committed.get(`${t.topic}\0${p}`) ?? {
            partition: p,
            offset: -1,
            leaderEpoch: -1,
            metadata: '',
            commitTimestamp: -1,
          },
      ),
    }))
  }

  // ------------------------------------------------------------ administration

  describe(groupId: string): Group | undefined {
    return this.groups.get(groupId)
  }

  /** Every group known: with members, or with committed offsets. */
  list(): { groupId: string; protocolType: string; state: string }[] {
    const ids = new Set([...this.groups.keys(), ...this.offsets.keys()])
    return [...ids].map((groupId) => {
      const g = this.groups.get(groupId)
      return { groupId, protocolType: g?.protocolType ?? '', state: g?.state ?? 'Empty' }
    })
  }

  /** DeleteGroups: only groups without members; offsets and metadata are tombstoned. */
  async deleteGroup(groupId: string): Promise<number> {
    const group = this.groups.get(groupId)
    if (group === undefined && !this.offsets.has(groupId)) return ErrorCode.GROUP_ID_NOT_FOUND
    if (group !== undefined && group.state !== 'Empty') return ErrorCode.NON_EMPTY_GROUP
    const committed: GroupOffsets = this.offsets.get(groupId) ?? (new Map() as GroupOffsets)
    const tombstones = [...committed.values()].map((c) => ({
      key: offsetCommitKey(groupId, c.topic, c.partition),
      value: null,
    }))
    tombstones.push({ key: groupMetadataKey(groupId), value: null })
    if (!(await this.write(groupId, tombstones))) return ErrorCode.COORDINATOR_NOT_AVAILABLE
    this.offsets.delete(groupId)
    this.groups.delete(groupId)
    clearTimeout(this.timers.get(groupId))
    this.timers.delete(groupId)
    return ErrorCode.NONE
  }

  /** OffsetDelete: refused for topics the group's active members subscribe to. */
  async deleteOffsets(
    groupId: string,
    topics: { topic: string; partitions: number[] }[],
  ): Promise<{ errorCode: number; results: { topic: string; partition: number; errorCode: number }[] }> {
    const group = this.groups.get(groupId)
    if (group === undefined && !this.offsets.has(groupId))
      return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, results: [] }
    const subscribed = group === undefined ? new Set<string>() : subscribedTopics(group)
    const committed: GroupOffsets = this.offsets.get(groupId) ?? (new Map() as GroupOffsets)
    const results = topics.flatMap((t) =>
      t.partitions.map((partition) => ({
        topic: t.topic,
        partition,
        errorCode: subscribed.has(t.topic)
          ? ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
          : this.topics.get(t.topic) === undefined
            ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            : ErrorCode.NONE,
      })),
    )
    const doomed = results.filter((r) => r.errorCode === ErrorCode.NONE && committed.has(`${r.topic}\0${r.partition}`))
    if (doomed.length > 0) {
      if (
        !(await this.write(
          groupId,
          doomed.map((r) => ({ key: offsetCommitKey(groupId, r.topic, r.partition), value: null })),
        ))
      ) {
        return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, results: [] }
      }
      for (const r of doomed) committed.delete(`${r.topic}\0${r.partition}`)
    }
    return { errorCode: ErrorCode.NONE, results }
  }

  /**
   * offsets.retention.minutes: offsets of a group that has had no members for that long (or, for
   * groups not managed by the coordinator, each offset not committed for that long) are removed.
   */
  expireOffsets(now: number): void {
    const retentionMs = this.config.number('offsets.retention.minutes') * 60_000
    for (const [groupId, committed] of this.offsets) {
      const group = this.groups.get(groupId)
      if (group !== undefined && group.state !== 'Empty') continue
      const managed = group !== undefined && group.protocolType !== null
      const expired = [...committed.values()].filter((c) =>
        managed ? group.stateTimestamp + retentionMs <= now : c.commitTimestamp + retentionMs <= now,
      )
      if (expired.length === 0) continue
      for (const c of expired) committed.delete(`${c.topic}\0${c.partition}`)
      const records: { key: Buffer; value: Buffer | null }[] = expired.map((c) => ({
        key: offsetCommitKey(groupId, c.topic, c.partition),
        value: null,
      }))
      if (committed.size === 0) {
        this.offsets.delete(groupId)
        if (group !== undefined) {
          this.groups.delete(groupId)
          records.push({ key: groupMetadataKey(groupId), value: null })
        }
      }
      this.log.info('offsets expired', { group: groupId, partitions: expired.length })
      void this.write(groupId, records)
    }
  }

  // ------------------------------------------------------------ persistence

  private writeGroup(group: Group): Promise<boolean> {
    const value: GroupMetadataValue = {
      protocolType: group.protocolType ?? '',
      generation: group.generation,
      protocol: group.protocolName,
      leader: group.leaderId,
      currentStateTimestamp: group.stateTimestamp,
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeout: m.rebalanceTimeoutMs,
        sessionTimeout: m.sessionTimeoutMs,
        subscription: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? Buffer.alloc(0),
        assignment: m.assignment,
      })),
    }
    return this.write(group.groupId, [{ key: groupMetadataKey(group.groupId), value: groupMetadataValue(value) }])
  }

  /** Appends records (one batch) to the group's partition; true once durable. */
  private write(groupId: string, records: { key: Buffer; value: Buffer | null }[]): Promise<boolean> {
    const log = this.partitions[partitionForGroup(groupId, this.partitions.length)]
    const batch = encodeRecordBatch({ records })
    const validated = validateProducedBatches(batch)
    if ('error' in validated) throw new Error(`internal batch invalid: ${validated.message}`)
    try {
      log.append(batch, validated.batches, Date.now())
    } catch (err) {
      this.log.error('writing to __consumer_offsets failed', { group: groupId, err })
      return Promise.resolve(false)
    }
    if (!this.durable) return Promise.resolve(true)
    return log.flush().then(
      () => true,
      (err: unknown) => {
        this.log.error('fsync of __consumer_offsets failed', { group: groupId, err })
        return false
      },
    )
  }

  /** Replays one partition of __consumer_offsets into memory; returns the records read. */
  private load(log: PartitionLog, now: number): number {
    let offset = log.logStartOffset
    let count = 0
    while (offset < log.logEndOffset) {
      let chunk: Buffer
      try {
        chunk = log.read(offset, 16 << 20, true)
      } catch (err) {
        if (err instanceof LogError) break
        throw err
      }
      if (chunk.length === 0) break
      let pos = 0
      while (pos + 61 <= chunk.length) {
        const h = readBatchHeader(chunk, pos)
        const size = h.batchLength + 12
        if (pos + size > chunk.length) break
        let records: ReturnType<typeof decodeRecords> = []
        try {
          records = decodeRecords(chunk.subarray(pos, pos + size))
        } catch (err) {
          this.log.warn('skipping an undecodable __consumer_offsets batch', { offset: h.baseOffset, err })
        }
        for (const r of records) {
          if (r.offset < offset || r.key === null) continue
          this.replay(r.key, r.value, now)
          count++
        }
        offset = h.baseOffset + h.lastOffsetDelta + 1
        pos += size
      }
    }
    return count
  }

  private replay(key: Buffer, value: Buffer | null, now: number): void {
    let rec
    try {
      rec = decodeOffsetsRecord(key, value)
    } catch (err) {
      this.log.warn('skipping an undecodable __consumer_offsets record', { err })
      return
    }
    if (rec.type === 'offset') {
      let committed = this.offsets.get(rec.group)
      const k = `${rec.topic}\0${rec.partition}`
      if (rec.value === null) {
        committed?.delete(k)
        if (committed?.size === 0) this.offsets.delete(rec.group)
        return
      }
      if (committed === undefined) this.offsets.set(rec.group, (committed = new Map() as GroupOffsets))
      committed.set(k, {
        topic: rec.topic,
        partition: rec.partition,
        offset: rec.value.offset,
        leaderEpoch: rec.value.leaderEpoch,
        metadata: rec.value.metadata,
        commitTimestamp: rec.value.commitTimestamp,
      })
    } else if (rec.type === 'group') {
      if (rec.value === null) {
        this.groups.delete(rec.group)
        return
      }
      this.groups.set(rec.group, restoreGroup(rec.group, rec.value, now))
    }
  }
}

/**
 * A group as its last metadata record left it; its members get a fresh session to reconnect.
 * (Built here, before any step, so the state machine's invariants hold from its first step.)
 */
function restoreGroup(groupId: string, v: GroupMetadataValue, now: number): Group {
  const group = newGroup(groupId, v.currentStateTimestamp > 0 ? v.currentStateTimestamp : now)
  group.generation = Math.max(0, v.generation)
  group.protocolType = v.protocolType === '' ? null : v.protocolType
  group.protocolName = v.protocol
  for (const m of v.members) {
    group.members.set(m.memberId, {
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      sessionTimeoutMs: m.sessionTimeout,
      rebalanceTimeoutMs: m.rebalanceTimeout < 0 ? m.sessionTimeout : m.rebalanceTimeout,
      protocols: v.protocol === null ? [] : [{ name: v.protocol, metadata: m.subscription }],
      assignment: m.assignment,
      joinReply: null,
      joinVersion: 0,
      syncReply: null,
      sessionDeadline: now + m.sessionTimeout,
    })
    if (m.groupInstanceId !== null) group.staticMembers.set(m.groupInstanceId, m.memberId)
  }
  // A leader that is not among the members (a record not written by a coordinator) is replaced
  // by the first member, as when a leader leaves.
  group.leaderId =
    v.leader !== null && group.members.has(v.leader) ? v.leader : (group.members.keys().next().value ?? null)
  group.state = group.members.size > 0 ? 'Stable' : 'Empty'
  return group
}

/** Topics named in the members' consumer-protocol subscriptions (ConsumerProtocolSubscription). */
function subscribedTopics(group: Group): Set<string> {
  const topics = new Set<string>()
  if (group.protocolType !== 'consumer') return topics
  for (const m of group.members.values()) {
    const meta = m.protocols.find((p) => p.name === group.protocolName)?.metadata
    if (meta === undefined || meta.length < 6) continue
    try {
      let pos = 2 // version
      const count = meta.readInt32BE(pos)
      pos += 4
      for (let i = 0; i < count && pos + 2 <= meta.length; i++) {
        const len = meta.readInt16BE(pos)
        pos += 2
        topics.add(meta.toString('utf8', pos, pos + len))
        pos += len
      }
    } catch {
      // Not a consumer subscription we can read: treat as subscribed to nothing.
    }
  }
  return topics
}

function unknownMemberResponse(event: Event): Replies {
  switch (event.type) {
    case 'sync':
      return {
        errorCode: ErrorCode.UNKNOWN_MEMBER_ID,
        protocolType: null,
        protocolName: null,
        assignment: Buffer.alloc(0),
      }
    case 'leave':
      return {
        errorCode: ErrorCode.UNKNOWN_MEMBER_ID,
        members: event.members.map((m) => ({ ...m, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })),
      }
    case 'join':
      return {
        errorCode: ErrorCode.UNKNOWN_MEMBER_ID,
        generationId: -1,
        protocolType: null,
        protocolName: null,
        leader: '',
        memberId: event.memberId,
        members: [],
      }
    default:
      return ErrorCode.UNKNOWN_MEMBER_ID
  }
}
