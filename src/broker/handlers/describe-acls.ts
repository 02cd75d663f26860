// DescribeAcls (key 29): the ACLs a filter selects, grouped by resource pattern as Kafka answers.
// Needs DESCRIBE on the cluster; SECURITY_DISABLED without an authorizer.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type AclFilter, AclOperation, CLUSTER_RESOURCE_NAME, ResourceType, validateFilter } from '../security/acls.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type AclsContext } from './create-acls.ts'

export function describeAclsHandler(broker: AclsContext): BoundHandler<typeof ApiKey.DescribeAcls> {
  return defineHandler(ApiKey.DescribeAcls, (ctx, req) => {
    const refused = (errorCode: number, errorMessage: string) => ({
      throttleTimeMs: 0,
      errorCode,
      errorMessage,
      resources: [],
    })
    if (!broker.authorizerEnabled)
      return refused(ErrorCode.SECURITY_DISABLED, 'No Authorizer is configured on the broker')
    if (!ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME))
      return refused(
        ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        `${ctx.principal} may not describe ACLs (DESCRIBE on the cluster)`,
      )
    const filter: AclFilter = {
      resourceType: req.resourceTypeFilter,
      resourceName: req.resourceNameFilter,
      // v0 has no pattern type filter: LITERAL.
      patternType: ctx.apiVersion >= 1 ? req.patternTypeFilter : 3,
      principal: req.principalFilter,
      host: req.hostFilter,
      operation: req.operation,
      permission: req.permissionType,
    }
    const invalid = validateFilter(filter)
    if (invalid !== undefined) return refused(ErrorCode.INVALID_REQUEST, invalid)
    const byPattern = new Map<
      string,
      {
        resourceType: number
        resourceName: string
        patternType: number
        acls: { principal: string; host: string; operation: number; permissionType: number }[]
      }
    >()
    for (const b of broker.acls.describe(filter)) {
      const key = JSON.stringify([b.resourceType, b.resourceName, b.patternType])
      let resource = byPattern.get(key)
      if (resource === undefined)
        byPattern.set(
          key,
          (resource = {
            resourceType: b.resourceType,
            resourceName: b.resourceName,
            patternType: b.patternType,
            acls: [],
          }),
        )
      resource.acls.push({ principal: b.principal, host: b.host, operation: b.operation, permissionType: b.permission })
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, resources: [...byPattern.values()] }
  })
}
