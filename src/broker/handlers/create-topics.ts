// CreateTopics (key 19). One broker: replication factor 1, every replica assignment names this
// broker. v5+ answers with the topic's resulting partition count and configs.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type CreatableTopicResult } from '../../protocol/messages/create-topics-response.ts'
import { type Shape, ZERO_UUID } from '../../protocol/schema.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { TopicError } from '../topics.ts'
import { type BrokerIdentity, type TopicsContext } from './context.ts'
import { configSourceCode } from './describe-configs.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'

export type CreateTopicsContext = Pick<BrokerIdentity, 'nodeId'> & TopicsContext<'validateNew' | 'create' | 'describe'>

export function createTopicsHandler(broker: CreateTopicsContext): BoundHandler<typeof ApiKey.CreateTopics> {
  return defineHandler(ApiKey.CreateTopics, (ctx, req) => {
    // CREATE on the cluster allows every topic; otherwise CREATE on each topic (as Kafka).
    const clusterCreate = ctx.access.authorize(AclOperation.CREATE, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME)
    const counts = new Map<string, number>()
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1)
    const topics = req.topics.map((t): Shape<CreatableTopicResult> => {
      const failed = (errorCode: number, errorMessage: string): Shape<CreatableTopicResult> => ({
        name: t.name,
        topicId: ZERO_UUID,
        errorCode,
        errorMessage,
        numPartitions: -1,
        replicationFactor: -1,
        configs: null,
      })
      if ((counts.get(t.name) ?? 0) > 1)
        return failed(ErrorCode.INVALID_REQUEST, `topic "${t.name}" appears more than once in the request`)
      if (!clusterCreate && !ctx.access.authorize(AclOperation.CREATE, ResourceType.TOPIC, t.name))
        return failed(ErrorCode.TOPIC_AUTHORIZATION_FAILED, `${ctx.principal} may not create topic "${t.name}"`)
      let partitions = t.numPartitions
      let replicationFactor = t.replicationFactor
      if (t.assignments.length > 0) {
        if (partitions !== -1 || replicationFactor !== -1) {
          return failed(
            ErrorCode.INVALID_REQUEST,
            'give either numPartitions and replicationFactor, or replica assignments, not both',
          )
        }
        const sorted = t.assignments.map((a) => a.partitionIndex).sort((a, b) => a - b)
        if (sorted.some((p, i) => p !== i))
          return failed(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'replica assignments must cover partitions 0..n-1')
        if (t.assignments.some((a) => a.brokerIds.length !== 1 || a.brokerIds[0] !== broker.nodeId)) {
          return failed(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            `every replica must be on broker ${broker.nodeId}, the only broker`,
          )
        }
        partitions = t.assignments.length
        replicationFactor = 1
      }
      const configs: Record<string, string> = {}
      for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value
      try {
        const count = broker.topics.validateNew(t.name, partitions, replicationFactor, configs)
        const topic = req.validateOnly ? undefined : broker.topics.create(t.name, count, configs)
        const entries = topic !== undefined ? broker.topics.describe(topic) : []
        return {
          name: t.name,
          topicId: topic?.id ?? ZERO_UUID,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          numPartitions: count,
          replicationFactor: 1,
          configs: entries.map((e) => ({
            name: e.name,
            value: e.value,
            readOnly: false,
            configSource: configSourceCode(e.source),
            isSensitive: false,
          })),
        }
      } catch (err) {
        if (err instanceof TopicError) return failed(err.code, err.message)
        throw err
      }
    })
    return { throttleTimeMs: 0, topics }
  })
}
