// The broker's ACLs, durable across restarts, as Kafka keeps them in its metadata (added by
// CreateAcls, listed by DescribeAcls, removed by DeleteAcls, read by the Authorizer). A change is
// on disk before it returns, so an acknowledged DeleteAcls cannot come back after a crash. The file
// says who may do what, which is worth hiding from other local users: mode 0600.
//
// File: <data dir>/acls.json, names rather than codes (readable when audited), replaced atomically
// (src/util/durable-file.ts) as scram-credentials.ts is.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileDurably } from '../../util/durable-file.ts'
import {
  type AclBinding,
  type AclFilter,
  bindingKey,
  matchesFilter,
  operationByName,
  operationName,
  patternTypeByName,
  patternTypeName,
  permissionByName,
  permissionName,
  resourceTypeByName,
  resourceTypeName,
  validateBinding,
} from './acls.ts'

export const ACLS_FILE = 'acls.json'
const FORMAT = 1

/** The ACL file exists but cannot be trusted; the broker should not start on a guess about who may do what. */
export class AclFileError extends Error {
  readonly code = 'CORRUPT_ACLS'
  readonly path: string
  constructor(path: string, detail: string) {
    super(`${path} is corrupt: ${detail}`)
    this.name = 'AclFileError'
    this.path = path
  }
}

/** A binding CreateAcls should have refused (validateBinding); the store keeps only valid ones, so its file always loads. */
export class InvalidAclError extends Error {
  readonly code = 'INVALID_ACL'
  constructor(message: string) {
    super(message)
    this.name = 'InvalidAclError'
  }
}

interface StoredBinding {
  resourceType: string
  resourceName: string
  patternType: string
  principal: string
  host: string
  operation: string
  permission: string
}

export class AclStore {
  readonly path: string
  #acls: readonly AclBinding[]
  #version = 0

  private constructor(path: string, acls: readonly AclBinding[]) {
    this.path = path
    this.#acls = acls
  }

  /** Loads `<dataDir>/acls.json`; no file is no ACLs. */
  static open(dataDir: string): AclStore {
    const path = join(dataDir, ACLS_FILE)
    return new AclStore(path, existsSync(path) ? load(path) : [])
  }

  /** Incremented by every change, so the Authorizer knows when to drop its cached decisions. */
  get version(): number {
    return this.#version
  }

  /** Every binding, in the order created; frozen, and replaced (not mutated) by changes. */
  list(): readonly AclBinding[] {
    return this.#acls
  }

  /** The bindings the filter selects (DescribeAcls). */
  describe(filter: AclFilter): AclBinding[] {
    return this.#acls.filter((b) => matchesFilter(b, filter))
  }

  /**
   * Adds the bindings, skipping any already stored (or repeated in the call); durable when this
   * returns, one write for the whole call, none if nothing is new. Throws InvalidAclError, having
   * stored nothing, if any binding is invalid.
   */
  create(bindings: AclBinding[]): void {
    for (const b of bindings) {
      const error = validateBinding(b)
      if (error !== undefined) throw new InvalidAclError(error)
    }
    const next = dedupe([...this.#acls, ...bindings.map(copyOf)])
    if (next.length !== this.#acls.length) this.#commit(next)
  }

  /** Removes and returns every binding the filter selects (DeleteAcls); one write, none if nothing matched. */
  delete(filter: AclFilter): AclBinding[] {
    const removed = this.#acls.filter((b) => matchesFilter(b, filter))
    if (removed.length > 0) this.#commit(this.#acls.filter((b) => !matchesFilter(b, filter)))
    return removed
  }

  /** Writes first, then swaps: if the write fails, memory still matches the file. */
  #commit(next: readonly AclBinding[]): void {
    writeFileDurably(this.path, serialize(next))
    this.#acls = Object.freeze([...next])
    this.#version++
  }
}

/** A frozen copy with only the binding's fields: the caller may reuse its objects. */
function copyOf(b: AclBinding): AclBinding {
  const { resourceType, resourceName, patternType, principal, host, operation, permission } = b
  return Object.freeze({ resourceType, resourceName, patternType, principal, host, operation, permission })
}

/** The first of each set of equal bindings, in order. */
function dedupe(bindings: readonly AclBinding[]): AclBinding[] {
  const seen = new Set<string>()
  return bindings.filter((b) => {
    const key = bindingKey(b)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

function serialize(acls: readonly AclBinding[]): string {
  return JSON.stringify({ format: FORMAT, acls: acls.map(toStored) }, null, 2) + '\n'
}

function toStored(b: AclBinding): StoredBinding {
  return {
    resourceType: resourceTypeName(b.resourceType),
    resourceName: b.resourceName,
    patternType: patternTypeName(b.patternType),
    principal: b.principal,
    host: b.host,
    operation: operationName(b.operation),
    permission: permissionName(b.permission),
  }
}

function load(path: string): readonly AclBinding[] {
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new AclFileError(path, `not valid JSON (${(e as Error).message})`)
  }
  if (!isObject(doc) || doc.format !== FORMAT || !Array.isArray(doc.acls))
    throw new AclFileError(path, `expected {"format": ${FORMAT}, "acls": [...]}`)
  const acls = (doc.acls as unknown[]).map((entry, i) => {
    const binding = fromStored(entry)
    const error = binding === undefined ? 'missing or mistyped field' : validateBinding(binding)
    if (error !== undefined) throw new AclFileError(path, `ACL ${i}: ${error}`)
    return binding as AclBinding
  })
  // A file this store wrote has no duplicates; a hand-edited one may, harmlessly.
  return Object.freeze(dedupe(acls))
}

/** The binding, or undefined if a field is missing, not a string, or not the canonical name of a code. */
function fromStored(doc: unknown): AclBinding | undefined {
  if (!isObject(doc)) return undefined
  const { resourceName, principal, host } = doc
  if (typeof resourceName !== 'string' || typeof principal !== 'string' || typeof host !== 'string') return undefined
  const resourceType = codeOf(doc.resourceType, resourceTypeByName, resourceTypeName)
  const patternType = codeOf(doc.patternType, patternTypeByName, patternTypeName)
  const operation = codeOf(doc.operation, operationByName, operationName)
  const permission = codeOf(doc.permission, permissionByName, permissionName)
  if (resourceType === undefined || patternType === undefined || operation === undefined || permission === undefined)
    return undefined
  return copyOf({ resourceType, resourceName, patternType, principal, host, operation, permission })
}

/** Strict: the file holds the names this store writes, not the CLI's looser spellings. */
function codeOf(
  value: unknown,
  byName: (n: string) => number | undefined,
  nameOf: (c: number) => string,
): number | undefined {
  if (typeof value !== 'string') return undefined
  const code = byName(value)
  return code !== undefined && nameOf(code) === value ? code : undefined
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
