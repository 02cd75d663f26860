// Document routes: /{db}/{table}/{partitionKey}[/{subKey}…] (PUT, GET, DELETE), multi-get,
// document-group listing and index queries, and multi-table transactions on one document group.
// The router maps the partition key to a partition and forwards to its master (writes, and reads
// unless the client allows any replica with ?consistency=any).
import { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { DbError } from '../errors.ts'
import { type DatabaseInfo, partitionOf, type TableInfo } from '../metadata/model.ts'
import {
  type DocumentView,
  type GroupRequest,
  type GroupResponse,
  type ReadRequest,
  type ReadResponse,
  type WriteRequest,
  type WriteRequestOp,
  type WriteResponse,
} from '../node-api.ts'
import { type ClusterClient } from './cluster-client.ts'

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'array', items: { type: 'string' } },
      },
    },
  },
}
const documentSchema = {
  type: 'object',
  additionalProperties: true,
  description: 'The document, as the latest schema version reads it',
}
const documentViewSchema = {
  type: 'object',
  properties: {
    table: { type: 'string' },
    key: { type: 'array', items: { type: 'string' } },
    etag: { type: 'string' },
    schemaVersion: { type: 'integer' },
    doc: documentSchema,
  },
}
const consistencyQuery = {
  type: 'object',
  properties: {
    consistency: {
      type: 'string',
      enum: ['master', 'any'],
      default: 'master',
      description: 'Read from the master (default) or from any replica',
    },
    query: { type: 'string', description: 'Index query within a document group: field:value' },
    limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
  },
}
const keyParams = {
  type: 'object',
  properties: {
    db: { type: 'string' },
    table: { type: 'string' },
    '*': { type: 'string', description: 'partitionKey[/subKey…]' },
  },
}

/** Key parts from the raw URL (each percent-decoded separately, so a part may contain '/'). */
export function keyParts(url: string): { db: string; table: string; key: string[] } {
  const path = url.split('?')[0]
  let parts: string[]
  try {
    parts = path.split('/').slice(1).map(decodeURIComponent)
  } catch {
    throw new DbError('BAD_REQUEST', 'the path is not valid percent-encoding')
  }
  const [db, table, ...key] = parts
  if (key.length === 0 || key.some((k) => k.length === 0))
    throw new DbError('BAD_REQUEST', 'expected /{db}/{table}/{partitionKey}[/{subKey}…] with no empty key parts')
  return { db, table, key }
}

/** One ETag from an If-Match / If-None-Match header: '*' or the quoted tag. */
export function condition(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  const value = (Array.isArray(header) ? header.join(',') : header).trim()
  if (value === '*') return '*'
  const m = /^(?:W\/)?"([^"]*)"$/.exec(value) ?? /^([0-9]+\.[0-9]+)$/.exec(value)
  if (m === null) throw new DbError('BAD_REQUEST', `${name} must be * or one quoted ETag, got ${value}`)
  return m[1]
}

export const quoted = (etag: string): string => `"${etag}"`

function parseQuery(query: string | undefined): { field: string; value: string } | undefined {
  if (query === undefined) return undefined
  const i = query.indexOf(':')
  if (i <= 0) throw new DbError('BAD_REQUEST', `query must be field:value, got ${query}`)
  return { field: query.slice(0, i), value: query.slice(i + 1) }
}

export type NodeDocument = Awaited<ReturnType<ClusterClient['nodes']['getDocument']>>

/** The path of one document at a node: /_node/doc/{db}/{partition}/{table}/{key…}?from=… */
export const documentPath = (
  dbName: string,
  partition: number,
  tableName: string,
  key: string[],
  from: string,
): string =>
  `/_node/doc/${[dbName, String(partition), tableName, ...key].map(encodeURIComponent).join('/')}?from=${from}`

/** What the document routes and the router's fast path (document-fast-path.ts) both do. */
export type DocumentActions = ReturnType<typeof documentActions>

export function documentActions(cluster: ClusterClient) {
  /** The database and the table's definition; UNKNOWN_DATABASE or UNKNOWN_TABLE if there is none. */
  const table = (dbName: string, tableName: string): { db: DatabaseInfo; t: TableInfo } => {
    const db = cluster.database(dbName)
    // Own properties only: a table named constructor or __proto__ is not the object's prototype.
    const t = Object.hasOwn(db.tables, tableName) ? db.tables[tableName] : undefined
    if (t === undefined) throw new DbError('UNKNOWN_TABLE', `database ${dbName} has no table ${tableName}`)
    return { db, t }
  }

  /** Writes a transaction of one document group at its partition's master: the new ETag. */
  const write = async (dbName: string, ops: WriteRequestOp[], principal: string): Promise<WriteResponse> => {
    const db = cluster.database(dbName)
    const keys = new Set(ops.map((o) => o.key[0]))
    if (keys.size !== 1)
      throw new DbError(
        'CROSS_GROUP_TRANSACTION',
        `a transaction covers one document group (one partition key); got ${[...keys].join(', ')}`,
      )
    const partition = partitionOf(ops[0].key[0], db.partitions)
    const body: WriteRequest = { db: dbName, partition, ops, principal }
    return cluster.toMaster<WriteResponse>(dbName, partition, '/_node/write', body, 'write')
  }

  /** PUT of one document by its whole key, with the If-Match / If-None-Match headers: the new ETag. */
  const put = async (
    dbName: string,
    tableName: string,
    key: string[],
    doc: Record<string, unknown>,
    ifMatchHeader: string | string[] | undefined,
    ifNoneMatchHeader: string | string[] | undefined,
    principal: string,
  ): Promise<string> => {
    table(dbName, tableName)
    const op: WriteRequestOp = { kind: 'put', table: tableName, key, doc }
    const ifMatch = condition(ifMatchHeader, 'If-Match')
    const ifNoneMatch = condition(ifNoneMatchHeader, 'If-None-Match')
    if (ifMatch !== undefined) op.ifMatch = ifMatch
    if (ifNoneMatch !== undefined) op.ifNoneMatch = ifNoneMatch
    return (await write(dbName, [op], principal)).etag
  }

  /** One document by its whole key, as its node stores it (JSON text passed through). */
  const readDocument = async (
    dbName: string,
    partition: number,
    path: string,
    from: 'master' | 'any',
  ): Promise<NodeDocument> => {
    const call = (url: string) => cluster.nodes.getDocument(url, path)
    return from === 'any'
      ? cluster.callAnyReplica(dbName, partition, call)
      : cluster.callMaster(dbName, partition, 'read', call)
  }

  return { table, write, put, readDocument }
}

export function documentRoutes(app: FastifyInstance, cluster: ClusterClient, actions: DocumentActions): void {
  const { table, write } = actions

  const read = async <T>(
    dbName: string,
    partition: number,
    path: string,
    body: ReadRequest | GroupRequest,
  ): Promise<T> =>
    body.from === 'any'
      ? cluster.toAnyReplica<T>(dbName, partition, path, body)
      : cluster.toMaster<T>(dbName, partition, path, body, 'read')

  app.put(
    '/:db/:table/*',
    {
      schema: {
        summary: 'Create or replace a document',
        params: keyParams,
        headers: {
          type: 'object',
          properties: { 'if-match': { type: 'string' }, 'if-none-match': { type: 'string' } },
        },
        body: documentSchema,
        response: {
          200: { type: 'object', properties: { etag: { type: 'string' } } },
          '4xx': errorSchema,
          '5xx': errorSchema,
        },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { db, table: tableName, key } = keyParts(req.raw.url ?? '')
      const doc = req.body as Record<string, unknown>
      const etag = await actions.put(
        db,
        tableName,
        key,
        doc,
        req.headers['if-match'],
        req.headers['if-none-match'],
        req.principal.name,
      )
      return reply.header('etag', quoted(etag)).send({ etag })
    },
  )

  app.delete(
    '/:db/:table/*',
    {
      schema: {
        summary: 'Delete a document',
        params: keyParams,
        headers: { type: 'object', properties: { 'if-match': { type: 'string' } } },
        response: {
          200: { type: 'object', properties: { etag: { type: 'string' } } },
          '4xx': errorSchema,
          '5xx': errorSchema,
        },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { db, table: tableName, key } = keyParts(req.raw.url ?? '')
      table(db, tableName)
      const op: WriteRequestOp = { kind: 'delete', table: tableName, key }
      const ifMatch = condition(req.headers['if-match'], 'If-Match')
      if (ifMatch !== undefined) op.ifMatch = ifMatch
      const { etag } = await write(db, [op], req.principal.name)
      return reply.send({ etag })
    },
  )

  app.get(
    '/:db/:table/*',
    {
      schema: {
        summary: 'Read a document, or list a document group (optionally by an index query)',
        params: keyParams,
        querystring: consistencyQuery,
        headers: { type: 'object', properties: { 'if-none-match': { type: 'string' } } },
        response: {
          200: {
            anyOf: [
              documentSchema,
              { type: 'object', properties: { documents: { type: 'array', items: documentViewSchema } } },
            ],
          },
          '4xx': errorSchema,
          '5xx': errorSchema,
        },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { db: dbName, table: tableName, key } = keyParts(req.raw.url ?? '')
      const { db, t } = table(dbName, tableName)
      const q = req.query as { consistency: 'master' | 'any'; query?: string; limit: number }
      const partition = partitionOf(key[0], db.partitions)
      if (key.length < t.key.length || q.query !== undefined) {
        if (key.length !== 1)
          throw new DbError(
            'BAD_REQUEST',
            `to list a document group give only the partition key; table ${tableName} has key (${t.key.join(', ')})`,
          )
        const body: GroupRequest = {
          db: dbName,
          partition,
          from: q.consistency,
          table: tableName,
          partitionKey: key[0],
          limit: q.limit,
        }
        const query = parseQuery(q.query)
        if (query !== undefined) body.query = query
        const res = await read<GroupResponse>(dbName, partition, '/_node/group', body)
        return reply.send({ documents: res.docs })
      }
      if (key.length > t.key.length)
        throw new DbError(
          'BAD_REQUEST',
          `table ${tableName} has key (${t.key.join(', ')}); got ${key.length} key parts`,
        )
      const ifNoneMatch = condition(req.headers['if-none-match'], 'If-None-Match')
      // The document's JSON text comes through as the node stored it (no parse, no re-serialization).
      const path = documentPath(dbName, partition, tableName, key, q.consistency)
      const doc = await actions.readDocument(dbName, partition, path, q.consistency)
      reply.header('etag', quoted(doc.etag))
      // A read from any replica says how stale it may be: the replica's applied generation.scn and
      // how long ago its node last heard back from the log (docs/database.md, "Master lease").
      if (q.consistency === 'any') {
        if (doc.applied !== undefined) void reply.header('x-cortado-applied', doc.applied)
        if (doc.logAgeMs !== undefined) void reply.header('x-cortado-log-age-ms', doc.logAgeMs)
      }
      if (ifNoneMatch !== undefined && (ifNoneMatch === '*' || ifNoneMatch === doc.etag)) return reply.code(304).send()
      return reply.type('application/json; charset=utf-8').send(doc.text)
    },
  )

  app.post(
    '/:db/_multiget',
    {
      schema: {
        summary: 'Read many documents by key, across partitions',
        params: { type: 'object', properties: { db: { type: 'string' } } },
        querystring: consistencyQuery,
        body: {
          type: 'object',
          required: ['keys'],
          properties: {
            keys: {
              type: 'array',
              minItems: 1,
              maxItems: 1000,
              items: {
                type: 'object',
                required: ['table', 'key'],
                properties: {
                  table: { type: 'string' },
                  key: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
                },
              },
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { documents: { type: 'array', items: { anyOf: [documentViewSchema, { type: 'null' }] } } },
          },
          '4xx': errorSchema,
          '5xx': errorSchema,
        },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const dbName = (req.params as { db: string }).db
      const db = cluster.database(dbName)
      const { keys } = req.body as { keys: { table: string; key: string[] }[] }
      const q = req.query as { consistency: 'master' | 'any' }
      for (const k of keys) table(dbName, k.table)
      // One request per partition, in parallel; answers put back in the order asked.
      const byPartition = new Map<number, number[]>()
      keys.forEach((k, i) => {
        const p = partitionOf(k.key[0], db.partitions)
        const list = byPartition.get(p) ?? []
        list.push(i)
        byPartition.set(p, list)
      })
      const out: (DocumentView | null)[] = new Array<DocumentView | null>(keys.length).fill(null)
      await Promise.all(
        [...byPartition].map(async ([partition, indexes]) => {
          const res = await read<ReadResponse>(dbName, partition, '/_node/read', {
            db: dbName,
            partition,
            from: q.consistency,
            keys: indexes.map((i) => keys[i]),
          })
          indexes.forEach((i, j) => (out[i] = res.docs[j]))
        }),
      )
      return reply.send({ documents: out })
    },
  )

  app.post(
    '/:db/_transaction',
    {
      schema: {
        summary: 'Write several documents of one document group (any tables) atomically',
        params: { type: 'object', properties: { db: { type: 'string' } } },
        body: {
          type: 'object',
          required: ['operations'],
          properties: {
            operations: {
              type: 'array',
              minItems: 1,
              maxItems: 1000,
              items: {
                type: 'object',
                required: ['op', 'table', 'key'],
                properties: {
                  op: { type: 'string', enum: ['put', 'delete'] },
                  table: { type: 'string' },
                  key: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
                  doc: documentSchema,
                  ifMatch: { type: 'string' },
                  ifNoneMatch: { type: 'string' },
                },
              },
            },
          },
        },
        response: {
          200: { type: 'object', properties: { etag: { type: 'string' } } },
          '4xx': errorSchema,
          '5xx': errorSchema,
        },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const dbName = (req.params as { db: string }).db
      const { operations } = req.body as {
        operations: {
          op: 'put' | 'delete'
          table: string
          key: string[]
          doc?: Record<string, unknown>
          ifMatch?: string
          ifNoneMatch?: string
        }[]
      }
      const ops: WriteRequestOp[] = operations.map((o) => {
        table(dbName, o.table)
        if (o.op === 'put' && o.doc === undefined)
          throw new DbError('BAD_REQUEST', `put of ${o.table}/${o.key.join('/')} has no doc`)
        const op: WriteRequestOp = { kind: o.op, table: o.table, key: o.key }
        if (o.doc !== undefined) op.doc = o.doc
        const ifMatch = condition(o.ifMatch, 'ifMatch')
        const ifNoneMatch = condition(o.ifNoneMatch, 'ifNoneMatch')
        if (ifMatch !== undefined) op.ifMatch = ifMatch
        if (ifNoneMatch !== undefined) op.ifNoneMatch = ifNoneMatch
        return op
      })
      const { etag } = await write(dbName, ops, req.principal.name)
      return reply.send({ etag })
    },
  )
}
