// OffsetCommit (key 8): stores a group's positions in __consumer_offsets, answered once durable.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

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
    // READ on the group, then on each topic (Kafka answers per topic; the others are committed).
    const groupRefused = !ctx.access.authorize(AclOperation.READ, ResourceType.GROUP, req.groupId)
    const topicRefused = new Set(
      req.topics.filter((t) => !ctx.access.authorize(AclOperation.READ, ResourceType.TOPIC, t.name)).map((t) => t.name),
    )
    const allowed = offsets.filter((o) => !topicRefused.has(o.topic))
    const committed =
      req.groupId === '' || groupRefused || allowed.length === 0
        ? []
        : await broker.groups.commit(
            req.groupId,
            ctx.apiVersion >= 1 ? req.generationIdOrMemberEpoch : -1,
            req.memberId,
            req.groupInstanceId,
            allowed,
          )
    let c = 0
    const errors = offsets.map((o) =>
      req.groupId === ''
        ? ErrorCode.INVALID_GROUP_ID
        : groupRefused
          ? ErrorCode.GROUP_AUTHORIZATION_FAILED
          : topicRefused.has(o.topic)
            ? ErrorCode.TOPIC_AUTHORIZATION_FAILED
            : committed[c++],
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
