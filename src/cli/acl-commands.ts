// `cortado acl`: a broker's ACLs over the wire (CreateAcls, DescribeAcls, DeleteAcls), with the
// options of Kafka's kafka-acls.sh, so it works against Cortado's broker and Apache Kafka alike:
//   cortado acl add    --allow-principal User:alice [--allow-host *] --operation read [--operation describe]
//                      --topic orders [--resource-pattern-type prefixed]
//   cortado acl remove [the same options: what is left out matches anything]
//   cortado acl list   [--topic t | --group g | --cluster | --transactional-id x] [--principal User:alice]
// Names of operations and resource pattern types are Kafka's, in any case (read, Read, READ,
// describe-configs, DescribeConfigs).
import {
  type Connection,
  createAclsV3,
  deleteAclsV3,
  describeAclsV3,
  type AclOperationValue,
  type AclPermissionTypeValue,
  type ResourcePatternTypeValue,
  type ResourceTypeValue,
} from '@platformatic/kafka'
import {
  operationByName,
  operationName,
  patternTypeByName,
  patternTypeName,
  permissionName,
  resourceTypeName,
} from '../broker/security/acls.ts'
import { type ClientSecurity } from './client-config.ts'
import { connectTo, withErrors } from './kafka-connection.ts'

export class AclUsageError extends Error {
  readonly code = 'USAGE'
}

export interface AclOptions {
  bootstrap: string
  security: ClientSecurity
  allowPrincipal: string[]
  denyPrincipal: string[]
  allowHost: string[]
  denyHost: string[]
  /** list/remove: match this principal (either permission). */
  principal?: string
  operation: string[]
  topic?: string
  group?: string
  cluster: boolean
  transactionalId?: string
  resourcePatternType?: string
}

interface Resource {
  resourceType: number
  resourceName: string | null
}

/** A name's wire code (Kafka's names in any case: read, READ, describe-configs, DescribeConfigs). */
function code(byName: (name: string) => number | undefined, what: string, name: string): number {
  const c = byName(name)
  if (c === undefined || c === 0) throw new AclUsageError(`unknown ${what} "${name}"`)
  return c
}

/** The resource the options name; for add exactly one, for list/remove at most one (none: any). */
function resourceOf(o: AclOptions, required: boolean): Resource {
  const named: Resource[] = [
    ...(o.topic === undefined ? [] : [{ resourceType: 2, resourceName: o.topic }]),
    ...(o.group === undefined ? [] : [{ resourceType: 3, resourceName: o.group }]),
    ...(o.cluster ? [{ resourceType: 4, resourceName: 'kafka-cluster' }] : []),
    ...(o.transactionalId === undefined ? [] : [{ resourceType: 5, resourceName: o.transactionalId }]),
  ]
  if (named.length > 1) throw new AclUsageError('name one resource: --topic, --group, --cluster or --transactional-id')
  if (named.length === 0) {
    if (required)
      throw new AclUsageError('cortado acl add needs a resource: --topic, --group, --cluster or --transactional-id')
    return { resourceType: 1, resourceName: null }
  }
  return named[0]
}

/** Every (principal, host, permission) the options give, as kafka-acls.sh combines them. */
function entriesOf(o: AclOptions): { principal: string; host: string; permissionType: number }[] {
  const hosts = (list: string[]) => (list.length === 0 ? ['*'] : list)
  return [
    ...o.allowPrincipal.flatMap((principal) =>
      hosts(o.allowHost).map((host) => ({ principal, host, permissionType: 3 })),
    ),
    ...o.denyPrincipal.flatMap((principal) =>
      hosts(o.denyHost).map((host) => ({ principal, host, permissionType: 2 })),
    ),
  ]
}

function describeLine(
  r: { resourceType: number; resourceName: string; patternType: number },
  a: { principal: string; host: string; operation: number; permissionType: number },
): string {
  return [
    permissionName(a.permissionType),
    a.principal,
    a.host,
    operationName(a.operation),
    resourceTypeName(r.resourceType),
    patternTypeName(r.patternType),
    r.resourceName,
  ].join('\t')
}

/** Runs one subcommand; returns the exit code (1 if the broker refused anything). */
export async function acl(o: AclOptions, positionals: string[], say: (line: string) => void): Promise<number> {
  const sub = positionals[0]
  if (positionals.length !== 1 || !['add', 'remove', 'list'].includes(sub))
    throw new AclUsageError('cortado acl add | remove | list')
  const resource = resourceOf(o, sub === 'add')
  const operations = o.operation.map((op) => code(operationByName, 'operation', op))
  const pattern =
    o.resourcePatternType === undefined
      ? sub === 'add'
        ? 3
        : resource.resourceName === null
          ? 1
          : 3
      : code(patternTypeByName, 'resource pattern type', o.resourcePatternType)
  const connection = await connectTo(o.bootstrap, o.security, 'cortado-acl')
  try {
    if (sub === 'add') return await add(connection, o, resource, operations, pattern, say)
    const entries = entriesOf(o)
    const filters = (
      entries.length === 0 ? [{ principal: o.principal ?? null, host: null, permissionType: 1 }] : entries
    ).flatMap((e) =>
      (operations.length === 0 ? [1] : operations).map((operation) => ({
        resourceType: resource.resourceType as ResourceTypeValue,
        resourceName: resource.resourceName,
        resourcePatternType: pattern as ResourcePatternTypeValue,
        principal: e.principal,
        host: e.host,
        operation: operation as AclOperationValue,
        permissionType: e.permissionType as AclPermissionTypeValue,
      })),
    )
    if (sub === 'remove') {
      const response = await withErrors(deleteAclsV3.api.async(connection, filters))
      let failed = 0
      for (const r of response.filterResults) {
        if (r.errorCode !== 0) {
          failed++
          say(`refused: ${r.errorMessage ?? `error ${r.errorCode}`}`)
        }
        for (const m of r.matchingAcls) say(`removed\t${describeLine({ ...m, patternType: m.resourcePatternType }, m)}`)
      }
      return failed === 0 ? 0 : 1
    }
    let failed = 0
    for (const filter of filters) {
      const response = await withErrors(describeAclsV3.api.async(connection, filter))
      if (response.errorCode !== 0) {
        failed++
        say(`refused: ${response.errorMessage ?? `error ${response.errorCode}`}`)
        continue
      }
      for (const r of response.resources)
        for (const a of r.acls) say(describeLine({ ...r, patternType: r.resourcePatternType }, a))
    }
    return failed === 0 ? 0 : 1
  } finally {
    await connection.close().catch(() => undefined)
  }
}

async function add(
  connection: Connection,
  o: AclOptions,
  resource: Resource,
  operations: number[],
  pattern: number,
  say: (line: string) => void,
): Promise<number> {
  const entries = entriesOf(o)
  if (entries.length === 0) throw new AclUsageError('cortado acl add needs --allow-principal or --deny-principal')
  if (operations.length === 0) throw new AclUsageError('cortado acl add needs --operation')
  const creations = entries.flatMap((e) =>
    operations.map((operation) => ({
      resourceType: resource.resourceType as ResourceTypeValue,
      resourceName: resource.resourceName ?? '',
      resourcePatternType: pattern as ResourcePatternTypeValue,
      principal: e.principal,
      host: e.host,
      operation: operation as AclOperationValue,
      permissionType: e.permissionType as AclPermissionTypeValue,
    })),
  )
  const response = await withErrors(createAclsV3.api.async(connection, creations))
  let failed = 0
  response.results.forEach((r, i) => {
    const line = describeLine({ ...creations[i], patternType: creations[i].resourcePatternType }, creations[i])
    if (r.errorCode === 0) say(`added\t${line}`)
    else {
      failed++
      say(`refused\t${line}: ${r.errorMessage ?? `error ${r.errorCode}`}`)
    }
  })
  return failed === 0 ? 0 : 1
}
