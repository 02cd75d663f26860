// `cortado quota`: client quotas of a broker over the wire (AlterClientQuotas and
// DescribeClientQuotas, KIP-546), so it works against Cortado's broker and Apache Kafka alike, as
// `kafka-configs.sh --entity-type users/clients` does:
//   cortado quota set  [--user <name> | --user-default] [--client-id <id> | --client-id-default]
//                      producer_byte_rate=1048576 [consumer_byte_rate=…] [request_percentage=…] [--remove <key>]...
//   cortado quota list [--user <name> | --user-default] [--client-id <id> | --client-id-default]
// A quota is in force at the broker's next request from that client, no restart.
import {
  alterClientQuotasV1,
  type Connection,
  describeClientQuotasV1,
  type ClientQuotaEntityType,
  type ClientQuotaKey,
} from '@platformatic/kafka'
import { type ClientSecurity } from './client-config.ts'
import { connectTo, withErrors } from './kafka-connection.ts'

export class QuotaUsageError extends Error {
  readonly code = 'USAGE'
}

const KEYS = ['producer_byte_rate', 'consumer_byte_rate', 'request_percentage']

export interface QuotaOptions {
  bootstrap: string
  security: ClientSecurity
  user?: string
  userDefault: boolean
  clientId?: string
  clientIdDefault: boolean
  remove: string[]
}

type Entity = { entityType: ClientQuotaEntityType; entityName: string | null }[]

/** The entity the options name: a user, a client id, or both; `<default>` as a null name. */
function entityOf(o: QuotaOptions): Entity {
  if (o.user !== undefined && o.userDefault) throw new QuotaUsageError('give --user or --user-default, not both')
  if (o.clientId !== undefined && o.clientIdDefault)
    throw new QuotaUsageError('give --client-id or --client-id-default, not both')
  const entity: Entity = []
  if (o.user !== undefined || o.userDefault) entity.push({ entityType: 'user', entityName: o.user ?? null })
  if (o.clientId !== undefined || o.clientIdDefault)
    entity.push({ entityType: 'client-id', entityName: o.clientId ?? null })
  return entity
}

function parseSetting(text: string): { key: string; value: number } {
  const eq = text.indexOf('=')
  const key = text.slice(0, eq)
  const value = Number(text.slice(eq + 1))
  if (eq <= 0 || !KEYS.includes(key) || text.slice(eq + 1).trim() === '' || !Number.isFinite(value))
    throw new QuotaUsageError(`"${text}" is not <key>=<number> with a key among ${KEYS.join(', ')}`)
  return { key, value }
}

const describeEntity = (entity: readonly { entityType: string; entityName?: string | null }[]) =>
  entity.map((e) => `${e.entityType === 'user' ? 'user' : 'client-id'}=${e.entityName ?? '<default>'}`).join(',')

/** Runs one subcommand; returns the exit code (1 if the broker refused anything). */
export async function quota(o: QuotaOptions, positionals: string[], say: (line: string) => void): Promise<number> {
  const [sub, ...settings] = positionals
  if (sub !== 'set' && sub !== 'list') throw new QuotaUsageError('cortado quota set | list')
  const entity = entityOf(o)
  if (sub === 'set') {
    if (entity.length === 0) throw new QuotaUsageError('cortado quota set needs --user, --client-id or a default')
    if (settings.length === 0 && o.remove.length === 0)
      throw new QuotaUsageError('cortado quota set needs <key>=<value> or --remove <key>')
    for (const key of o.remove)
      if (!KEYS.includes(key)) throw new QuotaUsageError(`--remove ${key}: one of ${KEYS.join(', ')}`)
  } else if (settings.length > 0) throw new QuotaUsageError('cortado quota list takes no settings')
  const ops = [
    ...settings
      .map(parseSetting)
      .map((s) => ({ key: s.key as ClientQuotaKey, value: s.value, remove: false as const })),
    ...o.remove.map((key) => ({ key: key as ClientQuotaKey, remove: true as const })),
  ]
  const connection = await connectTo(o.bootstrap, o.security, 'cortado-quota')
  try {
    return sub === 'set' ? await set(connection, entity, ops, say) : await list(connection, entity, say)
  } finally {
    await connection.close().catch(() => undefined)
  }
}

async function set(
  connection: Connection,
  entity: Entity,
  ops: Parameters<typeof alterClientQuotasV1.api.async>[1][number]['ops'],
  say: (line: string) => void,
): Promise<number> {
  const response = await withErrors(alterClientQuotasV1.api.async(connection, [{ entities: entity, ops }], false))
  let failed = 0
  for (const e of response.entries) {
    if (e.errorCode === 0)
      say(
        `set ${describeEntity(entity)}: ${ops.map((op) => (op.remove ? `-${op.key}` : `${op.key}=${op.value}`)).join(' ')}`,
      )
    else {
      failed++
      say(`${describeEntity(entity)}: refused: ${e.errorMessage ?? `error ${e.errorCode}`}`)
    }
  }
  return failed === 0 ? 0 : 1
}

async function list(connection: Connection, entity: Entity, say: (line: string) => void): Promise<number> {
  // EXACT (0) for a named entity, DEFAULT (1) for <default>; none: every entity.
  const components = entity.map((e) =>
    e.entityName === null
      ? { entityType: e.entityType, matchType: 1 as const }
      : { entityType: e.entityType, matchType: 0 as const, match: e.entityName },
  )
  const response = await withErrors(describeClientQuotasV1.api.async(connection, components, false))
  if (response.errorCode !== 0) {
    say(`refused: ${response.errorMessage ?? `error ${response.errorCode}`}`)
    return 1
  }
  for (const e of response.entries ?? [])
    say(`${describeEntity(e.entity)}\t${e.values.map((v) => `${v.key}=${v.value}`).join(' ')}`)
  return 0
}
