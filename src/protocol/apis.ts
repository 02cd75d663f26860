// The APIs this broker speaks and the version ranges it advertises in ApiVersions.
// Ranges start at 0 wherever Kafka 3.8 does: librdkafka's feature detection and kafka-python's
// version inference look at the old versions (docs/reference/kafka-protocol.md §1).
import { type MessageSchema } from './schema.ts'
import { apiVersionsRequestSchema } from './messages/api-versions-request.ts'
import { apiVersionsResponseSchema } from './messages/api-versions-response.ts'
import { metadataRequestSchema } from './messages/metadata-request.ts'
import { metadataResponseSchema } from './messages/metadata-response.ts'
import { produceRequestSchema } from './messages/produce-request.ts'
import { produceResponseSchema } from './messages/produce-response.ts'
import { fetchRequestSchema } from './messages/fetch-request.ts'
import { fetchResponseSchema } from './messages/fetch-response.ts'
import { listOffsetsRequestSchema } from './messages/list-offsets-request.ts'
import { listOffsetsResponseSchema } from './messages/list-offsets-response.ts'
import { createTopicsRequestSchema } from './messages/create-topics-request.ts'
import { createTopicsResponseSchema } from './messages/create-topics-response.ts'
import { deleteTopicsRequestSchema } from './messages/delete-topics-request.ts'
import { deleteTopicsResponseSchema } from './messages/delete-topics-response.ts'
import { createPartitionsRequestSchema } from './messages/create-partitions-request.ts'
import { createPartitionsResponseSchema } from './messages/create-partitions-response.ts'
import { describeConfigsRequestSchema } from './messages/describe-configs-request.ts'
import { describeConfigsResponseSchema } from './messages/describe-configs-response.ts'
import { initProducerIdRequestSchema } from './messages/init-producer-id-request.ts'
import { initProducerIdResponseSchema } from './messages/init-producer-id-response.ts'
import { findCoordinatorRequestSchema } from './messages/find-coordinator-request.ts'
import { findCoordinatorResponseSchema } from './messages/find-coordinator-response.ts'
import { joinGroupRequestSchema } from './messages/join-group-request.ts'
import { joinGroupResponseSchema } from './messages/join-group-response.ts'
import { syncGroupRequestSchema } from './messages/sync-group-request.ts'
import { syncGroupResponseSchema } from './messages/sync-group-response.ts'
import { heartbeatRequestSchema } from './messages/heartbeat-request.ts'
import { heartbeatResponseSchema } from './messages/heartbeat-response.ts'
import { leaveGroupRequestSchema } from './messages/leave-group-request.ts'
import { leaveGroupResponseSchema } from './messages/leave-group-response.ts'
import { offsetCommitRequestSchema } from './messages/offset-commit-request.ts'
import { offsetCommitResponseSchema } from './messages/offset-commit-response.ts'
import { offsetFetchRequestSchema } from './messages/offset-fetch-request.ts'
import { offsetFetchResponseSchema } from './messages/offset-fetch-response.ts'
import { describeGroupsRequestSchema } from './messages/describe-groups-request.ts'
import { describeGroupsResponseSchema } from './messages/describe-groups-response.ts'
import { listGroupsRequestSchema } from './messages/list-groups-request.ts'
import { listGroupsResponseSchema } from './messages/list-groups-response.ts'
import { deleteGroupsRequestSchema } from './messages/delete-groups-request.ts'
import { deleteGroupsResponseSchema } from './messages/delete-groups-response.ts'
import { offsetDeleteRequestSchema } from './messages/offset-delete-request.ts'
import { offsetDeleteResponseSchema } from './messages/offset-delete-response.ts'

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
  CreatePartitions: 37,
  DeleteGroups: 42,
  OffsetDelete: 47,
} as const

export interface ApiSpec {
  readonly key: number
  readonly name: string
  readonly request: MessageSchema
  readonly response: MessageSchema
  /** Advertised [min, max]; a request outside it is refused. */
  readonly versions: readonly [number, number]
}

function spec(request: MessageSchema, response: MessageSchema, versions: readonly [number, number]): ApiSpec {
  return { key: request.apiKey, name: request.name.replace(/Request$/, ''), request, response, versions }
}

export const APIS: ReadonlyMap<number, ApiSpec> = new Map(
  [
    spec(produceRequestSchema, produceResponseSchema, [0, 11]),
    spec(fetchRequestSchema, fetchResponseSchema, [0, 16]),
    spec(listOffsetsRequestSchema, listOffsetsResponseSchema, [0, 6]),
    spec(metadataRequestSchema, metadataResponseSchema, [0, 12]),
    spec(apiVersionsRequestSchema, apiVersionsResponseSchema, [0, 3]),
    spec(createTopicsRequestSchema, createTopicsResponseSchema, [0, 7]),
    spec(deleteTopicsRequestSchema, deleteTopicsResponseSchema, [0, 6]),
    spec(describeConfigsRequestSchema, describeConfigsResponseSchema, [0, 4]),
    spec(createPartitionsRequestSchema, createPartitionsResponseSchema, [0, 3]),
    // Idempotent producers. v5 only adds KIP-890's TRANSACTION_ABORTABLE error (transactions).
    spec(initProducerIdRequestSchema, initProducerIdResponseSchema, [0, 4]),
    // Consumer groups (classic protocol). OffsetCommit and OffsetFetch stop before v9, whose
    // member epochs belong to the KIP-848 protocol; FindCoordinator before v5 (transactions).
    spec(findCoordinatorRequestSchema, findCoordinatorResponseSchema, [0, 4]),
    spec(joinGroupRequestSchema, joinGroupResponseSchema, [0, 9]),
    spec(syncGroupRequestSchema, syncGroupResponseSchema, [0, 5]),
    spec(heartbeatRequestSchema, heartbeatResponseSchema, [0, 4]),
    spec(leaveGroupRequestSchema, leaveGroupResponseSchema, [0, 5]),
    spec(offsetCommitRequestSchema, offsetCommitResponseSchema, [0, 8]),
    spec(offsetFetchRequestSchema, offsetFetchResponseSchema, [0, 8]),
    spec(describeGroupsRequestSchema, describeGroupsResponseSchema, [0, 5]),
    spec(listGroupsRequestSchema, listGroupsResponseSchema, [0, 5]),
    spec(deleteGroupsRequestSchema, deleteGroupsResponseSchema, [0, 2]),
    spec(offsetDeleteRequestSchema, offsetDeleteResponseSchema, [0, 0]),
  ].map((s) => [s.key, s]),
)
