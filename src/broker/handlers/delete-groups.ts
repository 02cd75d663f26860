// DeleteGroups (key 42): removes groups without members, with their committed offsets.
import { ApiKey } from '../../protocol/apis.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'
import { ErrorCode } from '../../protocol/errors.ts'

export function deleteGroupsHandler(broker: GroupsContext<'deleteGroup'>): BoundHandler<typeof ApiKey.DeleteGroups> {
  return defineHandler(ApiKey.DeleteGroups, async (ctx, req) => {
    const results = []
    for (const groupId of req.groupsNames)
      results.push({
        groupId,
        errorCode: ctx.access.authorize(AclOperation.DELETE, ResourceType.GROUP, groupId)
          ? await broker.groups.deleteGroup(groupId)
          : ErrorCode.GROUP_AUTHORIZATION_FAILED,
      })
    return { throttleTimeMs: 0, results }
  })
}
