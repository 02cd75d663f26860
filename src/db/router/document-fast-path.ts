// The router's fast path for the two requests that carry nearly all of a database's traffic: PUT
// and GET of one document by its whole key, with no query string. It answers them straight from
// node's HTTP request, without fastify's routing, hooks, schema validation and reply pipeline
// (about a third of the router's CPU per request, docs/database.md "Performance"). It uses the
// same actions as the fastify routes (routes-documents.ts), the same JSON body parser (fastify's),
// and refuses alike (refusals.ts), so a client cannot tell which path answered. Everything else,
// and any request the fast path is not sure of (a query string, a content type or length it does
// not take, a document-group listing), goes to fastify untouched: the fastify routes stay the
// definition of the API and of its OpenAPI document.
import { type IncomingMessage, type ServerResponse } from 'node:http'
import { type FastifyError } from 'fastify'
import { type Principal, type Role } from '../access/users.ts'
import { DbError } from '../errors.ts'
import { partitionOf } from '../metadata/model.ts'
import { refusalHeaders, toDbError } from './refusals.ts'
import { condition, type DocumentActions, documentPath, keyParts, quoted } from './routes-documents.ts'

/** fastify's JSON body parser (app.getDefaultJsonParser): prototype poisoning refused, as on its routes. */
export type JsonBodyParser = (req: unknown, body: string, done: (error: Error | null, value?: unknown) => void) => void

export interface FastPathOptions {
  actions: DocumentActions
  parseJson: JsonBodyParser
  /** Largest body taken; a larger announced length goes to fastify, which refuses it. */
  maxBodyBytes: number
  /** The request's principal, if it may take `role` on the database (else a 401 or 403 DbError), as the fastify routes check it. */
  authorize(req: IncomingMessage, db: string, role: Role): Promise<Principal>
  /** The same at once, or undefined when that takes a password check (AccessControl.authenticateNow). */
  authorizeNow(req: IncomingMessage, db: string, role: Role): Principal | undefined
  /** Counts an answer (the same metrics as fastify's routes). */
  onAnswer(method: string, status: number, seconds: number): void
  /** An unexpected failure, answered INTERNAL. */
  onInternalError(method: string, url: string, error: unknown): void
}

/** The fastify route the fast path stands in for, as its metrics name it. */
export const FAST_PATH_ROUTE = '/:db/:table/*'

/** find-my-way's default limit on a path parameter: longer db or table names go to fastify, which refuses them. */
const MAX_PARAM_LENGTH = 100

const JSON_CONTENT_TYPE = /^application\/json\s*(?:;|$)/

/**
 * Returns a handler that answers a fast-path request and returns true, or returns false having
 * touched nothing (the caller hands the request to fastify).
 */
export function documentFastPath(o: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const answer = (
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    status: number,
    headers: Record<string, string>,
    body: string,
  ) => {
    if (res.headersSent || res.destroyed) return
    if (body.length > 0) {
      headers['content-type'] = 'application/json; charset=utf-8'
      headers['content-length'] = String(Buffer.byteLength(body))
    }
    res.writeHead(status, headers)
    res.end(body)
    o.onAnswer(req.method ?? '', status, (performance.now() - started) / 1000)
  }

  const refuse = (req: IncomingMessage, res: ServerResponse, started: number, error: unknown) => {
    const e = toDbError(error as FastifyError | DbError)
    if (e.code === 'INTERNAL') o.onInternalError(req.method ?? '', req.url ?? '', error)
    answer(req, res, started, e.status, refusalHeaders(e), JSON.stringify(e.toJSON()))
  }

  const put = (req: IncomingMessage, res: ServerResponse, started: number) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    // A client gone mid-body has nobody to answer.
    req.on('error', () => {})
    req.on('end', () => {
      const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8')
      o.parseJson(req, text, (error, doc) => {
        if (error !== null) return refuse(req, res, started, error)
        if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
          return refuse(
            req,
            res,
            started,
            new DbError('BAD_REQUEST', 'invalid request: body must be object', ['body must be object']),
          )
        void (async () => {
          const { db, table, key } = keyParts(req.url ?? '')
          const principal = await o.authorize(req, db, 'write')
          const h = req.headers
          const etag = await o.actions.put(
            db,
            table,
            key,
            doc as Record<string, unknown>,
            h['if-match'],
            h['if-none-match'],
            principal.name,
          )
          answer(req, res, started, 200, { etag: quoted(etag) }, JSON.stringify({ etag }))
        })().catch((e: unknown) => refuse(req, res, started, e))
      })
    })
  }

  const get = (req: IncomingMessage, res: ServerResponse, started: number): boolean => {
    let parts: ReturnType<typeof keyParts>
    let partitions: number
    try {
      parts = keyParts(req.url ?? '')
      // A password not checked yet: fastify's route checks it (off the fast path, once per client).
      if (o.authorizeNow(req, parts.db, 'read') === undefined) return false
      const { db, t } = o.actions.table(parts.db, parts.table)
      // A document-group listing (fewer key parts) or too many parts: fastify's route answers.
      if (parts.key.length !== t.key.length) return false
      partitions = db.partitions
    } catch (e) {
      refuse(req, res, started, e)
      return true
    }
    const { db, table, key } = parts
    void (async () => {
      const ifNoneMatch = condition(req.headers['if-none-match'], 'If-None-Match')
      const partition = partitionOf(key[0], partitions)
      const doc = await o.actions.readDocument(
        db,
        partition,
        documentPath(db, partition, table, key, 'master'),
        'master',
      )
      if (ifNoneMatch !== undefined && (ifNoneMatch === '*' || ifNoneMatch === doc.etag))
        return answer(req, res, started, 304, { etag: quoted(doc.etag) }, '')
      answer(req, res, started, 200, { etag: quoted(doc.etag) }, doc.text)
    })().catch((e: unknown) => refuse(req, res, started, e))
    return true
  }

  return (req, res) => {
    const url = req.url
    const method = req.method
    if (url === undefined || (method !== 'GET' && method !== 'PUT')) return false
    if (url.includes('?') || url.startsWith('/_admin/')) return false
    // /{db}/{table}/{key…}
    const dbEnd = url.indexOf('/', 1)
    const tableEnd = dbEnd < 0 ? -1 : url.indexOf('/', dbEnd + 1)
    if (tableEnd < 0 || dbEnd - 1 > MAX_PARAM_LENGTH || tableEnd - dbEnd - 1 > MAX_PARAM_LENGTH) return false
    const started = performance.now()
    if (method === 'GET') return get(req, res, started)
    const type = req.headers['content-type']
    const length = Number(req.headers['content-length'])
    if (type === undefined || !JSON_CONTENT_TYPE.test(type) || req.headers['transfer-encoding'] !== undefined)
      return false
    if (!Number.isSafeInteger(length) || length <= 0 || length > o.maxBodyBytes) return false
    put(req, res, started)
    return true
  }
}
