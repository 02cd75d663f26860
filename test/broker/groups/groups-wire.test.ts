// The group APIs over the wire against the running broker: old and new versions, error codes,
// and committed offsets surviving SIGKILL.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type DeleteGroupsResponse } from '../../../src/protocol/messages/delete-groups-response.ts'
import { type DeleteTopicsResponse } from '../../../src/protocol/messages/delete-topics-response.ts'
import { type ProduceResponse } from '../../../src/protocol/messages/produce-response.ts'
import { decodeRecords, encodeRecordBatch } from '../../../src/protocol/record-batch.ts'
import { type FetchResponse } from '../../../src/protocol/messages/fetch-response.ts'
import { type DescribeGroupsResponse } from '../../../src/protocol/messages/describe-groups-response.ts'
import { type FindCoordinatorResponse } from '../../../src/protocol/messages/find-coordinator-response.ts'
import { type HeartbeatResponse } from '../../../src/protocol/messages/heartbeat-response.ts'
import { type JoinGroupResponse } from '../../../src/protocol/messages/join-group-response.ts'
import { type LeaveGroupResponse } from '../../../src/protocol/messages/leave-group-response.ts'
import { type ListGroupsResponse } from '../../../src/protocol/messages/list-groups-response.ts'
import { type MetadataResponse } from '../../../src/protocol/messages/metadata-response.ts'
import { type OffsetCommitResponse } from '../../../src/protocol/messages/offset-commit-response.ts'
import { type OffsetDeleteResponse } from '../../../src/protocol/messages/offset-delete-response.ts'
import { type OffsetFetchResponse } from '../../../src/protocol/messages/offset-fetch-response.ts'
import { type SyncGroupResponse } from '../../../src/protocol/messages/sync-group-response.ts'
import { type BrokerProcess, removeDir, startBroker } from '../../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../../helpers/raw-client.ts'

let broker: BrokerProcess
let client: RawClient
let corr = 0

const CONFIG = {
  'group.initial.rebalance.delay.ms': '0',
  'group.min.session.timeout.ms': '500',
  'offsets.topic.num.partitions': '5',
}

before(async () => {
  broker = await startBroker({ config: CONFIG })
  client = await RawClient.connect(broker.port)
  await call<MetadataResponse>(3, 4, { topics: [{ name: 'orders' }], allowAutoTopicCreation: true })
})

after(async () => {
  client.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

async function call<T>(apiKey: number, version: number, body: unknown, c = client): Promise<T> {
  const id = ++corr
  c.write(requestFrame(apiKey, version, id, body))
  const res = parseResponse<T>(apiKey, version, await c.nextFrame())
  assert.equal(res.correlationId, id)
  return res.body
}

const subscription = Buffer.from([0, 0, 0, 0, 0, 1, 0, 6, ...Buffer.from('orders'), 0xff, 0xff, 0xff, 0xff])

function joinBody(groupId: string, memberId: string, groupInstanceId: string | null = null) {
  return {
    groupId,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId,
    groupInstanceId,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: subscription }],
    reason: null,
  }
}

/** A member through JoinGroup v5 (MEMBER_ID_REQUIRED first) and SyncGroup as leader. */
async function joinAndSync(groupId: string): Promise<{ memberId: string; generationId: number }> {
  const first = await call<JoinGroupResponse>(11, 5, joinBody(groupId, ''))
  assert.equal(first.errorCode, 79) // MEMBER_ID_REQUIRED
  const joined = await call<JoinGroupResponse>(11, 5, joinBody(groupId, first.memberId))
  assert.equal(joined.errorCode, 0)
  assert.equal(joined.leader, first.memberId)
  const synced = await call<SyncGroupResponse>(14, 3, {
    groupId,
    generationId: joined.generationId,
    memberId: joined.memberId,
    groupInstanceId: null,
    assignments: [{ memberId: joined.memberId, assignment: Buffer.from('mine') }],
  })
  assert.equal(synced.errorCode, 0)
  assert.equal(synced.assignment.toString(), 'mine')
  return { memberId: joined.memberId, generationId: joined.generationId }
}

void test('FindCoordinator names this broker, one key (v0-3) or many (v4)', async () => {
  const v0 = await call<FindCoordinatorResponse>(10, 0, { key: 'g' })
  assert.deepEqual([v0.errorCode, v0.nodeId, v0.port], [0, 0, broker.port])
  const v4 = await call<FindCoordinatorResponse>(10, 4, { keyType: 0, coordinatorKeys: ['a', 'b'] })
  assert.deepEqual(
    v4.coordinators.map((c) => [c.key, c.errorCode, c.port]),
    [
      ['a', 0, broker.port],
      ['b', 0, broker.port],
    ],
  )
  const txn = await call<FindCoordinatorResponse>(10, 1, { key: 't', keyType: 1 })
  assert.equal(txn.errorCode, 15) // COORDINATOR_NOT_AVAILABLE: no transactions
})

void test('a member joins, syncs, heartbeats, commits and fetches offsets; OffsetFetch v1 and v8 agree', async () => {
  const { memberId, generationId } = await joinAndSync('g1')
  assert.equal(
    (await call<HeartbeatResponse>(12, 3, { groupId: 'g1', generationId, memberId, groupInstanceId: null })).errorCode,
    0,
  )
  const commit = await call<OffsetCommitResponse>(8, 7, {
    groupId: 'g1',
    generationIdOrMemberEpoch: generationId,
    memberId,
    groupInstanceId: null,
    topics: [
      {
        name: 'orders',
        partitions: [{ partitionIndex: 0, committedOffset: 42, committedLeaderEpoch: -1, committedMetadata: 'note' }],
      },
    ],
  })
  assert.equal(commit.topics[0].partitions[0].errorCode, 0)
  const stale = await call<OffsetCommitResponse>(8, 7, {
    groupId: 'g1',
    generationIdOrMemberEpoch: generationId + 5,
    memberId,
    groupInstanceId: null,
    topics: [
      {
        name: 'orders',
        partitions: [{ partitionIndex: 0, committedOffset: 1, committedLeaderEpoch: -1, committedMetadata: null }],
      },
    ],
  })
  assert.equal(stale.topics[0].partitions[0].errorCode, 22) // ILLEGAL_GENERATION
  const unknownTopic = await call<OffsetCommitResponse>(8, 7, {
    groupId: 'g1',
    generationIdOrMemberEpoch: generationId,
    memberId,
    groupInstanceId: null,
    topics: [
      {
        name: 'nope',
        partitions: [{ partitionIndex: 0, committedOffset: 1, committedLeaderEpoch: -1, committedMetadata: null }],
      },
    ],
  })
  assert.equal(unknownTopic.topics[0].partitions[0].errorCode, 3)
  const v1 = await call<OffsetFetchResponse>(9, 1, {
    groupId: 'g1',
    topics: [{ name: 'orders', partitionIndexes: [0, 1] }],
  })
  assert.deepEqual(
    v1.topics[0].partitions.map((p) => [p.partitionIndex, p.committedOffset, p.metadata]),
    [
      [0, 42, 'note'],
      [1, -1, ''],
    ],
  )
  const v8 = await call<OffsetFetchResponse>(9, 8, { groups: [{ groupId: 'g1', topics: null }], requireStable: false })
  assert.deepEqual(
    v8.groups[0].topics.map((t) => [t.name, t.partitions.map((p) => p.committedOffset)]),
    [['orders', [42]]],
  )
})

void test('DescribeGroups and ListGroups show state, protocol and members; DeleteGroups refuses a live group', async () => {
  const { memberId, generationId } = await joinAndSync('g2')
  const described = await call<DescribeGroupsResponse>(15, 4, {
    groups: ['g2', 'never-seen'],
    includeAuthorizedOperations: false,
  })
  assert.equal(described.groups[0].groupState, 'Stable')
  assert.equal(described.groups[0].protocolData, 'range')
  assert.deepEqual(
    described.groups[0].members.map((m) => [m.memberId, m.memberAssignment.toString()]),
    [[memberId, 'mine']],
  )
  assert.equal(described.groups[1].groupState, 'Dead')
  const listed = await call<ListGroupsResponse>(16, 4, { statesFilter: ['Stable'] })
  assert.ok(listed.groups.some((g) => g.groupId === 'g2' && g.protocolType === 'consumer' && g.groupState === 'Stable'))
  const refused = await call<DeleteGroupsResponse>(42, 1, { groupsNames: ['g2', 'never-seen'] })
  assert.deepEqual(
    refused.results.map((r) => r.errorCode),
    [68, 69],
  ) // NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND
  const left = await call<LeaveGroupResponse>(13, 3, { groupId: 'g2', members: [{ memberId, groupInstanceId: null }] })
  assert.equal(left.members[0].errorCode, 0)
  assert.equal(
    (await call<HeartbeatResponse>(12, 3, { groupId: 'g2', generationId, memberId, groupInstanceId: null })).errorCode,
    25,
  )
  const deleted = await call<DeleteGroupsResponse>(42, 1, { groupsNames: ['g2'] })
  assert.equal(deleted.results[0].errorCode, 0)
})

void test('JoinGroup v0-v3 assigns a member id directly; bad requests get their error codes', async () => {
  const v0 = await call<JoinGroupResponse>(11, 0, { ...joinBody('old', ''), rebalanceTimeoutMs: undefined })
  assert.equal(v0.errorCode, 0)
  assert.notEqual(v0.memberId, '')
  assert.equal((await call<JoinGroupResponse>(11, 5, joinBody('', ''))).errorCode, 24) // INVALID_GROUP_ID
  assert.equal((await call<JoinGroupResponse>(11, 5, { ...joinBody('g3', ''), sessionTimeoutMs: 1 })).errorCode, 26) // INVALID_SESSION_TIMEOUT
  assert.equal((await call<JoinGroupResponse>(11, 5, joinBody('g3', 'made-up'))).errorCode, 25) // UNKNOWN_MEMBER_ID
  assert.equal(
    (
      await call<SyncGroupResponse>(14, 3, {
        groupId: 'nobody-here',
        generationId: 1,
        memberId: 'x',
        groupInstanceId: null,
        assignments: [],
      })
    ).errorCode,
    25,
  )
})

void test('OffsetDelete removes offsets of topics the group does not consume', async () => {
  const commit = await call<OffsetCommitResponse>(8, 2, {
    groupId: 'standalone',
    generationIdOrMemberEpoch: -1,
    memberId: '',
    retentionTimeMs: -1,
    topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 9, committedMetadata: null }] }],
  })
  assert.equal(commit.topics[0].partitions[0].errorCode, 0)
  const del = await call<OffsetDeleteResponse>(47, 0, {
    groupId: 'standalone',
    topics: [{ name: 'orders', partitions: [{ partitionIndex: 0 }] }],
  })
  assert.equal(del.errorCode, 0)
  const fetched = await call<OffsetFetchResponse>(9, 1, {
    groupId: 'standalone',
    topics: [{ name: 'orders', partitionIndexes: [0] }],
  })
  assert.equal(fetched.topics[0].partitions[0].committedOffset, -1)
})

void test('__consumer_offsets is internal: clients cannot produce to it or delete it', async () => {
  const records = encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('forged') }] })
  const produced = await call<ProduceResponse>(0, 7, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 1000,
    topicData: [{ name: '__consumer_offsets', partitionData: [{ index: 0, records }] }],
  })
  assert.equal(produced.responses[0].partitionResponses[0].errorCode, 17) // INVALID_TOPIC_EXCEPTION
  const deleted = await call<DeleteTopicsResponse>(20, 4, { topicNames: ['__consumer_offsets'], timeoutMs: 1000 })
  assert.equal(deleted.responses[0].errorCode, 17)
  const meta = await call<MetadataResponse>(3, 4, {
    topics: [{ name: '__consumer_offsets' }],
    allowAutoTopicCreation: false,
  })
  assert.equal(meta.topics[0].isInternal, true)
})

void test('committed offsets and group metadata survive SIGKILL of the broker', async () => {
  const { memberId, generationId } = await joinAndSync('durable')
  const commit = await call<OffsetCommitResponse>(8, 7, {
    groupId: 'durable',
    generationIdOrMemberEpoch: generationId,
    memberId,
    groupInstanceId: null,
    topics: [
      {
        name: 'orders',
        partitions: [{ partitionIndex: 0, committedOffset: 777, committedLeaderEpoch: -1, committedMetadata: null }],
      },
    ],
  })
  assert.equal(commit.topics[0].partitions[0].errorCode, 0)
  client.close()
  await broker.kill()
  broker = await startBroker({ dataDir: broker.dataDir, port: broker.port, config: CONFIG })
  client = await RawClient.connect(broker.port)
  const fetched = await call<OffsetFetchResponse>(9, 5, {
    groupId: 'durable',
    topics: [{ name: 'orders', partitionIndexes: [0] }],
    requireStable: false,
  })
  assert.equal(fetched.topics[0].partitions[0].committedOffset, 777)
  // The member carries on in its generation: its heartbeat is still accepted.
  assert.equal(
    (await call<HeartbeatResponse>(12, 3, { groupId: 'durable', generationId, memberId, groupInstanceId: null }))
      .errorCode,
    0,
  )
  const described = await call<DescribeGroupsResponse>(15, 4, {
    groups: ['durable'],
    includeAuthorizedOperations: false,
  })
  assert.equal(described.groups[0].groupState, 'Stable')
})

void test('offsets survive compaction of __consumer_offsets and a restart', { timeout: 60_000 }, async () => {
  const config = {
    ...CONFIG,
    'offsets.topic.num.partitions': '1',
    'offsets.topic.segment.bytes': '1024',
    'log.cleaner.backoff.ms': '100',
  }
  const b = await startBroker({ config })
  let c = await RawClient.connect(b.port)
  const ask = async <T>(apiKey: number, version: number, body: unknown): Promise<T> => call<T>(apiKey, version, body, c)
  await ask<MetadataResponse>(3, 4, { topics: [{ name: 'compacted-offsets' }], allowAutoTopicCreation: true })
  for (let i = 1; i <= 200; i++) {
    const res = await ask<OffsetCommitResponse>(8, 2, {
      groupId: 'many-commits',
      generationIdOrMemberEpoch: -1,
      memberId: '',
      retentionTimeMs: -1,
      topics: [
        { name: 'compacted-offsets', partitions: [{ partitionIndex: 0, committedOffset: i, committedMetadata: null }] },
      ],
    })
    assert.equal(res.topics[0].partitions[0].errorCode, 0)
  }
  // Wait until the cleaner has removed superseded commits: fewer than 200 records remain readable.
  const countRecords = async () => {
    let offset = 0
    let records = 0
    for (;;) {
      const res = await ask<FetchResponse>(1, 4, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        isolationLevel: 0,
        topics: [
          {
            topic: '__consumer_offsets',
            partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }],
          },
        ],
      })
      const p = res.responses[0].partitions[0]
      const bytes = p.records ?? Buffer.alloc(0)
      if (bytes.length === 0) return records
      for (let pos = 0; pos < bytes.length;) {
        const size = bytes.readInt32BE(pos + 8) + 12
        const batch = bytes.subarray(pos, pos + size)
        records += decodeRecords(batch).length
        offset = Number(batch.readBigInt64BE(0)) + batch.readInt32BE(23) + 1
        pos += size
      }
      if (offset >= p.highWatermark) return records
    }
  }
  let remaining = await countRecords()
  for (let i = 0; i < 200 && remaining >= 200; i++) {
    await new Promise((r) => setTimeout(r, 50))
    remaining = await countRecords()
  }
  assert.ok(remaining < 200, `the cleaner compacted __consumer_offsets (${remaining} records left)`)
  c.close()
  await b.kill()
  const again = await startBroker({ dataDir: b.dataDir, port: b.port, config })
  c = await RawClient.connect(again.port)
  const fetched = await ask<OffsetFetchResponse>(9, 1, {
    groupId: 'many-commits',
    topics: [{ name: 'compacted-offsets', partitionIndexes: [0] }],
  })
  assert.equal(fetched.topics[0].partitions[0].committedOffset, 200)
  c.close()
  assert.equal(await again.stop(), 0)
  removeDir(again.dataDir)
})
