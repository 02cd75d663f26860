// Generates src/protocol/messages/*.ts from Kafka's JSON message definitions
// (scripts/kafka-protocol/messages, release 3.8.0, only those used here). The output is committed;
// rerun after adding an API to MESSAGES (and copying its definitions there):
//   node scripts/gen-protocol.ts [path/to/messages]
import { readFileSync, writeFileSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const sourceDir = process.argv[2] ?? join(root, 'scripts', 'kafka-protocol', 'messages')
const outDir = join(root, 'src', 'protocol', 'messages')

/** The APIs the broker implements (request and response of each), and data schemas it writes. */
const MESSAGES = [
  'Produce',
  'Fetch',
  'ListOffsets',
  'Metadata',
  'OffsetCommit',
  'OffsetFetch',
  'FindCoordinator',
  'JoinGroup',
  'Heartbeat',
  'LeaveGroup',
  'SyncGroup',
  'DescribeGroups',
  'ListGroups',
  'SaslHandshake',
  'SaslAuthenticate',
  'AlterUserScramCredentials',
  'DescribeUserScramCredentials',
  'CreateAcls',
  'DescribeAcls',
  'DeleteAcls',
  'DescribeClientQuotas',
  'AlterClientQuotas',
  'ApiVersions',
  'CreateTopics',
  'DeleteTopics',
  'DeleteRecords',
  'InitProducerId',
  'DescribeConfigs',
  'AlterConfigs',
  'CreatePartitions',
  'DeleteGroups',
  'IncrementalAlterConfigs',
  'OffsetDelete',
]

/** Record schemas of internal topics (messages/records/): __consumer_offsets keys and values. */
const RECORDS = ['OffsetCommitKey', 'OffsetCommitValue', 'GroupMetadataKey', 'GroupMetadataValue']

interface JsonField {
  name: string
  type: string
  versions: string
  nullableVersions?: string
  taggedVersions?: string
  tag?: number
  flexibleVersions?: string
  default?: string | number | boolean
  fields?: JsonField[]
  about?: string
}
interface JsonMessage {
  name: string
  apiKey?: number
  type: string
  validVersions: string
  flexibleVersions: string
  fields: JsonField[]
  commonStructs?: { name: string; versions: string; fields: JsonField[] }[]
}

const PRIMITIVES = new Set([
  'int8',
  'int16',
  'int32',
  'int64',
  'uint16',
  'uint32',
  'float64',
  'bool',
  'string',
  'bytes',
  'uuid',
  'records',
])

function parseRange(s: string | undefined): [number, number] | undefined {
  if (s === undefined) return undefined
  if (s === 'none') return [0, -1]
  if (s.endsWith('+')) return [Number(s.slice(0, -1)), 32767]
  const [a, b] = s.split('-')
  return [Number(a), Number(b ?? a)]
}

function camel(name: string): string {
  return name[0].toLowerCase() + name.slice(1)
}

function parseDefault(f: JsonField, primitive: string | undefined): string | number | boolean | null | undefined {
  if (f.default === undefined) return undefined
  const d = String(f.default)
  if (d === 'null') return null
  if (primitive === 'bool') return d === 'true'
  if (primitive === 'string') return d
  if (primitive === undefined) return undefined
  const n = Number(d)
  if (Number.isNaN(n)) throw new Error(`bad default ${d} for ${f.name}`)
  return n
}

function fmtRange(r: [number, number]): string {
  if (r[1] === -1) return 'none'
  if (r[1] === 32767) return `v${r[0]}+`
  return r[0] === r[1] ? `v${r[0]}` : `v${r[0]}-${r[1]}`
}

function load(name: string): JsonMessage {
  const text = readFileSync(join(sourceDir, `${name}.json`), 'utf8')
  return JSON.parse(
    text
      .split('\n')
      .filter((l) => !l.trim().startsWith('//'))
      .join('\n'),
  ) as JsonMessage
}

function generate(msg: JsonMessage, jsonFile: string): string {
  const common = new Map((msg.commonStructs ?? []).map((s) => [s.name, s.fields]))
  const interfaces: string[] = []
  const grammar: string[] = []
  const seen = new Set<string>()

  function structFields(typeName: string, f: JsonField): JsonField[] {
    const fields = f.fields ?? common.get(typeName)
    if (fields === undefined) throw new Error(`no fields for struct ${typeName} in ${msg.name}`)
    return fields
  }

  function fieldSchema(f: JsonField, indent: string, depth: number): string {
    const isArray = f.type.startsWith('[]')
    const base = isArray ? f.type.slice(2) : f.type
    const primitive = PRIMITIVES.has(base) ? base : undefined
    const parts = [`name: '${camel(f.name)}'`]
    parts.push(`type: '${isArray ? 'array' : (primitive ?? 'struct')}'`)
    if (isArray) parts.push(`items: '${primitive ?? 'struct'}'`)
    parts.push(`versions: ${JSON.stringify(parseRange(f.versions))}`)
    if (f.nullableVersions !== undefined) parts.push(`nullable: ${JSON.stringify(parseRange(f.nullableVersions))}`)
    if (f.taggedVersions !== undefined)
      parts.push(`taggedVersions: ${JSON.stringify(parseRange(f.taggedVersions))}`, `tag: ${f.tag}`)
    if (f.flexibleVersions === 'none') parts.push('neverFlexible: true')
    const d = parseDefault(f, isArray ? undefined : primitive)
    if (d !== undefined) parts.push(`default: ${JSON.stringify(d)}`)
    const extra = [
      f.nullableVersions ? `nullable ${fmtRange(parseRange(f.nullableVersions)!)}` : '',
      f.taggedVersions ? `tag ${f.tag} ${fmtRange(parseRange(f.taggedVersions)!)}` : '',
    ]
      .filter(Boolean)
      .join(', ')
    grammar.push(
      `//   ${'  '.repeat(depth)}${f.name}: ${f.type} ${fmtRange(parseRange(f.versions)!)}${extra ? ` (${extra})` : ''}`,
    )
    if (primitive === undefined) {
      const fields = structFields(base, f)
      emitInterface(base, fields)
      const inner = fields.map((x) => fieldSchema(x, indent + '    ', depth + 1)).join(',\n')
      parts.push(`fields: [\n${inner},\n${indent}  ]`)
    }
    return `${indent}  { ${parts.join(', ')} }`
  }

  function tsType(f: JsonField): string {
    const isArray = f.type.startsWith('[]')
    const base = isArray ? f.type.slice(2) : f.type
    let t: string
    switch (base) {
      case 'int8':
      case 'int16':
      case 'int32':
      case 'int64':
      case 'uint16':
      case 'uint32':
      case 'float64':
        t = 'number'
        break
      case 'bool':
        t = 'boolean'
        break
      case 'string':
        t = 'string'
        break
      case 'bytes':
      case 'records':
      case 'uuid':
        t = 'Buffer'
        break
      default:
        t = base
    }
    if (isArray) t = `${t}[]`
    if (f.nullableVersions !== undefined || base === 'records' || (isArray && f.default === 'null')) t += ' | null'
    return t
  }

  function emitInterface(name: string, fields: JsonField[]): void {
    if (seen.has(name)) return
    seen.add(name)
    const lines = fields.map((f) => `  ${camel(f.name)}: ${tsType(f)}`)
    interfaces.push(`export interface ${name} {\n${lines.join('\n')}\n}`)
  }

  emitInterface(msg.name, msg.fields)
  const fieldsTs = msg.fields.map((f) => fieldSchema(f, '  ', 0)).join(',\n')
  const schemaName = camel(msg.name) + 'Schema'
  return `// Generated by scripts/gen-protocol.ts from Kafka 3.8.0's ${jsonFile}. Do not edit.
//
// ${msg.name}${msg.apiKey !== undefined ? ` (api key ${msg.apiKey})` : ''}: valid ${fmtRange(parseRange(msg.validVersions)!)}, flexible ${fmtRange(parseRange(msg.flexibleVersions)!)}
${grammar.join('\n')}
import { type MessageSchema } from '../schema.ts'

${interfaces.reverse().join('\n\n')}

export const ${schemaName}: MessageSchema = {
  name: '${msg.name}',
  apiKey: ${msg.apiKey ?? -1},
  validVersions: ${JSON.stringify(parseRange(msg.validVersions))},
  flexibleVersions: ${JSON.stringify(parseRange(msg.flexibleVersions))},
  fields: [
${fieldsTs},
  ],
}
`
}

function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()
}

mkdirSync(outDir, { recursive: true })
for (const f of readdirSync(outDir)) if (f.endsWith('.ts')) unlinkSync(join(outDir, f))
const files: string[] = []
for (const api of MESSAGES) {
  for (const kind of ['Request', 'Response']) {
    const name = api + kind
    const msg = load(name)
    const file = kebab(name) + '.ts'
    writeFileSync(join(outDir, file), generate(msg, `${name}.json`))
    files.push(file)
  }
}
for (const name of RECORDS) {
  const msg = load(join('records', name))
  const file = kebab(name) + '.ts'
  writeFileSync(join(outDir, file), generate(msg, `records/${name}.json`))
  files.push(file)
}
console.log(`wrote ${files.length} files to ${outDir}`)
