// JoinGroup (key 11): joins or rejoins a consumer group; answered when the rebalance completes
// (src/broker/groups/group.ts has the rules). v4+ new members first get MEMBER_ID_REQUIRED.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

export function joinGroupHandler(broker: GroupsContext<'join'>): BoundHandler<typeof ApiKey.JoinGroup> {
  return defineHandler(ApiKey.JoinGroup, async (ctx, req) => {
    const refused = !ctx.access.authorize(AclOperation.READ, ResourceType.GROUP, req.groupId)
    if (req.groupId === '' || refused)
      return {
        errorCode: refused ? ErrorCode.GROUP_AUTHORIZATION_FAILED : ErrorCode.INVALID_GROUP_ID,
        generationId: -1,
        leader: '',
        memberId: req.memberId,
        members: [],
      }
    const res = await broker.groups.join(req.groupId, {
      apiVersion: ctx.apiVersion,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: ctx.clientId ?? '',
      clientHost: '/' + ctx.clientAddress.replace(/:\d+$/, ''),
      sessionTimeoutMs: req.sessionTimeoutMs,
      // v0 has no rebalance timeout; Kafka uses the session timeout.
      rebalanceTimeoutMs: ctx.apiVersion >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
    })
    return {
      throttleTimeMs: 0,
      errorCode: res.errorCode,
      generationId: res.generationId,
      protocolType: res.protocolType,
      // Before v7 the protocol name is not nullable.
      protocolName: res.protocolName ?? (ctx.apiVersion >= 7 ? null : ''),
      leader: res.leader,
      skipAssignment: false,
      memberId: res.memberId,
      members: res.members,
    }
  })
}
