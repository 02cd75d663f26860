// Admin routes under /_admin/: databases (create, read, list), schema versions, the placement (for
// client libraries that route their own requests), a planned mastership move, rebalancing masters
// by write load (with a dry run), and the cluster view (nodes, the controller, and every
// partition's replicas with their applied (generation, scn)). The router writes definitions and
// requests; placements are the controller's alone (src/db/controller/), and the routes wait until
// it has acted.
import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { type Logger } from '../../util/log.ts'
import { type PartitionLoad, planMasterMoves } from '../controller/balance.ts'
import { DbError } from '../errors.ts'
import { ensureTopic } from '../kafka-topics.ts'
import { partitionKey } from '../metadata/metadata-log.ts'
import {
  type DatabaseInfo,
  type PartitionInfo,
  parseDatabase,
  type Placement,
  withSchemaVersion,
} from '../metadata/model.ts'
import { type NodeStatus } from '../node-api.ts'
import { type ClusterClient } from './cluster-client.ts'

export interface AdminOptions {
  bootstrap: string[]
  /** TLS and SASL for the connections to Kafka (default: plaintext, no authentication). */
  security?: KafkaSecurity
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

const rebalanceQuery = {
  type: 'object',
  properties: {
    db: { type: 'string', description: 'Only move masters of this database (loads still count every database)' },
    dryRun: { type: 'string', enum: ['true', 'false'], description: 'POST only: plan without applying' },
  },
}
const rebalanceResponse = {
  type: 'object',
  properties: {
    dryRun: { type: 'boolean' },
    requested: { type: 'boolean', description: 'A rebalance command was written for the controller' },
    measuredBy: {
      type: ['object', 'null'],
      properties: { controller: { type: 'string' }, epoch: { type: 'integer' } },
      description: 'The controller whose measured write rates the plan uses (null: none measured yet)',
    },
    settings: {
      type: 'object',
      properties: {
        loadImbalanceFactor: { type: 'number' },
        loadMinWritesPerSec: { type: 'number' },
        maxConcurrentMoves: { type: 'integer' },
      },
    },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          node: { type: 'string' },
          before: { type: 'number', description: 'Writes/s of the partitions it masters, now' },
          after: { type: 'number', description: 'The same once the moves are done' },
        },
      },
    },
    moves: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          db: { type: 'string' },
          partition: { type: 'integer' },
          from: { type: 'string' },
          to: { type: 'string' },
          writesPerSec: { type: 'number' },
        },
      },
    },
    unmeasured: {
      type: 'array',
      items: { type: 'string' },
      description: 'Mastered partitions without a measured rate yet (the controller waits for them)',
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
    await ensureTopic(
      options.bootstrap,
      { name: db.topic, partitions: db.partitions, replicationFactor: options.replicationFactor, configs },
      options.security,
    )
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
    '/_admin/placement',
    {
      schema: {
        summary: "Every partition's master and replicas, the nodes' URLs and the tables' keys (for client libraries)",
      },
    },
    async (_req: FastifyRequest, reply: FastifyReply) => {
      const view = metadata.view
      const placement: Placement = {
        nodes: [...view.nodes.values()].map((n) => ({ id: n.id, url: n.url })),
        databases: [...view.databases.values()].map((db) => ({
          name: db.name,
          partitions: db.partitions,
          tables: Object.fromEntries(Object.entries(db.tables).map(([name, t]) => [name, { key: t.key }])),
        })),
        partitions: [...view.partitions.values()],
      }
      return reply.send(placement)
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

  // The plan the controller would carry out now for `rebalance` (balance.ts, with the rates and
  // settings the active controller publishes in the `load` record, and the nodes' reported
  // applied scns for which replicas are caught up). Cooldowns are not applied: the command ignores
  // them too. Measured a moment apart, the controller's own plan may differ slightly.
  const rebalancePlan = async (db: string | undefined) => {
    if (db !== undefined) cluster.database(db)
    const statuses = await cluster.statuses()
    const load = metadata.view.load
    const settings = load?.settings ?? {
      loadImbalanceFactor: 1.5,
      loadMinWritesPerSec: 20,
      caughtUpScns: 100,
      maxConcurrentMoves: 4,
    }
    const view = metadata.view
    const up = (id: string | null) => id !== null && (statuses.get(id) ?? null) !== null
    const usable = [...view.nodes.keys()].filter((id) => up(id) && !view.decommissioned.has(id)).sort()
    const applied = (id: string | null, p: PartitionLoad) =>
      id === null ? undefined : statuses.get(id)?.replicas.find((x) => x.db === p.db && x.partition === p.partition)
    let busy = 0
    const unmeasured: string[] = []
    const partitions: PartitionLoad[] = [...view.partitions].map(([k, info]) => {
      const p = info as PartitionInfo & { move?: unknown; handover?: unknown }
      const inProgress = p.move !== undefined || p.handover !== undefined
      if (inProgress) busy++
      const rate = load?.rates[k]
      if (rate === undefined && up(p.master)) unmeasured.push(k)
      return {
        db: p.db,
        partition: p.partition,
        master: p.master,
        replicas: p.replicas,
        rate: rate ?? 0,
        movable: (db === undefined || p.db === db) && !inProgress && up(p.master),
      }
    })
    const caughtUp = (p: PartitionLoad, node: string) => {
      const r = applied(node, p)
      const m = applied(p.master, p)
      if (r === undefined || m === undefined || r.role === 'bootstrapping' || r.role === 'error') return false
      if (r.applied.generation !== m.applied.generation) return r.applied.generation > m.applied.generation
      return m.applied.scn - r.applied.scn <= settings.caughtUpScns
    }
    const limit = unmeasured.length > 0 ? 0 : Math.max(0, settings.maxConcurrentMoves - busy)
    const plan = planMasterMoves(usable, partitions, caughtUp, limit, settings)
    const round = (x: number) => Math.round(x * 10) / 10
    return {
      measuredBy: load === null ? null : { controller: load.controller, epoch: load.epoch },
      settings: {
        loadImbalanceFactor: settings.loadImbalanceFactor,
        loadMinWritesPerSec: settings.loadMinWritesPerSec,
        maxConcurrentMoves: settings.maxConcurrentMoves,
      },
      nodes: usable.map((node) => ({ node, before: round(plan.before[node]), after: round(plan.after[node]) })),
      moves: plan.moves.map((m) => ({
        db: m.db,
        partition: m.partition,
        from: m.from,
        to: m.to,
        writesPerSec: round(m.rate),
      })),
      unmeasured,
    }
  }

  const rebalanceArgs = (req: FastifyRequest) => {
    const q = req.query as Record<string, unknown>
    const unknown = Object.keys(q).filter((k) => k !== 'db' && k !== 'dryRun')
    if (unknown.length > 0)
      throw new DbError('BAD_REQUEST', `unknown parameter ${unknown.join(', ')} (expected db and dryRun)`)
    if (q.dryRun !== undefined && q.dryRun !== 'true' && q.dryRun !== 'false')
      throw new DbError('BAD_REQUEST', 'dryRun must be true or false')
    return { db: q.db as string | undefined, dryRun: q.dryRun === 'true' }
  }

  app.get(
    '/_admin/rebalance',
    {
      schema: {
        summary: 'Dry run: the mastership moves a rebalance by write load would make, and per node load before → after',
        querystring: { type: 'object', properties: { db: rebalanceQuery.properties.db } },
        response: { 200: rebalanceResponse, '4xx': errorSchema },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      if ((req.query as Record<string, unknown>).dryRun !== undefined)
        throw new DbError('BAD_REQUEST', 'dryRun is for POST (GET is always a dry run)')
      const { db } = rebalanceArgs(req)
      return reply.send({ dryRun: true, requested: false, ...(await rebalancePlan(db)) })
    },
  )

  app.post(
    '/_admin/rebalance',
    {
      schema: {
        summary: 'Rebalance masters by write load now (the controller also does it on its own); dryRun=true only plans',
        querystring: rebalanceQuery,
        response: { 200: rebalanceResponse, 202: rebalanceResponse, '4xx': errorSchema },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const { db, dryRun } = rebalanceArgs(req)
      const plan = await rebalancePlan(db)
      if (dryRun) return reply.send({ dryRun: true, requested: false, ...plan })
      // The controller plans again with what it knows then, and carries the moves out.
      await metadata.put(`command/${randomUUID()}`, { type: 'rebalance', ...(db === undefined ? {} : { db }) })
      options.log.info('rebalance requested', { db: db ?? null, moves: plan.moves.length })
      return reply.code(202).send({ dryRun: false, requested: true, ...plan })
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
        sessionMs: statuses.get(n.id)?.sessionMs ?? null,
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
