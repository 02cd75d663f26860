// DeleteAcls (key 31): removes the ACLs each filter selects and answers them per filter (durable
// before the answer). Needs ALTER on the cluster; SECURITY_DISABLED without an authorizer.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type AclFilter, AclOperation, CLUSTER_RESOURCE_NAME, ResourceType, validateFilter } from '../security/acls.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type AclsContext } from './create-acls.ts'

export function deleteAclsHandler(broker: AclsContext): BoundHandler<typeof ApiKey.DeleteAcls> {
  return defineHandler(ApiKey.DeleteAcls, (ctx, req) => {
    const all = (errorCode: number, errorMessage: string) => ({
      throttleTimeMs: 0,
      filterResults: req.filters.map(() => ({ errorCode, errorMessage, matchingAcls: [] })),
    })
    if (!broker.authorizerEnabled) return all(ErrorCode.SECURITY_DISABLED, 'No Authorizer is configured on the broker')
    if (!ctx.access.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME))
      return all(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, `${ctx.principal} may not delete ACLs (ALTER on the cluster)`)
    return {
      throttleTimeMs: 0,
      filterResults: req.filters.map((f) => {
        const filter: AclFilter = {
          resourceType: f.resourceTypeFilter,
          resourceName: f.resourceNameFilter,
          patternType: ctx.apiVersion >= 1 ? f.patternTypeFilter : 3,
          principal: f.principalFilter,
          host: f.hostFilter,
          operation: f.operation,
          permission: f.permissionType,
        }
        const invalid = validateFilter(filter)
        if (invalid !== undefined)
          return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: invalid, matchingAcls: [] }
        return {
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          matchingAcls: broker.acls.delete(filter).map((b) => ({
            errorCode: ErrorCode.NONE,
            errorMessage: null,
            resourceType: b.resourceType,
            resourceName: b.resourceName,
            patternType: b.patternType,
            principal: b.principal,
            host: b.host,
            operation: b.operation,
            permissionType: b.permission,
          })),
        }
      }),
    }
  })
}
