// The router: a stateless HTTP front (fastify) that follows the cluster metadata, maps
// /{db}/{table}/{partitionKey}… to a partition and forwards to its master or a replica. Routes are
// schema-first; the OpenAPI document (GET /openapi.json) is generated from those schemas.
import swagger from '@fastify/swagger'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify'
import { Counter, Histogram, type Registry } from 'prom-client'
import { type Logger } from '../../util/log.ts'
import { DbError } from '../errors.ts'
import { MetadataLog } from '../metadata/metadata-log.ts'
import { ClusterClient } from './cluster-client.ts'
import { adminRoutes } from './routes-admin.ts'
import { documentRoutes } from './routes-documents.ts'

export interface RouterOptions {
  bootstrap: string[]
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
      clientId: 'cortado-router',
      replicationFactor: options.replicationFactor,
      onError: (e) => log.warn('metadata read error', { error: e.message }),
      maxWaitMs: options.fetchMaxWaitMs,
    })
    await metadata.start()
    const cluster = new ClusterClient(metadata, { retryMs: options.retryMs })
    const app = Fastify({
      bodyLimit: options.maxBodyBytes ?? 64 * 1024 * 1024,
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
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unknown'
      requests.inc({ route, method: req.method, status: String(reply.statusCode) })
      latency.observe({ route, method: req.method }, reply.elapsedTime / 1000)
    })

    app.setErrorHandler((error: FastifyError | DbError, req, reply) => {
      const e = toDbError(error)
      if (e.code === 'INTERNAL')
        log.error('request failed', { method: req.method, url: req.url, error: String(error), stack: error.stack })
      if (e.status === 503) void reply.header('retry-after', '1')
      void reply.code(e.status).send(e.toJSON())
    })
    app.setNotFoundHandler((req, reply) => {
      void reply.code(404).send(new DbError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON())
    })

    app.get('/openapi.json', { schema: { hide: true } }, (_req, reply) => reply.send(app.swagger()))
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
      reply.type(options.registry.contentType).send(await options.registry.metrics()),
    )
    app.get('/_health', { schema: { hide: true } }, (_req, reply) =>
      reply.send({ ok: true, metadataOffset: metadata.view.offset }),
    )
    adminRoutes(app, cluster, { bootstrap: options.bootstrap, replicationFactor: options.replicationFactor ?? 1, log })
    documentRoutes(app, cluster)

    const router = new Router(app, cluster, metadata)
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8080 })
    const address = app.server.address()
    router.#url = `http://${options.host ?? '127.0.0.1'}:${typeof address === 'object' && address !== null ? address.port : options.port}`
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

/** Maps fastify's own errors (validation, body parsing, size) to typed database errors. */
function toDbError(error: FastifyError | DbError): DbError {
  if (error instanceof DbError) return error
  const fe = error
  if (fe.validation !== undefined)
    return new DbError(
      'BAD_REQUEST',
      `invalid request: ${fe.message}`,
      fe.validation.map((v) => `${v.instancePath || fe.validationContext || ''} ${v.message ?? ''}`.trim()),
    )
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new DbError('PAYLOAD_TOO_LARGE', fe.message)
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new DbError('BAD_REQUEST', `${fe.message} (send application/json)`)
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500)
    return new DbError('BAD_REQUEST', fe.message)
  return new DbError('INTERNAL', fe.message)
}
