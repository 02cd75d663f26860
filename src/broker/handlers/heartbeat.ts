// Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
import { type HeartbeatRequest } from '../../protocol/messages/heartbeat-request.ts'
import { type HeartbeatResponse } from '../../protocol/messages/heartbeat-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Broker } from '../broker.ts'
import { type Handler } from '../server.ts'

export function heartbeatHandler(broker: Broker): Handler {
  return async (_ctx, req: HeartbeatRequest): Promise<Shape<HeartbeatResponse>> => {
    const errorCode = await broker.groups.heartbeat(req.groupId, { generationId: req.generationId, memberId: req.memberId, groupInstanceId: req.groupInstanceId })
    return { throttleTimeMs: 0, errorCode }
  }
}
