import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  parseRecordSchema,
  SchemaError,
  SchemaVersions,
  validateDocument,
} from '../../../src/db/schema/table-schema.ts'

const V1 = {
  type: 'record',
  name: 'Member',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'age', type: 'int' },
  ],
}

const isCode = (code: string) => (e: unknown) => e instanceof SchemaError && e.code === code

void test('documents are validated against the record schema, with the wrong paths named', () => {
  const type = parseRecordSchema(V1)
  validateDocument(type, { id: 'm1', name: 'Ada', age: 36 })
  assert.throws(
    () => validateDocument(type, { id: 'm1', name: 'Ada', age: 'old' }),
    (e: unknown) => isCode('INVALID_DOCUMENT')(e) && /age/.test((e as Error).message),
  )
  assert.throws(() => validateDocument(type, { id: 'm1', name: 'Ada' }), isCode('INVALID_DOCUMENT'))
  assert.throws(
    () => validateDocument(type, { id: 'm1', name: 'Ada', age: 3, extra: true }),
    (e: unknown) => isCode('INVALID_DOCUMENT')(e) && /extra/.test((e as Error).message),
  )
  assert.throws(() => validateDocument(type, [1, 2]), isCode('INVALID_DOCUMENT'))
  assert.throws(() => validateDocument(type, null), isCode('INVALID_DOCUMENT'))
})

void test('schemas that are not Avro records, or are hostile, are refused', () => {
  assert.throws(() => parseRecordSchema('string'), isCode('INVALID_SCHEMA'))
  assert.throws(() => parseRecordSchema({ type: 'enum', name: 'E', symbols: ['A'] }), isCode('INVALID_SCHEMA'))
  assert.throws(
    () => parseRecordSchema({ type: 'record', name: 'R', fields: [{ name: 'x', type: 'nonsense' }] }),
    isCode('INVALID_SCHEMA'),
  )
  assert.throws(
    () =>
      parseRecordSchema({
        type: 'record',
        name: 'R',
        fields: [{ name: 'x', type: 'string', doc: 'x'.repeat(300_000) }],
      }),
    isCode('INVALID_SCHEMA'),
  )
})

void test('a new version must read old documents (Avro resolution); reads return the latest version', () => {
  const versions = new SchemaVersions()
  assert.equal(versions.add(V1), 1)
  // Adding a field with a default and promoting int to long is backward compatible.
  const v2 = {
    ...V1,
    fields: [
      { name: 'id', type: 'string' },
      { name: 'name', type: 'string' },
      { name: 'age', type: 'long' },
      { name: 'email', type: ['null', 'string'], default: null },
    ],
  }
  assert.equal(versions.add(v2), 2)
  assert.deepEqual(versions.readLatest({ id: 'm1', name: 'Ada', age: 36 }, 1), {
    id: 'm1',
    name: 'Ada',
    age: 36,
    email: null,
  })
  versions.validate({ id: 'm2', name: 'Bo', age: 5, email: 'bo@example.com' })
  // A field without a default cannot be added: old documents have no value for it.
  assert.throws(
    () => versions.add({ ...V1, fields: [...v2.fields, { name: 'phone', type: 'string' }] }),
    isCode('INCOMPATIBLE_SCHEMA'),
  )
  // Narrowing a type is refused too.
  assert.throws(
    () =>
      versions.add({
        ...V1,
        fields: [
          { name: 'id', type: 'string' },
          { name: 'name', type: 'string' },
          { name: 'age', type: 'int' },
          { name: 'email', type: ['null', 'string'], default: null },
        ],
      }),
    isCode('INCOMPATIBLE_SCHEMA'),
  )
  assert.equal(versions.latestVersion, 2)
})
