// ListGroups (key 16): every group this coordinator knows, filtered by state (v4+) and type (v5+).
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'

export function listGroupsHandler(broker: GroupsContext<'list'>): BoundHandler<typeof ApiKey.ListGroups> {
  return defineHandler(ApiKey.ListGroups, (_ctx, req) => {
    const states = new Set(req.statesFilter.map((s) => s.toLowerCase()))
    const types = new Set(req.typesFilter.map((s) => s.toLowerCase()))
    const groups = broker.groups
      .list()
      .filter((g) => states.size === 0 || states.has(g.state.toLowerCase()))
      .filter(() => types.size === 0 || types.has('classic'))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state, groupType: 'classic' }))
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, groups }
  })
}
