// InitProducerId (key 22), v0-4: hands an idempotent producer a new producer id with epoch 0.
//
// As in Kafka 3.8 (TransactionCoordinator.handleInitProducerId): with a null transactional id the
// request is "blindly accepted" and a new id is returned, whatever ProducerId/ProducerEpoch (v3+)
// say. That matters: @platformatic/kafka sends ProducerId 0 / ProducerEpoch 0 on its first
// InitProducerId, so treating those fields as a KIP-360 bump request would hand it (or fence it
// from) producer 0. KIP-360 epoch bumps only exist for transactional ids; non-transactional
// clients bump epochs locally (librdkafka, the Java client) and the partitions accept the higher
// epoch at sequence 0. KafkaApis' check that ProducerId and ProducerEpoch are both -1 or both set
// (INVALID_REQUEST) is kept.
//
// Transactions are not supported: a non-null transactional id is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53), the error Kafka's KafkaApis.handleInitProducerIdRequest
// returns when the principal may not use the transactional id. It is non-retriable, so clients
// fail fast with a clear error rather than retrying a coordinator that will never appear (as
// COORDINATOR_NOT_AVAILABLE would make them). The checks run in KafkaApis' order: transactional id
// authorization first, then the ProducerId/ProducerEpoch pairing.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type InitProducerIdResponse } from '../../protocol/messages/init-producer-id-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type Logger } from '../../util/log.ts'
import { type ProducerIdAllocator } from '../producer-ids.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'

/** The broker's producer id allocator: durable state, so the broker owns it, not this handler. */
export interface InitProducerIdContext {
  readonly producerIds: Pick<ProducerIdAllocator, 'allocate'>
  readonly log: Pick<Logger, 'error'>
}

export function initProducerIdHandler(broker: InitProducerIdContext): BoundHandler<typeof ApiKey.InitProducerId> {
  return defineHandler(ApiKey.InitProducerId, (ctx, req) => {
    const refuse = (errorCode: number): Shape<InitProducerIdResponse> => ({
      throttleTimeMs: 0,
      errorCode,
      producerId: -1,
      producerEpoch: -1,
    })
    if (req.transactionalId !== null) return refuse(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    if ((req.producerId === -1) !== (req.producerEpoch === -1)) return refuse(ErrorCode.INVALID_REQUEST)
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
    if (
      !ctx.access.authorizeAny(AclOperation.WRITE, ResourceType.TOPIC) &&
      !ctx.access.authorize(AclOperation.IDEMPOTENT_WRITE, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME)
    )
      return refuse(ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    let producerId: number
    try {
      producerId = broker.producerIds.allocate()
    } catch (err) {
      broker.log.error('cannot allocate a producer id', { err })
      return refuse(ErrorCode.UNKNOWN_SERVER_ERROR)
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId, producerEpoch: 0 }
  })
}
