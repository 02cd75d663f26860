// FindCoordinator (key 10): this broker coordinates every group. v4+ asks for many keys at once.
// Transaction coordinators (key type 1) are not offered: transactions are not supported.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type BrokerIdentity } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

const KEY_TYPE_TRANSACTION = 1

export function findCoordinatorHandler(broker: BrokerIdentity): BoundHandler<typeof ApiKey.FindCoordinator> {
  return defineHandler(ApiKey.FindCoordinator, (ctx, req) => {
    const answer = (key: string) => {
      if (req.keyType === KEY_TYPE_TRANSACTION) {
        return {
          key,
          errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE,
          errorMessage: 'transactions are not supported',
          nodeId: -1,
          host: '',
          port: -1,
        }
      }
      if (key !== '' && !ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.GROUP, key))
        return {
          key,
          errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED,
          errorMessage: `${ctx.principal} may not describe group "${key}"`,
          nodeId: -1,
          host: '',
          port: -1,
        }
      if (key === '')
        return {
          key,
          errorCode: ErrorCode.INVALID_GROUP_ID,
          errorMessage: 'empty group id',
          nodeId: -1,
          host: '',
          port: -1,
        }
      return {
        key,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        nodeId: broker.nodeId,
        ...broker.endpoint(ctx.listener),
      }
    }
    if (ctx.apiVersion >= 4) return { throttleTimeMs: 0, coordinators: req.coordinatorKeys.map(answer) }
    const one = answer(req.key)
    return {
      throttleTimeMs: 0,
      errorCode: one.errorCode,
      errorMessage: one.errorMessage,
      nodeId: one.nodeId,
      host: one.host,
      port: one.port,
    }
  })
}
