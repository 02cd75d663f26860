// OffsetFetch (key 9): a group's committed offsets (-1 where none); v8+ asks for many groups.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'

export function offsetFetchHandler(broker: GroupsContext<'fetchOffsets'>): BoundHandler<typeof ApiKey.OffsetFetch> {
  return defineHandler(ApiKey.OffsetFetch, (ctx, req) => {
    const lookup = (groupId: string, topics: { name: string; partitionIndexes: number[] }[] | null) =>
      broker.groups
        .fetchOffsets(
          groupId,
          topics === null ? null : topics.map((t) => ({ topic: t.name, partitions: t.partitionIndexes })),
        )
        .map((t) => ({
          name: t.topic,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partition,
            committedOffset: p.offset,
            committedLeaderEpoch: p.leaderEpoch,
            metadata: p.metadata,
            errorCode: ErrorCode.NONE,
          })),
        }))
    if (ctx.apiVersion >= 8) {
      return {
        throttleTimeMs: 0,
        groups: req.groups.map((g) => ({
          groupId: g.groupId,
          topics: lookup(g.groupId, g.topics),
          errorCode: ErrorCode.NONE,
        })),
      }
    }
    // v0-1 always name their partitions; null (all) exists from v2.
    return { throttleTimeMs: 0, topics: lookup(req.groupId, req.topics), errorCode: ErrorCode.NONE }
  })
}
