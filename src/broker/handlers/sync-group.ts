// SyncGroup (key 14): the leader hands in the assignment; every member gets its own part.
import { ApiKey } from '../../protocol/apis.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'
import { ErrorCode } from '../../protocol/errors.ts'

export function syncGroupHandler(broker: GroupsContext<'sync'>): BoundHandler<typeof ApiKey.SyncGroup> {
  return defineHandler(ApiKey.SyncGroup, async (ctx, req) => {
    if (!ctx.access.authorize(AclOperation.READ, ResourceType.GROUP, req.groupId))
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED,
        protocolType: null,
        protocolName: null,
        assignment: Buffer.alloc(0),
      }
    const res = await broker.groups.sync(req.groupId, {
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
      protocolType: ctx.apiVersion >= 5 ? req.protocolType : null,
      protocolName: ctx.apiVersion >= 5 ? req.protocolName : null,
      assignments: req.assignments,
    })
    return { throttleTimeMs: 0, ...res }
  })
}
