// OffsetDelete (key 47): removes committed offsets of partitions the group no longer consumes.
import { ApiKey } from '../../protocol/apis.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'
import { ErrorCode } from '../../protocol/errors.ts'

export function offsetDeleteHandler(broker: GroupsContext<'deleteOffsets'>): BoundHandler<typeof ApiKey.OffsetDelete> {
  return defineHandler(ApiKey.OffsetDelete, async (ctx, req) => {
    if (!ctx.access.authorize(AclOperation.DELETE, ResourceType.GROUP, req.groupId))
      return { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, throttleTimeMs: 0, topics: [] }
    const readable = (topic: string) => ctx.access.authorize(AclOperation.READ, ResourceType.TOPIC, topic)
    const res = await broker.groups.deleteOffsets(
      req.groupId,
      req.topics
        .filter((t) => readable(t.name))
        .map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })),
    )
    for (const t of req.topics)
      if (!readable(t.name))
        for (const p of t.partitions)
          res.results.push({
            topic: t.name,
            partition: p.partitionIndex,
            errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
          })
    const topics = new Map<string, { partitionIndex: number; errorCode: number }[]>()
    for (const r of res.results) {
      let list = topics.get(r.topic)
      if (list === undefined) topics.set(r.topic, (list = []))
      list.push({ partitionIndex: r.partition, errorCode: r.errorCode })
    }
    return {
      errorCode: res.errorCode,
      throttleTimeMs: 0,
      topics: [...topics].map(([name, partitions]) => ({ name, partitions })),
    }
  })
}
