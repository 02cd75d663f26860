// A replication operation: one document write of a transaction, as the master computed it (with
// its index entries) and as every replica applies it. Part of the replication stream's format,
// so it lives here, independent of the storage that applies it.

export type Operation =
  | {
      kind: 'put'
      table: string
      key: string[]
      doc: Record<string, unknown>
      schemaVersion: number
      index: [string, string][]
    }
  | { kind: 'delete'; table: string; key: string[] }

/** Checks an operation decoded from the log has the shape apply() needs (bounded, typed). */
export function validOperation(op: unknown): op is Operation {
  if (typeof op !== 'object' || op === null) return false
  const o = op as Record<string, unknown>
  if (
    typeof o.table !== 'string' ||
    !Array.isArray(o.key) ||
    o.key.length === 0 ||
    !o.key.every((k) => typeof k === 'string')
  )
    return false
  if (o.kind === 'delete') return true
  if (o.kind !== 'put') return false
  if (typeof o.doc !== 'object' || o.doc === null || Array.isArray(o.doc) || !Number.isInteger(o.schemaVersion))
    return false
  return (
    Array.isArray(o.index) &&
    o.index.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string')
  )
}
