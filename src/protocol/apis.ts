// The APIs this broker speaks and the version ranges it advertises in ApiVersions.
// Ranges start at 0 wherever Kafka 3.8 does: librdkafka's feature detection and kafka-python's
// version inference look at the old versions (docs/reference/kafka-protocol.md §1).
import { type MessageSchema } from './schema.ts'
import { type SaslHandshakeRequest, saslHandshakeRequestSchema } from './messages/sasl-handshake-request.ts'
import { type SaslHandshakeResponse, saslHandshakeResponseSchema } from './messages/sasl-handshake-response.ts'
import { type SaslAuthenticateRequest, saslAuthenticateRequestSchema } from './messages/sasl-authenticate-request.ts'
import { type SaslAuthenticateResponse, saslAuthenticateResponseSchema } from './messages/sasl-authenticate-response.ts'
import {
  type AlterUserScramCredentialsRequest,
  alterUserScramCredentialsRequestSchema,
} from './messages/alter-user-scram-credentials-request.ts'
import {
  type AlterUserScramCredentialsResponse,
  alterUserScramCredentialsResponseSchema,
} from './messages/alter-user-scram-credentials-response.ts'
import {
  type DescribeUserScramCredentialsRequest,
  describeUserScramCredentialsRequestSchema,
} from './messages/describe-user-scram-credentials-request.ts'
import {
  type DescribeUserScramCredentialsResponse,
  describeUserScramCredentialsResponseSchema,
} from './messages/describe-user-scram-credentials-response.ts'
import { type CreateAclsRequest, createAclsRequestSchema } from './messages/create-acls-request.ts'
import { type CreateAclsResponse, createAclsResponseSchema } from './messages/create-acls-response.ts'
import { type DescribeAclsRequest, describeAclsRequestSchema } from './messages/describe-acls-request.ts'
import { type DescribeAclsResponse, describeAclsResponseSchema } from './messages/describe-acls-response.ts'
import { type DeleteAclsRequest, deleteAclsRequestSchema } from './messages/delete-acls-request.ts'
import { type DeleteAclsResponse, deleteAclsResponseSchema } from './messages/delete-acls-response.ts'
import {
  type DescribeClientQuotasRequest,
  describeClientQuotasRequestSchema,
} from './messages/describe-client-quotas-request.ts'
import {
  type DescribeClientQuotasResponse,
  describeClientQuotasResponseSchema,
} from './messages/describe-client-quotas-response.ts'
import {
  type AlterClientQuotasRequest,
  alterClientQuotasRequestSchema,
} from './messages/alter-client-quotas-request.ts'
import {
  type AlterClientQuotasResponse,
  alterClientQuotasResponseSchema,
} from './messages/alter-client-quotas-response.ts'
import { type ApiVersionsRequest, apiVersionsRequestSchema } from './messages/api-versions-request.ts'
import { type ApiVersionsResponse, apiVersionsResponseSchema } from './messages/api-versions-response.ts'
import { type MetadataRequest, metadataRequestSchema } from './messages/metadata-request.ts'
import { type MetadataResponse, metadataResponseSchema } from './messages/metadata-response.ts'
import { type ProduceRequest, produceRequestSchema } from './messages/produce-request.ts'
import { type ProduceResponse, produceResponseSchema } from './messages/produce-response.ts'
import { type FetchRequest, fetchRequestSchema } from './messages/fetch-request.ts'
import { type FetchResponse, fetchResponseSchema } from './messages/fetch-response.ts'
import { type ListOffsetsRequest, listOffsetsRequestSchema } from './messages/list-offsets-request.ts'
import { type ListOffsetsResponse, listOffsetsResponseSchema } from './messages/list-offsets-response.ts'
import { type CreateTopicsRequest, createTopicsRequestSchema } from './messages/create-topics-request.ts'
import { type CreateTopicsResponse, createTopicsResponseSchema } from './messages/create-topics-response.ts'
import { type DeleteTopicsRequest, deleteTopicsRequestSchema } from './messages/delete-topics-request.ts'
import { type DeleteTopicsResponse, deleteTopicsResponseSchema } from './messages/delete-topics-response.ts'
import { type CreatePartitionsRequest, createPartitionsRequestSchema } from './messages/create-partitions-request.ts'
import { type CreatePartitionsResponse, createPartitionsResponseSchema } from './messages/create-partitions-response.ts'
import { type DescribeConfigsRequest, describeConfigsRequestSchema } from './messages/describe-configs-request.ts'
import { type DescribeConfigsResponse, describeConfigsResponseSchema } from './messages/describe-configs-response.ts'
import { type InitProducerIdRequest, initProducerIdRequestSchema } from './messages/init-producer-id-request.ts'
import { type InitProducerIdResponse, initProducerIdResponseSchema } from './messages/init-producer-id-response.ts'
import { type FindCoordinatorRequest, findCoordinatorRequestSchema } from './messages/find-coordinator-request.ts'
import { type FindCoordinatorResponse, findCoordinatorResponseSchema } from './messages/find-coordinator-response.ts'
import { type JoinGroupRequest, joinGroupRequestSchema } from './messages/join-group-request.ts'
import { type JoinGroupResponse, joinGroupResponseSchema } from './messages/join-group-response.ts'
import { type SyncGroupRequest, syncGroupRequestSchema } from './messages/sync-group-request.ts'
import { type SyncGroupResponse, syncGroupResponseSchema } from './messages/sync-group-response.ts'
import { type HeartbeatRequest, heartbeatRequestSchema } from './messages/heartbeat-request.ts'
import { type HeartbeatResponse, heartbeatResponseSchema } from './messages/heartbeat-response.ts'
import { type LeaveGroupRequest, leaveGroupRequestSchema } from './messages/leave-group-request.ts'
import { type LeaveGroupResponse, leaveGroupResponseSchema } from './messages/leave-group-response.ts'
import { type OffsetCommitRequest, offsetCommitRequestSchema } from './messages/offset-commit-request.ts'
import { type OffsetCommitResponse, offsetCommitResponseSchema } from './messages/offset-commit-response.ts'
import { type OffsetFetchRequest, offsetFetchRequestSchema } from './messages/offset-fetch-request.ts'
import { type OffsetFetchResponse, offsetFetchResponseSchema } from './messages/offset-fetch-response.ts'
import { type DescribeGroupsRequest, describeGroupsRequestSchema } from './messages/describe-groups-request.ts'
import { type DescribeGroupsResponse, describeGroupsResponseSchema } from './messages/describe-groups-response.ts'
import { type ListGroupsRequest, listGroupsRequestSchema } from './messages/list-groups-request.ts'
import { type ListGroupsResponse, listGroupsResponseSchema } from './messages/list-groups-response.ts'
import { type DeleteGroupsRequest, deleteGroupsRequestSchema } from './messages/delete-groups-request.ts'
import { type DeleteGroupsResponse, deleteGroupsResponseSchema } from './messages/delete-groups-response.ts'
import { type OffsetDeleteRequest, offsetDeleteRequestSchema } from './messages/offset-delete-request.ts'
import { type OffsetDeleteResponse, offsetDeleteResponseSchema } from './messages/offset-delete-response.ts'

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
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
  SaslAuthenticate: 36,
  DescribeAcls: 29,
  CreateAcls: 30,
  DeleteAcls: 31,
  CreatePartitions: 37,
  DeleteGroups: 42,
  OffsetDelete: 47,
  DescribeClientQuotas: 48,
  AlterClientQuotas: 49,
  DescribeUserScramCredentials: 50,
  AlterUserScramCredentials: 51,
} as const

export type ApiKey = (typeof ApiKey)[keyof typeof ApiKey]

/**
 * The request and response message of each API, so a handler's types follow from its key.
 * Indexing it with an `ApiKey` fails to compile when an API lacks an entry.
 */
export interface ApiMessages {
  [ApiKey.Produce]: { request: ProduceRequest; response: ProduceResponse }
  [ApiKey.Fetch]: { request: FetchRequest; response: FetchResponse }
  [ApiKey.ListOffsets]: { request: ListOffsetsRequest; response: ListOffsetsResponse }
  [ApiKey.Metadata]: { request: MetadataRequest; response: MetadataResponse }
  [ApiKey.OffsetCommit]: { request: OffsetCommitRequest; response: OffsetCommitResponse }
  [ApiKey.OffsetFetch]: { request: OffsetFetchRequest; response: OffsetFetchResponse }
  [ApiKey.FindCoordinator]: { request: FindCoordinatorRequest; response: FindCoordinatorResponse }
  [ApiKey.JoinGroup]: { request: JoinGroupRequest; response: JoinGroupResponse }
  [ApiKey.Heartbeat]: { request: HeartbeatRequest; response: HeartbeatResponse }
  [ApiKey.LeaveGroup]: { request: LeaveGroupRequest; response: LeaveGroupResponse }
  [ApiKey.SyncGroup]: { request: SyncGroupRequest; response: SyncGroupResponse }
  [ApiKey.DescribeGroups]: { request: DescribeGroupsRequest; response: DescribeGroupsResponse }
  [ApiKey.ListGroups]: { request: ListGroupsRequest; response: ListGroupsResponse }
  [ApiKey.ApiVersions]: { request: ApiVersionsRequest; response: ApiVersionsResponse }
  [ApiKey.CreateTopics]: { request: CreateTopicsRequest; response: CreateTopicsResponse }
  [ApiKey.DeleteTopics]: { request: DeleteTopicsRequest; response: DeleteTopicsResponse }
  [ApiKey.InitProducerId]: { request: InitProducerIdRequest; response: InitProducerIdResponse }
  [ApiKey.DescribeConfigs]: { request: DescribeConfigsRequest; response: DescribeConfigsResponse }
  [ApiKey.CreatePartitions]: { request: CreatePartitionsRequest; response: CreatePartitionsResponse }
  [ApiKey.DeleteGroups]: { request: DeleteGroupsRequest; response: DeleteGroupsResponse }
  [ApiKey.OffsetDelete]: { request: OffsetDeleteRequest; response: OffsetDeleteResponse }
  [ApiKey.DescribeClientQuotas]: { request: DescribeClientQuotasRequest; response: DescribeClientQuotasResponse }
  [ApiKey.AlterClientQuotas]: { request: AlterClientQuotasRequest; response: AlterClientQuotasResponse }
  [ApiKey.DescribeAcls]: { request: DescribeAclsRequest; response: DescribeAclsResponse }
  [ApiKey.CreateAcls]: { request: CreateAclsRequest; response: CreateAclsResponse }
  [ApiKey.DeleteAcls]: { request: DeleteAclsRequest; response: DeleteAclsResponse }
  [ApiKey.SaslHandshake]: { request: SaslHandshakeRequest; response: SaslHandshakeResponse }
  [ApiKey.SaslAuthenticate]: { request: SaslAuthenticateRequest; response: SaslAuthenticateResponse }
  [ApiKey.DescribeUserScramCredentials]: {
    request: DescribeUserScramCredentialsRequest
    response: DescribeUserScramCredentialsResponse
  }
  [ApiKey.AlterUserScramCredentials]: {
    request: AlterUserScramCredentialsRequest
    response: AlterUserScramCredentialsResponse
  }
}

export type RequestOf<K extends ApiKey> = ApiMessages[K]['request']
export type ResponseOf<K extends ApiKey> = ApiMessages[K]['response']

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
    // SASL (src/broker/security/sasl-authenticator.ts): v0 of SaslHandshake is followed by bare
    // SASL tokens (kafka-python), v1 by SaslAuthenticate; SaslAuthenticate v1+ carries KIP-368's
    // session lifetime.
    spec(saslHandshakeRequestSchema, saslHandshakeResponseSchema, [0, 1]),
    spec(saslAuthenticateRequestSchema, saslAuthenticateResponseSchema, [0, 2]),
    spec(describeUserScramCredentialsRequestSchema, describeUserScramCredentialsResponseSchema, [0, 0]),
    spec(alterUserScramCredentialsRequestSchema, alterUserScramCredentialsResponseSchema, [0, 0]),
    // Client quotas (src/broker/security/quotas.ts).
    spec(describeClientQuotasRequestSchema, describeClientQuotasResponseSchema, [0, 1]),
    spec(alterClientQuotasRequestSchema, alterClientQuotasResponseSchema, [0, 1]),
    // ACLs (src/broker/security/authorizer.ts).
    spec(describeAclsRequestSchema, describeAclsResponseSchema, [0, 3]),
    spec(createAclsRequestSchema, createAclsResponseSchema, [0, 3]),
    spec(deleteAclsRequestSchema, deleteAclsResponseSchema, [0, 3]),
  ].map((s) => [s.key, s]),
)
