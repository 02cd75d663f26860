// GET /{db}/_changes: the database's committed changes (src/db/changes/), as NDJSON long polling
// or as Server-Sent Events, from a resume token (or the beginning), optionally of one table or
// of one document group (one partition key: only its partition is read).
//   ?since=<token>          continue after the event that carried it (SSE: Last-Event-ID too)
//   ?table=<t>              only this table's operations
//   ?group=<partition key>  only this document group's operations
//   ?feed=longpoll|sse      default longpoll, or sse when the request accepts text/event-stream
//   ?limit=n, ?timeout=ms   long polling: answer with the events up to the end of the log as it
//                           was when the request came (timeout=0 included), or, if there is
//                           none, the first to come within the timeout; about n at most (a
//                           transaction is never split)
// Long polling answers NDJSON: one event per line, then {"token"} (where to continue, also when
// no event came). SSE sends each event with its token as the event id, and a comment line every
// 15 s so proxies keep the stream open.
import { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { type Logger } from '../../util/log.ts'
import {
  ChangeFeed,
  type ChangeEvent,
  decodeToken,
  encodeToken,
  eventsOf,
  type Positions,
} from '../changes/change-feed.ts'
import { type CommittedTransaction } from '../changes/change-decoder.ts'
import { DbError } from '../errors.ts'
import { type DatabaseInfo, partitionOf } from '../metadata/model.ts'
import { type ClusterClient } from './cluster-client.ts'

export interface ChangesOptions {
  bootstrap: string[]
  security?: KafkaSecurity
  log: Logger
}

interface ChangesQuery {
  since?: string
  table?: string
  group?: string
  feed?: 'longpoll' | 'sse'
  limit: number
  timeout: number
}

const HEARTBEAT_MS = 15_000
/** A long poll answers with what it read after this long, even if it has not read up to the end. */
const MAX_CATCH_UP_MS = 60_000

export function changesRoutes(app: FastifyInstance, cluster: ClusterClient, options: ChangesOptions): void {
  app.get(
    '/:db/_changes',
    {
      schema: {
        summary: "The database's committed changes, in commit order per partition (NDJSON long polling or SSE)",
        querystring: {
          type: 'object',
          properties: {
            since: { type: 'string', description: 'Resume token of the last event seen' },
            table: { type: 'string' },
            group: { type: 'string', description: 'A partition key: only its document group' },
            feed: { type: 'string', enum: ['longpoll', 'sse'] },
            limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
            timeout: { type: 'integer', minimum: 0, maximum: 120000, default: 30000 },
          },
        },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const db = cluster.database((req.params as { db: string }).db)
      const q = req.query as ChangesQuery
      if (q.table !== undefined && !Object.hasOwn(db.tables, q.table))
        throw new DbError('UNKNOWN_TABLE', `database ${db.name} has no table ${q.table}`)
      const lastEventId = req.headers['last-event-id']
      const since = q.since ?? (typeof lastEventId === 'string' ? lastEventId : undefined)
      const positions = since === undefined ? new Map() : decodeToken(since, db)
      const sse = q.feed === 'sse' || (q.feed === undefined && /text\/event-stream/.test(req.headers.accept ?? ''))
      const stream = { db, positions, table: q.table, group: q.group }
      if (sse) return serveEvents(req, reply, stream, options)
      return reply.type('application/x-ndjson').send(await longPoll(stream, q.limit, q.timeout, options))
    },
  )
}

interface Stream {
  db: DatabaseInfo
  positions: Positions
  table?: string
  group?: string
}

function feedOf(
  s: Stream,
  options: ChangesOptions,
  onTransactions: (t: CommittedTransaction[]) => void | Promise<void>,
): ChangeFeed {
  return new ChangeFeed({
    bootstrap: options.bootstrap,
    security: options.security,
    db: s.db,
    partitions: s.group === undefined ? undefined : [partitionOf(s.group, s.db.partitions)],
    from: s.positions,
    onTransactions,
    onError: (e) => options.log.warn('change stream read error', { db: s.db.name, error: e.message }),
  })
}

function select(s: Stream, t: CommittedTransaction): ChangeEvent[] {
  const events = eventsOf(t, s.positions, s.table)
  return s.group === undefined ? events : events.filter((e) => e.key[0] === s.group)
}

/** Everything up to the log's end as of now, else the first events within `timeoutMs`: NDJSON. */
async function longPoll(s: Stream, limit: number, timeoutMs: number, options: ChangesOptions): Promise<string> {
  const events: ChangeEvent[] = []
  // Past the limit, the token stays at the last event taken: the next request continues there.
  let token = encodeToken(s.positions)
  const feed = feedOf(s, options, (transactions) => {
    for (const t of transactions) {
      if (events.length >= limit) return
      events.push(...select(s, t))
      token = encodeToken(s.positions)
    }
  })
  try {
    const ends = await feed.endOffsets()
    const started = Date.now()
    // The timeout is how long to wait for new events once everything there was has been read;
    // reading that takes what it takes (bounded, should Kafka stop answering).
    let caughtUpAt: number | undefined
    for (;;) {
      if (caughtUpAt === undefined && feed.readUpTo(ends)) caughtUpAt = Date.now()
      if (events.length >= limit) break
      if (caughtUpAt !== undefined && (events.length > 0 || Date.now() - caughtUpAt >= timeoutMs)) break
      if (caughtUpAt === undefined && Date.now() - started >= MAX_CATCH_UP_MS) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  } finally {
    await feed.close()
  }
  return events.map((e) => JSON.stringify(e) + '\n').join('') + JSON.stringify({ token }) + '\n'
}

/** Server-Sent Events until the client goes away. */
function serveEvents(req: FastifyRequest, reply: FastifyReply, s: Stream, options: ChangesOptions): FastifyReply {
  const res = reply.raw
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  })
  res.write(': cortado change stream\n\n')
  const feed = feedOf(s, options, (transactions) => {
    let full = false
    for (const t of transactions)
      for (const e of select(s, t)) full = !res.write(`id: ${e.token}\nevent: change\ndata: ${JSON.stringify(e)}\n\n`)
    // A slow client: the partition is read on once its buffer has drained (or it went away).
    if (full && !res.destroyed)
      return new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done)
          res.off('close', done)
          resolve()
        }
        res.on('drain', done)
        res.on('close', done)
      })
  })
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS)
  req.raw.once('close', () => {
    clearInterval(heartbeat)
    void feed.close()
  })
  return reply.hijack()
}
