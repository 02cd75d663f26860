// Kafka's ACL vocabulary as it travels on the wire (CreateAcls, DescribeAcls, DeleteAcls): the codes
// of resource types, pattern types, operations and permissions, an ACL binding, a filter over
// bindings, and the checks Kafka applies before it stores one. Pure: no I/O, no broker state, so the
// request handlers, the store, the authorizer and the CLI share one definition.
//
// Codes are Kafka's (ResourceType.java, PatternType.java, AclOperation.java, AclPermissionType.java),
// limited to what this broker has resources for: no DELEGATION_TOKEN/USER resources and no token
// operations, which therefore read as UNKNOWN and are refused like any unknown code.

export const ResourceType = { UNKNOWN: 0, ANY: 1, TOPIC: 2, GROUP: 3, CLUSTER: 4, TRANSACTIONAL_ID: 5 } as const
export const PatternType = { UNKNOWN: 0, ANY: 1, MATCH: 2, LITERAL: 3, PREFIXED: 4 } as const
export const AclOperation = {
  UNKNOWN: 0,
  ANY: 1,
  ALL: 2,
  READ: 3,
  WRITE: 4,
  CREATE: 5,
  DELETE: 6,
  ALTER: 7,
  DESCRIBE: 8,
  CLUSTER_ACTION: 9,
  DESCRIBE_CONFIGS: 10,
  ALTER_CONFIGS: 11,
  IDEMPOTENT_WRITE: 12,
} as const
export const Permission = { UNKNOWN: 0, ANY: 1, DENY: 2, ALLOW: 3 } as const

/** A literal resource name matching every resource of its type. */
export const WILDCARD_RESOURCE = '*'
/** The principal matching every user. */
export const WILDCARD_PRINCIPAL = 'User:*'
/** The host matching every client address. */
export const WILDCARD_HOST = '*'
/** The one name the CLUSTER resource has. */
export const CLUSTER_RESOURCE_NAME = 'kafka-cluster'

/** One ACL: who (principal, host) may or may not (permission) do what (operation) to which resources. */
export interface AclBinding {
  resourceType: number
  resourceName: string
  /** LITERAL or PREFIXED when stored. */
  patternType: number
  /** 'User:alice', or 'User:*' for everyone. */
  principal: string
  /** An IP address, or '*' for every address. */
  host: string
  operation: number
  /** ALLOW or DENY. */
  permission: number
}

/**
 * A selection of bindings (DescribeAcls, DeleteAcls). ANY codes and null strings match anything;
 * patternType MATCH with a name selects the bindings that would apply to a resource of that name.
 */
export interface AclFilter {
  resourceType: number
  resourceName: string | null
  patternType: number
  principal: string | null
  host: string | null
  operation: number
  permission: number
}

/** The filter selecting every binding. */
export const ANY_ACL_FILTER: Readonly<AclFilter> = Object.freeze({
  resourceType: ResourceType.ANY,
  resourceName: null,
  patternType: PatternType.ANY,
  principal: null,
  host: null,
  operation: AclOperation.ANY,
  permission: Permission.ANY,
})

type CodeTable = Readonly<Record<string, number>>

export const resourceTypeName = (code: number): string => nameOf(ResourceType, code)
export const patternTypeName = (code: number): string => nameOf(PatternType, code)
export const operationName = (code: number): string => nameOf(AclOperation, code)
export const permissionName = (code: number): string => nameOf(Permission, code)

export const resourceTypeByName = (name: string): number | undefined => codeOf(ResourceType, name)
export const patternTypeByName = (name: string): number | undefined => codeOf(PatternType, name)
export const operationByName = (name: string): number | undefined => codeOf(AclOperation, name)
export const permissionByName = (name: string): number | undefined => codeOf(Permission, name)

/** Kafka's name for a code; codes it does not know (or this broker does not support) are UNKNOWN. */
function nameOf(table: CodeTable, code: number): string {
  for (const [name, c] of Object.entries(table)) if (c === code) return name
  return 'UNKNOWN'
}

/** The code of a name in any usual spelling ('read', 'READ', 'DescribeConfigs', 'describe-configs'); undefined if none. */
function codeOf(table: CodeTable, name: string): number | undefined {
  const key = name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toUpperCase()
  return Object.hasOwn(table, key) ? table[key] : undefined
}

/** One line for logs and the CLI, e.g. `ALLOW User:alice from * READ on TOPIC LITERAL "orders"`. */
export function formatBinding(b: AclBinding): string {
  const resource = `${resourceTypeName(b.resourceType)} ${patternTypeName(b.patternType)} ${JSON.stringify(b.resourceName)}`
  return `${permissionName(b.permission)} ${b.principal} from ${b.host} ${operationName(b.operation)} on ${resource}`
}

/** An identity for a binding: two bindings with the same key are the same ACL. */
export function bindingKey(b: AclBinding): string {
  return JSON.stringify([b.resourceType, b.resourceName, b.patternType, b.principal, b.host, b.operation, b.permission])
}

const CONCRETE_RESOURCE_TYPES: ReadonlySet<number> = new Set([
  ResourceType.TOPIC,
  ResourceType.GROUP,
  ResourceType.CLUSTER,
  ResourceType.TRANSACTIONAL_ID,
])
const STORED_PATTERN_TYPES: ReadonlySet<number> = new Set([PatternType.LITERAL, PatternType.PREFIXED])
const CONCRETE_OPERATIONS: ReadonlySet<number> = new Set(
  Object.values(AclOperation).filter((op) => op !== AclOperation.UNKNOWN && op !== AclOperation.ANY),
)
const STORED_PERMISSIONS: ReadonlySet<number> = new Set([Permission.ALLOW, Permission.DENY])

/**
 * Kafka's CreateAcls checks (AclControlManager.validateNewAcl, plus the cluster-name and prefixed
 * wildcard rules): the message the handler returns with INVALID_REQUEST (42), or undefined if valid.
 */
export function validateBinding(b: AclBinding): string | undefined {
  if (!CONCRETE_RESOURCE_TYPES.has(b.resourceType)) return `Invalid resourceType ${resourceTypeName(b.resourceType)}`
  if (!STORED_PATTERN_TYPES.has(b.patternType)) return `Invalid patternType ${patternTypeName(b.patternType)}`
  if (!CONCRETE_OPERATIONS.has(b.operation)) return `Invalid operation ${operationName(b.operation)}`
  if (!STORED_PERMISSIONS.has(b.permission)) return `Invalid permissionType ${permissionName(b.permission)}`
  if (b.resourceName === '') return 'Resource name should not be empty'
  if (b.resourceType === ResourceType.CLUSTER && b.resourceName !== CLUSTER_RESOURCE_NAME)
    return `The only valid name for the CLUSTER resource is ${CLUSTER_RESOURCE_NAME}`
  if (b.patternType === PatternType.PREFIXED && b.resourceName === WILDCARD_RESOURCE)
    return `A PREFIXED pattern cannot be '${WILDCARD_RESOURCE}'; use a LITERAL '${WILDCARD_RESOURCE}' for every resource`
  if (!/^[^:]+:.+$/s.test(b.principal))
    return `Could not parse principal from \`${b.principal}\` (expected Type:name, e.g. User:alice or ${WILDCARD_PRINCIPAL})`
  return undefined
}

/**
 * DescribeAcls/DeleteAcls checks: a filter with an UNKNOWN code matches nothing, so Kafka refuses
 * it (INVALID_REQUEST) rather than answer "no ACLs". The message, or undefined if usable.
 */
export function validateFilter(f: AclFilter): string | undefined {
  if (nameOf(ResourceType, f.resourceType) === 'UNKNOWN') return 'Unknown patternFilter: resourceType'
  if (nameOf(PatternType, f.patternType) === 'UNKNOWN') return 'Unknown patternFilter: patternType'
  if (nameOf(AclOperation, f.operation) === 'UNKNOWN') return 'Unknown entryFilter: operation'
  if (nameOf(Permission, f.permission) === 'UNKNOWN') return 'Unknown entryFilter: permissionType'
  return undefined
}

/** Kafka's AclBindingFilter.matches: the resource pattern part, then the entry part. */
export function matchesFilter(b: AclBinding, f: AclFilter): boolean {
  return matchesPatternFilter(b, f) && matchesEntryFilter(b, f)
}

function matchesPatternFilter(b: AclBinding, f: AclFilter): boolean {
  if (f.resourceType !== ResourceType.ANY && f.resourceType !== b.resourceType) return false
  const byMatch = f.patternType === PatternType.MATCH
  if (f.patternType !== PatternType.ANY && !byMatch && f.patternType !== b.patternType) return false
  if (f.resourceName === null) return true
  // ANY or a concrete pattern type compares names; only MATCH asks "would this binding apply to that name".
  return byMatch ? patternCovers(b, f.resourceName) : f.resourceName === b.resourceName
}

/** Whether a stored binding's pattern applies to a resource named `name` (of its own type). */
export function patternCovers(b: AclBinding, name: string): boolean {
  if (b.patternType === PatternType.LITERAL) return b.resourceName === name || b.resourceName === WILDCARD_RESOURCE
  return b.patternType === PatternType.PREFIXED && name.startsWith(b.resourceName)
}

/** Exact comparisons: a filter for principal User:alice does not select User:* bindings (as in Kafka). */
function matchesEntryFilter(b: AclBinding, f: AclFilter): boolean {
  if (f.principal !== null && f.principal !== b.principal) return false
  if (f.host !== null && f.host !== b.host) return false
  if (f.operation !== AclOperation.ANY && f.operation !== b.operation) return false
  return f.permission === Permission.ANY || f.permission === b.permission
}
