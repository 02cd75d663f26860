// LeaveGroup (key 13): one member (v0-2) or a batch of members by id or instance id (v3+).
import { type LeaveGroupRequest } from '../../protocol/messages/leave-group-request.ts'
import { type LeaveGroupResponse } from '../../protocol/messages/leave-group-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler, type RequestContext } from '../server.ts'

export function leaveGroupHandler(broker: Broker): Handler {
  return async (ctx: RequestContext, req: LeaveGroupRequest): Promise<Shape<LeaveGroupResponse>> => {
    const members = ctx.apiVersion >= 3
      ? req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId }))
      : [{ memberId: req.memberId, groupInstanceId: null }]
    const res = await broker.groups.leave(req.groupId, members)
    return { throttleTimeMs: 0, errorCode: ctx.apiVersion >= 3 ? 0 : res.errorCode, members: res.members }
  }
}
