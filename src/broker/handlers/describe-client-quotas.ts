// DescribeClientQuotas (key 48, KIP-546): the quotas of the entities a filter selects, with
// Kafka's filter semantics (per entity type: an exact name, the <default> entity, or any named
// one; `strict`: only entities with exactly those types). Needs DESCRIBE_CONFIGS on the cluster.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'
import { type ClientQuotaStore } from '../security/quota-store.ts'
import { entityComponents, validateQuotaFilter } from '../security/quotas.ts'
import { type BoundHandler, defineHandler } from '../server.ts'

export function describeClientQuotasHandler(broker: {
  readonly clientQuotas: Pick<ClientQuotaStore, 'describe'>
}): BoundHandler<typeof ApiKey.DescribeClientQuotas> {
  return defineHandler(ApiKey.DescribeClientQuotas, (ctx, req) => {
    const refused = (errorCode: number, errorMessage: string) => ({
      throttleTimeMs: 0,
      errorCode,
      errorMessage,
      entries: null,
    })
    if (!ctx.access.authorize(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME))
      return refused(
        ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        `${ctx.principal} may not describe quotas (DESCRIBE_CONFIGS on the cluster)`,
      )
    const invalid = validateQuotaFilter(req.components)
    if (invalid !== undefined) return refused(ErrorCode.INVALID_REQUEST, invalid)
    const found = broker.clientQuotas.describe(req.components, req.strict)
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      entries: found.map((f) => ({
        entity: entityComponents(f.entity),
        values: Object.entries(f.values).map(([key, value]) => ({ key, value: value })),
      })),
    }
  })
}
