// Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
import { ApiKey } from '../../protocol/apis.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'
import { ErrorCode } from '../../protocol/errors.ts'

export function heartbeatHandler(broker: GroupsContext<'heartbeat'>): BoundHandler<typeof ApiKey.Heartbeat> {
  return defineHandler(ApiKey.Heartbeat, async (ctx, req) => {
    if (!ctx.access.authorize(AclOperation.READ, ResourceType.GROUP, req.groupId))
      return { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED }
    const errorCode = await broker.groups.heartbeat(req.groupId, {
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
    })
    return { throttleTimeMs: 0, errorCode }
  })
}
