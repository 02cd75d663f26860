// CreatePartitions (key 37): grow a topic's partition count. Explicit assignments must name
// this broker, the only one.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { TopicError } from '../topics.ts'
import { type BrokerIdentity, type TopicsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

export type CreatePartitionsContext = Pick<BrokerIdentity, 'nodeId'> & TopicsContext<'addPartitions'>

export function createPartitionsHandler(broker: CreatePartitionsContext): BoundHandler<typeof ApiKey.CreatePartitions> {
  return defineHandler(ApiKey.CreatePartitions, (ctx, req) => {
    const counts = new Map<string, number>()
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1)
    return {
      throttleTimeMs: 0,
      results: req.topics.map((t) => {
        if ((counts.get(t.name) ?? 0) > 1)
          return {
            name: t.name,
            errorCode: ErrorCode.INVALID_REQUEST,
            errorMessage: `topic "${t.name}" appears more than once`,
          }
        if (!ctx.access.authorize(AclOperation.ALTER, ResourceType.TOPIC, t.name))
          return {
            name: t.name,
            errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
            errorMessage: `${ctx.principal} may not alter topic "${t.name}"`,
          }
        if (t.assignments !== null && t.assignments.some((a) => a.brokerIds.some((id) => id !== broker.nodeId))) {
          return {
            name: t.name,
            errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            errorMessage: `every replica must be on broker ${broker.nodeId}`,
          }
        }
        try {
          broker.topics.addPartitions(t.name, t.count, req.validateOnly)
          return { name: t.name, errorCode: ErrorCode.NONE, errorMessage: null }
        } catch (err) {
          if (err instanceof TopicError) return { name: t.name, errorCode: err.code, errorMessage: err.message }
          throw err
        }
      }),
    }
  })
}
