// Metadata (key 3): this broker is the only broker, the controller, and the leader of every
// partition. Unknown topics requested by name are created when auto.create.topics.enable allows.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type MetadataResponseTopic } from '../../protocol/messages/metadata-response.ts'
import { type Shape, ZERO_UUID } from '../../protocol/schema.ts'
import { type BrokerConfig } from '../config.ts'
import { OFFSETS_TOPIC } from '../groups/offsets-topic.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { invalidTopicName, type Topic, TopicError } from '../topics.ts'
import { type BrokerIdentity, type TopicsContext } from './context.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'

export type MetadataContext = BrokerIdentity &
  TopicsContext<'list' | 'get' | 'getById' | 'create'> & { readonly config: Pick<BrokerConfig, 'bool'> }

export function metadataHandler(broker: MetadataContext): BoundHandler<typeof ApiKey.Metadata> {
  return defineHandler(ApiKey.Metadata, (ctx, req) => {
    const describe = (topic: Topic): Shape<MetadataResponseTopic> => ({
      errorCode: ErrorCode.NONE,
      name: topic.name,
      topicId: topic.id,
      // Only Kafka's own internal topics; clients hide internal topics from producers.
      isInternal: topic.name === OFFSETS_TOPIC,
      partitions: topic.partitions.map((_, p) => ({
        errorCode: ErrorCode.NONE,
        partitionIndex: p,
        leaderId: broker.nodeId,
        leaderEpoch: 0,
        replicaNodes: [broker.nodeId],
        isrNodes: [broker.nodeId],
        offlineReplicas: [],
      })),
    })
    // Topics the principal may not DESCRIBE: left out of "all topics", refused by name (as Kafka).
    const describable = (name: string, logIfDenied = true) =>
      ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, name, logIfDenied)
    const refused = (
      name: string | null,
      topicId: Shape<MetadataResponseTopic>['topicId'],
    ): Shape<MetadataResponseTopic> => ({
      errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
      name,
      topicId,
      partitions: [],
    })
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    const all = req.topics === null || (ctx.apiVersion === 0 && req.topics.length === 0)
    let topics: Shape<MetadataResponseTopic>[]
    if (all) {
      topics = broker.topics
        .list()
        .filter((t) => describable(t.name, false))
        .map(describe)
    } else {
      const autoCreate =
        broker.config.bool('auto.create.topics.enable') && (ctx.apiVersion < 4 || req.allowAutoTopicCreation)
      topics = (req.topics ?? []).map((t): Shape<MetadataResponseTopic> => {
        if (t.name === null || t.name === '') {
          const byId = broker.topics.getById(t.topicId)
          if (byId !== undefined && !describable(byId.name)) return refused(null, t.topicId)
          return byId !== undefined
            ? describe(byId)
            : { errorCode: ErrorCode.UNKNOWN_TOPIC_ID, name: null, topicId: t.topicId, partitions: [] }
        }
        if (!describable(t.name)) return refused(t.name, ZERO_UUID)
        const found = broker.topics.get(t.name)
        if (found !== undefined) return describe(found)
        if (invalidTopicName(t.name) !== undefined)
          return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, name: t.name, topicId: ZERO_UUID, partitions: [] }
        if (!autoCreate)
          return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name: t.name, topicId: ZERO_UUID, partitions: [] }
        // Auto-creation needs CREATE on the cluster or on the topic.
        if (
          !ctx.access.authorize(AclOperation.CREATE, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME) &&
          !ctx.access.authorize(AclOperation.CREATE, ResourceType.TOPIC, t.name)
        )
          return refused(t.name, ZERO_UUID)
        try {
          return describe(broker.topics.create(t.name, -1))
        } catch (err) {
          if (err instanceof TopicError)
            return { errorCode: err.code, name: t.name, topicId: ZERO_UUID, partitions: [] }
          throw err
        }
      })
    }
    return {
      throttleTimeMs: 0,
      brokers: [{ nodeId: broker.nodeId, ...broker.endpoint(ctx.listener), rack: null }],
      clusterId: broker.clusterId,
      controllerId: broker.nodeId,
      topics,
    }
  })
}
