// A table's document schemas: Avro record schemas, as Espresso used (docs/reference/anchors.md
// §1), with documents as plain JSON objects validated against them. A new schema version must be
// able to read every document written under the previous ones (Avro's resolution rules: added
// fields need defaults, removed fields are ignored, types may only be promoted), and documents
// are read in the latest version, with defaults filled in.
import avro from 'avsc'

export type SchemaErrorCode = 'INVALID_SCHEMA' | 'INCOMPATIBLE_SCHEMA' | 'INVALID_DOCUMENT'

/** A schema or document refused, with the paths of what is wrong. */
export class SchemaError extends Error {
  readonly code: SchemaErrorCode
  readonly problems: readonly string[]
  constructor(code: SchemaErrorCode, message: string, problems: readonly string[] = []) {
    super(problems.length > 0 ? `${message}: ${problems.join('; ')}` : message)
    this.name = 'SchemaError'
    this.code = code
    this.problems = problems
  }
}

/** Bounds against hostile schemas (the admin API takes them from clients). */
const MAX_SCHEMA_BYTES = 256 * 1024

/** Parses an Avro record schema given as JSON; throws SchemaError('INVALID_SCHEMA'). */
export function parseRecordSchema(schema: unknown): avro.Type {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new SchemaError('INVALID_SCHEMA', 'a table schema must be an Avro record schema (a JSON object)')
  }
  const text = JSON.stringify(schema)
  if (text.length > MAX_SCHEMA_BYTES)
    throw new SchemaError('INVALID_SCHEMA', `schema is larger than ${MAX_SCHEMA_BYTES} bytes`)
  let type: avro.Type
  try {
    type = avro.Type.forSchema(JSON.parse(text) as avro.Schema, { wrapUnions: false })
  } catch (err) {
    throw new SchemaError(
      'INVALID_SCHEMA',
      `not a valid Avro schema: ${err instanceof Error ? err.message : String(err)}`,
    )
  }
  if (type.typeName !== 'record')
    throw new SchemaError('INVALID_SCHEMA', `a table schema must be an Avro record, got ${type.typeName}`)
  return type
}

/** Checks a JSON document against a schema version; throws SchemaError('INVALID_DOCUMENT'). */
export function validateDocument(type: avro.Type, doc: unknown): void {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new SchemaError('INVALID_DOCUMENT', 'a document must be a JSON object')
  }
  const problems: string[] = []
  type.isValid(doc, {
    errorHook: (path: string[], value: unknown, t: avro.Type) => {
      if (problems.length < 20)
        problems.push(
          `${path.length > 0 ? path.join('.') : '(document)'}: ${JSON.stringify(value) ?? 'undefined'} is not a valid ${t.typeName}`,
        )
    },
  })
  // Avro ignores fields a record does not declare; a document database should not silently drop them.
  for (const key of Object.keys(doc)) {
    if (!(type as avro.types.RecordType).fields.some((f) => f.name === key))
      problems.push(`${key}: not a field of ${type.name ?? 'the schema'}`)
  }
  if (problems.length > 0)
    throw new SchemaError('INVALID_DOCUMENT', 'document does not match the table schema', problems)
}

/** Throws SchemaError('INCOMPATIBLE_SCHEMA') unless `next` can read what `previous` wrote. */
export function checkBackwardCompatible(next: avro.Type, previous: avro.Type): void {
  try {
    next.createResolver(previous)
  } catch (err) {
    throw new SchemaError(
      'INCOMPATIBLE_SCHEMA',
      `the new schema cannot read documents of the previous version: ${err instanceof Error ? err.message : String(err)}`,
    )
  }
}

/** A table's schema versions, 1..n; documents are validated against and read in the latest. */
export class SchemaVersions {
  private readonly types: avro.Type[] = []

  /** Adds a version (the first, or one compatible with every earlier one); returns its number. */
  add(schema: unknown): number {
    const type = parseRecordSchema(schema)
    for (const earlier of this.types) checkBackwardCompatible(type, earlier)
    this.types.push(type)
    return this.types.length
  }

  get latestVersion(): number {
    return this.types.length
  }

  private type(version: number): avro.Type {
    const t = this.types[version - 1]
    if (t === undefined)
      throw new SchemaError('INVALID_SCHEMA', `no schema version ${version} (latest is ${this.types.length})`)
    return t
  }

  /** Validates a document against the latest version. */
  validate(doc: unknown): void {
    validateDocument(this.type(this.latestVersion), doc)
  }

  /** A document written under `version`, as the latest version reads it (defaults filled in). */
  readLatest(doc: unknown, version: number): unknown {
    const from = this.type(version)
    const to = this.type(this.latestVersion)
    if (from === to) return doc
    const upgraded: unknown = to.fromBuffer(from.toBuffer(doc), to.createResolver(from))
    // avsc returns instances of generated record classes; documents are plain JSON.
    return JSON.parse(JSON.stringify(upgraded)) as unknown
  }
}
