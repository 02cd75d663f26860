// OffsetCommit (key 8): stores a group's positions in __consumer_offsets, answered once durable.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'

export function offsetCommitHandler(broker: GroupsContext<'commit'>): BoundHandler<typeof ApiKey.OffsetCommit> {
  return defineHandler(ApiKey.OffsetCommit, async (ctx, req) => {
    const offsets = req.topics.flatMap((t) =>
      t.partitions.map((p) => ({
        topic: t.name,
        partition: p.partitionIndex,
        offset: p.committedOffset,
        leaderEpoch: p.committedLeaderEpoch,
        metadata: p.committedMetadata,
      })),
    )
    const errors =
      req.groupId === ''
        ? offsets.map(() => ErrorCode.INVALID_GROUP_ID)
        : await broker.groups.commit(
            req.groupId,
            ctx.apiVersion >= 1 ? req.generationIdOrMemberEpoch : -1,
            req.memberId,
            req.groupInstanceId,
            offsets,
          )
    let i = 0
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errors[i++] })),
      })),
    }
  })
}
