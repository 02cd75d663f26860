// ListOffsets (key 2): earliest (-2), latest (-1), or the first offset at or after a timestamp.
// v0 answers with a list of offsets (Burrow's cluster module reads offsets[0] as the latest).
// Versions stop at 6: v7 adds max-timestamp lookups (-3), which this log does not index.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type ListOffsetsPartitionResponse } from '../../protocol/messages/list-offsets-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { LogError } from '../log/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type TopicsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

const LATEST = -1
const EARLIEST = -2
const EARLIEST_LOCAL = -4

export function listOffsetsHandler(broker: TopicsContext<'get'>): BoundHandler<typeof ApiKey.ListOffsets> {
  return defineHandler(ApiKey.ListOffsets, (ctx, req) => ({
    throttleTimeMs: 0,
    topics: req.topics.map((t) => {
      const describable = ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, t.name)
      const topic = describable ? broker.topics.get(t.name) : undefined
      return {
        name: t.name,
        partitions: t.partitions.map((p): Shape<ListOffsetsPartitionResponse> => {
          const answer = (offset: number, timestamp: number): Shape<ListOffsetsPartitionResponse> => ({
            partitionIndex: p.partitionIndex,
            errorCode: ErrorCode.NONE,
            timestamp,
            offset,
            leaderEpoch: 0,
            oldStyleOffsets: offset >= 0 ? [offset] : [],
          })
          const log = topic?.partitions[p.partitionIndex]
          if (log === undefined) {
            return {
              partitionIndex: p.partitionIndex,
              errorCode: describable ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.TOPIC_AUTHORIZATION_FAILED,
              timestamp: -1,
              offset: -1,
              leaderEpoch: -1,
            }
          }
          try {
            if (p.timestamp === LATEST) return answer(log.highWatermark, -1)
            if (p.timestamp === EARLIEST || p.timestamp === EARLIEST_LOCAL) return answer(log.logStartOffset, -1)
            if (p.timestamp < 0) {
              return {
                partitionIndex: p.partitionIndex,
                errorCode: ErrorCode.INVALID_REQUEST,
                timestamp: -1,
                offset: -1,
                leaderEpoch: -1,
              }
            }
            const found = log.offsetForTimestamp(p.timestamp)
            if (found === null) return answer(-1, -1)
            return answer(found.offset, found.timestamp)
          } catch (err) {
            if (err instanceof LogError)
              return {
                partitionIndex: p.partitionIndex,
                errorCode: err.code,
                timestamp: -1,
                offset: -1,
                leaderEpoch: -1,
              }
            throw err
          }
        }),
      }
    }),
  }))
}
