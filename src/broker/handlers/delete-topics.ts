// DeleteTopics (key 20): by name (v0-5) or by name or id (v6+). Safe while clients produce and
// fetch: the topic disappears for new requests at once, and its files are removed after the
// appends and fsyncs already under way have finished.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type DeletableTopicResult } from '../../protocol/messages/delete-topics-response.ts'
import { type Shape, ZERO_UUID } from '../../protocol/schema.ts'
import { type FetchWaiters } from '../fetch-waiters.ts'
import { OFFSETS_TOPIC } from '../groups/offsets-topic.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { TopicError } from '../topics.ts'
import { type TopicsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

export type DeleteTopicsContext = TopicsContext<'get' | 'getById' | 'delete'> & {
  readonly waiters: Pick<FetchWaiters, 'notifyAll'>
}

export function deleteTopicsHandler(broker: DeleteTopicsContext): BoundHandler<typeof ApiKey.DeleteTopics> {
  return defineHandler(ApiKey.DeleteTopics, async (ctx, req) => {
    const wanted = ctx.apiVersion >= 6 ? req.topics : req.topicNames.map((name) => ({ name, topicId: ZERO_UUID }))
    const responses = await Promise.all(
      wanted.map(async (w): Promise<Shape<DeletableTopicResult>> => {
        const byId = w.name === null
        const topic = byId ? broker.topics.getById(w.topicId) : broker.topics.get(w.name ?? '')
        const name = topic?.name ?? w.name
        if (name !== null && !ctx.access.authorize(AclOperation.DELETE, ResourceType.TOPIC, name))
          return {
            name: w.name,
            topicId: w.topicId,
            errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
            errorMessage: `${ctx.principal} may not delete topic "${name}"`,
          }
        if (topic === undefined) {
          return byId
            ? {
                name: null,
                topicId: w.topicId,
                errorCode: ErrorCode.UNKNOWN_TOPIC_ID,
                errorMessage: 'unknown topic id',
              }
            : {
                name: w.name,
                topicId: ZERO_UUID,
                errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                errorMessage: `topic "${w.name}" does not exist`,
              }
        }
        if (topic.name === OFFSETS_TOPIC) {
          return {
            name: topic.name,
            topicId: topic.id,
            errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
            errorMessage: `${OFFSETS_TOPIC} is internal and cannot be deleted`,
          }
        }
        try {
          const deleting = broker.topics.delete(topic.name)
          broker.waiters.notifyAll() // long polls on the topic answer now, with UNKNOWN_TOPIC
          await deleting
          return { name: topic.name, topicId: topic.id, errorCode: ErrorCode.NONE, errorMessage: null }
        } catch (err) {
          if (err instanceof TopicError)
            return { name: topic.name, topicId: topic.id, errorCode: err.code, errorMessage: err.message }
          throw err
        }
      }),
    )
    return { throttleTimeMs: 0, responses }
  })
}
