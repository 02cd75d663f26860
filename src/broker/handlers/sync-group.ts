// SyncGroup (key 14): the leader hands in the assignment; every member gets its own part.
import { type SyncGroupRequest } from '../../protocol/messages/sync-group-request.ts'
import { type SyncGroupResponse } from '../../protocol/messages/sync-group-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler, type RequestContext } from '../server.ts'

export function syncGroupHandler(broker: Broker): Handler {
  return async (ctx: RequestContext, req: SyncGroupRequest): Promise<Shape<SyncGroupResponse>> => {
    const res = await broker.groups.sync(req.groupId, {
      generationId: req.generationId, memberId: req.memberId, groupInstanceId: req.groupInstanceId,
      protocolType: ctx.apiVersion >= 5 ? req.protocolType : null, protocolName: ctx.apiVersion >= 5 ? req.protocolName : null,
      assignments: req.assignments,
    })
    return { throttleTimeMs: 0, ...res }
  }
}
