// The broker's authorization decisions, with Kafka's AclAuthorizer/StandardAuthorizer semantics:
// super users may do anything; a resource with no ACL at all follows allow.everyone.if.no.acl.found;
// otherwise a matching DENY refuses, then a matching ALLOW (or one implying the operation) permits,
// and nothing matching refuses. Pure: the ACLs come from a callback (the AclStore), so the same
// class serves the request handlers and the tests.
//
// Decisions are cached (the "ACL cache") because every produce/fetch asks for each of its topics;
// the cache is dropped whenever the store's version changes and cleared when it reaches its bound.
import {
  type AclBinding,
  AclOperation,
  Permission,
  PatternType,
  WILDCARD_HOST,
  WILDCARD_PRINCIPAL,
  WILDCARD_RESOURCE,
  patternCovers,
} from './acls.ts'

/** The most decisions kept; past it the cache starts over (simpler than LRU, and rare). */
export const AUTHORIZER_CACHE_LIMIT = 10_000

export interface AuthorizerOptions {
  /** Principals (e.g. 'User:admin') allowed everything, Kafka's super.users. */
  superUsers: readonly string[]
  /** Kafka's allow.everyone.if.no.acl.found: the answer for a resource no ACL applies to. */
  allowEveryoneIfNoAclFound: boolean
  /** The current ACLs (AclStore.list). */
  acls: () => readonly AclBinding[]
  /** Changes whenever the ACLs do (AclStore.version). */
  version: () => number
}

export interface AuthorizationRequest {
  principal: string
  host: string
  operation: number
  resourceType: number
  resourceName: string
}

/** Kafka's super.users: principals separated by semicolons, spaces around them ignored. */
export function parseSuperUsers(value: string): string[] {
  return value
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

/**
 * The ACL operations whose ALLOW permits `operation`. Kafka grants DESCRIBE to whoever may read,
 * write, delete or alter, and DESCRIBE_CONFIGS to whoever may alter configs; ALL permits anything.
 */
function allowingOperations(operation: number): readonly number[] {
  const { ALL, READ, WRITE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS } = AclOperation
  if (operation === DESCRIBE) return [ALL, DESCRIBE, READ, WRITE, DELETE, ALTER]
  if (operation === DESCRIBE_CONFIGS) return [ALL, DESCRIBE_CONFIGS, ALTER_CONFIGS]
  return [ALL, operation]
}

/** Whether the binding is for this principal (or everyone) connecting from this host (or anywhere). */
function isFor(b: AclBinding, principal: string, host: string): boolean {
  return (
    (b.principal === principal || b.principal === WILDCARD_PRINCIPAL) && (b.host === host || b.host === WILDCARD_HOST)
  )
}

/** Implications apply to allows only: a DENY of READ does not deny DESCRIBE (as in Kafka). */
function denies(b: AclBinding, operation: number): boolean {
  return b.permission === Permission.DENY && (b.operation === operation || b.operation === AclOperation.ALL)
}

function allows(b: AclBinding, operation: number): boolean {
  return b.permission === Permission.ALLOW && allowingOperations(operation).includes(b.operation)
}

function isLiteralWildcard(b: AclBinding): boolean {
  return b.patternType === PatternType.LITERAL && b.resourceName === WILDCARD_RESOURCE
}

/** Whether the DENY covers every resource the ALLOW applies to, so the ALLOW grants nothing. */
function dominates(deny: AclBinding, allow: AclBinding): boolean {
  if (deny.patternType === PatternType.PREFIXED) return allow.resourceName.startsWith(deny.resourceName)
  return allow.patternType === PatternType.LITERAL && deny.resourceName === allow.resourceName
}

export class Authorizer {
  readonly #superUsers: ReadonlySet<string>
  readonly #allowEveryoneIfNoAclFound: boolean
  readonly #acls: () => readonly AclBinding[]
  readonly #version: () => number
  #cache = new Map<string, boolean>()
  #cacheVersion: number | undefined

  constructor(options: AuthorizerOptions) {
    this.#superUsers = new Set(options.superUsers)
    this.#allowEveryoneIfNoAclFound = options.allowEveryoneIfNoAclFound
    this.#acls = options.acls
    this.#version = options.version
  }

  /** Whether the principal, connecting from host, may do the operation to the named resource. */
  authorize(request: AuthorizationRequest): boolean {
    if (this.#superUsers.has(request.principal)) return true
    const cache = this.#currentCache()
    const { principal, host, operation, resourceType, resourceName } = request
    const key = JSON.stringify([principal, host, operation, resourceType, resourceName])
    const cached = cache.get(key)
    if (cached !== undefined) return cached
    const decision = this.#decide(request)
    if (cache.size >= AUTHORIZER_CACHE_LIMIT) cache.clear()
    cache.set(key, decision)
    return decision
  }

  /**
   * Whether the principal may do the operation to at least one resource of the type (Kafka's
   * authorizeByResourceType, e.g. InitProducerId without a transactional id: "WRITE on some topic").
   * Refused by a matching DENY on the literal '*'; allowed by a matching ALLOW on the literal '*';
   * allowed when allowEveryoneIfNoAclFound holds and no literal '*' ACL of the type exists (so some
   * resource has no ACL); else allowed by a matching ALLOW that no matching DENY covers entirely
   * (a DENY of the same literal name, or a DENY prefix of its name). Not cached: asked once per
   * producer, not per request.
   */
  authorizeAny(principal: string, host: string, operation: number, resourceType: number): boolean {
    if (this.#superUsers.has(principal)) return true
    const ofType = this.#acls().filter((b) => b.resourceType === resourceType)
    const mine = ofType.filter((b) => isFor(b, principal, host))
    const denied = mine.filter((b) => denies(b, operation))
    if (denied.some(isLiteralWildcard)) return false
    const allowed = mine.filter((b) => allows(b, operation))
    if (allowed.some(isLiteralWildcard)) return true
    if (this.#allowEveryoneIfNoAclFound && !ofType.some(isLiteralWildcard)) return true
    return allowed.some((a) => !denied.some((d) => dominates(d, a)))
  }

  #currentCache(): Map<string, boolean> {
    const version = this.#version()
    if (version !== this.#cacheVersion) {
      this.#cache = new Map()
      this.#cacheVersion = version
    }
    return this.#cache
  }

  #decide(request: AuthorizationRequest): boolean {
    const { principal, host, operation, resourceType, resourceName } = request
    // Every ACL on the resource counts here, whoever it is for: any ACL turns off allow-everyone.
    const onResource = this.#acls().filter((b) => b.resourceType === resourceType && patternCovers(b, resourceName))
    if (onResource.length === 0) return this.#allowEveryoneIfNoAclFound
    const mine = onResource.filter((b) => isFor(b, principal, host))
    if (mine.some((b) => denies(b, operation))) return false
    return mine.some((b) => allows(b, operation))
  }
}
