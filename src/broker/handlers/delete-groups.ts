// DeleteGroups (key 42): removes groups without members, with their committed offsets.
import { type DeleteGroupsRequest } from '../../protocol/messages/delete-groups-request.ts'
import { type DeleteGroupsResponse } from '../../protocol/messages/delete-groups-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler } from '../server.ts'

export function deleteGroupsHandler(broker: Broker): Handler {
  return async (_ctx, req: DeleteGroupsRequest): Promise<Shape<DeleteGroupsResponse>> => {
    const results = []
    for (const groupId of req.groupsNames) results.push({ groupId, errorCode: await broker.groups.deleteGroup(groupId) })
    return { throttleTimeMs: 0, results }
  }
}
