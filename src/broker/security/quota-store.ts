// The broker's client quotas, durable across restarts, as Kafka keeps them in its metadata (set
// and removed by AlterClientQuotas, listed by DescribeClientQuotas, read by QuotaManager through
// `get` on every resolution). A change is on disk before it returns, so an acknowledged
// AlterClientQuotas cannot be undone by a crash. Mode 0600, as the other security stores: it
// says who the operator limits, nobody else's business.
//
// File: <data dir>/client-quotas.json, entities as the wire's components (type and name, null for
// <default>), replaced atomically (src/util/durable-file.ts) as acl-store.ts is.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileDurably } from '../../util/durable-file.ts'
import {
  entityComponents,
  InvalidQuotaError,
  MatchType,
  QUOTA_KEYS,
  type QuotaEntity,
  type QuotaEntityComponent,
  type QuotaFilterComponent,
  type QuotaKey,
  type QuotaValues,
  quotaEntityKey,
  toQuotaEntity,
  validateEntity,
  validateQuotaFilter,
  validateQuotaOp,
} from './quotas.ts'

export const CLIENT_QUOTAS_FILE = 'client-quotas.json'
const FORMAT = 1

/** The quota file exists but cannot be trusted; the broker should not start on a guess about whom to limit. */
export class QuotaFileError extends Error {
  readonly code = 'CORRUPT_QUOTAS'
  readonly path: string
  constructor(path: string, detail: string) {
    super(`${path} is corrupt: ${detail}`)
    this.name = 'QuotaFileError'
    this.path = path
  }
}

/** One change to one quota of an entity: set `value`, or remove the quota when null. */
export interface QuotaOp {
  key: QuotaKey
  value: number | null
}

/** An entity and the quotas set on it (both frozen). */
export interface EntityQuotas {
  entity: QuotaEntity
  values: QuotaValues
}

export class ClientQuotaStore {
  readonly path: string
  // By quotaEntityKey, in the order entities were first given a quota.
  #quotas: ReadonlyMap<string, EntityQuotas>
  #version = 0

  private constructor(path: string, quotas: ReadonlyMap<string, EntityQuotas>) {
    this.path = path
    this.#quotas = quotas
  }

  /** Loads `<dataDir>/client-quotas.json`; no file is no quotas. */
  static open(dataDir: string): ClientQuotaStore {
    const path = join(dataDir, CLIENT_QUOTAS_FILE)
    return new ClientQuotaStore(path, existsSync(path) ? load(path) : new Map())
  }

  /** Incremented by every change, so QuotaManager knows to resolve quotas afresh. */
  get version(): number {
    return this.#version
  }

  /** The quotas set on exactly this entity (no precedence: resolveQuota does that), frozen. */
  get(entity: QuotaEntity): QuotaValues | undefined {
    return this.#quotas.get(quotaEntityKey(entity))?.values
  }

  /**
   * Applies `ops` to the entity's quotas (AlterClientQuotas): one durable write for the call, none
   * if nothing changes; an entity left without quotas is removed. Throws InvalidQuotaError, having
   * changed nothing, if the entity or an op is invalid or a key appears twice (Kafka refuses the
   * whole entry then too).
   */
  alter(entity: QuotaEntity, ops: QuotaOp[]): void {
    const error = validateEntity(entityComponents(entity)) ?? validateOps(ops)
    if (error !== undefined) throw new InvalidQuotaError(error)
    const key = quotaEntityKey(entity)
    const current = this.#quotas.get(key)?.values ?? {}
    const values: QuotaValues = { ...current }
    for (const op of ops) {
      if (op.value === null) delete values[op.key]
      else values[op.key] = op.value
    }
    if (sameValues(current, values)) return
    const next = new Map(this.#quotas)
    if (Object.keys(values).length === 0) next.delete(key)
    else next.set(key, entityQuotas(entity, values))
    this.#commit(next)
  }

  /**
   * The entities the filter selects, with their quotas (DescribeClientQuotas, Kafka's
   * ClientQuotasImage semantics): each component requires the entity to have that type, named
   * `match` (EXACT), <default> (DEFAULT) or anything, <default> included (SPECIFIED); `strict`
   * also excludes entities with types the filter does not name. No components: every entity,
   * or none when strict. Throws InvalidQuotaError on a filter Kafka refuses (validateQuotaFilter).
   */
  describe(components: QuotaFilterComponent[], strict: boolean): EntityQuotas[] {
    const error = validateQuotaFilter(components)
    if (error !== undefined) throw new InvalidQuotaError(error)
    return [...this.#quotas.values()].filter((q) => matchesFilter(q.entity, components, strict))
  }

  /** Writes first, then swaps: if the write fails, memory still matches the file. */
  #commit(next: ReadonlyMap<string, EntityQuotas>): void {
    writeFileDurably(this.path, serialize(next))
    this.#quotas = next
    this.#version++
  }
}

function validateOps(ops: QuotaOp[]): string | undefined {
  const seen = new Set<string>()
  for (const { key, value } of ops) {
    if (seen.has(key)) return `Duplicate quota key ${key} not updating quota for this entity`
    seen.add(key)
    const error = validateQuotaOp(key, value)
    if (error !== undefined) return error
  }
  return undefined
}

function sameValues(a: QuotaValues, b: QuotaValues): boolean {
  return QUOTA_KEYS.every((k) => a[k] === b[k])
}

/** A frozen copy, keys in QUOTA_KEYS order, with only the entity's own fields: the caller may reuse its objects. */
function entityQuotas(entity: QuotaEntity, values: QuotaValues): EntityQuotas {
  const ordered: QuotaValues = {}
  for (const k of QUOTA_KEYS) if (values[k] !== undefined) ordered[k] = values[k]
  return Object.freeze({
    entity: Object.freeze(toQuotaEntity(entityComponents(entity))),
    values: Object.freeze(ordered),
  })
}

function matchesFilter(entity: QuotaEntity, components: QuotaFilterComponent[], strict: boolean): boolean {
  if (strict && entityComponents(entity).length !== components.length) return false
  return components.every((c) => {
    const name = c.entityType === 'user' ? entity.user : entity.clientId
    if (name === undefined) return false
    if (c.matchType === MatchType.EXACT) return name === c.match
    if (c.matchType === MatchType.DEFAULT) return name === null
    return true
  })
}

function serialize(quotas: ReadonlyMap<string, EntityQuotas>): string {
  const entries = [...quotas.values()].map((q) => ({ entity: entityComponents(q.entity), values: q.values }))
  return JSON.stringify({ format: FORMAT, quotas: entries }, null, 2) + '\n'
}

function load(path: string): ReadonlyMap<string, EntityQuotas> {
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new QuotaFileError(path, `not valid JSON (${(e as Error).message})`)
  }
  if (!isObject(doc) || doc.format !== FORMAT || !Array.isArray(doc.quotas))
    throw new QuotaFileError(path, `expected {"format": ${FORMAT}, "quotas": [...]}`)
  const quotas = new Map<string, EntityQuotas>()
  ;(doc.quotas as unknown[]).forEach((entry, i) => {
    const loaded = fromStored(entry)
    if (typeof loaded === 'string') throw new QuotaFileError(path, `entry ${i}: ${loaded}`)
    const key = quotaEntityKey(loaded.entity)
    if (quotas.has(key)) throw new QuotaFileError(path, `entry ${i}: the entity appears twice`)
    quotas.set(key, loaded)
  })
  return quotas
}

/** The entry, or why it is not one this store could have written. */
function fromStored(doc: unknown): EntityQuotas | string {
  if (!isObject(doc) || !Array.isArray(doc.entity) || !isObject(doc.values))
    return 'expected {"entity": [...], "values": {...}}'
  const components = doc.entity as unknown[]
  if (!components.every(isComponent))
    return 'an entity component is not {"entityType": string, "entityName": string or null}'
  const values = doc.values
  const error =
    validateEntity(components) ??
    (Object.keys(values).length === 0 ? 'no quotas' : undefined) ??
    Object.entries(values)
      .map(([k, v]) => (typeof v === 'number' ? validateQuotaOp(k, v) : `${k} is not a number`))
      .find((e) => e !== undefined)
  // Validated above: only quota keys, each a valid number.
  return error ?? entityQuotas(toQuotaEntity(components), values)
}

function isComponent(v: unknown): v is QuotaEntityComponent {
  return isObject(v) && typeof v.entityType === 'string' && (typeof v.entityName === 'string' || v.entityName === null)
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
