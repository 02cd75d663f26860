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
import { createServer, type Server, type Socket } from 'node:net'
import { type Counter, type Gauge, type Histogram, type Registry } from 'prom-client'
import * as prom from 'prom-client'
import { APIS, ApiKey, type ApiSpec, type RequestOf, type ResponseOf } from '../protocol/apis.ts'
import { ErrorCode, ProtocolError } from '../protocol/errors.ts'
import { Reader } from '../protocol/reader.ts'
import { decode, encode, isFlexible, type Shape } from '../protocol/schema.ts'
import { Writer } from '../protocol/writer.ts'
import { type Logger } from '../util/log.ts'

export interface RequestContext {
  readonly apiKey: number
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  readonly clientAddress: string
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

export interface ServerOptions {
  readonly host: string
  readonly port: number
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
  private server: Server | undefined

  constructor(options: ServerOptions) {
    this.options = options
    this.metrics = createMetrics(options.registry)
    this.handlers = handlersByKey(options.handlers)
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address()
    return typeof address === 'object' && address !== null ? address.port : this.options.port
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const c of this.connections) c.destroy()
    await closed
  }

  private accept(socket: Socket): void {
    const conn = new Connection(socket, this.options, this.handlers, this.metrics)
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
  private input: Buffer[] = []
  private inputBytes = 0
  private readonly pending: Slot[] = []
  private waitingForDrain = false
  private corked = false
  private closed = false

  constructor(
    socket: Socket,
    options: ServerOptions,
    handlers: ReadonlyMap<number, AnyHandler>,
    metrics: ServerMetrics,
  ) {
    this.socket = socket
    this.options = options
    this.handlers = handlers
    this.metrics = metrics
    this.clientAddress = `${socket.remoteAddress}:${socket.remotePort}`
    this.log = options.log.child({ client: this.clientAddress })
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => {
      this.waitingForDrain = false
      this.resumeIfIdle()
    })
    socket.on('error', (err) => this.log.debug('socket error', { err }))
    socket.on('close', () => {
      this.closed = true
      this.abort.abort()
    })
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
      if (this.waitingForDrain || this.pending.length >= this.options.maxInflight) {
        this.socket.pause()
        return
      }
      const head = this.input[0].length >= 4 ? this.input[0] : this.compact()
      const size = head.readInt32BE(0)
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
      this.handleFrame(frame)
    }
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
    this.dispatch(
      spec,
      { apiKey, apiVersion, correlationId, clientId, clientAddress: this.clientAddress, signal: this.abort.signal },
      body,
    )
  }

  private dispatch(spec: ApiSpec, ctx: RequestContext, body: unknown): void {
    const slot: Slot = { done: false, chunks: null }
    this.pending.push(slot)
    const started = performance.now()
    const api = spec.name
    const finish = (response: unknown) => {
      this.metrics.requests.inc({ api })
      this.metrics.requestSeconds.observe({ api }, (performance.now() - started) / 1000)
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
      if (result instanceof Promise) result.then(finish, failed)
      else finish(result)
    } catch (err) {
      failed(err)
    }
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
    if (this.closed || this.waitingForDrain || this.pending.length >= this.options.maxInflight) return
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
