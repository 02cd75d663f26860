// OffsetDelete (key 47): removes committed offsets of partitions the group no longer consumes.
import { type OffsetDeleteRequest } from '../../protocol/messages/offset-delete-request.ts'
import { type OffsetDeleteResponse } from '../../protocol/messages/offset-delete-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler } from '../server.ts'

export function offsetDeleteHandler(broker: Broker): Handler {
  return async (_ctx, req: OffsetDeleteRequest): Promise<Shape<OffsetDeleteResponse>> => {
    const res = await broker.groups.deleteOffsets(req.groupId, req.topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })))
    const topics = new Map<string, { partitionIndex: number; errorCode: number }[]>()
    for (const r of res.results) {
      let list = topics.get(r.topic)
      if (list === undefined) topics.set(r.topic, (list = []))
      list.push({ partitionIndex: r.partition, errorCode: r.errorCode })
    }
    return { errorCode: res.errorCode, throttleTimeMs: 0, topics: [...topics].map(([name, partitions]) => ({ name, partitions })) }
  }
}
