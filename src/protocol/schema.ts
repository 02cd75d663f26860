// Encoder and decoder driven by Kafka's own message definitions.
//
// scripts/gen-protocol.ts turns Kafka 3.8.0's JSON definitions into the schemas in messages/;
// this file walks a schema for one version. Decoding fills fields the version lacks with their
// defaults, so handlers see one shape for every version; encoding skips them. Flexible versions
// use compact lengths and carry tagged fields at the end of every struct.
import { ProtocolError } from './errors.ts'
import { Reader } from './reader.ts'
import { Writer } from './writer.ts'

/** Inclusive version range; [0, -1] means "no versions". */
export type VersionRange = readonly [number, number]

export type PrimitiveType =
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint16'
  | 'uint32'
  | 'float64'
  | 'bool'
  | 'string'
  | 'bytes'
  | 'uuid'
  | 'records'

export interface FieldSchema {
  readonly name: string
  readonly type: PrimitiveType | 'struct' | 'array'
  /** For arrays: the element type. */
  readonly items?: PrimitiveType | 'struct'
  readonly versions: VersionRange
  readonly nullable?: VersionRange
  readonly tag?: number
  readonly taggedVersions?: VersionRange
  /** Kafka's `flexibleVersions: "none"` on a field: classic encoding even in flexible versions (header ClientId). */
  readonly neverFlexible?: boolean
  readonly default?: string | number | boolean | null
  readonly fields?: readonly FieldSchema[]
}

export interface MessageSchema {
  readonly name: string
  readonly apiKey: number
  readonly validVersions: VersionRange
  readonly flexibleVersions: VersionRange
  readonly fields: readonly FieldSchema[]
}

export const ZERO_UUID = Buffer.alloc(16)

function inRange(r: VersionRange | undefined, v: number): boolean {
  return r !== undefined && v >= r[0] && v <= r[1]
}

export function isFlexible(schema: MessageSchema, version: number): boolean {
  return inRange(schema.flexibleVersions, version)
}

type Value = unknown
type Struct = Record<string, Value>

/** The value a field takes when its version does not carry it. */
export function defaultValue(f: FieldSchema): Value {
  if (f.type === 'array') return f.default === null ? null : []
  if (f.type === 'struct') return defaultStruct(f.fields ?? [])
  if (f.default !== undefined) return f.default
  switch (f.type) {
    case 'bool':
      return false
    case 'string':
      return ''
    case 'bytes':
      return Buffer.alloc(0)
    case 'records':
      return null
    case 'uuid':
      return ZERO_UUID
    default:
      return 0
  }
}

function defaultStruct(fields: readonly FieldSchema[]): Struct {
  const out: Struct = {}
  for (const f of fields) out[f.name] = defaultValue(f)
  return out
}

// ---------------------------------------------------------------- decoding

export function decode<T>(schema: MessageSchema, version: number, r: Reader): T {
  return decodeStruct(schema.fields, version, isFlexible(schema, version), r) as T
}

function decodeStruct(fields: readonly FieldSchema[], version: number, flexible: boolean, r: Reader): Struct {
  const out: Struct = {}
  for (const f of fields) {
    if (!inRange(f.versions, version) || inRange(f.taggedVersions, version)) {
      out[f.name] = defaultValue(f)
      continue
    }
    out[f.name] = decodeField(f, version, flexible && !f.neverFlexible, r)
  }
  if (flexible) decodeTaggedFields(fields, version, r, out)
  return out
}

function decodeTaggedFields(fields: readonly FieldSchema[], version: number, r: Reader, out: Struct): void {
  const count = r.readUVarint()
  for (let i = 0; i < count; i++) {
    const tag = r.readUVarint()
    const size = r.readUVarint()
    const end = r.pos + size
    if (end > r.end) throw new ProtocolError('BAD_LENGTH', `tagged field ${tag} of ${size} bytes overruns the frame`)
    const f = fields.find((x) => x.tag === tag && inRange(x.taggedVersions, version))
    if (f !== undefined) {
      out[f.name] = decodeField(f, version, true, new Reader(r.buf, r.pos, end))
    }
    r.pos = end // unknown tags are skipped, as Kafka does
  }
}

function decodeField(f: FieldSchema, version: number, flexible: boolean, r: Reader): Value {
  const nullable = inRange(f.nullable, version)
  if (f.type === 'array') {
    const n = flexible ? r.readCompactArrayLength() : r.readArrayLength()
    if (n < 0) {
      if (!nullable) throw new ProtocolError('BAD_LENGTH', `null array for non-nullable ${f.name}`)
      return null
    }
    const items = new Array<Value>(n)
    for (let i = 0; i < n; i++) {
      items[i] =
        f.items === 'struct'
          ? decodeStruct(f.fields ?? [], version, flexible, r)
          : decodePrimitive(f.items ?? 'int8', flexible, nullable, f.name, r)
    }
    return items
  }
  if (f.type === 'struct') {
    if (nullable) {
      const present = r.readInt8()
      if (present < 0) return null
    }
    return decodeStruct(f.fields ?? [], version, flexible, r)
  }
  return decodePrimitive(f.type, flexible, nullable, f.name, r)
}

function decodePrimitive(type: PrimitiveType, flexible: boolean, nullable: boolean, name: string, r: Reader): Value {
  switch (type) {
    case 'int8':
      return r.readInt8()
    case 'int16':
      return r.readInt16()
    case 'int32':
      return r.readInt32()
    case 'int64':
      return r.readInt64()
    case 'uint16':
      return r.readUInt16()
    case 'uint32':
      return r.readUInt32()
    case 'float64':
      return r.readFloat64()
    case 'bool':
      return r.readBool()
    case 'uuid':
      return r.readUuid()
    case 'string': {
      const s = flexible ? r.readCompactString() : r.readString()
      if (s === null && !nullable) throw new ProtocolError('BAD_STRING', `null string for non-nullable ${name}`)
      return s
    }
    case 'bytes':
    case 'records': {
      const b = flexible ? r.readCompactBytes() : r.readBytes()
      if (b === null && !nullable) throw new ProtocolError('BAD_LENGTH', `null bytes for non-nullable ${name}`)
      return b
    }
  }
}

// ---------------------------------------------------------------- encoding

export function encode(schema: MessageSchema, version: number, value: unknown, w: Writer): void {
  encodeStruct(schema.fields, version, isFlexible(schema, version), value as Struct, w)
}

function encodeStruct(
  fields: readonly FieldSchema[],
  version: number,
  flexible: boolean,
  value: Struct,
  w: Writer,
): void {
  let tagged: FieldSchema[] | undefined
  for (const f of fields) {
    if (!inRange(f.versions, version)) continue
    if (inRange(f.taggedVersions, version)) {
      if (flexible && !isDefault(f, value[f.name])) (tagged ??= []).push(f)
      continue
    }
    encodeField(f, version, flexible && !f.neverFlexible, value[f.name], w)
  }
  if (!flexible) return
  if (tagged === undefined) {
    w.writeUVarint(0)
    return
  }
  tagged.sort((a, b) => (a.tag ?? 0) - (b.tag ?? 0))
  w.writeUVarint(tagged.length)
  for (const f of tagged) {
    const inner = new Writer()
    encodeField(f, version, true, value[f.name], inner)
    w.writeUVarint(f.tag ?? 0).writeUVarint(inner.length)
    for (const chunk of inner.toChunks()) w.writeRaw(chunk)
  }
}

function isDefault(f: FieldSchema, v: Value): boolean {
  if (v === undefined) return true
  const d = defaultValue(f)
  if (Array.isArray(v)) return v.length === 0 && d !== null
  if (Buffer.isBuffer(v)) return Buffer.isBuffer(d) && v.equals(d)
  if (typeof v === 'object' && v !== null) return false
  return v === d
}

function encodeField(f: FieldSchema, version: number, flexible: boolean, v: Value, w: Writer): void {
  let value = v === undefined ? defaultValue(f) : v
  if (value === null && !inRange(f.nullable, version)) {
    // A version that cannot say null gets the empty value (as Kafka's "null-or-empty" fields do)
    // rather than bytes no client can read.
    value = f.type === 'array' ? [] : f.type === 'bytes' ? Buffer.alloc(0) : f.type === 'string' ? '' : value
  }
  if (f.type === 'array') {
    if (value === null) {
      if (flexible) w.writeUVarint(0)
      else w.writeInt32(-1)
      return
    }
    const items = value as Value[]
    if (flexible) w.writeUVarint(items.length + 1)
    else w.writeInt32(items.length)
    for (const item of items) {
      if (f.items === 'struct') encodeStruct(f.fields ?? [], version, flexible, item as Struct, w)
      else encodePrimitive(f.items ?? 'int8', flexible, item, w)
    }
    return
  }
  if (f.type === 'struct') {
    if (inRange(f.nullable, version)) {
      if (value === null) {
        w.writeInt8(-1)
        return
      }
      w.writeInt8(1)
    }
    encodeStruct(f.fields ?? [], version, flexible, value as Struct, w)
    return
  }
  encodePrimitive(f.type, flexible, value, w)
}

function encodePrimitive(type: PrimitiveType, flexible: boolean, v: Value, w: Writer): void {
  switch (type) {
    case 'int8':
      w.writeInt8(v as number)
      return
    case 'int16':
      w.writeInt16(v as number)
      return
    case 'int32':
      w.writeInt32(v as number)
      return
    case 'int64':
      w.writeInt64(v as number)
      return
    case 'uint16':
      w.writeUInt16(v as number)
      return
    case 'uint32':
      w.writeUInt32(v as number)
      return
    case 'float64':
      w.writeFloat64(v as number)
      return
    case 'bool':
      w.writeBool(v as boolean)
      return
    case 'uuid':
      w.writeUuid(v as Buffer)
      return
    case 'string':
      if (flexible) w.writeCompactString(v as string | null)
      else w.writeString(v as string | null)
      return
    case 'bytes':
    case 'records':
      if (flexible) w.writeCompactBytes(v as Buffer | null)
      else w.writeBytes(v as Buffer | null)
      return
  }
}

/** A message with any field left out; the encoder fills what is missing with defaults. */
export type Shape<T> = T extends Buffer
  ? T
  : T extends (infer U)[]
    ? Shape<U>[]
    : T extends object
      ? { [K in keyof T]?: Shape<T[K]> }
      : T
