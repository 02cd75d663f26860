// AlterUserScramCredentials (key 51, KIP-554): upserts and deletes SCRAM credentials. The client
// sends a salt and the salted password (never the password); the broker keeps the stored and
// server keys derived from them (src/broker/security/scram-credentials.ts, durable before the
// answer). As in Kafka, a user's alterations are checked together and applied only if all are
// valid: an unknown mechanism is UNSUPPORTED_SASL_MECHANISM, iterations outside 4096..16384 or an
// empty name UNACCEPTABLE_CREDENTIAL, the same (user, mechanism) twice DUPLICATE_RESOURCE, the
// deletion of a missing credential RESOURCE_NOT_FOUND.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type ScramCredentialStore } from '../security/scram-credentials.ts'
import {
  credentialFromSaltedPassword,
  SCRAM_MAX_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
  type ScramMechanism,
  scramMechanismById,
} from '../security/scram.ts'
import { type BoundHandler, defineHandler } from '../server.ts'
import { AclOperation, CLUSTER_RESOURCE_NAME, ResourceType } from '../security/acls.ts'

interface Alteration {
  user: string
  mechanism: number
  upsert?: { iterations: number; salt: Buffer; saltedPassword: Buffer }
}

type Refusal = { errorCode: number; errorMessage: string }

function refusal(a: Alteration, store: Pick<ScramCredentialStore, 'get'>, seen: Set<string>): Refusal | undefined {
  const mechanism = scramMechanismById(a.mechanism)
  if (a.user === '') return { errorCode: ErrorCode.UNACCEPTABLE_CREDENTIAL, errorMessage: 'Username must not be empty' }
  if (mechanism === undefined)
    return {
      errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM,
      errorMessage: `Unknown SCRAM mechanism type ${a.mechanism}`,
    }
  const key = `${a.user}\u0000${mechanism}`
  if (seen.has(key))
    return {
      errorCode: ErrorCode.DUPLICATE_RESOURCE,
      errorMessage: `A user credential cannot be altered twice in the same request (${mechanism})`,
    }
  seen.add(key)
  if (a.upsert === undefined)
    return store.get(a.user, mechanism) === undefined
      ? {
          errorCode: ErrorCode.RESOURCE_NOT_FOUND,
          errorMessage: `Attempt to delete a user credential that does not exist (${mechanism})`,
        }
      : undefined
  const { iterations, salt, saltedPassword } = a.upsert
  if (iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS)
    return {
      errorCode: ErrorCode.UNACCEPTABLE_CREDENTIAL,
      errorMessage: `Iterations ${iterations} outside ${SCRAM_MIN_ITERATIONS}..${SCRAM_MAX_ITERATIONS} for ${mechanism}`,
    }
  if (salt.length === 0 || saltedPassword.length === 0)
    return { errorCode: ErrorCode.UNACCEPTABLE_CREDENTIAL, errorMessage: 'Salt and salted password must not be empty' }
  return undefined
}

export function alterUserScramCredentialsHandler(broker: {
  readonly scramCredentials: Pick<ScramCredentialStore, 'get' | 'set' | 'delete'>
}): BoundHandler<typeof ApiKey.AlterUserScramCredentials> {
  return defineHandler(ApiKey.AlterUserScramCredentials, (ctx, req) => {
    const store = broker.scramCredentials
    if (!ctx.access.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME)) {
      const users = new Set([...req.deletions, ...req.upsertions].map((a) => a.name))
      return {
        throttleTimeMs: 0,
        results: [...users].map((user) => ({
          user,
          errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
          errorMessage: `${ctx.principal} may not alter SCRAM credentials (ALTER on the cluster)`,
        })),
      }
    }
    const byUser = new Map<string, Alteration[]>()
    const add = (a: Alteration) => byUser.set(a.user, [...(byUser.get(a.user) ?? []), a])
    for (const d of req.deletions) add({ user: d.name, mechanism: d.mechanism })
    for (const u of req.upsertions) add({ user: u.name, mechanism: u.mechanism, upsert: u })
    const results = [...byUser].map(([user, alterations]) => {
      const seen = new Set<string>()
      const refused = alterations.map((a) => refusal(a, store, seen)).find((r) => r !== undefined)
      if (refused !== undefined) return { user, ...refused }
      for (const a of alterations) {
        const mechanism = scramMechanismById(a.mechanism) as ScramMechanism
        if (a.upsert === undefined) store.delete(user, mechanism)
        else
          store.set(
            user,
            credentialFromSaltedPassword(mechanism, a.upsert.salt, a.upsert.saltedPassword, a.upsert.iterations),
          )
      }
      return { user, errorCode: ErrorCode.NONE, errorMessage: null }
    })
    return { throttleTimeMs: 0, results }
  })
}
