// AlterClientQuotas (key 49, KIP-546): sets or removes quotas of users, client ids or both (and of
// Kafka's <default> entities, a null name), durable before the answer and in force at the next
// request (src/broker/security/quota-store.ts, quotas.ts). Needs ALTER_CONFIGS on the cluster. Each
// entry is answered on its own: an unknown entity type or quota key, or a bad value, is
// INVALID_REQUEST with the reason; validateOnly checks without changing anything.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'
import { type ClientQuotaStore } from '../security/quota-store.ts'
import { InvalidQuotaError, type QuotaKey, toQuotaEntity, validateEntity, validateQuotaOp } from '../security/quotas.ts'
import { type BoundHandler, defineHandler } from '../server.ts'

export function alterClientQuotasHandler(broker: {
  readonly clientQuotas: Pick<ClientQuotaStore, 'alter'>
}): BoundHandler<typeof ApiKey.AlterClientQuotas> {
  return defineHandler(ApiKey.AlterClientQuotas, (ctx, req) => {
    const allowed = ctx.access.authorize(AclOperation.ALTER_CONFIGS, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME)
    return {
      throttleTimeMs: 0,
      entries: req.entries.map((e) => {
        const answer = (errorCode: number, errorMessage: string | null) => ({
          errorCode,
          errorMessage,
          entity: e.entity,
        })
        if (!allowed)
          return answer(
            ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            `${ctx.principal} may not alter quotas (ALTER_CONFIGS on the cluster)`,
          )
        const invalid =
          validateEntity(e.entity) ??
          e.ops.map((op) => validateQuotaOp(op.key, op.remove ? null : op.value)).find((m) => m !== undefined)
        if (invalid !== undefined) return answer(ErrorCode.INVALID_REQUEST, invalid)
        const keys = e.ops.map((op) => op.key)
        if (new Set(keys).size !== keys.length)
          return answer(ErrorCode.INVALID_REQUEST, 'A quota key appears twice in one entry')
        if (!req.validateOnly)
          try {
            broker.clientQuotas.alter(
              toQuotaEntity(e.entity),
              e.ops.map((op) => ({ key: op.key as QuotaKey, value: op.remove ? null : op.value })),
            )
          } catch (error) {
            if (error instanceof InvalidQuotaError) return answer(ErrorCode.INVALID_REQUEST, error.message)
            throw error
          }
        return answer(ErrorCode.NONE, null)
      }),
    }
  })
}
