// DescribeUserScramCredentials (key 50, KIP-554): the SCRAM mechanisms and iteration counts of
// users (never salts or keys). All users with credentials when the request names none; a named
// user without any is RESOURCE_NOT_FOUND, a user named twice DUPLICATE_RESOURCE, as in Kafka.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type ScramCredentialStore } from '../security/scram-credentials.ts'
import { scramMechanismId } from '../security/scram.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'

export function describeUserScramCredentialsHandler(broker: {
  readonly scramCredentials: Pick<ScramCredentialStore, 'describe'>
}): BoundHandler<typeof ApiKey.DescribeUserScramCredentials> {
  return defineHandler(ApiKey.DescribeUserScramCredentials, (ctx, req) => {
    if (!ctx.access.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME))
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        errorMessage: `${ctx.principal} may not describe SCRAM credentials (DESCRIBE on the cluster)`,
        results: [],
      }
    const names = req.users?.map((u) => u.name)
    const described = broker.scramCredentials.describe(names)
    const duplicates = new Set((names ?? []).filter((n, i, all) => all.indexOf(n) !== i))
    const users = names === undefined ? [...described.keys()].sort() : [...new Set(names)]
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      results: users.map((user) => {
        const infos = described.get(user) ?? []
        if (duplicates.has(user))
          return {
            user,
            errorCode: ErrorCode.DUPLICATE_RESOURCE,
            errorMessage: 'Cannot describe SCRAM credentials for the same user twice in a single request',
            credentialInfos: [],
          }
        if (infos.length === 0)
          return {
            user,
            errorCode: ErrorCode.RESOURCE_NOT_FOUND,
            errorMessage: 'Attempt to describe a user credential that does not exist',
            credentialInfos: [],
          }
        return {
          user,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          credentialInfos: infos.map((i) => ({ mechanism: scramMechanismId(i.mechanism), iterations: i.iterations })),
        }
      }),
    }
  })
}
