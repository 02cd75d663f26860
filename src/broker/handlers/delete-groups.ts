// DeleteGroups (key 42): removes groups without members, with their committed offsets.
import { ApiKey } from '../../protocol/apis.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'

export function deleteGroupsHandler(broker: GroupsContext<'deleteGroup'>): BoundHandler<typeof ApiKey.DeleteGroups> {
  return defineHandler(ApiKey.DeleteGroups, async (_ctx, req) => {
    const results = []
    for (const groupId of req.groupsNames)
      results.push({ groupId, errorCode: await broker.groups.deleteGroup(groupId) })
    return { throttleTimeMs: 0, results }
  })
}
