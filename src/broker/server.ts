// The Kafka wire protocol on TCP: framing, request headers, ordered responses.
//
// Each connection reads size-prefixed frames, decodes the header and body by the API's schema,
// and calls that API's handler at once, in arrival order (so side effects happen in the order the
// client sent them). Responses go back strictly in request order, as Kafka clients require, even
// though a later request (a metadata call) may finish before an earlier one (a produce waiting for
// fsync). Memory per connection is bounded: a frame larger than socket.request.max.bytes closes
// the connection, and reading pauses while too many requests are in flight or the client is not
// reading its responses. Anything a client sends that cannot be decoded closes that client's
// connection and no other.
//
// A broker has one or more listeners (src/broker/listeners.ts): plain TCP or TLS, and on SASL
// listeners a SASL exchange per connection (src/broker/security/sasl-authenticator.ts) that gates
// every request until the client has authenticated, as Kafka's network layer does. Each request
// carries the listener it came through and the client's principal.
import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls'
import { type Counter, type Gauge, type Histogram, type Registry } from 'prom-client'
import * as prom from 'prom-client'
import { APIS, ApiKey, type ApiSpec, type RequestOf, type ResponseOf } from '../protocol/apis.ts'
import { ErrorCode, ProtocolError } from '../protocol/errors.ts'
import { Reader } from '../protocol/reader.ts'
import { decode, encode, isFlexible, type Shape } from '../protocol/schema.ts'
import { Writer } from '../protocol/writer.ts'
import { type Logger } from '../util/log.ts'
import { type SaslAuthenticator } from './security/sasl-authenticator.ts'
import { certificatePrincipal } from './security/tls.ts'

export interface RequestContext {
  readonly apiKey: number
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  readonly clientAddress: string
  /** The listener the request came through (its name, upper case). */
  readonly listener: string
  /** `User:<name>` (SASL), `User:<certificate subject>` (TLS client certificate), or `User:ANONYMOUS`. */
  readonly principal: string
  /** What this request's principal may do (everything when the broker has no authorizer). */
  readonly access: Access
  /** The request's size on the wire (the frame, without its size prefix): what producer_byte_rate counts. */
  readonly size: number
  /** The connection's quota throttle (KIP-219): the handler reports a throttle time and calls it. */
  readonly throttle: Throttle
  /** Aborted when the connection closes, so long polls can stop waiting. */
  readonly signal: AbortSignal
}

/** A handler's answer: the response body, or null to send nothing (produce with acks=0). */
export type HandlerResult<K extends ApiKey> = Shape<ResponseOf<K>> | null | Promise<Shape<ResponseOf<K>> | null>

/** A handler together with the API key it answers; its request and response types follow from the key. */
export interface BoundHandler<K extends ApiKey> {
  readonly apiKey: K
  readonly handle: (ctx: RequestContext, request: RequestOf<K>) => HandlerResult<K>
}

/** Any API's bound handler: what the server is given. A handler cannot be filed under another key. */
export type AnyHandler = { [K in ApiKey]: BoundHandler<K> }[ApiKey]

export function defineHandler<K extends ApiKey>(
  apiKey: K,
  handle: (ctx: RequestContext, request: RequestOf<K>) => HandlerResult<K>,
): BoundHandler<K> {
  return { apiKey, handle }
}

/** Thrown by a handler to close the client's connection (Kafka does so for a failed acks=0 produce). */
export class CloseConnection extends Error {
  readonly code = 'CLOSE_CONNECTION'
}

/** A connection's permissions, asked by handlers before they act (Kafka's authorizer calls in KafkaApis). */
export interface Access {
  /**
   * May the principal do `operation` on this resource? (ACL codes of src/broker/security/acls.ts.)
   * A refusal is logged and counted unless `logIfDenied` is false: for filtering a listing (Metadata
   * of all topics, ListGroups), where leaving things out is not a refused request.
   */
  authorize(operation: number, resourceType: number, resourceName: string, logIfDenied?: boolean): boolean
  /** May it do `operation` on some resource of this type? (InitProducerId: WRITE on any topic.) */
  authorizeAny(operation: number, resourceType: number): boolean
}

/** The broker's authorizer, as the server asks it for each connection's principal and host. */
export interface AccessControl {
  authorize(
    principal: string,
    host: string,
    operation: number,
    resourceType: number,
    resourceName: string,
    logIfDenied: boolean,
  ): boolean
  authorizeAny(principal: string, host: string, operation: number, resourceType: number): boolean
}

const ALLOW_ALL: Access = { authorize: () => true, authorizeAny: () => true }

/**
 * A client over its quota is answered at once, with the throttle time in the response, and then its
 * connection is not read for that long (KIP-219): a client that ignores the throttle time cannot
 * send more meanwhile, and the others are not slowed.
 */
export interface Throttle {
  mute(ms: number): void
}

/**
 * The request-time quota (request_percentage): given the principal, the client id and the
 * milliseconds the broker spent on a request, the throttle time to apply (0: none).
 */
export type RequestQuota = (principal: string, clientId: string, handlerMs: number) => number

/** Requests that never count against or wait on the request quota (Kafka exempts them too). */
const QUOTA_EXEMPT = new Set<number>([ApiKey.ApiVersions, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate])

/**
 * The host ACLs match a client by: its address, with an IPv4 client of a listener on `::`
 * (::ffff:a.b.c.d) named a.b.c.d, as Kafka names it.
 */
export function aclHost(remoteAddress: string | undefined): string {
  return (remoteAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')
}

/** Kafka's principal of an unauthenticated client. */
export const ANONYMOUS = 'User:ANONYMOUS'

export interface ServerListener {
  readonly name: string
  readonly host: string
  /** 0: an ephemeral port. */
  readonly port: number
  /** TLS server options, for SSL and SASL_SSL listeners. */
  readonly tls?: TlsOptions
  /** A new SASL exchange for each connection, for SASL_PLAINTEXT and SASL_SSL listeners. */
  readonly sasl?: () => SaslAuthenticator
}

export interface ServerOptions {
  readonly listeners: readonly ServerListener[]
  /** Without it every request is allowed (Kafka without authorizer.class.name). */
  readonly accessControl?: AccessControl
  /** Without it no request is throttled for the time it takes. */
  readonly requestQuota?: RequestQuota
  readonly maxFrameBytes: number
  readonly maxInflight: number
  readonly handlers: readonly AnyHandler[]
  readonly log: Logger
  readonly registry: Registry
}

interface ServerMetrics {
  requests: Counter<'api'>
  requestSeconds: Histogram<'api'>
  protocolErrors: Counter<'reason'>
  connections: Gauge
  bytesIn: Counter
  bytesOut: Counter
}

function createMetrics(registry: Registry): ServerMetrics {
  return {
    requests: new prom.Counter({
      name: 'cortado_broker_requests_total',
      help: 'Requests handled, by API',
      labelNames: ['api'],
      registers: [registry],
    }),
    requestSeconds: new prom.Histogram({
      name: 'cortado_broker_request_seconds',
      help: 'Time from a request being read to its response being ready, by API',
      labelNames: ['api'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    protocolErrors: new prom.Counter({
      name: 'cortado_broker_protocol_errors_total',
      help: 'Connections closed for bad input, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    connections: new prom.Gauge({
      name: 'cortado_broker_connections',
      help: 'Open client connections',
      registers: [registry],
    }),
    bytesIn: new prom.Counter({
      name: 'cortado_broker_bytes_in_total',
      help: 'Request bytes read',
      registers: [registry],
    }),
    bytesOut: new prom.Counter({
      name: 'cortado_broker_bytes_out_total',
      help: 'Response bytes written',
      registers: [registry],
    }),
  }
}

export class KafkaServer {
  private readonly options: ServerOptions
  private readonly metrics: ServerMetrics
  private readonly handlers: ReadonlyMap<number, AnyHandler>
  private readonly connections = new Set<Connection>()
  private readonly servers: Server[] = []

  constructor(options: ServerOptions) {
    this.options = options
    this.metrics = createMetrics(options.registry)
    this.handlers = handlersByKey(options.handlers)
  }

  /** Starts every listener; resolves with the bound port of each, by name (useful with port 0). */
  async listen(): Promise<Map<string, number>> {
    const ports = new Map<string, number>()
    for (const listener of this.options.listeners) {
      const server = listener.tls === undefined ? this.plainServer(listener) : this.tlsServer(listener, listener.tls)
      this.servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(listener.port, listener.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      const address = server.address()
      ports.set(listener.name, typeof address === 'object' && address !== null ? address.port : listener.port)
    }
    return ports
  }

  private plainServer(listener: ServerListener): Server {
    return createServer({ noDelay: true }, (socket) => this.accept(socket, listener))
  }

  private tlsServer(listener: ServerListener, options: TlsOptions): Server {
    const server = createTlsServer(options, (socket) => this.accept(socket, listener))
    // A failed TLS handshake (no or a bad client certificate, a plaintext client) concerns that client only.
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.metrics.protocolErrors.inc({ reason: 'tls_handshake' })
      this.options.log.warn('TLS handshake failed', {
        listener: listener.name,
        error: err.message,
        client: socket.remoteAddress === undefined ? 'gone' : `${socket.remoteAddress}:${socket.remotePort}`,
      })
    })
    return server
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))
    for (const c of this.connections) c.destroy()
    await Promise.all(closed)
  }

  private accept(socket: Socket, listener: ServerListener): void {
    if (listener.tls !== undefined) {
      // With ssl.client.auth=requested the TLS layer lets a client in whose certificate it could
      // not verify; Kafka refuses that client (only one with no certificate is let in).
      const tls = socket as TLSSocket
      if (!tls.authorized && Object.keys(tls.getPeerCertificate()).length > 0) {
        this.metrics.protocolErrors.inc({ reason: 'tls_handshake' })
        this.options.log.warn('TLS handshake failed', {
          listener: listener.name,
          error: `client certificate not trusted: ${String(tls.authorizationError)}`,
          client: `${socket.remoteAddress}:${socket.remotePort}`,
        })
        socket.destroy()
        return
      }
      socket.setNoDelay(true)
    }
    const conn = new Connection(socket, listener, this.options, this.handlers, this.metrics)
    this.connections.add(conn)
    this.metrics.connections.inc()
    socket.once('close', () => {
      this.connections.delete(conn)
      this.metrics.connections.dec()
    })
  }
}

function handlersByKey(handlers: readonly AnyHandler[]): Map<number, AnyHandler> {
  const byKey = new Map<number, AnyHandler>()
  for (const h of handlers) {
    if (byKey.has(h.apiKey)) throw new Error(`two handlers for API key ${h.apiKey}`)
    byKey.set(h.apiKey, h)
  }
  return byKey
}

interface Slot {
  done: boolean
  /** Encoded response; null when nothing is sent back. */
  chunks: Buffer[] | null
}

class Connection {
  private readonly socket: Socket
  private readonly options: ServerOptions
  private readonly handlers: ReadonlyMap<number, AnyHandler>
  private readonly metrics: ServerMetrics
  private readonly log: Logger
  private readonly abort = new AbortController()
  private readonly clientAddress: string
  private readonly listener: string
  /** The SASL exchange, on SASL listeners. */
  private readonly sasl: SaslAuthenticator | undefined
  /** The TLS client certificate's principal, if any. */
  private readonly certificatePrincipal: string | undefined
  private readonly access: Access
  private readonly throttle: Throttle = { mute: (ms) => this.mute(ms) }
  /** Quota throttling: the connection is not read before this time (performance.now()). */
  private mutedUntil = 0
  private unmuteTimer: NodeJS.Timeout | undefined
  private input: Buffer[] = []
  private inputBytes = 0
  private readonly pending: Slot[] = []
  private waitingForDrain = false
  private corked = false
  private closed = false

  constructor(
    socket: Socket,
    listener: ServerListener,
    options: ServerOptions,
    handlers: ReadonlyMap<number, AnyHandler>,
    metrics: ServerMetrics,
  ) {
    this.socket = socket
    this.options = options
    this.handlers = handlers
    this.metrics = metrics
    this.clientAddress = `${socket.remoteAddress}:${socket.remotePort}`
    this.listener = listener.name
    this.sasl = listener.sasl?.()
    this.certificatePrincipal = listener.tls === undefined ? undefined : certificatePrincipal(socket as TLSSocket)
    this.log = options.log.child({ client: this.clientAddress, listener: listener.name })
    this.access = this.accessOf(options.accessControl, aclHost(socket.remoteAddress))
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => {
      this.waitingForDrain = false
      this.resumeIfIdle()
    })
    socket.on('error', (err) => this.log.debug('socket error', { err }))
    socket.on('close', () => {
      this.closed = true
      this.abort.abort()
      clearTimeout(this.unmuteTimer)
    })
  }

  private mute(ms: number): void {
    if (ms <= 0 || this.closed) return
    this.mutedUntil = Math.max(this.mutedUntil, performance.now() + ms)
    this.scheduleUnmute()
  }

  private scheduleUnmute(): void {
    clearTimeout(this.unmuteTimer)
    // setTimeout may fire a fraction of a millisecond early: round up, and check again when it fires.
    this.unmuteTimer = setTimeout(
      () => (this.isMuted() ? this.scheduleUnmute() : this.resumeIfIdle()),
      Math.ceil(this.mutedUntil - performance.now()),
    )
  }

  /** The principal of the connection now: SASL's (kept through re-authentication), else the certificate's. */
  private principal(): string {
    return this.sasl?.principal ?? this.certificatePrincipal ?? ANONYMOUS
  }

  private accessOf(control: AccessControl | undefined, host: string): Access {
    if (control === undefined) return ALLOW_ALL
    return {
      authorize: (operation, resourceType, resourceName, logIfDenied = true) =>
        control.authorize(this.principal(), host, operation, resourceType, resourceName, logIfDenied),
      authorizeAny: (operation, resourceType) => control.authorizeAny(this.principal(), host, operation, resourceType),
    }
  }

  destroy(): void {
    this.closed = true
    this.abort.abort()
    this.socket.destroy()
  }

  private fail(reason: string, message: string, fields?: Record<string, unknown>): void {
    this.metrics.protocolErrors.inc({ reason })
    this.log.warn(`closing connection: ${message}`, { reason, ...fields })
    this.destroy()
  }

  private onData(chunk: Buffer): void {
    this.metrics.bytesIn.inc(chunk.length)
    this.input.push(chunk)
    this.inputBytes += chunk.length
    this.readFrames()
  }

  private readFrames(): void {
    while (!this.closed && this.inputBytes >= 4) {
      if (this.waitingForDrain || this.pending.length >= this.options.maxInflight || this.isMuted()) {
        this.socket.pause()
        return
      }
      const head = this.input[0].length >= 4 ? this.input[0] : this.compact()
      const size = head.readInt32BE(0)
      // A client that has not authenticated gets a small frame limit (Kafka's sasl.server.max.receive.size).
      if (
        this.sasl !== undefined &&
        this.sasl.principal === undefined &&
        size > this.sasl.maxUnauthenticatedFrameBytes
      ) {
        this.fail(
          'frame_size',
          `frame of ${size} bytes before SASL authentication (sasl.server.max.receive.size=${this.sasl.maxUnauthenticatedFrameBytes})`,
          { size },
        )
        return
      }
      if (size < 8 || size > this.options.maxFrameBytes) {
        this.fail(
          'frame_size',
          `request frame of ${size} bytes is outside 8..${this.options.maxFrameBytes} (socket.request.max.bytes)`,
          { size },
        )
        return
      }
      if (this.inputBytes < size + 4) return
      const all = this.input.length === 1 ? this.input[0] : this.compact()
      const frame = all.subarray(4, 4 + size)
      const rest = all.subarray(4 + size)
      this.input = rest.length > 0 ? [rest] : []
      this.inputBytes = rest.length
      if (this.sasl?.expectsBareToken === true) this.handleBareToken(this.sasl, frame)
      else this.handleFrame(frame)
    }
  }

  private isMuted(): boolean {
    return this.mutedUntil > 0 && performance.now() < this.mutedUntil
  }

  private compact(): Buffer {
    const all = Buffer.concat(this.input, this.inputBytes)
    this.input = [all]
    return all
  }

  private handleFrame(frame: Buffer): void {
    const r = new Reader(frame)
    const apiKey = r.readInt16()
    const apiVersion = r.readInt16()
    const correlationId = r.readInt32()
    const spec = APIS.get(apiKey)
    if (spec === undefined) {
      this.fail('unknown_api', `unknown API key ${apiKey}`, { apiKey, apiVersion })
      return
    }
    if (apiVersion < spec.versions[0] || apiVersion > spec.versions[1]) {
      if (apiKey === ApiKey.ApiVersions) {
        // KIP-511: answer an ApiVersions version we do not know in v0 format with our own range,
        // so the client can retry with one we do.
        this.respondRaw(this.unsupportedApiVersions(correlationId, spec))
        return
      }
      this.fail(
        'unsupported_version',
        `${spec.name} v${apiVersion} is not supported (${spec.versions[0]}-${spec.versions[1]})`,
        { apiKey, apiVersion },
      )
      return
    }
    let clientId: string | null
    let body: unknown
    try {
      clientId = r.readString()
      const flexible = isFlexible(spec.request, apiVersion)
      if (flexible) skipTaggedFields(r)
      body = decode(spec.request, apiVersion, r)
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.fail('malformed', `malformed ${spec.name} v${apiVersion} request: ${err.message}`, { code: err.code })
        return
      }
      throw err
    }
    const ctx: RequestContext = {
      apiKey,
      apiVersion,
      correlationId,
      clientId,
      clientAddress: this.clientAddress,
      listener: this.listener,
      principal: this.principal(),
      access: this.access,
      size: frame.length,
      throttle: this.throttle,
      signal: this.abort.signal,
    }
    if (this.sasl !== undefined && !this.saslRequest(this.sasl, spec, ctx, body)) return
    this.dispatch(spec, ctx, body)
  }

  /**
   * On a SASL listener: serves SaslHandshake and SaslAuthenticate here, and refuses what the
   * exchange does not allow yet. True if the request goes on to its handler.
   */
  private saslRequest(sasl: SaslAuthenticator, spec: ApiSpec, ctx: RequestContext, body: unknown): boolean {
    const refused = sasl.gate(spec.key, spec.name)
    if (refused !== undefined) {
      this.fail('sasl', refused, { api: spec.name, principal: sasl.principal })
      return false
    }
    let step: { response: unknown; close?: string }
    if (spec.key === ApiKey.SaslHandshake)
      step = sasl.handshake(ctx.apiVersion, (body as { mechanism: string }).mechanism)
    else if (spec.key === ApiKey.SaslAuthenticate)
      step = sasl.authenticate(ctx.apiVersion, (body as { authBytes: Buffer }).authBytes)
    else return true
    this.metrics.requests.inc({ api: spec.name })
    this.respondRaw(this.encodeResponse(spec, ctx, step.response))
    if (step.close !== undefined) this.closeAfterWrite('sasl', step.close)
    else if (spec.key === ApiKey.SaslAuthenticate && sasl.principal !== undefined)
      this.log.debug('SASL authenticated', { principal: sasl.principal })
    return false
  }

  /** A bare SASL token (after SaslHandshake v0): its reply goes back size-prefixed, with no Kafka header. */
  private handleBareToken(sasl: SaslAuthenticator, token: Buffer): void {
    const step = sasl.bareToken(token)
    if (step.close !== undefined) {
      this.fail('sasl', step.close)
      return
    }
    const reply = step.response ?? Buffer.alloc(0)
    const size = Buffer.alloc(4)
    size.writeInt32BE(reply.length, 0)
    this.respondRaw([size, reply])
  }

  /** Sends what is queued, then closes: a refused client gets its error before the connection ends. */
  private closeAfterWrite(reason: string, message: string): void {
    this.metrics.protocolErrors.inc({ reason })
    this.log.warn(`closing connection: ${message}`, { reason })
    this.closed = true
    this.abort.abort()
    this.socket.end()
  }

  private dispatch(spec: ApiSpec, ctx: RequestContext, body: unknown): void {
    const slot: Slot = { done: false, chunks: null }
    this.pending.push(slot)
    const started = performance.now()
    const api = spec.name
    let handlerMs = 0
    const finish = (response: unknown) => {
      this.metrics.requests.inc({ api })
      this.metrics.requestSeconds.observe({ api }, (performance.now() - started) / 1000)
      this.applyRequestQuota(spec, ctx, response, handlerMs)
      slot.chunks = response === null ? null : this.encodeResponse(spec, ctx, response)
      slot.done = true
      this.writeResponses()
    }
    const failed = (err: unknown) => {
      if (err instanceof CloseConnection) {
        this.fail('handler_close', err.message, { api })
        return
      }
      this.log.error('request handler failed', {
        api,
        version: ctx.apiVersion,
        err,
        stack: err instanceof Error ? err.stack : undefined,
      })
      this.metrics.protocolErrors.inc({ reason: 'handler_error' })
      this.destroy()
    }
    const handler = this.handlers.get(spec.key)
    if (handler === undefined) {
      failed(new Error(`no handler for ${api}`))
      return
    }
    try {
      // Called synchronously so requests take effect in arrival order.
      // The body was decoded with this key's schema, so it is this handler's request type.
      const result = handler.handle(ctx, body as never)
      // The time the handler held the event loop (not its waits, such as the fsync): Kafka counts
      // request-handler thread time against request_percentage.
      handlerMs = performance.now() - started
      if (result instanceof Promise) result.then(finish, failed)
      else finish(result)
    } catch (err) {
      failed(err)
    }
  }

  /** request_percentage: the throttle goes into the response's throttle_time_ms (the larger one) and mutes the connection. */
  private applyRequestQuota(spec: ApiSpec, ctx: RequestContext, response: unknown, handlerMs: number): void {
    const quota = this.options.requestQuota
    if (quota === undefined || QUOTA_EXEMPT.has(spec.key)) return
    const ms = quota(ctx.principal, ctx.clientId ?? '', handlerMs)
    if (ms <= 0) return
    if (response !== null && typeof response === 'object' && 'throttleTimeMs' in response) {
      const r = response as { throttleTimeMs: number }
      r.throttleTimeMs = Math.max(r.throttleTimeMs, Math.round(ms))
    }
    this.mute(ms)
  }

  private encodeResponse(spec: ApiSpec, ctx: RequestContext, response: unknown): Buffer[] {
    const w = new Writer()
    w.writeInt32(0) // size, patched below
    w.writeInt32(ctx.correlationId)
    // Flexible responses use header v1 (tagged fields), except ApiVersions, always header v0.
    if (isFlexible(spec.response, ctx.apiVersion) && spec.key !== ApiKey.ApiVersions) w.writeUVarint(0)
    encode(spec.response, ctx.apiVersion, response, w)
    const chunks = w.toChunks()
    chunks[0].writeInt32BE(w.length - 4, 0)
    return chunks
  }

  private unsupportedApiVersions(correlationId: number, spec: ApiSpec): Buffer[] {
    const w = new Writer()
    w.writeInt32(0).writeInt32(correlationId)
    encode(
      spec.response,
      0,
      {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
        apiKeys: [{ apiKey: spec.key, minVersion: spec.versions[0], maxVersion: spec.versions[1] }],
      },
      w,
    )
    const chunks = w.toChunks()
    chunks[0].writeInt32BE(w.length - 4, 0)
    return chunks
  }

  private respondRaw(chunks: Buffer[]): void {
    this.pending.push({ done: true, chunks })
    this.writeResponses()
  }

  private writeResponses(): void {
    if (this.closed) return
    while (this.pending.length > 0 && this.pending[0].done) {
      const slot = this.pending.shift()!
      if (slot.chunks === null) continue
      if (!this.corked) {
        // Responses completed in the same tick (one fsync round releases many) leave in one
        // writev instead of one syscall each.
        this.corked = true
        this.socket.cork()
        process.nextTick(() => {
          this.corked = false
          this.socket.uncork()
        })
      }
      let bytes = 0
      for (const chunk of slot.chunks) {
        bytes += chunk.length
        if (!this.socket.write(chunk)) this.waitingForDrain = true
      }
      this.metrics.bytesOut.inc(bytes)
    }
    if (this.waitingForDrain) this.socket.pause()
    else this.resumeIfIdle()
  }

  private resumeIfIdle(): void {
    if (this.closed || this.waitingForDrain || this.pending.length >= this.options.maxInflight || this.isMuted()) return
    if (this.socket.isPaused()) this.socket.resume()
    this.readFrames()
  }
}

function skipTaggedFields(r: Reader): void {
  const count = r.readUVarint()
  for (let i = 0; i < count; i++) {
    r.readUVarint()
    r.readRaw(r.readUVarint())
  }
}
