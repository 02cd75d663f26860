// Produce (key 0): validate each partition's record batch, append it, and with acks=1/all answer
// only once it is durable (cortado.fsync=ack: group-committed fdatasync, shared by every request
// waiting at that moment). With acks=0 nothing is sent back; an error closes the connection,
// as Kafka does, since the client would otherwise never learn of it.
//
// Idempotent producers (batches with a producer id): each partition's producer state decides before
// the append (log/producer-state.ts). A retry of one of the producer's last five batches is
// answered with the original offsets and not appended; a sequence gap gets
// OUT_OF_ORDER_SEQUENCE_NUMBER and an older epoch INVALID_PRODUCER_EPOCH. A duplicate is answered
// only after a flush too: its original may have been appended but not yet synced (its own request
// still waiting for the same round), and the duplicate's answer must be as durable as the
// original's.
import * as prom from 'prom-client'
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode, errorName } from '../../protocol/errors.ts'
import { type PartitionProduceResponse, type TopicProduceResponse } from '../../protocol/messages/produce-response.ts'
import {
  ATTR_COMPRESSION_MASK,
  ATTR_TIMESTAMP_TYPE_MASK,
  ATTRIBUTES_OFFSET,
  COMPRESSION_ZSTD,
  CRC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  type BatchHeader,
  validateProducedBatches,
  writeInt64,
} from '../../protocol/record-batch.ts'
import { crc32c } from '../../protocol/crc32c.ts'
import { nullKeyProblem } from '../../protocol/batch-records.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Logger } from '../../util/log.ts'
import { OFFSETS_TOPIC } from '../groups/offsets-topic.ts'
import { type BrokerMetrics } from '../broker.ts'
import { type BrokerConfig } from '../config.ts'
import { type FetchWaiters, partitionKey } from '../fetch-waiters.ts'
import { LogError } from '../log/errors.ts'
import { type PartitionLog } from '../log/partition-log.ts'
import { type BoundHandler, CloseConnection, defineHandler } from '../server.ts'
import { type QuotasContext, quotaUser, type TopicsContext } from './context.ts'
import { AclOperation, ResourceType } from '../security/acls.ts'

type PartitionResult = Shape<PartitionProduceResponse>

export type ProduceContext = TopicsContext<'get' | 'topicConfig' | 'isCompacted'> &
  QuotasContext & {
    readonly config: Pick<BrokerConfig, 'number'>
    readonly registry: prom.Registry
    readonly metrics: Pick<BrokerMetrics, 'produceErrors' | 'producedBytes' | 'producedBatches'>
    readonly waiters: Pick<FetchWaiters, 'notify'>
    readonly fsyncOnAck: boolean
    readonly log: Pick<Logger, 'error'>
  }

export function produceHandler(broker: ProduceContext): BoundHandler<typeof ApiKey.Produce> {
  const expirationMs = broker.config.number('producer.id.expiration.ms')
  const expiryCheckMs = broker.config.number('producer.id.expiration.check.interval.ms')
  const duplicates = new prom.Counter({
    name: 'cortado_broker_produce_duplicates_total',
    help: 'Idempotent batches recognised as retries and answered with their original offsets',
    registers: [broker.registry],
  })
  return defineHandler(ApiKey.Produce, async (ctx, req) => {
    const now = Date.now()
    const acks = req.acks
    // Logs whose answers wait for a flush: appended to, or holding the original of a duplicate.
    const appended: PartitionLog[] = []
    // Partitions whose new records fetches waiting on them should see (once durable, with fsync=ack).
    const grown: string[] = []
    const responses: Shape<TopicProduceResponse>[] = []
    let firstError: string | undefined

    const refuse = (index: number, errorCode: number, message: string): PartitionResult => {
      broker.metrics.produceErrors.inc({ error: errorName(errorCode) })
      firstError ??= `${errorName(errorCode)}: ${message}`
      return { index, errorCode, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, errorMessage: message }
    }

    for (const topicData of req.topicData) {
      const writable = ctx.access.authorize(AclOperation.WRITE, ResourceType.TOPIC, topicData.name)
      const topic = broker.topics.get(topicData.name)
      const partitionResponses = topicData.partitionData.map((pd): PartitionResult => {
        if (!writable)
          return refuse(
            pd.index,
            ErrorCode.TOPIC_AUTHORIZATION_FAILED,
            `${ctx.principal} may not write to topic ${topicData.name}`,
          )
        if (acks !== 0 && acks !== 1 && acks !== -1)
          return refuse(pd.index, ErrorCode.INVALID_REQUIRED_ACKS, `acks must be -1, 0 or 1, got ${acks}`)
        if (req.transactionalId !== null)
          return refuse(
            pd.index,
            ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            'transactions are not supported by this broker',
          )
        const log = topic?.partitions[pd.index]
        if (topic === undefined || log === undefined)
          return refuse(
            pd.index,
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            `unknown partition ${topicData.name}-${pd.index}`,
          )
        if (topic.name === OFFSETS_TOPIC)
          return refuse(pd.index, ErrorCode.INVALID_TOPIC_EXCEPTION, `cannot append to internal topic ${OFFSETS_TOPIC}`)
        if (pd.records === null || pd.records.length === 0)
          return refuse(pd.index, ErrorCode.INVALID_RECORD, 'no records')
        const validated = validateProducedBatches(pd.records)
        if ('error' in validated) return refuse(pd.index, validated.error, validated.message)
        const batches = validated.batches
        if (ctx.apiVersion >= 3 && batches.length !== 1) {
          return refuse(
            pd.index,
            ErrorCode.INVALID_RECORD,
            `produce v3+ must carry exactly one record batch per partition, got ${batches.length}`,
          )
        }
        const maxBytes = Number(broker.topics.topicConfig(topic, 'max.message.bytes'))
        for (const b of batches) {
          const size = b.batchLength + 12
          if (size > maxBytes)
            return refuse(
              pd.index,
              ErrorCode.MESSAGE_TOO_LARGE,
              `record batch of ${size} bytes exceeds max.message.bytes ${maxBytes}`,
            )
          if ((b.attributes & ATTR_COMPRESSION_MASK) === COMPRESSION_ZSTD && ctx.apiVersion < 7) {
            return refuse(pd.index, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, 'zstd needs produce v7 or later')
          }
        }
        // Compacted topics: every record needs a key (Kafka's LogValidator; decompresses to look).
        if (broker.topics.isCompacted(topic)) {
          const problem = nullKeyProblem(pd.records, batches)
          if (problem !== undefined) return refuse(pd.index, problem.code, problem.message)
        }
        const logAppendTime = broker.topics.topicConfig(topic, 'message.timestamp.type') === 'LogAppendTime'
        const idempotent = batches.some((b) => b.producerId >= 0)
        if (idempotent) {
          log.producerState.maybeRemoveExpired(now, expirationMs, expiryCheckMs)
          const decision = log.producerState.check(batches)
          if (decision.kind === 'error') return refuse(pd.index, decision.errorCode, decision.message)
          if (decision.kind === 'duplicate') {
            duplicates.inc()
            appended.push(log)
            const original = decision.batch
            return {
              index: pd.index,
              errorCode: ErrorCode.NONE,
              baseOffset: original.firstOffset,
              logAppendTimeMs: logAppendTime ? original.timestamp : -1,
              logStartOffset: log.logStartOffset,
            }
          }
        }
        if (logAppendTime) stampLogAppendTime(pd.records, batches, now)
        try {
          const { baseOffset } = log.append(pd.records, batches, now)
          if (idempotent) log.producerState.recordAppend(batches, baseOffset, now)
          appended.push(log)
          broker.metrics.producedBytes.inc({ topic: topic.name }, pd.records.length)
          broker.metrics.producedBatches.inc({ topic: topic.name }, batches.length)
          grown.push(partitionKey(topic.id, pd.index))
          return {
            index: pd.index,
            errorCode: ErrorCode.NONE,
            baseOffset,
            logAppendTimeMs: logAppendTime ? now : -1,
            logStartOffset: log.logStartOffset,
          }
        } catch (err) {
          if (err instanceof LogError) return refuse(pd.index, err.code, err.message)
          throw err
        }
      })
      responses.push({ name: topicData.name, partitionResponses })
    }

    // With fsync=ack, consumers see records once they are durable (log.highWatermark): waiting
    // fetches are woken by the flush, which acks=0 requests start too.
    const durable = broker.fsyncOnAck && appended.length > 0 ? Promise.all(appended.map((log) => log.flush())) : null
    const notify = () => {
      for (const k of grown) broker.waiters.notify(k)
    }
    if (durable === null) notify()
    else durable.then(notify, () => {})
    // producer_byte_rate: the request's size counts; over the quota the answer carries the
    // throttle time and the connection is not read for that long (KIP-219).
    const throttleTimeMs = Math.round(
      broker.quotas.record('producer_byte_rate', quotaUser(ctx.principal), ctx.clientId ?? '', ctx.size),
    )
    ctx.throttle.mute(throttleTimeMs)
    if (acks === 0) {
      if (firstError !== undefined) throw new CloseConnection(`acks=0 produce failed: ${firstError}`)
      return null
    }
    if (durable !== null) {
      try {
        await durable
      } catch (err) {
        // Not durable: the client must not take these offsets as acknowledged.
        broker.log.error('fsync failed; produce answered with KAFKA_STORAGE_ERROR', { err })
        for (const t of responses) {
          for (const p of t.partitionResponses ?? []) {
            if (p.errorCode === ErrorCode.NONE)
              Object.assign(p, {
                errorCode: ErrorCode.KAFKA_STORAGE_ERROR,
                baseOffset: -1,
                errorMessage: 'fsync failed',
              })
          }
        }
      }
    }
    return { responses, throttleTimeMs }
  })
}

/** message.timestamp.type=LogAppendTime: the broker's clock becomes the batch's timestamp. */
function stampLogAppendTime(records: Buffer, batches: BatchHeader[], now: number): void {
  let pos = 0
  for (const b of batches) {
    const end = pos + b.batchLength + 12
    records.writeInt16BE(b.attributes | ATTR_TIMESTAMP_TYPE_MASK, pos + ATTRIBUTES_OFFSET)
    writeInt64(records, now, pos + MAX_TIMESTAMP_OFFSET)
    records.writeUInt32BE(crc32c(records, pos + ATTRIBUTES_OFFSET, end), pos + CRC_OFFSET)
    b.attributes |= ATTR_TIMESTAMP_TYPE_MASK
    b.maxTimestamp = now
    pos = end
  }
}
