// ApiVersions (key 18): the version ranges this broker speaks. v3+ carries the client's software
// name and version, which Kafka validates (librdkafka falls back to v0 on INVALID_REQUEST).
import { APIS, ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'

const SOFTWARE = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/

const API_KEYS = [...APIS.values()].map((s) => ({
  apiKey: s.key,
  minVersion: s.versions[0],
  maxVersion: s.versions[1],
}))

export function apiVersionsHandler(): BoundHandler<typeof ApiKey.ApiVersions> {
  return defineHandler(ApiKey.ApiVersions, (ctx, req) => {
    if (ctx.apiVersion >= 3 && (!SOFTWARE.test(req.clientSoftwareName) || !SOFTWARE.test(req.clientSoftwareVersion))) {
      return { errorCode: ErrorCode.INVALID_REQUEST, apiKeys: API_KEYS }
    }
    return { errorCode: ErrorCode.NONE, apiKeys: API_KEYS, throttleTimeMs: 0 }
  })
}
