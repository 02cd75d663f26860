// OffsetDelete (key 47): removes committed offsets of partitions the group no longer consumes.
import { ApiKey } from '../../protocol/apis.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'

export function offsetDeleteHandler(broker: GroupsContext<'deleteOffsets'>): BoundHandler<typeof ApiKey.OffsetDelete> {
  return defineHandler(ApiKey.OffsetDelete, async (_ctx, req) => {
    const res = await broker.groups.deleteOffsets(
      req.groupId,
      req.topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })),
    )
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
