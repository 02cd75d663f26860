// LeaveGroup (key 13): one member (v0-2) or a batch of members by id or instance id (v3+).
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

export function leaveGroupHandler(broker: GroupsContext<'leave'>): BoundHandler<typeof ApiKey.LeaveGroup> {
  return defineHandler(ApiKey.LeaveGroup, async (ctx, req) => {
    if (!ctx.access.authorize(AclOperation.READ, ResourceType.GROUP, req.groupId))
      return { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, members: [] }
    const members =
      ctx.apiVersion >= 3
        ? req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId }))
        : [{ memberId: req.memberId, groupInstanceId: null }]
    const res = await broker.groups.leave(req.groupId, members)
    return { throttleTimeMs: 0, errorCode: ctx.apiVersion >= 3 ? ErrorCode.NONE : res.errorCode, members: res.members }
  })
}
