// Fetch (key 1): whole record batches from each requested partition, within the request's byte
// limits, waiting up to max_wait_ms for min_bytes to accumulate (long polling). v13+ names
// topics by id. Incremental fetch sessions (KIP-227) are not offered: every response carries
// session id 0, which tells clients to send full fetch requests.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type FetchRequest } from '../../protocol/messages/fetch-request.ts'
import { type FetchableTopicResponse, type PartitionData } from '../../protocol/messages/fetch-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type BrokerMetrics } from '../broker.ts'
import { type BrokerConfig } from '../config.ts'
import { type FetchWaiters, partitionKey } from '../fetch-waiters.ts'
import { LogError } from '../log/errors.ts'
import { type BoundHandler, defineHandler, type RequestContext } from '../server.ts'
import { type Topic } from '../topics.ts'
import { type QuotasContext, quotaUser, type TopicsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

const EMPTY: Buffer = Buffer.alloc(0)
const READ_COMMITTED = 1

interface Collected {
  responses: Shape<FetchableTopicResponse>[]
  bytes: number
  hasError: boolean
  keys: string[]
}

export type FetchContext = TopicsContext<'get' | 'getById'> &
  QuotasContext & {
    readonly config: Pick<BrokerConfig, 'number'>
    readonly metrics: Pick<BrokerMetrics, 'fetchedBytes'>
    readonly waiters: Pick<FetchWaiters, 'wait'>
  }

export function fetchHandler(broker: FetchContext): BoundHandler<typeof ApiKey.Fetch> {
  return defineHandler(ApiKey.Fetch, async (ctx, req) => {
    if (ctx.apiVersion >= 7 && req.sessionId !== 0) {
      return { errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [] }
    }
    if (ctx.apiVersion >= 7 && req.sessionEpoch !== 0 && req.sessionEpoch !== -1) {
      return { errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH, sessionId: 0, responses: [] }
    }
    // fetch.max.bytes bounds what one response holds in memory, whatever the request asks for.
    // And a consumer quota: no more than one quota window's worth (Kafka's getMaxValueInQuotaWindow).
    const quotaBytes = broker.quotas.maxValueInWindow(
      'consumer_byte_rate',
      quotaUser(ctx.principal),
      ctx.clientId ?? '',
    )
    const limit = Math.min(broker.config.number('fetch.max.bytes'), Math.max(1, Math.floor(quotaBytes)))
    const maxBytes = ctx.apiVersion >= 3 && req.maxBytes > 0 ? Math.min(req.maxBytes, limit) : limit
    const deadline = Date.now() + Math.max(0, req.maxWaitMs)
    for (;;) {
      const got = collect(broker, ctx, req, maxBytes)
      const remaining = deadline - Date.now()
      if (got.bytes >= req.minBytes || got.hasError || remaining <= 0 || ctx.signal.aborted || got.keys.length === 0) {
        // consumer_byte_rate: over the quota, Kafka answers with no records and the throttle time,
        // takes the bytes back (they were not sent), and mutes the connection (KIP-219).
        const user = quotaUser(ctx.principal)
        const throttleTimeMs = Math.round(
          broker.quotas.record('consumer_byte_rate', user, ctx.clientId ?? '', got.bytes),
        )
        if (throttleTimeMs > 0) {
          broker.quotas.unrecord('consumer_byte_rate', user, ctx.clientId ?? '', got.bytes)
          ctx.throttle.mute(throttleTimeMs)
          return { throttleTimeMs, errorCode: ErrorCode.NONE, sessionId: 0, responses: [] }
        }
        broker.metrics.fetchedBytes.inc(got.bytes)
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses: got.responses }
      }
      await broker.waiters.wait(got.keys, remaining, ctx.signal)
    }
  })
}

function collect(broker: FetchContext, ctx: RequestContext, req: FetchRequest, maxBytes: number): Collected {
  const byId = ctx.apiVersion >= 13
  const out: Collected = { responses: [], bytes: 0, hasError: false, keys: [] }
  const readCommitted = ctx.apiVersion >= 4 && req.isolationLevel === READ_COMMITTED
  for (const ft of req.topics) {
    const topic: Topic | undefined = byId ? broker.topics.getById(ft.topicId) : broker.topics.get(ft.topic)
    const unknownTopic = byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    const name = topic?.name ?? ft.topic
    const readable = name === '' || ctx.access.authorize(AclOperation.READ, ResourceType.TOPIC, name)
    const partitions = ft.partitions.map((fp): Shape<PartitionData> => {
      const failed = (errorCode: number): Shape<PartitionData> => {
        out.hasError = true
        return {
          partitionIndex: fp.partition,
          errorCode,
          highWatermark: -1,
          lastStableOffset: -1,
          logStartOffset: -1,
          abortedTransactions: null,
          preferredReadReplica: -1,
          records: EMPTY,
        }
      }
      if (!readable) return failed(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
      const log = topic?.partitions[fp.partition]
      if (topic === undefined || log === undefined)
        return failed(topic === undefined ? unknownTopic : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      out.keys.push(partitionKey(topic.id, fp.partition))
      let records: Buffer = EMPTY
      try {
        const budget = Math.min(fp.partitionMaxBytes, maxBytes - out.bytes)
        // KIP-74: the first batch found is returned whole even when larger than the limits, so a
        // consumer can never get stuck behind one large batch.
        if (budget > 0 || out.bytes === 0)
          records = log.read(fp.fetchOffset, Math.max(budget, 0), out.bytes === 0, log.highWatermark)
      } catch (err) {
        if (err instanceof LogError) return failed(err.code)
        throw err
      }
      out.bytes += records.length
      const end = log.highWatermark
      return {
        partitionIndex: fp.partition,
        errorCode: ErrorCode.NONE,
        highWatermark: end,
        lastStableOffset: end,
        logStartOffset: log.logStartOffset,
        abortedTransactions: readCommitted ? [] : null,
        preferredReadReplica: -1,
        records,
      }
    })
    out.responses.push({ topic: topic?.name ?? ft.topic, topicId: ft.topicId, partitions })
  }
  return out
}
