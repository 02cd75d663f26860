// Admin routes under /_admin/: databases (create, read, list), schema versions, a planned
// mastership move, and the cluster view (nodes, the controller, and every partition's replicas
// with their applied (generation, scn)). The router writes definitions and requests; placements
// are the controller's alone (src/db/controller/), and the routes wait until it has acted.
import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { type Logger } from '../../util/log.ts'
import { DbError } from '../errors.ts'
import { ensureTopic } from '../kafka-topics.ts'
import { partitionKey } from '../metadata/metadata-log.ts'
import { type DatabaseInfo, parseDatabase, withSchemaVersion } from '../metadata/model.ts'
import { type NodeStatus } from '../node-api.ts'
import { type ClusterClient } from './cluster-client.ts'

export interface AdminOptions {
  bootstrap: string[]
  /** Replication factor of new replication topics (1 on the embedded broker, 3 on Kafka). */
  replicationFactor: number
  log: Logger
  /** How long admin calls wait for the cluster to reflect a change. Default 20 s. */
  settleMs?: number
}

const errorSchema = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
}
const avroSchema = { type: 'object', additionalProperties: true, description: 'An Avro record schema' }
const databaseBody = {
  type: 'object',
  required: ['partitions', 'tables'],
  properties: {
    partitions: { type: 'integer', minimum: 1, maximum: 1024 },
    replicas: { type: 'integer', minimum: 1, maximum: 7, default: 3 },
    tables: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['key', 'schema'],
        properties: {
          key: { type: 'array', items: { type: 'string' }, minItems: 1 },
          schema: avroSchema,
          indexes: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
}

/** True when every partition of `db` is placed and has its assigned master taking writes. */
function mastersReady(cluster: ClusterClient, db: string, statuses: Map<string, NodeStatus | null>): boolean {
  const info = cluster.metadata.view.databases.get(db)
  if (info === undefined) return false
  for (let p = 0; p < info.partitions; p++) {
    const part = cluster.metadata.view.partitions.get(partitionKey(db, p))
    if (part === undefined) return false
    const r =
      part.master === null
        ? undefined
        : statuses.get(part.master)?.replicas.find((x) => x.db === db && x.partition === p)
    if (r === undefined || r.role !== 'master' || r.masterGeneration !== part.generation) return false
  }
  return true
}

/**
 * Whether a create request repeats an existing database's definition: same partitions, replicas
 * and tables, each with the same key and indexes and a schema that is one of its versions.
 */
function sameDefinition(existing: DatabaseInfo, db: DatabaseInfo): boolean {
  if (existing.partitions !== db.partitions || existing.replicas !== db.replicas || existing.topic !== db.topic)
    return false
  const names = Object.keys(db.tables)
  if (names.length !== Object.keys(existing.tables).length) return false
  return names.every((name) => {
    if (!Object.hasOwn(existing.tables, name)) return false
    const [a, b] = [existing.tables[name], db.tables[name]]
    return (
      isDeepStrictEqual(a.key, b.key) &&
      isDeepStrictEqual([...a.indexes].sort(), [...b.indexes].sort()) &&
      a.schemas.some((s) => isDeepStrictEqual(s, b.schemas[0]))
    )
  })
}

export function adminRoutes(app: FastifyInstance, cluster: ClusterClient, options: AdminOptions): void {
  const settleMs = options.settleMs ?? 20_000
  const metadata = cluster.metadata

  const describe = (db: DatabaseInfo) => ({
    ...db,
    placement: Array.from({ length: db.partitions }, (_, p) => cluster.partition(db.name, p)),
  })

  // Admin changes read the metadata view and write it back: one at a time, so concurrent requests
  // do not overwrite each other (two schema versions both numbered n, one of them lost; two masters
  // moved to under the same generation).
  let chain: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(change: () => Promise<T>): Promise<T> => {
    const run = chain.then(change)
    chain = run.catch(() => undefined)
    return run
  }

  app.put(
    '/_admin/databases/:db',
    {
      schema: {
        summary: 'Create a database',
        body: databaseBody,
        response: { '4xx': errorSchema, '5xx': errorSchema },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const name = (req.params as { db: string }).db
      const db = parseDatabase(name, req.body)
      const existing = await exclusive(async () => {
        const existing = metadata.view.databases.get(name)
        if (existing !== undefined) {
          if (sameDefinition(existing, db)) return existing
          throw new DbError(
            'DATABASE_EXISTS',
            `database ${name} exists with a different definition (add schema versions with POST /_admin/databases/${name}/tables/{table}/schemas)`,
          )
        }
        await create(db)
        return undefined
      })
      if (existing !== undefined) return reply.code(200).send(describe(existing))
      const ready = await cluster.waitUntil((s) => mastersReady(cluster, name, s), settleMs)
      return reply.code(ready ? 201 : 202).send(describe(db))
    },
  )

  // The controller places the database once its definition is in the metadata log; the
  // request waits for every partition to have a master taking writes.
  const create = async (db: DatabaseInfo) => {
    const name = db.name
    const statuses = await cluster.statuses()
    const live = [...metadata.view.nodes.values()].filter((n) => statuses.get(n.id) !== null)
    if (live.length < db.replicas)
      throw new DbError(
        'NOT_ENOUGH_NODES',
        `database ${name} needs ${db.replicas} storage nodes, ${live.length} are up`,
      )
    const configs: Record<string, string> = {
      'cleanup.policy': 'delete',
      'retention.ms': '-1',
      'retention.bytes': '-1',
    }
    if (options.replicationFactor >= 3)
      Object.assign(configs, { 'min.insync.replicas': '2', 'unclean.leader.election.enable': 'false' })
    await ensureTopic(options.bootstrap, {
      name: db.topic,
      partitions: db.partitions,
      replicationFactor: options.replicationFactor,
      configs,
    })
    await metadata.put(`db/${name}`, db)
    options.log.info('database created', {
      db: name,
      partitions: db.partitions,
      replicas: db.replicas,
      topic: db.topic,
    })
  }

  app.get(
    '/_admin/databases',
    { schema: { summary: 'List databases' } },
    async (_req: FastifyRequest, reply: FastifyReply) => {
      return reply.send({ databases: [...metadata.view.databases.values()].map(describe) })
    },
  )

  app.get(
    '/_admin/databases/:db',
    { schema: { summary: 'Describe a database', response: { '4xx': errorSchema } } },
    async (req: FastifyRequest, reply: FastifyReply) => {
      return reply.send(describe(cluster.database((req.params as { db: string }).db)))
    },
  )

  app.post(
    '/_admin/databases/:db/tables/:table/schemas',
    {
      schema: {
        summary: 'Add a schema version to a table (must be backward compatible)',
        body: avroSchema,
        response: { '4xx': errorSchema },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { db: name, table: tableName } = req.params as { db: string; table: string }
      const { offset, updated } = await exclusive(async () => {
        const db = cluster.database(name)
        const table = Object.hasOwn(db.tables, tableName) ? db.tables[tableName] : undefined
        if (table === undefined) throw new DbError('UNKNOWN_TABLE', `database ${name} has no table ${tableName}`)
        const updated: DatabaseInfo = {
          ...db,
          tables: { ...db.tables, [tableName]: withSchemaVersion(table, req.body) },
        }
        return { offset: await metadata.put(`db/${name}`, updated), updated }
      })
      // Answer once every live node validates against the new version.
      await cluster.waitUntil(
        (s) => [...s.values()].every((st) => st === null || st.metadataOffset >= offset),
        settleMs,
      )
      return reply.code(201).send({ table: tableName, version: updated.tables[tableName].schemas.length })
    },
  )

  app.post(
    '/_admin/databases/:db/partitions/:partition/master',
    {
      schema: {
        summary: 'Move the mastership of a partition to another of its replicas (planned handoff)',
        body: { type: 'object', required: ['node'], properties: { node: { type: 'string' } } },
        response: { '4xx': errorSchema, '5xx': errorSchema },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { db: name, partition: text } = req.params as { db: string; partition: string }
      const partition = Number(text)
      if (!Number.isInteger(partition)) throw new DbError('BAD_REQUEST', 'partition must be an integer')
      const target = (req.body as { node: string }).node
      const next = await exclusive(async () => {
        cluster.database(name)
        const current = cluster.partition(name, partition)
        if (!current.replicas.includes(target))
          throw new DbError(
            'BAD_REQUEST',
            `node ${target} holds no replica of partition ${partition} (replicas: ${current.replicas.join(', ')})`,
          )
        if (current.master === target) return null
        // The controller makes the move (it alone writes placements, under its epoch).
        await metadata.put(`command/${randomUUID()}`, { type: 'move-master', db: name, partition, node: target })
        options.log.info('mastership move requested', { db: name, partition, from: current.master, to: target })
        return current
      })
      if (next === null) return reply.send(cluster.partition(name, partition))
      const moved = () => {
        const p = metadata.view.partitions.get(partitionKey(name, partition))
        return p !== undefined && p.master === target && p.generation > next.generation
      }
      const ready = await cluster.waitUntil((s) => moved() && mastersReady(cluster, name, s), settleMs)
      return reply.code(ready ? 200 : 202).send(cluster.partition(name, partition))
    },
  )

  app.post(
    '/_admin/nodes/:node/decommission',
    {
      schema: {
        summary: 'Move every replica off a node (the controller bootstraps replacements first)',
        response: { '4xx': errorSchema },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const id = (req.params as { node: string }).node
      if (!metadata.view.nodes.has(id)) throw new DbError('UNKNOWN_NODE', `no node ${id}`)
      await metadata.put(`decommission/${id}`, { at: Date.now() })
      options.log.info('node decommission requested', { node: id })
      return reply.code(202).send({ node: id, decommissioning: true })
    },
  )

  app.delete(
    '/_admin/nodes/:node/decommission',
    {
      schema: { summary: 'Cancel a decommission (the node may hold replicas again)', response: { '4xx': errorSchema } },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const id = (req.params as { node: string }).node
      if (!metadata.view.nodes.has(id)) throw new DbError('UNKNOWN_NODE', `no node ${id}`)
      await metadata.put(`decommission/${id}`, null)
      return reply.send({ node: id, decommissioning: false })
    },
  )

  app.get(
    '/_admin/cluster',
    { schema: { summary: 'Nodes, and every partition with its master and replicas' } },
    async (_req: FastifyRequest, reply: FastifyReply) => {
      const statuses = await cluster.statuses()
      const nodes = [...metadata.view.nodes.values()].map((n) => ({
        id: n.id,
        pid: n.pid,
        rack: n.rack,
        url: n.url,
        status: statuses.get(n.id) === null ? 'down' : 'up',
        decommissioning: metadata.view.decommissioned.has(n.id),
        replicas: statuses.get(n.id)?.replicas.length ?? null,
      }))
      const databases = [...metadata.view.databases.values()].map((db) => ({
        name: db.name,
        topic: db.topic,
        partitions: Array.from({ length: db.partitions }, (_, p) => {
          const info = cluster.partition(db.name, p)
          return {
            partition: p,
            generation: info.generation,
            master: info.master,
            replicas: info.replicas.map((id) => {
              const r = statuses.get(id)?.replicas.find((x) => x.db === db.name && x.partition === p)
              return {
                node: id,
                role: r?.role ?? 'offline',
                applied: r?.applied ?? null,
                checkpointOffset: r?.checkpointOffset ?? null,
                documents: r?.documents ?? null,
              }
            }),
          }
        }),
      }))
      return reply.send({ controller: metadata.view.controller, nodes, databases })
    },
  )
}
