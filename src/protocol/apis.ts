// The APIs this broker speaks and the version ranges it advertises in ApiVersions.
// Ranges start at 0 wherever Kafka 3.8 does: librdkafka's feature detection and kafka-python's
// version inference look at the old versions (research/kafka-protocol.md §1).
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

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  DescribeConfigs: 32,
  CreatePartitions: 37,
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
  ].map((s) => [s.key, s]),
)
