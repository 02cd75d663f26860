// OffsetCommit (key 8): stores a group's positions in __consumer_offsets, answered once durable.
import { type OffsetCommitRequest } from '../../protocol/messages/offset-commit-request.ts'
import { type OffsetCommitResponse } from '../../protocol/messages/offset-commit-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler, type RequestContext } from '../server.ts'
import { ErrorCode } from '../../protocol/errors.ts'

export function offsetCommitHandler(broker: Broker): Handler {
  return async (ctx: RequestContext, req: OffsetCommitRequest): Promise<Shape<OffsetCommitResponse>> => {
    const offsets = req.topics.flatMap((t) => t.partitions.map((p) => ({
      topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.committedMetadata,
    })))
    const errors = req.groupId === ''
      ? offsets.map(() => ErrorCode.INVALID_GROUP_ID)
      : await broker.groups.commit(req.groupId, ctx.apiVersion >= 1 ? req.generationIdOrMemberEpoch : -1, req.memberId, req.groupInstanceId, offsets)
    let i = 0
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errors[i++] })) })),
    }
  }
}
