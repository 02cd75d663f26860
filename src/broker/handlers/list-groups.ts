// ListGroups (key 16): every group this coordinator knows, filtered by state (v4+) and type (v5+).
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'

export function listGroupsHandler(broker: GroupsContext<'list'>): BoundHandler<typeof ApiKey.ListGroups> {
  return defineHandler(ApiKey.ListGroups, (ctx, req) => {
    // DESCRIBE on the cluster lists every group; otherwise the groups the principal may describe (as Kafka).
    const all = ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME, false)
    const states = new Set(req.statesFilter.map((s) => s.toLowerCase()))
    const types = new Set(req.typesFilter.map((s) => s.toLowerCase()))
    const groups = broker.groups
      .list()
      .filter((g) => states.size === 0 || states.has(g.state.toLowerCase()))
      .filter(() => types.size === 0 || types.has('classic'))
      .filter((g) => all || ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.GROUP, g.groupId, false))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state, groupType: 'classic' }))
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, groups }
  })
}
