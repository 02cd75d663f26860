// Turning a client's document write into a replication operation: validated against the table's
// latest schema, with the index entries of its indexed fields computed once, by the master.
import { DbError } from '../errors.ts'
import { type TableInfo } from '../metadata/model.ts'
import { type Operation } from '../replication/operation.ts'
import { SchemaError, SchemaVersions } from './table-schema.ts'

const cache = new Map<string, { count: number; versions: SchemaVersions }>()

/** The schema versions of a table (cached per table and version count). */
export function schemaVersionsOf(cacheKey: string, table: TableInfo): SchemaVersions {
  const hit = cache.get(cacheKey)
  if (hit !== undefined && hit.count === table.schemas.length) return hit.versions
  const versions = new SchemaVersions()
  for (const s of table.schemas) versions.add(s)
  cache.set(cacheKey, { count: table.schemas.length, versions })
  return versions
}

/** The text an index stores and a query compares for a field's value (null when not indexable). */
export function indexValue(value: unknown): string | null {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return null
}

/** Checks the key parts against the table's key and the document's key fields. */
export function checkKey(tableName: string, table: TableInfo, key: string[]): void {
  if (key.length !== table.key.length) {
    throw new DbError(
      'BAD_REQUEST',
      `table ${tableName} has key (${table.key.join(', ')}): expected ${table.key.length} key part(s) in the path, got ${key.length}`,
    )
  }
  for (const k of key)
    if (k.length === 0 || Buffer.byteLength(k) > 1024)
      throw new DbError('BAD_REQUEST', 'key parts must be 1 to 1024 bytes')
}

/** The document with the schema's defaults for the top-level fields it leaves out. */
function withDefaults(schema: unknown, doc: Record<string, unknown>): Record<string, unknown> {
  const fields = (schema as { fields?: { name: string; default?: unknown }[] }).fields ?? []
  let out = doc
  for (const f of fields) {
    if (!Object.hasOwn(f, 'default') || Object.hasOwn(doc, f.name)) continue
    if (out === doc) out = { ...doc }
    out[f.name] = structuredClone(f.default)
  }
  return out
}

export function preparePut(
  cacheKey: string,
  tableName: string,
  table: TableInfo,
  key: string[],
  doc: unknown,
): Operation {
  checkKey(tableName, table, key)
  const versions = schemaVersionsOf(cacheKey, table)
  try {
    versions.validate(doc)
  } catch (error) {
    if (error instanceof SchemaError)
      throw new DbError(
        'INVALID_DOCUMENT',
        `document does not match the schema of ${tableName} (version ${versions.latestVersion})`,
        error.problems,
      )
    throw error
  }
  // Stored as the latest version reads it: top-level fields left out get their defaults (as
  // documents of earlier versions do when read), so reads and index entries see them too.
  const d = withDefaults(table.schemas[table.schemas.length - 1], doc as Record<string, unknown>)
  // The key in the path must agree with the key fields of the document.
  table.key.forEach((field, i) => {
    const v = indexValue(d[field])
    if (v !== key[i])
      throw new DbError(
        'BAD_REQUEST',
        `key field ${field} is ${JSON.stringify(d[field])} in the document but ${JSON.stringify(key[i])} in the path`,
      )
  })
  const index: [string, string][] = []
  for (const field of table.indexes) {
    const v = indexValue(d[field])
    if (v !== null) index.push([field, v])
  }
  return { kind: 'put', table: tableName, key, doc: d, schemaVersion: versions.latestVersion, index }
}
