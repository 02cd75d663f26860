// DescribeConfigs (key 32): a topic's effective configs (its overrides, else the broker's
// defaults), or the broker's own. Config names and sources are Kafka's.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import {
  type DescribeConfigsResourceResult,
  type DescribeConfigsResult,
} from '../../protocol/messages/describe-configs-response.ts'
import { type Shape } from '../../protocol/schema.ts'
import { type BrokerConfig, type ConfigEntry } from '../config.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { type BrokerIdentity, type TopicsContext } from './context.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'

const RESOURCE_TOPIC = 2
const RESOURCE_BROKER = 4

// DescribeConfigsResponse.ConfigSource and ConfigType codes.
const SOURCE = { DYNAMIC_TOPIC: 1, STATIC_BROKER: 4, DEFAULT: 5 } as const
const TYPE = { BOOLEAN: 1, STRING: 2, INT: 3, SHORT: 4, LONG: 5, DOUBLE: 6, LIST: 7, CLASS: 8, PASSWORD: 9 } as const

export function configSourceCode(source: ConfigEntry['source']): number {
  return SOURCE[source]
}

export type DescribeConfigsContext = Pick<BrokerIdentity, 'nodeId'> &
  TopicsContext<'get' | 'describe'> & { readonly config: Pick<BrokerConfig, 'entries'> }

export function describeConfigsHandler(broker: DescribeConfigsContext): BoundHandler<typeof ApiKey.DescribeConfigs> {
  return defineHandler(ApiKey.DescribeConfigs, (ctx, req) => {
    const results = req.resources.map((res): Shape<DescribeConfigsResult> => {
      const failed = (errorCode: number, errorMessage: string): Shape<DescribeConfigsResult> => ({
        errorCode,
        errorMessage,
        resourceType: res.resourceType,
        resourceName: res.resourceName,
        configs: [],
      })
      let entries: ConfigEntry[]
      let readOnly: boolean
      if (res.resourceType === RESOURCE_TOPIC) {
        if (!ctx.access.authorize(AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, res.resourceName))
          return failed(
            ErrorCode.TOPIC_AUTHORIZATION_FAILED,
            `${ctx.principal} may not describe the configs of topic "${res.resourceName}"`,
          )
        const topic = broker.topics.get(res.resourceName)
        if (topic === undefined)
          return failed(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${res.resourceName}" does not exist`)
        entries = broker.topics.describe(topic)
        readOnly = false
      } else if (res.resourceType === RESOURCE_BROKER) {
        if (!ctx.access.authorize(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME))
          return failed(
            ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            `${ctx.principal} may not describe the broker's configs`,
          )
        if (res.resourceName !== '' && res.resourceName !== String(broker.nodeId)) {
          return failed(
            ErrorCode.INVALID_REQUEST,
            `unknown broker "${res.resourceName}"; this is broker ${broker.nodeId}`,
          )
        }
        entries = broker.config.entries()
        readOnly = true
      } else {
        return failed(
          ErrorCode.INVALID_REQUEST,
          `resource type ${res.resourceType} is not supported (2 = topic, 4 = broker)`,
        )
      }
      const keys = res.configurationKeys === null ? undefined : new Set(res.configurationKeys)
      const configs = entries
        .filter((e) => keys === undefined || keys.has(e.name))
        .map((e): Shape<DescribeConfigsResourceResult> => ({
          name: e.name,
          value: e.value,
          readOnly,
          isDefault: e.source === 'DEFAULT',
          configSource: SOURCE[e.source],
          isSensitive: e.type === 'PASSWORD',
          synonyms: req.includeSynonyms ? [{ name: e.name, value: e.value, source: SOURCE[e.source] }] : [],
          configType: TYPE[e.type],
          documentation: req.includeDocumentation ? e.doc : null,
        }))
      return {
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        resourceType: res.resourceType,
        resourceName: res.resourceName,
        configs,
      }
    })
    return { throttleTimeMs: 0, results }
  })
}
