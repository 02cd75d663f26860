// OffsetFetch (key 9): a group's committed offsets (-1 where none); v8+ asks for many groups.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

export function offsetFetchHandler(broker: GroupsContext<'fetchOffsets'>): BoundHandler<typeof ApiKey.OffsetFetch> {
  return defineHandler(ApiKey.OffsetFetch, (ctx, req) => {
    const describable = (topic: string) => ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, topic)
    const groupAllowed = (groupId: string) => ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.GROUP, groupId)
    // Named topics the principal may not DESCRIBE answer TOPIC_AUTHORIZATION_FAILED; "all topics" leaves them out.
    const refusedTopics = (topics: { name: string; partitionIndexes: number[] }[] | null) =>
      (topics ?? [])
        .filter((t) => !describable(t.name))
        .map((t) => ({
          name: t.name,
          partitions: t.partitionIndexes.map((partitionIndex) => ({
            partitionIndex,
            committedOffset: -1,
            committedLeaderEpoch: -1,
            metadata: null,
            errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
          })),
        }))
    const lookup = (groupId: string, topics: { name: string; partitionIndexes: number[] }[] | null) => [
      ...broker.groups
        .fetchOffsets(
          groupId,
          topics === null
            ? null
            : topics.filter((t) => describable(t.name)).map((t) => ({ topic: t.name, partitions: t.partitionIndexes })),
        )
        .filter((t) => ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, t.topic, false))
        .map((t) => ({
          name: t.topic,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partition,
            committedOffset: p.offset,
            committedLeaderEpoch: p.leaderEpoch,
            metadata: p.metadata,
            errorCode: ErrorCode.NONE,
          })),
        })),
      ...refusedTopics(topics),
    ]
    if (ctx.apiVersion >= 8) {
      return {
        throttleTimeMs: 0,
        groups: req.groups.map((g) =>
          groupAllowed(g.groupId)
            ? { groupId: g.groupId, topics: lookup(g.groupId, g.topics), errorCode: ErrorCode.NONE }
            : { groupId: g.groupId, topics: [], errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED },
        ),
      }
    }
    if (!groupAllowed(req.groupId))
      return { throttleTimeMs: 0, topics: [], errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED }
    // v0-1 always name their partitions; null (all) exists from v2.
    return { throttleTimeMs: 0, topics: lookup(req.groupId, req.topics), errorCode: ErrorCode.NONE }
  })
}
