// The router: a stateless HTTP front (fastify) that follows the cluster metadata, maps
// /{db}/{table}/{partitionKey}… to a partition and forwards to its master or a replica. Routes are
// schema-first; the OpenAPI document (GET /openapi.json) is generated from those schemas.
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify'
import { Counter, Histogram, type Registry } from 'prom-client'
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { type Logger } from '../../util/log.ts'
import { AccessControl } from '../access/access-control.ts'
import { hashPassword, type UserRecord } from '../access/users.ts'
import { DbError } from '../errors.ts'
import { MetadataLog } from '../metadata/metadata-log.ts'
import { ClusterClient } from './cluster-client.ts'
import { accessRoutes, requireAccess } from './routes-access.ts'
import { changesRoutes } from './routes-changes.ts'
import { adminRoutes } from './routes-admin.ts'
import { documentFastPath, FAST_PATH_ROUTE, type JsonBodyParser } from './document-fast-path.ts'
import { refusalHeaders, toDbError } from './refusals.ts'
import { documentActions, documentRoutes } from './routes-documents.ts'

/** Authentication of the API (src/db/access/). */
export interface RouterAccess {
  /** false: every request is anonymous and may do everything (`--insecure`). */
  required: boolean
  /** A cluster admin created when the cluster has no user at all (the first start). */
  initialAdmin?: { name: string; password: string }
}

export interface RouterOptions {
  bootstrap: string[]
  /** TLS and SASL for the connections to Kafka (default: plaintext, no authentication). */
  security?: KafkaSecurity
  host?: string
  port?: number
  log: Logger
  registry: Registry
  /** Replication factor of topics the router creates (1 on the embedded broker). */
  replicationFactor?: number
  /** Largest request body (a transaction of documents). Default 64 MiB. */
  maxBodyBytes?: number
  /** How long requests retry while a partition has no master. Default 10 s. */
  retryMs?: number
  /**
   * How long a fetch waits at Kafka for new records (Kafka's fetch.max.wait.ms). Apache Kafka
   * answers a waiting fetch as soon as records arrive; a Kafka that holds it for the whole wait
   * (librdkafka's mock cluster) adds up to this much to every write: shorten it there.
   */
  fetchMaxWaitMs?: number
  /** Authentication and authorization. Default: not required (a library caller's choice; the CLI requires it). */
  access?: RouterAccess
  /** The cluster secret the storage nodes require (StorageNodeOptions.clusterSecret). */
  clusterSecret?: string
  /** HTTPS: the server's certificate chain and key (PEM). Default: plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer }
}

export class Router {
  readonly app: FastifyInstance
  readonly cluster: ClusterClient
  readonly metadata: MetadataLog
  #url = ''

  private constructor(app: FastifyInstance, cluster: ClusterClient, metadata: MetadataLog) {
    this.app = app
    this.cluster = cluster
    this.metadata = metadata
  }

  static async start(options: RouterOptions): Promise<Router> {
    const log = options.log
    const metadata = new MetadataLog({
      bootstrap: options.bootstrap,
      security: options.security,
      clientId: 'cortado-router',
      replicationFactor: options.replicationFactor,
      onError: (e) => log.warn('metadata read error', { error: e.message }),
      maxWaitMs: options.fetchMaxWaitMs,
    })
    await metadata.start()
    const access = await startAccess(metadata, options)
    const cluster = new ClusterClient(metadata, { retryMs: options.retryMs, clusterSecret: options.clusterSecret })
    const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024
    const requests = new Counter({
      name: 'cortado_router_requests_total',
      help: 'Router requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [options.registry],
    })
    const latency = new Histogram({
      name: 'cortado_router_request_seconds',
      help: 'Router request latency by route and method',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [options.registry],
    })
    const fastAnswers = new Counter({
      name: 'cortado_router_fast_path_requests_total',
      help: 'Router requests answered by the fast path (PUT and GET of one document), also counted in cortado_router_requests_total',
      registers: [options.registry],
    })
    // Label sets resolved once each (prom-client hashes a label object on every call otherwise);
    // bounded, as node's HTTP parser takes only the methods it knows.
    const counted = new Map<
      string,
      { count: ReturnType<typeof requests.labels>; time: ReturnType<typeof latency.labels> }
    >()
    const observe = (route: string, method: string, status: number, seconds: number) => {
      const id = `${route} ${method} ${status}`
      let m = counted.get(id)
      if (m === undefined) {
        m = { count: requests.labels(route, method, String(status)), time: latency.labels(route, method) }
        counted.set(id, m)
      }
      m.count.inc()
      m.time.observe(seconds)
    }
    const actions = documentActions(cluster)
    // Requests the fast path does not answer go to fastify's handler (the fast path is set once
    // fastify exists: it uses fastify's JSON parser).
    const front: { fastPath?: (req: IncomingMessage, res: ServerResponse) => boolean } = {}
    const app = Fastify({
      // fastify's own server settings (keep-alive 72 s, no request timeout), with the fast path
      // in front of its handler.
      serverFactory: (handler) => {
        const listener = (req: IncomingMessage, res: ServerResponse) => {
          if (front.fastPath?.(req, res) !== true) handler(req, res)
        }
        const server =
          options.tls === undefined ? http.createServer(listener) : https.createServer(options.tls, listener)
        server.keepAliveTimeout = 72_000
        server.requestTimeout = 0
        return server
      },
      bodyLimit: maxBodyBytes,
      logger: false,
      ajv: { customOptions: { coerceTypes: true, useDefaults: true, removeAdditional: false } },
      // Errors fastify answers before routing (a path that is not valid percent-encoding, a too
      // long path parameter) get the same typed body as every other refusal.
      frameworkErrors: (error, _req, reply) => {
        const e = toDbError(error)
        void (reply as FastifyReply).code(e.status).send(e.toJSON())
      },
      // Requests node's HTTP parser refuses (headers too large, malformed requests).
      clientErrorHandler: (error, socket) => {
        if ((error as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return
        const overflow = (error as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW'
        const body = JSON.stringify(
          new DbError('BAD_REQUEST', overflow ? 'request headers too large' : 'malformed HTTP request').toJSON(),
        )
        const status = overflow ? '431 Request Header Fields Too Large' : '400 Bad Request'
        if (socket.writable)
          socket.write(
            `HTTP/1.1 ${status}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
          )
        socket.destroy(error)
      },
    })
    await app.register(swagger, {
      openapi: {
        info: { title: 'Cortado', description: 'Documents replicated over a Kafka log', version: '0.1.0' },
      },
    })

    app.addHook('onResponse', async (req, reply) => {
      observe(req.routeOptions.url ?? 'unknown', req.method, reply.statusCode, reply.elapsedTime / 1000)
    })
    front.fastPath = documentFastPath({
      actions,
      parseJson: app.getDefaultJsonParser('error', 'error') as JsonBodyParser,
      maxBodyBytes,
      authorize: async (req, db, role) => {
        const principal = await access.authenticate(req.headers.authorization)
        access.authorize(principal, { kind: 'database', db, role })
        return principal
      },
      authorizeNow: (req, db, role) => {
        const principal = access.authenticateNow(req.headers.authorization)
        if (principal !== undefined) access.authorize(principal, { kind: 'database', db, role })
        return principal
      },
      onAnswer: (method, status, seconds) => {
        fastAnswers.inc()
        observe(FAST_PATH_ROUTE, method, status, seconds)
      },
      onInternalError: (method, url, error) =>
        log.error('request failed', {
          method,
          url,
          error: String(error),
          stack: error instanceof Error ? error.stack : undefined,
        }),
    })

    app.setErrorHandler((error: FastifyError | DbError, req, reply) => {
      const e = toDbError(error)
      if (e.code === 'INTERNAL')
        log.error('request failed', { method: req.method, url: req.url, error: String(error), stack: error.stack })
      void reply.headers(refusalHeaders(e))
      void reply.code(e.status).send(e.toJSON())
    })
    app.setNotFoundHandler((req, reply) => {
      void reply.code(404).send(new DbError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON())
    })

    requireAccess(app, access)
    app.get('/openapi.json', { schema: { hide: true } }, (_req, reply) => reply.send(app.swagger()))
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
      reply.type(options.registry.contentType).send(await options.registry.metrics()),
    )
    app.get('/_health', { schema: { hide: true } }, (_req, reply) =>
      reply.send({ ok: true, metadataOffset: metadata.view.offset }),
    )
    adminRoutes(app, cluster, {
      bootstrap: options.bootstrap,
      security: options.security,
      replicationFactor: options.replicationFactor ?? 1,
      log,
    })
    documentRoutes(app, cluster, actions)
    accessRoutes(app, metadata, access)
    changesRoutes(app, cluster, { bootstrap: options.bootstrap, security: options.security, log })

    const router = new Router(app, cluster, metadata)
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8080 })
    const address = app.server.address()
    router.#url = `${options.tls === undefined ? 'http' : 'https'}://${options.host ?? '127.0.0.1'}:${typeof address === 'object' && address !== null ? address.port : options.port}`
    log.info('router listening', { url: router.#url })
    return router
  }

  get url(): string {
    return this.#url
  }

  async close(): Promise<void> {
    await this.app.close()
    await this.cluster.close()
    await this.metadata.close()
  }
}

/** The access control of the API, with its metrics, and the first cluster admin on a cluster with no user. */
async function startAccess(metadata: MetadataLog, options: RouterOptions): Promise<AccessControl> {
  const unauthenticated = new Counter({
    name: 'cortado_router_authentication_failures_total',
    help: 'Requests refused 401: no, malformed or wrong credentials',
    registers: [options.registry],
  })
  const denied = new Counter({
    name: 'cortado_router_authorization_denied_total',
    help: 'Requests of an authenticated principal refused 403',
    registers: [options.registry],
  })
  const access = new AccessControl(metadata.view, {
    open: options.access?.required !== true,
    onUnauthenticated: (reason, user) => {
      unauthenticated.inc()
      options.log.warn('authentication refused', { reason, user })
    },
    onDenied: (principal, need) => {
      denied.inc()
      options.log.warn('request denied', { principal: principal.name, need })
    },
  })
  const initial = options.access?.initialAdmin
  if (access.open) options.log.warn('authentication is off: every request may read, write and administer everything')
  else if (initial !== undefined && metadata.view.users.size === 0) {
    const user: UserRecord = {
      name: initial.name,
      password: await hashPassword(initial.password),
      admin: true,
      roles: {},
    }
    await metadata.put(`user/${initial.name}`, user)
    options.log.info('created the first cluster admin', { user: initial.name })
  }
  return access
}
