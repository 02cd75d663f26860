// CreateAcls (key 30): adds ACLs to the broker's store (src/broker/security/acl-store.ts, durable
// before the answer). Needs ALTER on the cluster. Each creation is answered on its own: an invalid
// one gets INVALID_REQUEST with Kafka's message and the valid ones are stored. Without an
// authorizer (authorizer.class.name empty) Kafka answers SECURITY_DISABLED, and so does this broker.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type AclStore } from '../security/acl-store.ts'
import {
  type AclBinding,
  AclOperation,
  CLUSTER_RESOURCE_NAME,
  ResourceType,
  validateBinding,
} from '../security/acls.ts'
import { type BoundHandler, defineHandler } from '../server.ts'

export interface AclsContext {
  readonly acls: Pick<AclStore, 'create' | 'describe' | 'delete'>
  /** Whether an authorizer is configured (authorizer.class.name). */
  readonly authorizerEnabled: boolean
}

export function createAclsHandler(broker: AclsContext): BoundHandler<typeof ApiKey.CreateAcls> {
  return defineHandler(ApiKey.CreateAcls, (ctx, req) => {
    const all = (errorCode: number, errorMessage: string) => ({
      throttleTimeMs: 0,
      results: req.creations.map(() => ({ errorCode, errorMessage })),
    })
    if (!broker.authorizerEnabled) return all(ErrorCode.SECURITY_DISABLED, 'No Authorizer is configured on the broker')
    if (!ctx.access.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME))
      return all(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, `${ctx.principal} may not create ACLs (ALTER on the cluster)`)
    const bindings: AclBinding[] = req.creations.map((c) => ({
      resourceType: c.resourceType,
      resourceName: c.resourceName,
      // v0 has no pattern type: LITERAL.
      patternType: ctx.apiVersion >= 1 ? c.resourcePatternType : 3,
      principal: c.principal,
      host: c.host,
      operation: c.operation,
      permission: c.permissionType,
    }))
    const errors = bindings.map(validateBinding)
    broker.acls.create(bindings.filter((_, i) => errors[i] === undefined))
    return {
      throttleTimeMs: 0,
      results: errors.map((e) =>
        e === undefined
          ? { errorCode: ErrorCode.NONE, errorMessage: null }
          : { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: e },
      ),
    }
  })
}
