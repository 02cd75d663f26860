// DescribeGroups (key 15): state, protocol and members of each group; unknown groups are "Dead".
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type GroupsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

export function describeGroupsHandler(
  broker: GroupsContext<'describe' | 'list'>,
): BoundHandler<typeof ApiKey.DescribeGroups> {
  return defineHandler(ApiKey.DescribeGroups, (ctx, req) => ({
    throttleTimeMs: 0,
    groups: req.groups.map((groupId) => {
      if (!ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.GROUP, groupId))
        return {
          errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED,
          groupId,
          groupState: '',
          protocolType: '',
          protocolData: '',
          members: [],
        }
      const g = broker.groups.describe(groupId)
      if (g === undefined) {
        const hasOffsets = broker.groups.list().some((l) => l.groupId === groupId)
        return {
          errorCode: ErrorCode.NONE,
          groupId,
          groupState: hasOffsets ? 'Empty' : 'Dead',
          protocolType: '',
          protocolData: '',
          members: [],
        }
      }
      return {
        errorCode: ErrorCode.NONE,
        groupId,
        groupState: g.state,
        protocolType: g.protocolType ?? '',
        protocolData: g.state === 'Stable' ? (g.protocolName ?? '') : '',
        members: [...g.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? Buffer.alloc(0),
          memberAssignment: m.assignment,
        })),
        authorizedOperations: -2147483648,
      }
    }),
  }))
}
