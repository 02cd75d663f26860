// FindCoordinator (key 10): this broker coordinates every group. v4+ asks for many keys at once.
// Transaction coordinators (key type 1) are not offered: transactions are not supported.
import { ErrorCode } from '../../protocol/errors.ts'
import { type FindCoordinatorRequest } from '../../protocol/messages/find-coordinator-request.ts'
import { type FindCoordinatorResponse } from '../../protocol/messages/find-coordinator-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler, type RequestContext } from '../server.ts'

const KEY_TYPE_TRANSACTION = 1

export function findCoordinatorHandler(broker: Broker): Handler {
  return (ctx: RequestContext, req: FindCoordinatorRequest): Shape<FindCoordinatorResponse> => {
    const answer = (key: string) => {
      if (req.keyType === KEY_TYPE_TRANSACTION) {
        return { key, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'transactions are not supported', nodeId: -1, host: '', port: -1 }
      }
      if (key === '') return { key, errorCode: ErrorCode.INVALID_GROUP_ID, errorMessage: 'empty group id', nodeId: -1, host: '', port: -1 }
      return { key, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: broker.nodeId, host: broker.advertisedHost, port: broker.port }
    }
    if (ctx.apiVersion >= 4) return { throttleTimeMs: 0, coordinators: req.coordinatorKeys.map(answer) }
    const one = answer(req.key)
    return { throttleTimeMs: 0, errorCode: one.errorCode, errorMessage: one.errorMessage, nodeId: one.nodeId, host: one.host, port: one.port }
  }
}
