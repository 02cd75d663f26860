// ListGroups (key 16): every group this coordinator knows, filtered by state (v4+) and type (v5+).
import { ErrorCode } from '../../protocol/errors.ts'
import { type ListGroupsRequest } from '../../protocol/messages/list-groups-request.ts'
import { type ListGroupsResponse } from '../../protocol/messages/list-groups-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler } from '../server.ts'

export function listGroupsHandler(broker: Broker): Handler {
  return (_ctx, req: ListGroupsRequest): Shape<ListGroupsResponse> => {
    const states = new Set(req.statesFilter.map((s) => s.toLowerCase()))
    const types = new Set(req.typesFilter.map((s) => s.toLowerCase()))
    const groups = broker.groups.list()
      .filter((g) => states.size === 0 || states.has(g.state.toLowerCase()))
      .filter(() => types.size === 0 || types.has('classic'))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state, groupType: 'classic' }))
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, groups }
  }
}
